//! What nbfleet itself costs a month (not the notebooks' EC2): the 5-minute sweep's Lambda
//! time and requests, its DynamoDB reads and writes, its schedule, and its SSM calls, for the
//! fleet sizes `sweep-bench` measured (100 and 1000 notebooks), from figures measured in this
//! run of `make bench`.
//!
//! The model, per sweep: billed duration = the sweep handler's measured invocation (release
//! binary, moto) + the steady round's wall time at N from `sweep-bench` (moto, debug build: on
//! the high side) + one wait for probe results (`Timing::default().poll_every`, written to
//! `sweep.json` by `sweep-bench`). DynamoDB: each steady round's Query pages (0.5 read unit each
//! at least, eventually consistent GSIs) plus every record read once (0.5 unit per 4 KB), and its
//! PutItems at 1 write unit per KB for the table and each of its two GSIs. Not counted: CloudWatch
//! Logs and alarms, user actions (launch, stop, ...), which cost per use, not per month.

use serde_json::{Value, json};
use std::fmt::Write as _;

// Prices, us-east-1, November 2024 (public price pages):
/// Lambda duration, arm64 (the template's default Architecture), USD per GB-second.
const LAMBDA_ARM64_GB_S: f64 = 0.000_013_333_4;
/// Lambda duration, x86_64 (`Architecture=x86_64`), USD per GB-second.
const LAMBDA_X86_GB_S: f64 = 0.000_016_666_7;
/// Lambda requests, USD per request ($0.20 per million).
const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
/// DynamoDB on-demand, USD per write request unit ($0.625 per million).
const DYNAMODB_WRU: f64 = 0.625 / 1e6;
/// DynamoDB on-demand, USD per read request unit ($0.125 per million).
const DYNAMODB_RRU: f64 = 0.125 / 1e6;
/// EventBridge Scheduler (the template's `ScheduleV2`): USD per invocation beyond the free
/// 14 million a month ($1.00 per million). Schedule-expression rules and AWS service events
/// on the default bus (the events function's EC2 and SSM rules) are free; custom events
/// would be $1.00 per million.
const SCHEDULER_INVOCATION: f64 = 1.0 / 1e6;
const SCHEDULER_FREE_PER_MONTH: f64 = 14e6;
/// SSM Run Command on EC2 instances (the probes) and Parameter Store standard parameters with
/// standard throughput (the AMI, Slack and notebook secrets) have no charge; EC2 Describe calls
/// neither.
const SSM: f64 = 0.0;

/// Hours in AWS's billing month.
const HOURS_PER_MONTH: f64 = 730.0;
/// The template's default `SweepRateMinutes`.
const SWEEP_EVERY_MINUTES: f64 = 5.0;
/// GSIs a record write may also write (by-state, by-instance).
const GSIS: f64 = 2.0;

pub struct Inputs<'a> {
    /// `sweep.json` from `sweep-bench`.
    pub sweep: &'a Value,
    /// The sweep handler's median invocation in this run, seconds.
    pub sweep_invocation_s: f64,
    /// The sweep function's MemorySize (template.yaml).
    pub memory_mb: u32,
    /// One notebook record's DynamoDB item size, bytes (measured on a launched record).
    pub item_bytes: u64,
}

pub struct Monthly {
    pub n: u64,
    pub sweeps: f64,
    pub duration_s: f64,
    pub gb_s: f64,
    pub lambda_arm64: f64,
    pub lambda_x86: f64,
    pub requests: f64,
    pub rru: f64,
    pub wru: f64,
    pub dynamodb: f64,
    pub scheduler: f64,
    pub ssm: f64,
    pub total_arm64: f64,
    pub total_x86: f64,
    pub calls_per_round: u64,
}

impl Monthly {
    pub fn to_json(&self) -> Value {
        json!({
            "n": self.n, "sweeps": self.sweeps, "duration_s": self.duration_s, "gb_s": self.gb_s,
            "lambda_arm64_usd": self.lambda_arm64, "lambda_x86_usd": self.lambda_x86,
            "requests_usd": self.requests, "read_units": self.rru, "write_units": self.wru,
            "dynamodb_usd": self.dynamodb, "scheduler_usd": self.scheduler, "ssm_usd": self.ssm,
            "total_arm64_usd": self.total_arm64, "total_x86_usd": self.total_x86,
            "calls_per_round": self.calls_per_round,
        })
    }
}

