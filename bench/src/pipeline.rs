//! `make bench`, the pipeline part: what nbfleet's own event plumbing adds around the scripts,
//! in the local stack (moto, the real bootstrap and health check under a real Jupyter).
//!
//! For each notebook, launched and then stopped and started again:
//! - **event → sent**: from the EC2 "running" event being emitted to the script (bootstrap, or
//!   health check after a restart) sent over Run Command and recorded;
//! - **script**: the script's own run, from sent to the command finished (not nbfleet's cost);
//! - **finished → Ready**: from the command's completion to the record saying Ready.
//!
//! Times come from the stack's own log events, taken with their instant by a tracing layer:
//! `EC2 event emitted` (the watcher), `configuring` (configure, after SendCommand and the
//! record write), `local command finished` (the runner) and `event handled` with a move to
//! Ready (configure, after the write). Writes `target/bench/pipeline.md` and
//! `target/bench/pipeline.json` (`BENCH_OUT` moves both). Target: each overhead ≤ 0.1 s.

use nbfleet_local::harness::{Api, http_client};
use nbfleet_local::moto;
use nbfleet_local::stack::{self, Settings};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;

const NOTEBOOKS: usize = 3;
const TARGET_S: f64 = 0.1;

/// One log event of the stack, with when it happened.
#[derive(Debug, Clone)]
struct Mark {
    at: Instant,
    message: String,
    fields: String,
}

/// Keeps every nbfleet log event with its instant.
#[derive(Clone, Default)]
struct Timeline(Arc<Mutex<Vec<Mark>>>);

impl<S: tracing::Subscriber> Layer<S> for Timeline {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let at = Instant::now();
        let mut seen = Seen::default();
        event.record(&mut seen);
        self.0.lock().expect("lock").push(Mark {
            at,
            message: seen.message,
            fields: seen.fields,
        });
    }
}

#[derive(Default)]
struct Seen {
    message: String,
    fields: String,
}

impl Visit for Seen {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

impl Timeline {
    /// The first event at or after `from` with `message` whose fields contain every one of `has`.
    fn find(&self, from: Instant, message: &str, has: &[&str]) -> Option<Mark> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .find(|m| m.at >= from && m.message == message && has.iter().all(|h| m.fields.contains(h)))
            .cloned()
    }
}

/// One pass through the pipeline: (event → sent, script, finished → Ready), in seconds.
#[derive(Debug, Clone, Copy)]
struct Pass {
    to_sent: f64,
    script: f64,
    to_ready: f64,
}

fn pass(t: &Timeline, from: Instant, name: &str, instance: &str) -> Pass {
    let inst = format!("instance={instance}");
    let emitted = t
        .find(from, "EC2 event emitted", &[&inst, "state=running"])
        .expect("the running event");
    let sent = t
        .find(emitted.at, "configuring", &[&inst])
        .expect("the script sent");
    let command = sent
        .fields
        .split_whitespace()
        .find_map(|f| f.strip_prefix("command="))
        .expect("a command id")
        .to_string();
    let finished = t
        .find(
            sent.at,
            "local command finished",
            &[&format!("command={command}")],
        )
        .expect("the command finished");
    let ready = t
        .find(
            finished.at,
            "event handled",
            &[&format!("notebook: \"{name}\""), "to: Ready"],
        )
        .expect("the record Ready");
    let s = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64();
    Pass {
        to_sent: s(emitted.at, sent.at),
        script: s(sent.at, finished.at),
        to_ready: s(finished.at, ready.at),
    }
}

/// Waits for `name` to reach `want`, through the local stack's API.
async fn wait_for(base: &str, name: &str, want: &str) -> Value {
    Api::new(base)
        .wait_for(name, &[want, "Failed"], Duration::from_secs(300), |_, _| {})
        .await
        .ok()
        .filter(|nb| nb["state"] == want)
        .unwrap_or_else(|| panic!("{name} did not reach {want}"))
}

