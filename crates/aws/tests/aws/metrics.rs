//! The sweep's metrics line, held to the embedded metric format CloudWatch Logs reads: every
//! metric declared under `_aws.CloudWatchMetrics` has a number at the top level, and so has
//! every dimension a string.

use jiff::Timestamp;
use nbfleet_aws::metrics::{Metric, NAMESPACE, emf};

#[test]
fn a_round_becomes_one_emf_line_cloudwatch_can_read() {
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    let line = emf(
        "nbfleet-sweep",
        &[
            Metric {
                name: "Errors",
                value: 2.0,
                unit: "Count",
            },
            Metric {
                name: "RoundSeconds",
                value: 1.5,
                unit: "Seconds",
            },
        ],
        now,
    );
    let directive = &line["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(line["_aws"]["Timestamp"], 1_800_000_000_000i64);
    assert_eq!(directive["Namespace"], NAMESPACE);
    assert_eq!(directive["Dimensions"][0][0], "Function");
    assert_eq!(line["Function"], "nbfleet-sweep");
    for m in directive["Metrics"].as_array().unwrap() {
        let name = m["Name"].as_str().unwrap();
        assert!(line[name].is_number(), "{name} has no value: {line}");
    }
    assert_eq!(
        (line["Errors"].as_f64(), line["RoundSeconds"].as_f64()),
        (Some(2.0), Some(1.5))
    );
}
