//! The sweep Lambda: one idle-shutdown round per scheduled event, and one line of metrics
//! (CloudWatch's embedded metric format) that the template's alarms read.

use lambda_runtime::{Diagnostic, Error, LambdaEvent, run, service_fn};
use nbfleet_app::sweep::{RoundReport, Timing, sweep};
use nbfleet_aws::metrics::{Metric, emf};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn main() -> Result<(), Error> {
    nbfleet_lambdas::start(async {
        let deps = nbfleet_aws::lambda_deps().await?;
        let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "nbfleet-sweep".into());
        run(service_fn(|_: LambdaEvent<Value>| {
            let (deps, function) = (&deps, function.as_str());
            async move {
                let began = Instant::now();
                let r = sweep(deps, Timing::default())
                    .await
                    .map_err(|e| nbfleet_http::diagnostic(&e))?;
                println!("{}", emf(function, &metrics(&r, began.elapsed()), deps.clock.now()));
                Ok::<_, Diagnostic>(json!({
                    "probed": r.probed, "warned": r.warned, "stopped": r.stopped, "started": r.started,
                    "unknown": r.unknown, "orphans": r.reconcile.orphans, "overdue": r.overdue, "failed": r.failed,
                }))
            }
        }))
        .await
    })
}

/// What a round is watched by: how long it took, what it did, what it could not do.
fn metrics(r: &RoundReport, took: Duration) -> Vec<Metric<'static>> {
    let count = |name, n: usize| Metric {
        name,
        value: n as f64,
        unit: "Count",
    };
    vec![
        Metric {
            name: "RoundSeconds",
            value: took.as_secs_f64(),
            unit: "Seconds",
        },
        count("Probed", r.probed),
        count("Unknown", r.unknown.len()),
        count("Warned", r.warned.len()),
        count("Stopped", r.stopped.len()),
        count("Errors", r.failed.len()),
        count("Orphans", r.reconcile.orphans.len()),
    ]
}
