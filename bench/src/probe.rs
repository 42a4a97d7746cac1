//! `make bench`: the idle probe's own run time on an instance, with 50 kernels and 20,000 files
//! under the notebook root, written to `target/bench/probe.md` (a section of
//! `bench/results.md`). `BENCH_OUT` moves it; `BENCH_PROBE_RUNS` sets the runs (default 7).
//!
//! The instance is the local runner's (`nbfleet-local`): the bootstrap, then the probe, are the
//! exact bytes the sweep sends, run under `sh` as root against a real Jupyter over HTTPS with
//! real kernels, its secret in moto's Parameter Store. What is timed is the whole command, from
//! `sh` starting to its exit: bash, the Python it starts, the five signals, the JSON line.
//!
//! Target: the median run within 1.5 s, and the line under 2,000 characters.

use nbfleet_aws::ParameterSecrets;
use nbfleet_core::idle::Probe;
use nbfleet_core::ports::Secrets;
use nbfleet_core::validate::{idle_policy, parse_launch};
use nbfleet_core::{Notebook, password, report, scripts};
use nbfleet_local::moto;
use nbfleet_local::runner::{Runner, instance_credentials};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const KERNELS: usize = 50;
const FILES: usize = 20_000;
const TARGET_S: f64 = 1.5;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("BENCH_PROBE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let endpoint = moto::endpoint_from_env();
    let account = moto::fresh_account();
    let cfg =
        nbfleet_core::config::from_vars([("NBFLEET_TABLE".to_string(), "t".to_string())]).expect("config");
    let spec = parse_launch(br#"{"name":"probe-bench"}"#, &cfg).expect("spec");
    let nb = Notebook::new(
        &spec,
        &nbfleet_core::identity::Principal::named("bench"),
        1,
        idle_policy(&spec, &cfg),
        jiff::Timestamp::now(),
    );
    let token = password::token(&rand::random());
    ParameterSecrets::new(moto::clients(&endpoint, &account).ssm)
        .put(&cfg.secret_parameter(&nb.name), token.expose(), &nb.name)
        .await
        .expect("store the secret");
    let runner = Runner::new(
        root().join("target/bench/probe").join(&account),
        root().join(".venv"),
        &endpoint,
        moto::REGION,
    );
    let sandbox = runner.sandbox("i-0be0c4be0c4be0c4b").expect("sandbox");
    let creds = instance_credentials(&endpoint, &account)
        .await
        .expect("credentials");
    let limit = Duration::from_secs(300);
    let boot = scripts::bootstrap(&nb, &cfg, moto::REGION).expect("render");
    let out = runner
        .run(&sandbox, "bench-boot", &boot.text, &creds, limit)
        .await
        .expect("bootstrap");
    assert_eq!(out.exit_code, Some(0), "bootstrap failed: {}", out.stderr);

    eprintln!("probe-bench: {FILES} files and {KERNELS} kernels");
    let data = sandbox.home().join("data");
    std::fs::create_dir_all(&data).expect("data folder");
    for i in 0..FILES {
        std::fs::write(data.join(format!("sample-{i:05}.txt")), b"").expect("a file");
    }
    let start_kernels = format!(
        r#"
import json, os, ssl, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
port, home, token = sys.argv[1:]
ctx = ssl.create_default_context(cafile=os.path.join(home, ".nbfleet", "cert.pem"))
def start(_):
    req = urllib.request.Request(f"https://127.0.0.1:{{port}}/api/kernels", data=b"{{}}", method="POST",
                                 headers={{"Authorization": f"token {{token}}", "Content-Type": "application/json"}})
    urllib.request.urlopen(req, context=ctx).read()
list(ThreadPoolExecutor(8).map(start, range({KERNELS})))
"#
    );
    let status = std::process::Command::new(root().join(".venv/bin/python3"))
        .args(["-c", &start_kernels, &sandbox.port().expect("port").to_string()])
        .arg(sandbox.home())
        .arg(token.expose())
        .status()
        .expect("start the kernels");
    assert!(status.success(), "could not start {KERNELS} kernels");

    let probe = scripts::probe().expect("render");
    let mut times = Vec::new();
    let mut line = String::new();
    for i in 0..runs {
        let t = Instant::now();
        let out = runner
            .run(&sandbox, &format!("bench-probe-{i}"), &probe.text, &creds, limit)
            .await
            .expect("probe");
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(out.exit_code, Some(0), "the probe failed: {}", out.stderr);
        line = out.stdout.trim().to_string();
    }
    sandbox.stop_jupyter();
    let Probe::Seen(obs) = report::parse_probe(&line) else {
        panic!("the probe's line is not a report: {line}");
    };
    assert_eq!(obs.kernels as usize, KERNELS, "{line}");
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let ok = median <= TARGET_S && line.len() < 2000;
    let mark = if ok { "✓" } else { "**FAIL**" };
    let mut s = String::from("## Idle probe on the instance\n\n");
    let _ = writeln!(
        s,
        "The probe the sweep sends (`crates/core/scripts/probe.sh`), run {runs} times by the local runner as root on a \
         notebook with {KERNELS} real kernels and {FILES} files under its root (the edit scan stops at its bound: `ec` = {}), \
         against a real Jupyter over HTTPS. Timed from `sh` starting to its exit, on this machine. The first run meets \
         the kernels still starting.\n",
        u8::from(obs.edit_scan_cut)
    );
    let _ = writeln!(s, "| figure | measured | target | result |");
    let _ = writeln!(s, "|---|---|---|---|");
    let _ = writeln!(
        s,
        "| probe run time, median (min–max) | {median:.2} s ({:.2}–{:.2} s) | ≤ {TARGET_S} s | {mark} |",
        times[0],
        times[times.len() - 1]
    );
    let _ = writeln!(
        s,
        "| probe line | {} characters | < 2,000 | {} |",
        line.len(),
        if line.len() < 2000 { "✓" } else { "**FAIL**" }
    );
    let _ = writeln!(s, "\nThe last line it printed:\n\n```\n{line}\n```");
    let dir = PathBuf::from(std::env::var("BENCH_OUT").unwrap_or_else(|_| "target/bench".into()));
    std::fs::create_dir_all(&dir).expect("create the output folder");
    std::fs::write(dir.join("probe.md"), &s).expect("write probe.md");
    print!("{s}");
    if !ok {
        std::process::exit(1);
    }
}
