//! The local stack: the HTTP routes of the API, served through the same handler functions as
//! the Lambdas; EC2 and SSM events delivered to the configure handler as EventBridge would;
//! moto for AWS; the local runner for what runs on instances.

use crate::commands::LocalCommands;
use crate::runner::Runner;
use crate::setup;
use crate::watcher::Watcher;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response};
use nbfleet_aws::{SsmCommands, moto};
use nbfleet_core::ports::Deps;
use nbfleet_core::validate::MAX_BODY_BYTES;
use nbfleet_core::{Error, Result};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Where and how the local stack runs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub moto_endpoint: String,
    pub account: String,
    pub listen: SocketAddr,
    /// Instance sandboxes live here.
    pub dir: PathBuf,
    /// The project venv (python, awscli, jupyterlab).
    pub venv: PathBuf,
    pub watch_interval: Duration,
    /// How long an emulated stop or start takes.
    pub transition: Duration,
    /// How often the idle sweep runs (`None`: never).
    pub sweep_every: Option<Duration>,
    /// Demo-length idle settings: a 1-minute minimum timeout and a 1-minute warning. Only an
    /// explicit local setting (`NBFLEET_LOCAL_DEMO_TIMEOUTS=1`) turns them on.
    pub demo_timeouts: bool,
}

impl Settings {
    /// From `NBFLEET_MOTO_PORT` (5000) or `MOTO_ENDPOINT`, `NBFLEET_LOCAL_PORT` (9000),
    /// `NBFLEET_LOCAL_ACCOUNT`, `NBFLEET_LOCAL_DIR` (`.local`), `NBFLEET_VENV` (`.venv`) and
    /// `NBFLEET_WATCH_INTERVAL_MS` (250: how often moto is polled for EC2 state changes),
    /// `NBFLEET_TRANSITION_MS` (2000: how long an emulated stop or start takes),
    /// `NBFLEET_SWEEP_SECONDS` (60; 0 turns the idle sweep off) and `NBFLEET_LOCAL_DEMO_TIMEOUTS`.
    pub fn from_env() -> std::result::Result<Settings, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let millis = |k: &str, default: u64| var(k).and_then(|v| v.parse().ok()).unwrap_or(default);
        let port: u16 = var("NBFLEET_LOCAL_PORT")
            .unwrap_or_else(|| "9000".into())
            .parse()
            .map_err(|_| "NBFLEET_LOCAL_PORT is not a port number".to_string())?;
        Ok(Settings {
            moto_endpoint: moto::endpoint_from_env(),
            account: var("NBFLEET_LOCAL_ACCOUNT").unwrap_or_else(|| moto::DEFAULT_ACCOUNT.into()),
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            dir: var("NBFLEET_LOCAL_DIR").unwrap_or_else(|| ".local".into()).into(),
            venv: var("NBFLEET_VENV").unwrap_or_else(|| ".venv".into()).into(),
            watch_interval: Duration::from_millis(millis("NBFLEET_WATCH_INTERVAL_MS", 250)),
            transition: Duration::from_millis(millis("NBFLEET_TRANSITION_MS", 2000)),
            sweep_every: Some(Duration::from_secs(millis("NBFLEET_SWEEP_SECONDS", 60)))
                .filter(|d| !d.is_zero()),
            demo_timeouts: var("NBFLEET_LOCAL_DEMO_TIMEOUTS").as_deref() == Some("1"),
        })
    }
}

/// A running local stack.
pub struct Stack {
    pub deps: Deps,
    pub runner: Runner,
    pub addr: SocketAddr,
}