/// The monthly cost at each N of 100 and 1000 that `sweep.json` has a steady round for.
pub fn monthly(i: &Inputs) -> Vec<Monthly> {
    let poll_s = i.sweep["lambda_timing"]["poll_every_s"].as_f64().unwrap_or(0.0);
    let sweeps = HOURS_PER_MONTH * 60.0 / SWEEP_EVERY_MINUTES;
    let gb = f64::from(i.memory_mb) / 1024.0;
    let item = i.item_bytes as f64;
    let rounds = i.sweep["rounds"].as_array().cloned().unwrap_or_default();
    rounds
        .iter()
        .filter(|r| r["round"] == "steady" && matches!(r["n"].as_u64(), Some(100 | 1000)))
        .map(|r| {
            let n = r["n"].as_u64().unwrap_or(0);
            let calls = |api: &str| r["calls"][api].as_u64().unwrap_or(0) as f64;
            let calls_per_round = r["calls"]
                .as_object()
                .map(|c| c.values().filter_map(Value::as_u64).sum())
                .unwrap_or(0);
            let duration_s = i.sweep_invocation_s + r["wall_s"].as_f64().unwrap_or(0.0) + poll_s;
            let gb_s = sweeps * duration_s * gb;
            let rru_round = 0.5 * (calls("dynamodb:Query") + (n as f64 * item / 4096.0).ceil())
                + calls("dynamodb:GetItem") * (item / 4096.0).ceil().max(1.0);
            let write_units = (item / 1024.0).ceil().max(1.0) * (1.0 + GSIS);
            let wru_round = (calls("dynamodb:PutItem") + calls("dynamodb:UpdateItem")) * write_units;
            // Each active notebook's record is written again every 30 minutes (the refresh round
            // measures it): twice an hour, all month.
            let refresh_puts = rounds
                .iter()
                .find(|x| x["round"] == "refresh" && x["n"].as_u64() == Some(n))
                .and_then(|x| x["calls"]["dynamodb:PutItem"].as_u64())
                .unwrap_or(0) as f64;
            let refreshes = HOURS_PER_MONTH * 2.0;
            let (rru, wru) = (
                sweeps * rru_round,
                sweeps * wru_round + refreshes * refresh_puts * write_units,
            );
            let dynamodb = rru * DYNAMODB_RRU + wru * DYNAMODB_WRU;
            let lambda_arm64 = gb_s * LAMBDA_ARM64_GB_S;
            let lambda_x86 = gb_s * LAMBDA_X86_GB_S;
            let requests = sweeps * LAMBDA_REQUEST;
            let scheduler = (sweeps - SCHEDULER_FREE_PER_MONTH).max(0.0) * SCHEDULER_INVOCATION;
            let ssm = SSM;
            let rest = requests + dynamodb + scheduler + ssm;
            Monthly {
                n,
                sweeps,
                duration_s,
                gb_s,
                lambda_arm64,
                lambda_x86,
                requests,
                rru,
                wru,
                dynamodb,
                scheduler,
                ssm,
                total_arm64: lambda_arm64 + rest,
                total_x86: lambda_x86 + rest,
                calls_per_round,
            }
        })
        .collect()
}

pub fn render(costs: &[Monthly], sweep: &Value, item_bytes: Option<u64>) -> String {
    let mut s = String::from("## nbfleet's own cost a month (5-minute sweep, us-east-1)\n\n");
    let poll = sweep["lambda_timing"]["poll_every_s"].as_f64().unwrap_or(0.0);
    let _ = writeln!(
        s,
        "Sweeps a month: {HOURS_PER_MONTH} h × 60 / {SWEEP_EVERY_MINUTES} min. Billed duration per sweep = the sweep \
         handler's median invocation measured above + the steady round's wall time at N from the sweep \
         benchmark below (moto, debug build) + one wait for probe results ({poll} s, the handler's \
         poll interval). DynamoDB: 0.5 read unit per Query page plus 0.5 per 4 KB of records read \
         (one record: {} bytes, measured on a launched record), writes at 1 unit per KB for the \
         table and each GSI (a steady round writes nothing; each record is written again every 30 minutes, as the refresh round measures). Prices (Nov 2024): Lambda arm64 \
         ${LAMBDA_ARM64_GB_S} per GB-s, x86_64 ${LAMBDA_X86_GB_S} per GB-s, $0.20 per million \
         requests; DynamoDB on-demand $0.625 per million write units, $0.125 per million read units; \
         EventBridge Scheduler $1.00 per million invocations after 14 million free a month (AWS \
         service events to the events function's rules are free); SSM Run Command on EC2 and \
         Parameter Store standard parameters: no charge. Not counted: CloudWatch Logs, alarms, and \
         user actions (launch, stop, Slack), which are paid per use.\n",
        item_bytes.map_or("?".into(), |b| b.to_string())
    );
    let _ = writeln!(
        s,
        "| N | sweeps | s per sweep | GB-s | Lambda arm64 | Lambda x86_64 | requests | DynamoDB read / write units | DynamoDB | Scheduler | SSM | total arm64 | total x86_64 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for c in costs {
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.2} | {:.0} | ${:.4} | ${:.4} | ${:.4} | {:.0} / {:.0} | ${:.4} | ${:.2} | ${:.2} | **${:.4}** | ${:.4} |",
            c.n,
            c.sweeps,
            c.duration_s,
            c.gb_s,
            c.lambda_arm64,
            c.lambda_x86,
            c.requests,
            c.rru,
            c.wru,
            c.dynamodb,
            c.scheduler,
            c.ssm,
            c.total_arm64,
            c.total_x86
        );
    }
    s
}
