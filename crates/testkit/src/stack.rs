//! The one way tests start a local stack: as its own process ([`spawned`], as a user runs it),
//! or in this process ([`in_process`], when a test wraps one of the stack's ports). Each stack
//! gets a fresh moto account and its own directory under `target/<area>/`.

use nbfleet_aws::Clients;
use nbfleet_local::harness::{Launch, LocalStack, sibling_binary};
use nbfleet_local::moto;
use nbfleet_local::stack::{self, Settings, Stack};
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;

/// How a test's stack runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Names the directory under `target/`.
    pub area: &'static str,
    /// How often the stack polls moto for EC2 state changes.
    pub watch_interval_ms: u64,
    /// How long an emulated stop or start takes.
    pub transition_ms: u64,
    /// How often the idle sweep runs (0: never).
    pub sweep_seconds: u64,
    /// Demo-length idle timeouts (1-minute minimum and warning).
    pub demo_timeouts: bool,
}

impl Options {
    /// Fast transitions, no sweep.
    pub fn new(area: &'static str) -> Self {
        Options {
            area,
            watch_interval_ms: 200,
            transition_ms: 300,
            sweep_seconds: 0,
            demo_timeouts: false,
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `nbfleet-local` binary, started for a test; and clients on its moto account.
pub async fn spawned(o: Options) -> (LocalStack, Clients) {
    let endpoint = moto::endpoint_from_env();
    let account = moto::fresh_account();
    let stack = LocalStack::spawn(Launch {
        bin: &sibling_binary("nbfleet-local"),
        moto_endpoint: &endpoint,
        account: &account,
        dir: &root().join("target").join(o.area).join(&account),
        venv: &root().join(".venv"),
        port: 0,
        watch_interval_ms: o.watch_interval_ms,
        transition_ms: o.transition_ms,
        sweep_seconds: o.sweep_seconds,
        demo_timeouts: o.demo_timeouts,
    })
    .await
    .expect("start the local stack (is moto running?)");
    (stack, moto::clients(&endpoint, &account))
}

/// A local stack in this process, not yet serving: the test may swap its ports first, then
/// `tokio::spawn(stack::serve(stack.deps, listener))`.
pub struct InProcess {
    pub stack: Stack,
    pub listener: TcpListener,
    pub settings: Settings,
    /// Where it serves, `http://127.0.0.1:<port>`.
    pub base: String,
}

/// A local stack in this process.
pub async fn in_process(o: Options) -> InProcess {
    let account = moto::fresh_account();
    let settings = Settings {
        moto_endpoint: moto::endpoint_from_env(),
        account: account.clone(),
        listen: "127.0.0.1:0".parse().expect("an address"),
        dir: root().join("target").join(o.area).join(&account),
        venv: root().join(".venv"),
        watch_interval: Duration::from_millis(o.watch_interval_ms),
        transition: Duration::from_millis(o.transition_ms),
        sweep_every: Some(Duration::from_secs(o.sweep_seconds)).filter(|d| !d.is_zero()),
        demo_timeouts: o.demo_timeouts,
    };
    let (stack, listener) = stack::start(&settings)
        .await
        .expect("start the local stack (is moto running?)");
    let base = format!("http://{}", stack.addr);
    InProcess {
        stack,
        listener,
        settings,
        base,
    }
}