/// Sets up moto, starts the watcher and the event dispatcher, binds the HTTP port.
pub async fn start(s: &Settings) -> Result<(Stack, TcpListener)> {
    let dir = std::path::absolute(&s.dir).map_err(Error::internal)?;
    let venv = std::path::absolute(&s.venv).map_err(Error::internal)?;
    let clients = setup::provision(&s.moto_endpoint, &s.account).await?;
    let mut vars = setup::vars();
    if s.demo_timeouts {
        vars.push(("NBFLEET_IDLE_TIMEOUT_MINUTES_MIN".into(), "1".into()));
        vars.push(("NBFLEET_WARNING_MINUTES".into(), "1".into()));
    }
    let cfg = nbfleet_core::config::from_vars(vars).map_err(Error::internal)?;
    let runner = Runner::new(dir.join("instances"), venv, &s.moto_endpoint, &cfg.region);

    let (events, mut inbox) = mpsc::unbounded_channel::<Value>();
    let mut deps = clients.deps(cfg.clone());
    deps.commands = Arc::new(LocalCommands::new(
        SsmCommands::new(clients.ssm.clone()),
        runner.clone(),
        &s.moto_endpoint,
        &s.account,
        &cfg.region,
        events.clone(),
    ));

    tokio::spawn(
        Watcher {
            ec2: clients.ec2.clone(),
            runner: runner.clone(),
            account: s.account.clone(),
            region: cfg.region.clone(),
            events,
            interval: s.watch_interval,
            transition: s.transition,
        }
        .run(),
    );
    let dispatcher_deps = deps.clone();
    tokio::spawn(async move {
        while let Some(event) = inbox.recv().await {
            deliver(&dispatcher_deps, &event).await;
        }
    });

    if let Some(every) = s.sweep_every {
        let sweep_deps = deps.clone();
        let timing = nbfleet_sweep::Timing {
            collect_for: Duration::from_secs(30),
            poll_every: Duration::from_millis(250),
        };
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = nbfleet_sweep::sweep(&sweep_deps, timing).await {
                    tracing::error!(error = %e, "sweep failed");
                }
            }
        });
    }

    let listener = TcpListener::bind(s.listen)
        .await
        .map_err(|e| Error::Unavailable(format!("bind {}: {e}", s.listen)))?;
    let addr = listener.local_addr().map_err(Error::internal)?;
    Ok((Stack { deps, runner, addr }, listener))
}

/// Delivers one event to the configure handler, retrying a retryable failure as Lambda's
/// asynchronous invocation would (sooner: seconds, not minutes).
async fn deliver(deps: &Deps, event: &Value) {
    const ATTEMPTS: u32 = 5;
    for attempt in 1..=ATTEMPTS {
        match nbfleet_configure::handle_event(deps, event).await {
            Ok(_) => return,
            Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "event failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                tracing::error!(error = ?e, event = %event["detail-type"], "event failed");
                return;
            }
        }
    }
}

