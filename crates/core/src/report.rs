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

/// What the hook runner printed (`scripts/hook.sh`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct HookReport {
    pub hook: String,
    pub exit: i32,
    pub timed_out: bool,
    /// The last lines of the hook's output, as plain text.
    pub tail: String,
}

/// Reads the hook runner's report line.
pub fn parse_hook(stdout: &str) -> Result<HookReport> {
    let mut report: HookReport = serde_json::from_value(report_line(stdout, "hook")?)
        .map_err(|e| Error::internal(format!("unreadable hook report: {e}")))?;
    report.tail = crate::text::plain(&report.tail);
    Ok(report)
}

/// The probe prints one line of at most this many characters (ListCommandInvocations cuts
/// output at 2,500): anything longer is not our probe's report.
pub const MAX_PROBE_LINE: usize = 2000;

/// What an idle probe printed, as the policy reads it. Anything short of a clean report is
/// unknown, with the reason: unknown is never idle. Jupyter's fields must be there with their
/// types (times may be null), unless the report says Jupyter did not answer (`jd`): then the
/// other signals are still seen. A report that is too long, partial or out of range is unknown.
pub fn parse_probe(stdout: &str) -> crate::idle::Probe {
    use crate::idle::Probe;
    if let Some(long) = stdout.lines().find(|l| l.len() > MAX_PROBE_LINE) {
        return Probe::Unknown(format!(
            "the probe report has a {}-byte line, longer than the probe ever prints",
            long.len()
        ));
    }
    let Ok(v) = report_line(stdout, "probe") else {
        return Probe::Unknown("the probe printed no report".into());
    };
    match observation(&v) {
        Some(obs) => Probe::Seen(obs),
        None => Probe::Unknown("the probe report is incomplete or out of range".into()),
    }
}