async fn post(base: &str, path: &str, body: Value) -> u16 {
    http_client()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .expect("POST")
        .status()
        .as_u16()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let timeline = Timeline::default();
    let layer = timeline
        .clone()
        .with_filter(filter_fn(|m| m.target().starts_with("nbfleet")));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .expect("the only subscriber");

    let out = PathBuf::from(std::env::var("BENCH_OUT").unwrap_or_else(|_| "target/bench".into()));
    std::fs::create_dir_all(&out).expect("BENCH_OUT");
    let account = moto::fresh_account();
    let settings = Settings {
        moto_endpoint: moto::endpoint_from_env(),
        account: account.clone(),
        listen: "127.0.0.1:0".parse().expect("address"),
        dir: out.join("pipeline").join(&account),
        venv: PathBuf::from(".venv"),
        watch_interval: Duration::from_millis(100),
        transition: Duration::from_millis(500),
        sweep_every: None,
        demo_timeouts: false,
    };
    let (stack, listener) = stack::start(&settings).await.expect("the local stack");
    let runner = stack.runner.clone();
    let base = format!("http://{}", stack.addr);
    tokio::spawn(stack::serve(stack.deps, listener));

    let mut launches = Vec::new();
    let mut restarts = Vec::new();
    for i in 0..NOTEBOOKS {
        let name = format!("pipe-{i}");
        let from = Instant::now();
        assert_eq!(post(&base, "/notebooks", json!({ "name": name })).await, 202);
        let nb = wait_for(&base, &name, "Ready").await;
        let instance = nb["instance_id"].as_str().expect("instance").to_string();
        launches.push(pass(&timeline, from, &name, &instance));

        assert_eq!(
            post(&base, &format!("/notebooks/{name}/stop"), json!({})).await,
            202
        );
        wait_for(&base, &name, "Stopped").await;
        let from = Instant::now();
        assert_eq!(
            post(&base, &format!("/notebooks/{name}/start"), json!({})).await,
            202
        );
        wait_for(&base, &name, "Ready").await;
        restarts.push(pass(&timeline, from, &name, &instance));
        eprintln!("pipeline-bench: {name}: {:?} then {:?}", launches[i], restarts[i]);
    }
    runner.stop_all();

    let (md, summary, failed) = render(&launches, &restarts);
    std::fs::write(out.join("pipeline.md"), &md).expect("write pipeline.md");
    let passes = |v: &[Pass]| -> Vec<Value> {
        v.iter()
            .map(|p| json!({"event_to_sent_s": p.to_sent, "script_s": p.script, "finished_to_ready_s": p.to_ready}))
            .collect()
    };
    let doc = json!({"launch": passes(&launches), "restart": passes(&restarts), "summary": summary});
    std::fs::write(
        out.join("pipeline.json"),
        serde_json::to_string_pretty(&doc).expect("json") + "\n",
    )
    .expect("write pipeline.json");
    print!("{md}");
    if failed > 0 {
        eprintln!("pipeline-bench: {failed} figure(s) miss their target");
        std::process::exit(1);
    }
}

fn max(v: impl Iterator<Item = f64>) -> f64 {
    v.fold(0.0, f64::max)
}

/// The section's markdown, the summary rows for the overall table, and how many missed.
fn render(launches: &[Pass], restarts: &[Pass]) -> (String, Vec<Value>, usize) {
    let mut s = String::from(
        "## Pipeline overhead (local stack)\n\n\
         nbfleet's own time around the scripts, in the local stack: moto, the watcher's EC2 events, the \
         events use case, and the real bootstrap (launch) or health check (restart) under a real Jupyter. \
         Event → sent: the EC2 \"running\" event emitted, to the script sent over Run Command and recorded. \
         Finished → Ready: the command's completion, to the record saying Ready. The script's own time is \
         shown apart.\n\n\
         | notebook | pass | event → sent s | script s | finished → Ready s |\n|---|---|---|---|---|\n",
    );
    for (kind, passes) in [
        ("launch (bootstrap)", launches),
        ("restart (health check)", restarts),
    ] {
        for (i, p) in passes.iter().enumerate() {
            let _ = writeln!(
                s,
                "| pipe-{i} | {kind} | {:.3} | {:.2} | {:.3} |",
                p.to_sent, p.script, p.to_ready
            );
        }
    }
    let all: Vec<Pass> = launches.iter().chain(restarts).copied().collect();
    let mut summary = Vec::new();
    let mut failed = 0;
    for (figure, worst) in [
        (
            "pipeline: EC2 running event → script sent (worst of",
            max(all.iter().map(|p| p.to_sent)),
        ),
        (
            "pipeline: command finished → record Ready (worst of",
            max(all.iter().map(|p| p.to_ready)),
        ),
    ] {
        let ok = worst <= TARGET_S;
        failed += usize::from(!ok);
        summary.push(json!({
            "figure": format!("{figure} {} passes)", all.len()),
            "measured": format!("{worst:.3} s"),
            "target": format!("≤ {TARGET_S} s"),
            "ok": ok,
        }));
    }
    (s, summary, failed)
}
