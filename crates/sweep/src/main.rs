//! The idle-shutdown Lambda, on the sweep schedule.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = nbfleet_aws::lambda_deps().await?;
    run(service_fn(|_: LambdaEvent<Value>| {
        let deps = &deps;
        async move {
            let report = nbfleet_sweep::sweep(deps, nbfleet_sweep::Timing::default()).await?;
            Ok::<_, Error>(serde_json::json!({
                "probed": report.probed, "warned": report.warned, "stopped": report.stopped, "started": report.started,
                "unknown": report.unknown, "orphans": report.reconcile.orphans, "overdue": report.overdue,
            }))
        }
    }))
    .await
}
