//! Reading what the bootstrap and health-check scripts print: one JSON line on stdout.

use crate::error::{Error, Result};
use crate::gpu::parse_query_csv;
use crate::record::GpuInfo;
use serde::Deserialize;
use serde_json::Value;

/// What the bootstrap learned, as stored on the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapReport {
    /// SHA-256 of the served certificate (DER), lowercase hex.
    pub fingerprint: String,
    pub gpu: GpuInfo,
    pub jupyter_server: String,
    pub jupyterlab: String,
    pub port: u16,
}

#[derive(Deserialize)]
struct RawBootstrap {
    fingerprint: String,
    gpu_csv: String,
    torch_cuda: String,
    jupyter_server: String,
    jupyterlab: String,
    port: u16,
}

/// What a health check printed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HealthReport {
    pub fingerprint: String,
    pub port: u16,
}

/// The last line of `stdout` that is a JSON object with `"nbfleet": kind`.
fn report_line(stdout: &str, kind: &str) -> Result<Value> {
    stdout
        .lines()
        .rev()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["nbfleet"] == kind)
        .ok_or_else(|| Error::internal(format!("the {kind} script printed no report")))
}

pub fn parse_bootstrap(stdout: &str) -> Result<BootstrapReport> {
    let raw: RawBootstrap = serde_json::from_value(report_line(stdout, "bootstrap")?)
        .map_err(|e| Error::internal(format!("unreadable bootstrap report: {e}")))?;
    check_fingerprint(&raw.fingerprint)?;
    let gpus = parse_query_csv(&raw.gpu_csv)?;
    let gpu = match gpus.first() {
        Some(first) => GpuInfo {
            name: crate::text::plain(&first.name),
            memory_mib: first.memory_total_mib,
            count: gpus.len() as u32,
            torch_cuda: raw.torch_cuda == "True",
        },
        None => GpuInfo {
            name: "none".into(),
            memory_mib: 0,
            count: 0,
            torch_cuda: raw.torch_cuda == "True",
        },
    };
    Ok(BootstrapReport {
        fingerprint: raw.fingerprint,
        gpu,
        jupyter_server: crate::text::plain(&raw.jupyter_server),
        jupyterlab: crate::text::plain(&raw.jupyterlab),
        port: raw.port,
    })
}

/// The probe prints one line of at most this many characters (ListCommandInvocations cuts
/// output at 2,500): anything longer is not our probe's report.
pub const MAX_PROBE_LINE: usize = 2000;

/// What an idle probe printed, as the policy reads it. Anything short of a clean report is
/// unknown, with the reason: unknown is never idle. Every field must be there with its type
/// (times may be null): a report that is too long, partial or out of range is unknown too.
pub fn parse_probe(stdout: &str) -> crate::idle::Probe {
    use crate::idle::{Observation, Probe};
    let unknown = |why: &str| Probe::Unknown(format!("the probe report {why}"));
    if let Some(long) = stdout.lines().find(|l| l.len() > MAX_PROBE_LINE) {
        return unknown(&format!(
            "has a {}-byte line, longer than the probe ever prints",
            long.len()
        ));
    }
    let Ok(v) = report_line(stdout, "probe") else {
        return Probe::Unknown("the probe printed no report".into());
    };
    if let Some(err) = v["err"].as_str() {
        let err = crate::text::plain(err);
        return Probe::Unknown(format!("the probe could not read Jupyter: {err}"));
    }
    let count = |key: &str| v[key].as_u64().and_then(|n| u32::try_from(n).ok());
    let time = |key: &str| -> Result<Option<jiff::Timestamp>, ()> {
        match &v[key] {
            serde_json::Value::Null if v.get(key).is_some() => Ok(None),
            serde_json::Value::String(s) => s.parse().map(Some).map_err(|_| ()),
            _ => Err(()),
        }
    };
    let gpus: Option<Vec<u32>> = v["g"].as_array().and_then(|g| {
        g.iter()
            .map(|x| x.as_u64().filter(|n| *n <= 100).map(|n| n as u32))
            .collect()
    });
    match (
        count("k"),
        count("kb"),
        count("c"),
        time("ka"),
        time("ta"),
        time("sa"),
        gpus,
    ) {
        (Some(kernels), Some(busy), Some(connections), Ok(ka), Ok(ta), Ok(sa), Some(gpu))
            if busy <= kernels =>
        {
            Probe::Seen(Observation {
                kernels,
                busy_kernels: busy,
                kernel_activity: ka,
                terminal_activity: ta,
                connections,
                server_activity: sa,
                gpu_utilization: gpu,
            })
        }
        _ => unknown("is incomplete or out of range"),
    }
}

