//! The Slack handler: `POST /slack/commands` (`/notebook launch|start|stop|status|list|extend|help`).
//!
//! 1. The request is verified before anything is read: Slack's HMAC signature over the raw
//!    body (API Gateway's base64 is decoded first), within 5 minutes (`nbfleet_core::slack`).
//! 2. The team and user must be on the allow-list.
//! 3. Quick commands (status, list, extend, help) are answered at once; slow ones (launch,
//!    start, stop call EC2) are acknowledged at once and handed to a [`Jobs`] port (an
//!    asynchronous self-invocation), whose run posts the outcome to Slack's `response_url`.
//!
//! A command that changes something is done once per signed request: a replay inside Slack's
//! 5-minute window is refused (the signature is remembered in the table, with a TTL).
//!
//! Every answer is ephemeral: only the caller sees it, which is what lets a Slack launch show its
//! token. Passwords are refused by the grammar. The work itself goes through the same handler
//! functions as the HTTP API, with the owner `slack:<team>:<user>`.

use base64::Engine as _;
use jiff::SignedDuration;
use nbfleet_core::ports::{Deps, Jobs, Responder};
use nbfleet_core::slack::{self, Command, SlashRequest, USAGE};
use nbfleet_core::{Error, Notebook, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Slow work, as handed to the self-invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Names the request it came from, so a second delivery of the same job does nothing.
    pub id: String,
    pub owner: String,
    pub command: Command,
    pub response_url: String,
}

/// The key that marks a self-invocation's payload (an API Gateway event never has it).
pub const JOB_KEY: &str = "nbfleet_slack_job";

/// The parts of an API Gateway (HTTP API, payload 2.0) request Slack verification needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackHttp {
    pub timestamp: Option<String>,
    pub signature: Option<String>,
    pub body: Vec<u8>,
}

impl SlackHttp {
    /// Reads an API Gateway event: header names are lower-cased by API Gateway, and the body
    /// arrives base64-encoded when `isBase64Encoded` says so.
    pub fn from_gateway(event: &Value) -> Result<SlackHttp> {
        let header = |name: &str| {
            event["headers"]
                .as_object()
                .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                .and_then(|(_, v)| v.as_str())
                .map(str::to_string)
        };
        let raw = event["body"].as_str().unwrap_or_default();
        let body = if event["isBase64Encoded"].as_bool() == Some(true) {
            base64::engine::general_purpose::STANDARD
                .decode(raw)
                .map_err(|_| Error::bad_request("body", "is not valid base64"))?
        } else {
            raw.as_bytes().to_vec()
        };
        Ok(SlackHttp {
            timestamp: header("x-slack-request-timestamp"),
            signature: header("x-slack-signature"),
            body,
        })
    }
}

/// An API Gateway (payload 2.0) response.
pub fn gateway_response(status: u16, body: &Value) -> Value {
    json!({
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": body.to_string(),
    })
}

/// An ephemeral Slack message.
fn ephemeral(text: impl Into<String>) -> Value {
    json!({"response_type": "ephemeral", "text": text.into()})
}

/// Answers one slash-command request: `(HTTP status, body)`. 401 for a request that fails
/// verification; 200 with an ephemeral message otherwise (Slack shows nothing on other codes).
pub async fn slash(deps: &Deps, jobs: &dyn Jobs, secret: &[u8], req: &SlackHttp) -> (u16, Value) {
    let now = deps.clock.now();
    if let Err(why) = slack::verify(
        secret,
        req.timestamp.as_deref(),
        req.signature.as_deref(),
        &req.body,
        now,
    ) {
        tracing::warn!(reason = %why, "Slack request refused");
        return (
            401,
            json!({"error": {"code": "unauthorized", "message": why.to_string()}}),
        );
    }
    let form = match SlashRequest::parse(&req.body) {
        Ok(f) => f,
        Err(why) => return (200, ephemeral(why)),
    };
    if !form.allowed(&deps.cfg.slack.teams, &deps.cfg.slack.users) {
        tracing::warn!(team = %form.team_id, user = %form.user_id, "Slack user not on the allow-list");
        return (
            200,
            ephemeral("You are not allowed to use /notebook here. Ask your nbfleet operator."),
        );
    }
    let command = match Command::parse(&form.text) {
        Ok(c) => c,
        Err(usage) => return (200, ephemeral(usage)),
    };
    // A command that changes something is carried out once per signed request: a replay within
    // the 5-minute window is refused (the signature is remembered for 10 minutes).
    if command.changes_something() {
        let signature = req.signature.as_deref().unwrap_or_default();
        match deps
            .store
            .first_time(&format!("slack#{signature}"), now + SignedDuration::from_mins(10))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(team = %form.team_id, user = %form.user_id, "Slack request replayed");
                return (
                    401,
                    json!({"error": {"code": "unauthorized", "message": "this request was already received"}}),
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot check the Slack request for a replay");
                return (
                    200,
                    ephemeral("nbfleet could not take that just now; try again in a minute."),
                );
            }
        }
    }
    if !command.is_slow() {
        return (200, execute(deps, &form.owner(), &command).await);
    }
    let job = Job {
        id: req.signature.clone().unwrap_or_default(),
        owner: form.owner(),
        command,
        response_url: form.response_url,
    };
    let payload = json!({ JOB_KEY: job });
    match jobs.submit(&payload).await {
        Ok(()) => (200, ephemeral(format!("Working on `{}`…", form.text.trim()))),
        Err(e) => {
            tracing::error!(error = %e, "cannot hand the Slack job over");
            (
                200,
                ephemeral("nbfleet could not start that just now; try again in a minute."),
            )
        }
    }
}

