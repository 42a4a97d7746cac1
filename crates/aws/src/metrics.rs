//! CloudWatch metrics in the embedded metric format (EMF): one JSON log line that CloudWatch
//! Logs turns into metrics, with no PutMetricData call and no extra IAM permission. The sweep
//! writes one line per round; the template's alarms read them.

use jiff::Timestamp;
use serde_json::{Value, json};

/// The namespace nbfleet's metrics are in (the template's alarms name it too).
pub const NAMESPACE: &str = "nbfleet";

/// One metric: its name, value and CloudWatch unit (`Count`, `Seconds`).
pub struct Metric<'a> {
    pub name: &'a str,
    pub value: f64,
    pub unit: &'a str,
}

/// The EMF line for `metrics` at `now`, with one dimension, `Function` (the Lambda function's
/// name, so that two stacks in one account never mix their numbers).
pub fn emf(function: &str, metrics: &[Metric], now: Timestamp) -> Value {
    let mut line = json!({
        "_aws": {
            "Timestamp": now.as_millisecond(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": metrics.iter().map(|m| json!({"Name": m.name, "Unit": m.unit})).collect::<Vec<_>>(),
            }],
        },
        "Function": function,
    });
    for m in metrics {
        line[m.name] = json!(m.value);
    }
    line
}
