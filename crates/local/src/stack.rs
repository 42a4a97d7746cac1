//! The local stack: the HTTP API served by the same router as the Lambdas
//! (`nbfleet_http::dispatch`); EC2 and SSM events delivered to the same use case as the events
//! Lambda, as EventBridge would; moto for AWS; the local runner for what runs on instances.

use crate::commands::LocalCommands;
use crate::moto;
use crate::runner::Runner;
use crate::setup;
use crate::watcher::Watcher;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use nbfleet_app::slack::{Job, run_job};
use nbfleet_app::{instance_events, sweep};
use nbfleet_aws::SsmCommands;
use nbfleet_core::events::Event;
use nbfleet_core::ports::Deps;
use nbfleet_core::validate::MAX_BODY_BYTES;
use nbfleet_core::{Error, Result};
use nbfleet_http::{Answer, Api, ApiRequest, Caller, dispatch};
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
    deps.notifier = Arc::new(crate::slack_outbox::Outbox::new(dir.join("slack.jsonl")));
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
        let timing = sweep::Timing {
            collect_for: Duration::from_secs(30),
            poll_every: Duration::from_millis(250),
            ..sweep::Timing::default()
        };
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = sweep::sweep(&sweep_deps, timing).await {
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

/// Delivers one event to the events use case, retrying a retryable failure as Lambda's
/// asynchronous invocation would (sooner: seconds, not minutes).
async fn deliver(deps: &Deps, event: &Value) {
    const ATTEMPTS: u32 = 5;
    let event_type = &event["detail-type"];
    let parsed = match Event::parse(event) {
        Ok(e) => e,
        Err(e) => return tracing::error!(error = %e, event = %event_type, "event not understood"),
    };
    for attempt in 1..=ATTEMPTS {
        match instance_events::handle(deps, &parsed).await {
            Ok(_) => return,
            Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "event failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                tracing::error!(error = ?e, event = %event_type, "event failed");
                return;
            }
        }
    }
}

/// Serves the HTTP API until the process ends.
pub async fn serve(deps: Deps, listener: TcpListener) {
    let jobs = Arc::new(SpawnedJobs(deps.clone()));
    let api = Arc::new(Api::new(deps).serving_all().with_jobs(jobs));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let api = api.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let api = api.clone();
                async move { Ok::<_, std::convert::Infallible>(route(&api, req).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

/// The caller: `x-nbfleet-user` (or `local`) as the ARN, and `x-nbfleet-user-id` as IAM's
/// unique id; without one, the id IAM would give (`identity::local_unique_id`). (In AWS both are what SigV4 verified; the Lambdas never
/// read these headers.)
fn caller(req: &Request<Incoming>) -> Caller {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let arn = header("x-nbfleet-user").unwrap_or_else(|| "local".into());
    let user_id =
        header("x-nbfleet-user-id").unwrap_or_else(|| nbfleet_core::identity::local_unique_id(&arn));
    Caller { arn, user_id }
}

async fn route(api: &Api, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let caller = caller(&req);
    let (parts, body) = req.into_parts();
    let answer = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(body) => {
            let req = ApiRequest {
                method: parts.method,
                path: parts.uri.path().to_string(),
                query: parts.uri.query().map(str::to_string),
                headers: parts.headers,
                body: body.to_bytes().to_vec(),
                caller: Some(caller),
            };
            dispatch(api, &req).await
        }
        Err(_) => Answer::error(&Error::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        }),
    };
    Response::builder()
        .status(answer.status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(answer.text())))
        .expect("valid response")
}

/// The Jobs port for the local stack: a task in this process (which, unlike a Lambda, is not
/// frozen after it answers).
struct SpawnedJobs(Deps);

#[async_trait::async_trait]
impl nbfleet_core::ports::Jobs for SpawnedJobs {
    async fn submit(&self, payload: &Value) -> Result<()> {
        let job = Job::from_payload(payload).ok_or_else(|| Error::internal("not a Slack job"))??;
        let deps = self.0.clone();
        tokio::spawn(async move {
            let responder = nbfleet_aws::slack_webhook::ResponseUrl::default();
            let done = match nbfleet_app::slack::signing_secret(&deps).await {
                Ok(secret) => run_job(&deps, &responder, &secret, &job).await,
                Err(e) => Err(e),
            };
            if let Err(e) = done {
                tracing::warn!(error = %e, "Slack job: could not answer on response_url");
            }
        });
        Ok(())
    }
}