/// The signing secret, from the Parameter Store parameter the configuration names.
pub async fn signing_secret(deps: &Deps) -> Result<Vec<u8>> {
    let parameter = deps
        .cfg
        .slack
        .signing_secret_parameter
        .as_deref()
        .ok_or_else(|| Error::internal("NBFLEET_SLACK_SIGNING_SECRET_PARAMETER is not set"))?;
    let secret = deps.secrets.get(parameter).await?.ok_or_else(|| {
        Error::internal(format!(
            "the Slack signing secret parameter {parameter} does not exist"
        ))
    })?;
    Ok(secret.into_bytes())
}

/// Runs slow work and posts its outcome to Slack's `response_url`.
/// Lambda may deliver an asynchronous invocation more than once: a job already taken is skipped.
pub async fn run_job(deps: &Deps, responder: &dyn Responder, job: &Job) -> Result<()> {
    let key = format!("slack-job#{}", job.id);
    if !deps
        .store
        .first_time(&key, deps.clock.now() + SignedDuration::from_hours(24))
        .await?
    {
        tracing::info!(owner = %job.owner, "Slack job delivered again; skipped");
        return Ok(());
    }
    let message = execute(deps, &job.owner, &job.command).await;
    responder.respond(&job.response_url, &message).await
}

/// Carries out a command as `owner` and says how it went, as an ephemeral message.
async fn execute(deps: &Deps, owner: &str, command: &Command) -> Value {
    let result = match command {
        Command::Help => return ephemeral(USAGE),
        Command::List => nbfleet_read::list(deps).await.map(|(_, v)| list_text(&v)),
        Command::Status(name) => nbfleet_read::get(deps, name).await.map(|(_, v)| status_text(&v)),
        Command::Extend { name, minutes } => {
            let body = json!({ "minutes": minutes }).to_string();
            nbfleet_lifecycle::extend(deps, owner, name, body.as_bytes())
                .await
                .map(|_| format!("*{name}*: idle stop put off by {minutes} minutes."))
        }
        Command::Start(name) => nbfleet_lifecycle::start(deps, owner, name)
            .await
            .map(|(_, v)| moved_text(name, &v, "starting; you will hear when it is ready")),
        Command::Stop(name) => nbfleet_lifecycle::stop(deps, owner, name)
            .await
            .map(|(_, v)| moved_text(name, &v, "stopping")),
        Command::Launch {
            name,
            instance_type,
            idle_minutes,
        } => {
            let body = json!({
                "name": name,
                "instance_type": instance_type,
                "idle_timeout_minutes": idle_minutes,
            });
            nbfleet_launch::handle(deps, owner, body.to_string().as_bytes())
                .await
                .map(|(_, v)| launch_text(name, &v))
        }
    };
    ephemeral(result.unwrap_or_else(|e| format!("Refused: {}", e)))
}

fn notebook(v: &Value) -> Option<Notebook> {
    serde_json::from_value(v["notebook"].clone()).ok()
}

fn launch_text(name: &str, answer: &Value) -> String {
    let mut t = format!("*{name}* is launching; you will hear when it is ready.");
    if let Some(token) = answer["token"].as_str() {
        t.push_str(&format!(
            "\nIts Jupyter token (shown once, only to you): `{token}`"
        ));
    }
    t
}

fn moved_text(name: &str, answer: &Value, doing: &str) -> String {
    match notebook(answer) {
        Some(nb) => format!("*{name}* is {} ({doing}).", nb.state),
        None => format!("*{name}*: {doing}."),
    }
}

fn status_text(answer: &Value) -> String {
    let Some(nb) = notebook(answer) else {
        return "No such notebook.".into();
    };
    let mut t = format!("*{}*: {} · {}", nb.name, nb.state, nb.instance_type);
    if let Some(usd) = answer["cost"]["cost_usd"].as_f64() {
        t.push_str(&format!(" · ${usd:.2} so far"));
    }
    if let Some(c) = &nb.connect {
        t.push_str(&format!("\n{}", c.url));
    }
    if let Some(s) = &nb.idle_status {
        t.push_str(&format!("\n{}", s.reason));
    }
    if let Some(f) = &nb.failure {
        t.push_str(&format!("\nFailed: {}", f.reason));
    }
    t
}

fn list_text(answer: &Value) -> String {
    let lines: Vec<String> = answer["notebooks"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|v| {
                    let nb = notebook(v)?;
                    let stop = nb
                        .idle_status
                        .as_ref()
                        .and_then(|s| s.planned_stop)
                        .map(|t| format!(" · stops {}", t.strftime("%H:%M UTC")))
                        .unwrap_or_default();
                    Some(format!(
                        "• *{}*: {} · {}{stop}",
                        nb.name, nb.state, nb.instance_type
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    if lines.is_empty() {
        "No notebooks yet: `/notebook launch NAME`.".into()
    } else {
        lines.join("\n")
    }
}
