//! `make bench`: one sweep over N = 100, 1000 and 5000 Ready notebooks on moto, counting the AWS
//! calls per API and the wall time, written to `target/bench/sweep.md` (a section of
//! `bench/results.md`, which `make bench` assembles) and `target/bench/sweep.json` (which
//! lambda-bench reads for the summary table and the monthly cost). `BENCH_OUT` moves both.
//!
//! Records and instances are real (moto); Run Command is the test kit's stand-in (the real SSM
//! adapter on mocked SendCommand, ListCommands and ListCommandInvocations, as moto has no
//! ListCommandInvocations and its commands never run), and its calls are counted with the
//! others. Each probe is still running at the sweep's first look and ended at its second. Three
//! rounds per N: the first gives every notebook its first verdict (two writes each); the
//! second is the steady state, where verdicts hold and nothing is written; the third comes 31
//! minutes later (the sweep's clock is moved), when every verdict that held is written again,
//! once, to keep its reason and times fresh (`idle::REFRESH_EVERY`): the write budget of one
//! write per active notebook per 30 minutes.
//!
//! Targets: a steady round makes at most 0.05 × N + 5 calls in all, DynamoDB writes included;
//! a refresh round at most one write per notebook on top of that.
//!
//! Instances are seeded one per RunInstances, as launch makes them, so DescribeInstances pages
//! as it would in production (by reservation).

use nbfleet_app::sweep::{Timing, sweep};
use nbfleet_core::validate::{idle_policy, parse_launch};
use nbfleet_core::{Expect, Notebook, State};
use nbfleet_local::moto::{self, CallLog};
use nbfleet_local::setup;
use nbfleet_testkit::RunCommand;
use nbfleet_testkit::env::TestClock;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a busy notebook's probe prints.
const BUSY: &str =
    r#"{"nbfleet":"probe","k":1,"kb":1,"ka":"2026-11-26T10:00:00Z","ta":null,"c":0,"sa":null,"g":[97]}"#;

struct Round {
    n: usize,
    name: &'static str,
    wall: Duration,
    calls: BTreeMap<String, usize>,
}