/// Serves the HTTP API until the process ends.
pub async fn serve(deps: Deps, listener: TcpListener) {
    let deps = Arc::new(deps);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let deps = deps.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let deps = deps.clone();
                async move { Ok::<_, std::convert::Infallible>(route(&deps, req).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

/// The caller: `x-nbfleet-user`, or `local`. (In AWS it is the SigV4-verified IAM principal.)
fn caller(req: &Request<Incoming>) -> String {
    req.headers()
        .get("x-nbfleet-user")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or("local")
        .to_string()
}

/// What a route does.
#[derive(Debug, Clone, Copy)]
enum Op {
    Launch,
    List,
    Get,
    Start,
    Stop,
    Extend,
    Delete,
    Slack,
}

/// The HTTP API as the Lambdas behind API Gateway serve it: the template test compares this
/// table with the routes in template.yaml.
const ROUTES: [(Method, &str, Op); 8] = [
    (Method::POST, "/notebooks", Op::Launch),
    (Method::GET, "/notebooks", Op::List),
    (Method::GET, "/notebooks/{name}", Op::Get),
    (Method::POST, "/notebooks/{name}/start", Op::Start),
    (Method::POST, "/notebooks/{name}/stop", Op::Stop),
    (Method::POST, "/notebooks/{name}/extend", Op::Extend),
    (Method::DELETE, "/notebooks/{name}", Op::Delete),
    (Method::POST, "/slack/commands", Op::Slack),
];

/// Every route, as `METHOD /path/{name}`.
pub fn routes() -> Vec<String> {
    ROUTES.iter().map(|(m, p, _)| format!("{m} {p}")).collect()
}

/// The route `method` and `path` take, and the `{name}` in it (empty if none).
fn matched(method: &Method, path: &str) -> Option<(Op, String)> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    ROUTES.iter().find_map(|(m, template, op)| {
        let parts: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
        if m != method || parts.len() != segments.len() {
            return None;
        }
        let mut name = String::new();
        for (part, seg) in parts.iter().zip(&segments) {
            match *part {
                "{name}" => name = seg.to_string(),
                p if p == *seg => {}
                _ => return None,
            }
        }
        Some((*op, name))
    })
}

async fn route(deps: &Deps, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let owner = caller(&req);
    let method = req.method().clone();
    let headers = req.headers().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let snapshot = !req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .any(|kv| kv == "snapshot=false");
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return answer(Err(Error::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            }));
        }
    };
    let Some((op, name)) = matched(&method, &path) else {
        return answer(Err(Error::NotFound(format!("no route for {method} {path}"))));
    };
    let name = name.as_str();
    let result = match op {
        Op::Launch => nbfleet_launch::handle(deps, &owner, &body).await,
        Op::List => nbfleet_read::list(deps).await,
        Op::Get => nbfleet_read::get(deps, name).await,
        Op::Start => nbfleet_lifecycle::start(deps, &owner, name).await,
        Op::Stop => nbfleet_lifecycle::stop(deps, &owner, name).await,
        Op::Extend => nbfleet_lifecycle::extend(deps, &owner, name, &body).await,
        Op::Delete => nbfleet_lifecycle::delete(deps, &owner, name, snapshot).await,
        Op::Slack => return slack(deps, &headers, &body).await,
    };
    answer(result)
}

/// `POST /slack/commands`, as the slack Lambda answers it; slow work runs in a spawned task
/// (the local process does not freeze, unlike a Lambda).
async fn slack(deps: &Deps, headers: &hyper::HeaderMap, body: &[u8]) -> Response<Full<Bytes>> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let req = nbfleet_slack::SlackHttp {
        timestamp: header("x-slack-request-timestamp"),
        signature: header("x-slack-signature"),
        body: body.to_vec(),
    };
    let secret = match nbfleet_slack::signing_secret(deps).await {
        Ok(s) => s,
        Err(e) => return answer(Err(e)),
    };
    let jobs = SpawnedJobs(deps.clone());
    let (status, body) = nbfleet_slack::slash(deps, &jobs, &secret, &req).await;
    answer(Ok((status, body)))
}

/// The Jobs port for the local stack: a task in this process.
struct SpawnedJobs(Deps);

#[async_trait::async_trait]
impl nbfleet_core::ports::Jobs for SpawnedJobs {
    async fn submit(&self, job: &Value) -> Result<()> {
        let job: nbfleet_slack::Job = serde_json::from_value(job[nbfleet_slack::JOB_KEY].clone())
            .map_err(|e| Error::internal(format!("bad job: {e}")))?;
        let deps = self.0.clone();
        tokio::spawn(async move {
            let responder = nbfleet_aws::slack_webhook::ResponseUrl::default();
            if let Err(e) = nbfleet_slack::run_job(&deps, &responder, &job).await {
                tracing::warn!(error = %e, "Slack job: could not answer on response_url");
            }
        });
        Ok(())
    }
}

fn answer(result: Result<(u16, Value)>) -> Response<Full<Bytes>> {
    let (status, body) = match result {
        Ok(ok) => ok,
        Err(e) => {
            if let Error::Internal(detail) = &e {
                tracing::error!(%detail, "internal error");
            }
            (e.status(), e.body())
        }
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}