pub fn parse_health(stdout: &str) -> Result<HealthReport> {
    let report: HealthReport = serde_json::from_value(report_line(stdout, "health")?)
        .map_err(|e| Error::internal(format!("unreadable health report: {e}")))?;
    check_fingerprint(&report.fingerprint)?;
    Ok(report)
}

fn check_fingerprint(fp: &str) -> Result<()> {
    if fp.len() == 64 && fp.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) {
        Ok(())
    } else {
        Err(Error::internal(
            "the report's fingerprint is not a SHA-256 hex digest",
        ))
    }
}

/// A fingerprint as browsers show it: `AB:CD:…` (32 pairs).
pub fn fingerprint_for_display(fp: &str) -> String {
    fp.as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).to_uppercase())
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "3f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19";

    fn line(gpu_csv: &str, torch: &str) -> String {
        serde_json::json!({
            "nbfleet": "bootstrap", "fingerprint": FP, "gpu_csv": gpu_csv, "torch_cuda": torch,
            "jupyter_server": "2.21.1", "jupyterlab": "4.6.6", "port": 8888
        })
        .to_string()
    }

    #[test]
    fn a_report_from_a_real_h100_host_gives_its_gpu() {
        let csv = include_str!("../fixtures/nvidia-h100/query-idle.csv")
            .lines()
            .next()
            .unwrap();
        let out = format!("some pip noise\n{}\n", line(csv, "True"));
        let r = parse_bootstrap(&out).unwrap();
        assert_eq!(
            r.gpu,
            GpuInfo {
                name: "NVIDIA H100 80GB HBM3".into(),
                memory_mib: 81559,
                count: 1,
                torch_cuda: true
            }
        );
        assert_eq!(r.fingerprint, FP);
        assert_eq!(r.jupyter_server, "2.21.1");
    }

    #[test]
    fn a_host_without_nvidia_smi_reports_no_gpu() {
        let r = parse_bootstrap(&line("", "absent")).unwrap();
        assert_eq!(r.gpu.name, "none");
        assert!(!r.gpu.torch_cuda);
    }

    #[test]
    fn missing_or_broken_reports_are_errors() {
        assert!(parse_bootstrap("nothing here").is_err());
        assert!(parse_bootstrap("{\"nbfleet\":\"bootstrap\",\"fingerprint\":1}").is_err());
        assert!(parse_bootstrap(&line("", "True").replace(FP, "abc")).is_err());
    }

    #[test]
    fn a_health_report_parses() {
        let out = format!("{{\"nbfleet\":\"health\",\"fingerprint\":\"{FP}\",\"port\":8888}}");
        let report = parse_health(&out).unwrap();
        assert_eq!((report.port, report.fingerprint.as_str()), (8888, FP));
        assert!(parse_health(&out.replace(FP, "not-a-fingerprint")).is_err());
    }

    #[test]
    fn a_probe_line_becomes_an_observation() {
        use crate::idle::{Observation, Probe};
        let line = r#"{"nbfleet":"probe","k":3,"kb":1,"ka":"2026-11-26T10:00:00.123456Z","ta":null,"c":2,"sa":"2026-11-26T10:05:00Z","g":[0,100]}"#;
        let Probe::Seen(obs) = parse_probe(line) else {
            panic!("unknown")
        };
        assert_eq!(
            obs,
            Observation {
                kernels: 3,
                busy_kernels: 1,
                kernel_activity: Some("2026-11-26T10:00:00.123456Z".parse().unwrap()),
                terminal_activity: None,
                connections: 2,
                server_activity: Some("2026-11-26T10:05:00Z".parse().unwrap()),
                gpu_utilization: vec![0, 100],
            }
        );
    }

    #[test]
    fn a_failed_or_garbled_probe_is_unknown() {
        use crate::idle::Probe;
        let err = r#"{"nbfleet":"probe","err":"URLError: refused","g":[]}"#;
        assert!(matches!(parse_probe(err), Probe::Unknown(r) if r.contains("refused")));
        // An error with terminal escapes is kept as plain text.
        let hostile = r#"{"nbfleet":"probe","err":"\u001b[2J\u001b]0;pwned\u0007refused","g":[]}"#;
        assert!(
            matches!(parse_probe(hostile), Probe::Unknown(r) if r.ends_with("Jupyter: refused")),
            "{:?}",
            parse_probe(hostile)
        );
        assert!(matches!(
            parse_probe("Traceback (most recent call last)"),
            Probe::Unknown(_)
        ));
        assert!(matches!(
            parse_probe(r#"{"nbfleet":"probe","k":"three"}"#),
            Probe::Unknown(_)
        ));
    }

    #[test]
    fn a_probe_report_too_long_partial_or_out_of_range_is_unknown() {
        use crate::idle::Probe;
        let unknown = |line: &str| matches!(parse_probe(line), Probe::Unknown(_));
        let ok = r#"{"nbfleet":"probe","k":0,"kb":0,"ka":null,"ta":null,"c":0,"sa":null,"g":[]}"#;
        assert!(!unknown(ok));
        let padded = format!(
            r#"{{"nbfleet":"probe","k":0,"kb":0,"ka":null,"ta":null,"c":0,"sa":null,"g":[],"p":"{}"}}"#,
            "x".repeat(MAX_PROBE_LINE)
        );
        assert!(unknown(&padded), "a 2 kB+ line");
        for bad in [
            r#"{"nbfleet":"probe","k":0,"kb":0}"#,
            r#"{"nbfleet":"probe","k":1,"kb":2,"ka":null,"ta":null,"c":0,"sa":null,"g":[]}"#,
            r#"{"nbfleet":"probe","k":-1,"kb":0,"ka":null,"ta":null,"c":0,"sa":null,"g":[]}"#,
            r#"{"nbfleet":"probe","k":99999999999,"kb":0,"ka":null,"ta":null,"c":0,"sa":null,"g":[]}"#,
            r#"{"nbfleet":"probe","k":0,"kb":0,"ka":"yesterday","ta":null,"c":0,"sa":null,"g":[]}"#,
            r#"{"nbfleet":"probe","k":0,"kb":0,"ka":null,"ta":[],"c":0,"sa":null,"g":[]}"#,
            r#"{"nbfleet":"probe","k":0,"kb":0,"ka":null,"ta":null,"c":"many","sa":null,"g":[]}"#,
            r#"{"nbfleet":"probe","k":0,"kb":0,"ka":null,"ta":null,"c":0,"sa":null,"g":[101]}"#,
            r#"{"nbfleet":"probe","k":0,"kb":0,"ka":null,"ta":null,"c":0,"sa":null,"g":[-5]}"#,
        ] {
            assert!(unknown(bad), "{bad}");
        }
    }

    #[test]
    fn fingerprints_display_as_colon_pairs() {
        let shown = fingerprint_for_display(FP);
        assert!(shown.starts_with("3F:1C:2A:"));
        assert_eq!(shown.len(), 95);
    }
}