async fn fleet(n: usize, clock: Arc<TestClock>) -> (nbfleet_core::ports::Deps, CallLog) {
    let endpoint = moto::endpoint_from_env();
    let account = moto::fresh_account();
    let aws = setup::provision(&endpoint, &account)
        .await
        .expect("provision moto (is it running?)");
    let cfg = nbfleet_core::config::from_vars(setup::vars()).expect("config");
    let mut ids = Vec::new();
    let mut runs = tokio::task::JoinSet::new();
    for _ in 0..n {
        let ec2 = aws.ec2.clone();
        runs.spawn(async move { setup::run_seeded(&ec2, 1, Some("bench")).await.expect("instance") });
        while runs.len() >= 16 {
            ids.extend(runs.join_next().await.expect("a run").expect("joined"));
        }
    }
    while let Some(run) = runs.join_next().await {
        ids.extend(run.expect("joined"));
    }
    let seed = Arc::new(aws.deps(cfg.clone()));
    let now = nbfleet_core::ports::Clock::now(clock.as_ref());
    let mut puts = tokio::task::JoinSet::new();
    for (i, id) in ids.into_iter().enumerate() {
        let (seed, cfg) = (seed.clone(), cfg.clone());
        puts.spawn(async move {
            let spec = parse_launch(format!(r#"{{"name":"nb-{i:05}"}}"#).as_bytes(), &cfg).expect("spec");
            let mut nb = Notebook::new(
                &spec,
                &nbfleet_core::identity::Principal::named("bench"),
                1,
                idle_policy(&spec, &cfg),
                now,
            );
            nb.state = State::Ready;
            nb.instance_id = Some(id);
            nb.running_since = Some(now);
            seed.store.put(&nb, Expect::Absent).await.expect("put");
        });
        while puts.len() >= 16 {
            puts.join_next().await;
        }
    }
    puts.join_all().await;
    let log = CallLog::default();
    let mut deps = moto::clients_logged(&endpoint, &account, log.clone()).deps(cfg);
    deps.clock = clock;
    // Every probe answers busy, as SSM does it: still InProgress at the first look, ended at the
    // second (a probe starts a Python and reads Jupyter over HTTPS; SSM's own delivery takes
    // seconds, and the sweep looks every three). The SSM calls are logged as the others are.
    let (commands, _) = RunCommand::succeeding(|_| BUSY.to_string())
        .finishing_after(1)
        .logged(moto::call_logger(&account, log.clone()))
        .build();
    deps.commands = Arc::new(commands);
    (deps, log)
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![100, 1000, 5000]
    } else {
        sizes
    };
    // The bench measures how long a whole round takes, so no phase is cut short by its budget.
    let whole = Duration::from_secs(600);
    let timing = Timing {
        collect_for: Duration::from_secs(30),
        poll_every: Duration::from_millis(50),
        reconcile_for: whole,
        deadlines_for: whole,
        act_for: whole,
    };
    let mut rounds = Vec::new();
    for n in sizes {
        eprintln!("sweep-bench: seeding {n} notebooks in moto");
        let clock = TestClock::at(jiff::Timestamp::now());
        let (deps, log) = fleet(n, clock.clone()).await;
        for name in [
            "first (every verdict new)",
            "steady (verdicts hold)",
            "refresh (31 min later: each verdict written again)",
        ] {
            if name.starts_with("refresh") {
                clock.advance(jiff::SignedDuration::from_mins(31));
            }
            log.clear();
            let t = Instant::now();
            let report = sweep(&deps, timing).await.expect("sweep");
            let wall = t.elapsed();
            assert_eq!(
                report.probed, n,
                "the sweep saw {} of {n} notebooks",
                report.probed
            );
            assert!(report.unknown.is_empty(), "unknown probes: {:?}", report.unknown);
            let calls = log.counts();
            eprintln!(
                "sweep-bench: N={n} {name}: {:.2} s, {} calls",
                wall.as_secs_f64(),
                calls.values().sum::<usize>()
            );
            rounds.push(Round { n, name, wall, calls });
        }
    }
    let out = render(&rounds);
    let dir = std::path::PathBuf::from(std::env::var("BENCH_OUT").unwrap_or_else(|_| "target/bench".into()));
    std::fs::create_dir_all(&dir).expect("create the output folder");
    std::fs::write(dir.join("sweep.md"), &out).expect("write sweep.md");
    std::fs::write(dir.join("sweep.json"), to_json(&rounds).to_string() + "\n").expect("write sweep.json");
    print!("{out}");
    let failed: Vec<&Round> = rounds.iter().filter(|r| !within_target(r)).collect();
    if !failed.is_empty() {
        eprintln!(
            "sweep-bench: over the target at N = {:?}",
            failed.iter().map(|r| r.n).collect::<Vec<_>>()
        );
        std::process::exit(1);
    }
}

/// The rounds for lambda-bench: `{"rounds": [{"n", "round": "first"|"steady"|"refresh", "wall_s", "calls":
/// {api: count}}], "lambda_timing": {"poll_every_s", "collect_for_s"}}`, the timing being the
/// one the sweep Lambda runs with.
fn to_json(rounds: &[Round]) -> serde_json::Value {
    let lambda = Timing::default();
    serde_json::json!({
        "rounds": rounds.iter().map(|r| serde_json::json!({
            "n": r.n,
            "round": r.name.split(' ').next().unwrap_or("first"),
            "wall_s": r.wall.as_secs_f64(),
            "calls": r.calls,
        })).collect::<Vec<_>>(),
        "lambda_timing": {
            "poll_every_s": lambda.poll_every.as_secs_f64(),
            "collect_for_s": lambda.collect_for.as_secs_f64(),
        },
    })
}

fn total(r: &Round) -> usize {
    r.calls.values().sum()
}

/// The most calls a round may make: a steady round 0.05 × N + 5, a refresh round one write per
/// notebook more; the first round has no target.
fn target(r: &Round) -> Option<usize> {
    let steady = r.n / 20 + 5;
    match r.name.split(' ').next() {
        Some("steady") => Some(steady),
        Some("refresh") => Some(steady + r.n),
        _ => None,
    }
}

fn within_target(r: &Round) -> bool {
    let refresh_writes_ok =
        !r.name.starts_with("refresh") || r.calls.get("dynamodb:PutItem").copied().unwrap_or(0) <= r.n;
    target(r).is_none_or(|t| total(r) <= t) && refresh_writes_ok
}

fn render(rounds: &[Round]) -> String {
    let mut apis: Vec<&String> = rounds.iter().flat_map(|r| r.calls.keys()).collect();
    apis.sort();
    apis.dedup();
    let mut s = String::from("## Sweep benchmark\n\n");
    let _ = writeln!(
        s,
        "One sweep round over N Ready notebooks: records and instances in moto (a local moto \
         server, debug build), probe results faked at the Commands port (moto has no \
         ListCommandInvocations), each probe still running at the first look and ended at the second; one instance per RunInstances, as launch makes them. Target for \
         a steady round: at most 0.05 × N + 5 AWS calls, DynamoDB writes included; for the refresh round, 31 minutes on \
         (each verdict that held written again, and nothing else: the write budget of one write per active notebook \
         per 30 minutes), one PutItem per notebook at most on top. Wall time is mostly moto's.\n"
    );
    let _ = write!(s, "| N | round | wall s | calls | target | ");
    for a in &apis {
        let _ = write!(s, "{a} | ");
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "|{}", "---|".repeat(5 + apis.len()));
    for r in rounds {
        let verdict = match target(r) {
            None => "—".to_string(),
            Some(t) => format!("≤ {t} {}", if within_target(r) { "✓" } else { "✗" }),
        };
        let _ = write!(
            s,
            "| {} | {} | {:.2} | {} | {} | ",
            r.n,
            r.name,
            r.wall.as_secs_f64(),
            total(r),
            verdict
        );
        for a in &apis {
            let _ = write!(s, "{} | ", r.calls.get(*a).copied().unwrap_or(0));
        }
        let _ = writeln!(s);
    }
    s
}
