//! Parsing `nvidia-smi --query-gpu` output, as the bootstrap report and the idle probe carry it.
//!
//! The query is fixed (see [`QUERY_FIELDS`]) and asked with `--format=csv,noheader,nounits`:
//! one line per GPU per sample. Real output from an H100 host is in `fixtures/nvidia-h100/`.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The fields the scripts ask nvidia-smi for, in order.
pub const QUERY_FIELDS: &str = "index,name,uuid,driver_version,memory.total,memory.used,utilization.gpu,utilization.memory,temperature.gpu,power.draw";

/// One GPU, one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub driver_version: String,
    pub memory_total_mib: u64,
    pub memory_used_mib: u64,
    /// `None` where nvidia-smi says `[N/A]` (some virtualised GPUs).
    pub utilization_gpu_pct: Option<u32>,
    pub utilization_memory_pct: Option<u32>,
    pub temperature_c: Option<u32>,
    pub power_w: Option<f64>,
}

/// Parses every non-empty line of `--format=csv,noheader,nounits` output.
pub fn parse_query_csv(text: &str) -> Result<Vec<GpuSample>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(parse_line)
        .collect()
}

/// `None` for nvidia-smi's `[N/A]` and `[Not Supported]`.
fn opt(field: &str) -> Option<&str> {
    if field.starts_with('[') { None } else { Some(field) }
}

fn parse_line(line: &str) -> Result<GpuSample> {
    let f: Vec<&str> = line.split(',').map(str::trim).collect();
    let bad = |what: &str| Error::internal(format!("unreadable nvidia-smi line ({what}): {line:?}"));
    if f.len() != 10 {
        return Err(bad("expected 10 fields"));
    }
    Ok(GpuSample {
        index: f[0].parse().map_err(|_| bad("index"))?,
        name: f[1].to_string(),
        uuid: f[2].to_string(),
        driver_version: f[3].to_string(),
        memory_total_mib: f[4].parse().map_err(|_| bad("memory.total"))?,
        memory_used_mib: opt(f[5])
            .map_or(Ok(0), str::parse)
            .map_err(|_| bad("memory.used"))?,
        utilization_gpu_pct: opt(f[6])
            .map(str::parse)
            .transpose()
            .map_err(|_| bad("utilization.gpu"))?,
        utilization_memory_pct: opt(f[7])
            .map(str::parse)
            .transpose()
            .map_err(|_| bad("utilization.memory"))?,
        temperature_c: opt(f[8])
            .map(str::parse)
            .transpose()
            .map_err(|_| bad("temperature.gpu"))?,
        power_w: opt(f[9])
            .map(str::parse)
            .transpose()
            .map_err(|_| bad("power.draw"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: &str = include_str!("../fixtures/nvidia-h100/query-idle.csv");
    const BUSY: &str = include_str!("../fixtures/nvidia-h100/query-busy.csv");
    const AFTER: &str = include_str!("../fixtures/nvidia-h100/query-after.csv");

    #[test]
    fn an_idle_h100_reads_zero_utilisation() {
        let s = parse_query_csv(IDLE).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "NVIDIA H100 80GB HBM3");
        assert_eq!(s[0].memory_total_mib, 81559);
        assert_eq!(s[0].driver_version, "580.159.04");
        assert!(s.iter().all(|g| g.utilization_gpu_pct == Some(0)));
        assert_eq!(s[0].power_w, Some(79.24));
    }

    #[test]
    fn a_busy_h100_reads_full_utilisation() {
        let s = parse_query_csv(BUSY).unwrap();
        assert_eq!(s.len(), 10);
        assert!(
            s.iter()
                .all(|g| g.utilization_gpu_pct == Some(100) && g.memory_used_mib == 1011)
        );
    }

    #[test]
    fn after_the_load_it_reads_zero_again() {
        assert!(
            parse_query_csv(AFTER)
                .unwrap()
                .iter()
                .all(|g| g.utilization_gpu_pct == Some(0))
        );
    }

    #[test]
    fn not_available_fields_are_none() {
        let s = parse_query_csv("0, Tesla T4, GPU-1, 535.1, 15360, [N/A], [N/A], [N/A], 40, [N/A]").unwrap();
        assert_eq!(
            (s[0].utilization_gpu_pct, s[0].power_w, s[0].memory_used_mib),
            (None, None, 0)
        );
    }

    #[test]
    fn a_header_or_truncated_line_is_an_error() {
        let header = include_str!("../fixtures/nvidia-h100/query-header.csv");
        assert!(parse_query_csv(header).is_err());
        assert!(parse_query_csv("0, NVIDIA H100").is_err());
        assert_eq!(parse_query_csv("\n\n").unwrap(), vec![]);
    }
}