/// The observation a probe line reports, or `None` when any field is missing (where required),
/// of the wrong type or out of range.
fn observation(v: &serde_json::Value) -> Option<crate::idle::Observation> {
    use crate::idle::{Hold, Observation};
    use serde_json::Value;
    let text = |key: &str| v[key].as_str().map(crate::text::plain);
    let count = |key: &str| v[key].as_u64().and_then(|n| u32::try_from(n).ok());
    // Absent or null: none; a string: a time; anything else: unreadable.
    let time = |key: &str| -> Option<Option<jiff::Timestamp>> {
        match &v[key] {
            Value::Null => Some(None),
            Value::String(s) => s.parse().ok().map(Some),
            _ => None,
        }
    };
    let mut obs = Observation::default();
    // The probe ran but Jupyter did not answer: the other signals still count.
    if let Some(why) = text("jd") {
        obs.jupyter_down = Some(why);
    } else {
        obs.kernels = count("k")?;
        obs.busy_kernels = count("kb").filter(|b| *b <= obs.kernels)?;
        obs.connections = count("c")?;
        for key in ["ka", "ta", "sa"] {
            v.get(key)?;
        }
        obs.kernel_activity = time("ka")?;
        obs.terminal_activity = time("ta")?;
        obs.server_activity = time("sa")?;
    }
    obs.last_edit = time("e")?;
    obs.last_edit_path = text("ep");
    obs.edit_scan_cut = count("ec").unwrap_or(0) > 0;
    obs.cpu_outside_pct = match &v["cpu"] {
        Value::Null => None,
        n => Some(n.as_u64().and_then(|n| u32::try_from(n).ok())?),
    };
    if let Some(what) = text("hw") {
        obs.hold = Some(Hold {
            until: time("h")?,
            what,
        });
    }
    obs.hold_ended = time("hx")?;
    obs.gpu_utilization = match &v["g"] {
        Value::Array(g) => g
            .iter()
            .map(|x| match x {
                Value::Null => Some(None),
                x => x.as_u64().filter(|n| *n <= 100).map(|n| Some(n as u32)),
            })
            .collect::<Option<_>>()?,
        Value::Null => Vec::new(),
        _ => return None,
    };
    obs.gpu_processes = match &v["gp"] {
        Value::Null => 0,
        _ => count("gp")?,
    };
    obs.gpu_error = text("ge");
    Some(obs)
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
        use crate::idle::{Hold, Observation, Probe};
        let line = r#"{"nbfleet":"probe","k":3,"kb":1,"ka":"2026-11-26T10:00:00.123456Z","ta":null,"c":2,"sa":"2026-11-26T10:05:00Z","e":"2026-11-26T10:06:00Z","ep":"exp/train.ipynb","en":812,"ec":0,"cpu":180,"h":"2026-11-26T15:00:00Z","hw":"held for 3h","hx":"2026-11-26T09:00:00Z","g":[0,100]}"#;
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
                last_edit: Some("2026-11-26T10:06:00Z".parse().unwrap()),
                last_edit_path: Some("exp/train.ipynb".into()),
                cpu_outside_pct: Some(180),
                hold: Some(Hold {
                    until: Some("2026-11-26T15:00:00Z".parse().unwrap()),
                    what: "held for 3h".into()
                }),
                hold_ended: Some("2026-11-26T09:00:00Z".parse().unwrap()),
                gpu_utilization: vec![Some(0), Some(100)],
                ..Observation::default()
            }
        );
    }

    #[test]
    fn a_mig_gpu_without_utilisation_is_read_by_its_compute_processes() {
        use crate::idle::Probe;
        let line = r#"{"nbfleet":"probe","k":0,"kb":0,"ka":null,"ta":null,"c":0,"sa":null,"cpu":null,"g":[null,null],"gp":2}"#;
        let Probe::Seen(obs) = parse_probe(line) else {
            panic!("unknown")
        };
        assert_eq!((obs.gpu_utilization, obs.gpu_processes), (vec![None, None], 2));
        let failed = r#"{"nbfleet":"probe","k":0,"kb":0,"ka":null,"ta":null,"c":0,"sa":null,"ge":"RuntimeError: NVIDIA-SMI has failed"}"#;
        let Probe::Seen(obs) = parse_probe(failed) else {
            panic!("a GPU read that fails is unknown for the GPU signal only")
        };
        assert!(obs.gpu_error.unwrap().contains("NVIDIA-SMI has failed"));
    }

    #[test]
    fn a_jupyter_that_does_not_answer_still_gives_the_other_signals() {
        use crate::idle::Probe;
        let line = r#"{"nbfleet":"probe","jd":"URLError: \u001b[2Jrefused","e":"2026-11-26T10:06:00Z","ep":"a.ipynb","cpu":3,"g":[]}"#;
        let Probe::Seen(obs) = parse_probe(line) else {
            panic!("unknown: {:?}", parse_probe(line))
        };
        assert_eq!(
            obs.jupyter_down.as_deref(),
            Some("URLError: refused"),
            "terminal escapes dropped"
        );
        assert_eq!(obs.cpu_outside_pct, Some(3));
        assert!(obs.last_edit.is_some());
    }

    #[test]
    fn a_failed_or_garbled_probe_is_unknown() {
        use crate::idle::Probe;
        assert!(matches!(
            parse_probe("Traceback (most recent call last)"),
            Probe::Unknown(_)
        ));
        assert!(matches!(
            parse_probe(r#"{"nbfleet":"probe","k":"three"}"#),
            Probe::Unknown(_)
        ));
        assert!(matches!(
            parse_probe(r#"{"nbfleet":"probe","err":"refused","g":[]}"#),
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
            r#"{"nbfleet":"probe","k":0,"kb":0,"ka":null,"ta":null,"c":0,"sa":null,"cpu":-1}"#,
            r#"{"nbfleet":"probe","k":0,"kb":0,"ka":null,"ta":null,"c":0,"sa":null,"e":"soon"}"#,
            r#"{"nbfleet":"probe","k":0,"kb":0,"ka":null,"ta":null,"c":0,"sa":null,"hw":"x","h":7}"#,
            r#"{"nbfleet":"probe","k":0,"kb":0,"ka":null,"ta":null,"c":0,"sa":null,"gp":"two"}"#,
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
