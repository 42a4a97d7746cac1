//! The sweep Lambda: one idle-shutdown round per scheduled event.

use lambda_runtime::{Diagnostic, Error, LambdaEvent, run, service_fn};
use nbfleet_app::sweep::{Timing, sweep};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = nbfleet_aws::lambda_deps().await?;
    run(service_fn(|_: LambdaEvent<Value>| {
        let deps = &deps;
        async move {
            let r = sweep(deps, Timing::default())
                .await
                .map_err(|e| nbfleet_http::diagnostic(&e))?;
            Ok::<_, Diagnostic>(json!({
                "probed": r.probed, "warned": r.warned, "stopped": r.stopped, "started": r.started,
                "unknown": r.unknown, "orphans": r.reconcile.orphans, "overdue": r.overdue, "failed": r.failed,
            }))
        }
    }))
    .await
}
