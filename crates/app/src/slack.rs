//! The `/notebook` commands, and the buttons on nbfleet's messages, as use cases.
//!
//! 1. The request is verified before anything is read: Slack's HMAC signature over the raw
//!    body, within 5 minutes (`nbfleet_core::slack::verify`).
//! 2. The team and user must be on the allow-list.
//! 3. Quick commands (status, list, extend, help) are answered at once; slow ones (launch,
//!    start, stop call EC2) are acknowledged at once and handed to the [`Jobs`] port (in a
//!    Lambda, an asynchronous self-invocation), whose run posts the outcome to Slack's
//!    `response_url` through the [`Responder`] port.
//!
//! A command that changes something is done once per signed request: a replay inside Slack's
//! 5-minute window is refused (the signature is remembered in the table, with a TTL).
//!
//! Replies are text (Slack's mrkdwn); the edge wraps them as ephemeral messages, so only the
//! caller sees them, which is what lets a Slack launch show its token. Passwords are refused by
//! the grammar. The work goes through the same use cases as the HTTP API, with the owner
//! `slack:<team>:<user>`.

use crate::read::View;
use crate::{launch, lifecycle, read};
use jiff::SignedDuration;
use nbfleet_core::identity::Principal;
use nbfleet_core::password::Secret;
use nbfleet_core::ports::{Deps, Jobs, Responder};
use nbfleet_core::slack::{self, SlashCommand, SlashRequest, USAGE};
use nbfleet_core::validate::{Credential, launch_spec};
use nbfleet_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Slow work, as handed to another invocation: the signed request itself, verified again
/// when the job runs, so that nobody who may invoke the Slack function can make up a job (a
/// command as any Slack user, an answer to any URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub timestamp: String,
    /// Also names the job, so that a second delivery of it does nothing.
    pub signature: String,
    pub body: String,
}

/// The key that marks a job's payload (an API Gateway event never has it).
pub const JOB_KEY: &str = "nbfleet_slack_job";

impl Job {
    /// The payload handed to the [`Jobs`] port.
    pub fn payload(&self) -> serde_json::Value {
        json!({ JOB_KEY: self })
    }

    /// The job in a payload, if it is one.
    pub fn from_payload(payload: &serde_json::Value) -> Option<Result<Job>> {
        let job = payload.get(JOB_KEY)?;
        Some(serde_json::from_value(job.clone()).map_err(|e| Error::internal(format!("bad job: {e}"))))
    }
}

/// A slash-command request as Slack signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub timestamp: Option<String>,
    pub signature: Option<String>,
    pub body: Vec<u8>,
}

impl Signed {
    /// Slack's signature over the body, within 5 minutes of `now`; anything else is
    /// `Error::Unauthorized`, before anything is read.
    fn verify(&self, secret: &[u8], now: jiff::Timestamp) -> Result<()> {
        slack::verify(
            secret,
            self.timestamp.as_deref(),
            self.signature.as_deref(),
            &self.body,
            now,
        )
        .map_err(|why| {
            tracing::warn!(reason = %why, "Slack request refused");
            Error::Unauthorized(why.to_string())
        })
    }

    /// This request, as a job another invocation runs.
    fn job(&self) -> Job {
        Job {
            timestamp: self.timestamp.clone().unwrap_or_default(),
            signature: self.signature.clone().unwrap_or_default(),
            body: String::from_utf8_lossy(&self.body).into_owned(),
        }
    }
}

/// Answers one slash-command request with an ephemeral reply (Slack's message JSON). A
/// request that fails verification, or is a replay, is `Error::Unauthorized`; anything else is
/// a reply (Slack shows nothing for other statuses).
pub async fn slash(deps: &Deps, jobs: &dyn Jobs, secret: &[u8], req: &Signed) -> Result<serde_json::Value> {
    let now = deps.clock.now();
    req.verify(secret, now)?;
    let (form, command) = match read(deps, &req.body)? {
        Ok(read) => read,
        Err(reply) => return Ok(slack::ephemeral(&reply)),
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
                return Err(Error::Unauthorized("this request was already received".into()));
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot check the Slack request for a replay");
                return Ok(slack::ephemeral(
                    "nbfleet could not take that just now; try again in a minute.",
                ));
            }
        }
    }
    if let SlashCommand::Delete(name) = &command {
        return Ok(confirm_delete(name));
    }
    if !command.is_slow() {
        let text = execute(deps, &form.owner(&deps.cfg.slack), &command, None).await;
        return Ok(slack::ephemeral(&text));
    }
    let job = req.job();
    // A launch's token is shown now, in the reply only this user sees, so it is never lost
    // with a late answer; the job launches with the same one (`slack::launch_token`).
    let token = match &command {
        SlashCommand::Launch { .. } => format!(
            "\nIts Jupyter token (shown once, only to you): `{}`",
            slack::launch_token(secret, &job.signature).expose()
        ),
        _ => String::new(),
    };
    let text = match jobs.submit(&job.payload()).await {
        Ok(()) => format!("Working on `{}`…{token}", form.text.trim()),
        Err(e) => {
            tracing::error!(error = %e, "cannot hand the Slack job over");
            "nbfleet could not start that just now; try again in a minute.".into()
        }
    };
    Ok(slack::ephemeral(&text))
}

/// `/notebook rm NAME`: a button that deletes, and asks once more (a delete terminates the
/// instance; its disk is kept as a snapshot). Pressing it is a click like any other: only the
/// owner's deletes.
fn confirm_delete(name: &str) -> serde_json::Value {
    use nbfleet_core::blocks::{self, Button};
    let text = format!(
        "Delete *{name}*? Its instance is terminated and its disk kept as a snapshot (`/notebook snapshots`)."
    );
    json!({
        "response_type": "ephemeral",
        "text": nbfleet_core::text::slack_escape(&text),
        "blocks": [blocks::section(&text), blocks::actions(name, &[Button::Delete])],
    })
}

/// Acknowledges one interaction request (a button pressed on an nbfleet message) and hands
/// the work to the [`Jobs`] port, within Slack's 3 seconds: verified first (as a slash
/// command), then one write, which marks the click as taken (a click Slack delivers twice,
/// or a replayed request, is acted on once). Who may press it is the use case's check, in the
/// job: anyone else hears "not yours", only they.
pub async fn interaction(deps: &Deps, jobs: &dyn Jobs, secret: &[u8], req: &Signed) -> Result<()> {
    let now = deps.clock.now();
    req.verify(secret, now)?;
    let Some(click) = clicked(deps, &req.body)? else {
        return Ok(());
    };
    if !deps
        .store
        .first_time(&click.key(), now + SignedDuration::from_hours(24))
        .await?
    {
        tracing::info!(user = %click.user_id, notebook = %click.notebook, "Slack click delivered again; skipped");
        return Ok(());
    }
    jobs.submit(&req.job().payload()).await
}

/// The click in a verified interaction body: `None` for one nbfleet does not act on (another
/// kind of interaction, a team or user not on the allow-list), which is logged; a
/// `response_url` off Slack's hooks host is refused.
fn clicked(deps: &Deps, body: &[u8]) -> Result<Option<slack::Click>> {
    if !slack::is_interaction(body) {
        return Ok(None);
    }
    let click = match slack::Click::parse(body) {
        Ok(c) => c,
        Err(why) => {
            tracing::warn!(reason = %why, "Slack interaction not handled");
            return Ok(None);
        }
    };
    if !click.allowed(&deps.cfg.slack.teams, &deps.cfg.slack.users) {
        tracing::warn!(team = %click.team_id, user = %click.user_id, "Slack user not on the allow-list");
        return Ok(None);
    }
    if let Err(why) = slack::check_response_url(&click.response_url, &deps.cfg.slack.response_hosts) {
        tracing::warn!(user = %click.user_id, reason = %why, "Slack interaction refused");
        return Err(Error::Unauthorized(why));
    }
    Ok(Some(click))
}

/// Does what a click asks, as the clicker's owner identity, then puts what happened in place
/// of the message's buttons; a refusal ("not yours" among them) goes to the clicker alone.
async fn run_click(deps: &Deps, responder: &dyn Responder, click: &slack::Click) -> Result<()> {
    use nbfleet_core::blocks::{self, Button};
    let (owner, name, who) = (
        click.owner(&deps.cfg.slack),
        click.notebook.as_str(),
        format!("<@{}>", click.user_id),
    );
    let done = match click.button {
        Button::Extend(minutes) => lifecycle::extend(deps, &owner, name, minutes).await.map(|c| {
            let until = c
                .notebook
                .snoozed_until
                .map_or_else(String::new, |t| t.strftime(" to %H:%M UTC").to_string());
            format!("*{name}*: kept running{until} by {who}")
        }),
        Button::StopNow | Button::Stop => lifecycle::stop(deps, &owner, name, true)
            .await
            .map(|c| format!("*{name}*: {} (stop asked by {who})", c.notebook.state)),
        Button::Start => lifecycle::start(deps, &owner, name)
            .await
            .map(|c| format!("*{name}*: {} (start asked by {who})", c.notebook.state)),
        Button::Delete => lifecycle::delete(deps, &owner, name, true).await.map(|c| {
            format!(
                "*{name}*: {}, its disk kept as a snapshot (asked by {who})",
                c.notebook.state
            )
        }),
    };
    let message = match done {
        Ok(outcome) => blocks::after_click(click.message.as_ref(), &outcome),
        Err(Error::Forbidden(_)) => blocks::ephemeral(&format!(
            "{name} is not yours: only its owner or an admin can do that."
        )),
        Err(e) => blocks::ephemeral(&format!("Refused: {e}")),
    };
    responder.respond(&click.response_url, &message).await
}

/// The form and command of a verified request, or the reply that ends it there. A
/// `response_url` off Slack's hooks host is refused: answers (tokens among them) go nowhere
/// else.
fn read(deps: &Deps, body: &[u8]) -> Result<std::result::Result<(SlashRequest, SlashCommand), String>> {
    let form = match SlashRequest::parse(body) {
        Ok(f) => f,
        Err(why) => return Ok(Err(why)),
    };
    if !form.allowed(&deps.cfg.slack.teams, &deps.cfg.slack.users) {
        tracing::warn!(team = %form.team_id, user = %form.user_id, "Slack user not on the allow-list");
        return Ok(Err(
            "You are not allowed to use /notebook here. Ask your nbfleet operator.".into(),
        ));
    }
    if let Err(why) = slack::check_response_url(&form.response_url, &deps.cfg.slack.response_hosts) {
        tracing::warn!(team = %form.team_id, user = %form.user_id, reason = %why, "Slack request refused");
        return Err(Error::Unauthorized(why));
    }
    Ok(SlashCommand::parse(&form.text).map(|command| (form, command)))
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

/// How old a job's signed request may be when the job runs (seconds): past Slack's 5 minutes,
/// since Lambda may deliver a job late (the template lets an invocation wait 15 minutes).
pub const JOB_MAX_AGE_S: i64 = 3600;
/// How far ahead of this clock a request's timestamp may be (seconds): Slack's clock, not ours.
const JOB_SKEW_S: i64 = 300;

/// Runs slow work and posts its outcome to Slack's `response_url`. The job's request is
/// verified again (its signature, and an age within [`JOB_MAX_AGE_S`]), so a payload nobody
/// signed, or a captured one sent again after its replay mark is gone, is refused and changes
/// nothing. Lambda may deliver an asynchronous invocation more than once: a job already taken
/// is skipped.
pub async fn run_job(deps: &Deps, responder: &dyn Responder, secret: &[u8], job: &Job) -> Result<()> {
    if let Err(why) = slack::verify_signature(secret, &job.timestamp, &job.signature, job.body.as_bytes()) {
        tracing::warn!(reason = %why, "Slack job refused");
        return Err(Error::Unauthorized(format!(
            "the job is not a request Slack signed: {why}"
        )));
    }
    // Its replay marks live a day: a job older than an hour (Lambda gives up on one after 15
    // minutes) is a captured one sent again, not Slack's.
    let age = job
        .timestamp
        .parse::<i64>()
        .map(|ts| deps.clock.now().as_second() - ts)
        .unwrap_or(i64::MAX);
    if !(-JOB_SKEW_S..=JOB_MAX_AGE_S).contains(&age) {
        tracing::warn!(age_s = age, "Slack job refused: too old");
        return Err(Error::Unauthorized(format!(
            "the job's request was signed {age} s ago, outside the hour a job is taken"
        )));
    }
    // Lambda (or someone who may invoke the function) may deliver a job again: it runs once.
    if !first_job(deps, job).await? {
        tracing::info!("Slack job delivered again; skipped");
        return Ok(());
    }
    if let Some(click) = clicked(deps, job.body.as_bytes())? {
        return run_click(deps, responder, &click).await;
    }
    let (form, command) = match read(deps, job.body.as_bytes())? {
        Ok(read) => read,
        Err(reply) => {
            // Read fine when it came in: the operator changed the allow-list since.
            tracing::warn!(%reply, "Slack job no longer allowed; dropped");
            return Ok(());
        }
    };
    let token = slack::launch_token(secret, &job.signature);
    let text = execute(deps, &form.owner(&deps.cfg.slack), &command, Some(token)).await;
    responder
        .respond(&form.response_url, &slack::ephemeral(&text))
        .await
}

/// Whether `job` runs for the first time (one conditional write; the mark outlives the age a job
/// is taken at, [`JOB_MAX_AGE_S`]).
async fn first_job(deps: &Deps, job: &Job) -> Result<bool> {
    let key = format!("slack-job#{}", job.signature);
    deps.store
        .first_time(&key, deps.clock.now() + SignedDuration::from_hours(24))
        .await
}

/// Carries out a command as `owner` and says how it went.
/// A launch uses `token`, made and shown when the request came in.
async fn execute(deps: &Deps, owner: &Principal, command: &SlashCommand, token: Option<Secret>) -> String {
    let result = match command {
        SlashCommand::Help => return USAGE.into(),
        SlashCommand::List => read::list(deps).await.map(|all| list_text(&all)),
        SlashCommand::Status(name) => read::get(deps, name).await.map(|v| status_text(&v)),
        SlashCommand::Extend { name, minutes } => lifecycle::extend(deps, owner, name, *minutes)
            .await
            .map(|_| format!("*{name}*: idle stop put off by {minutes} minutes.")),
        SlashCommand::Set { name, changes } => {
            let body = serde_json::Value::Object(changes.clone()).to_string();
            let changed = match nbfleet_core::modify::parse(body.as_bytes(), &deps.cfg) {
                Ok(parsed) => crate::modify::modify(deps, owner, name, &parsed).await,
                Err(e) => Err(e),
            };
            changed.map(|c| {
                let fields: Vec<&str> = changes.keys().map(String::as_str).collect();
                match c.effect {
                    nbfleet_core::transitions::Effect::NoOp => {
                        format!("*{name}*: already so; nothing changed.")
                    }
                    _ => format!(
                        "*{name}*: set {} (`/notebook status {name}` shows it).",
                        fields.join(", ")
                    ),
                }
            })
        }
        SlashCommand::Start(name) => lifecycle::start(deps, owner, name).await.map(|c| {
            format!(
                "*{name}* is {} (starting; you will hear when it is ready).",
                c.notebook.state
            )
        }),
        SlashCommand::Stop { name, hook } => lifecycle::stop(deps, owner, name, *hook)
            .await
            .map(|c| format!("*{name}* is {} (stopping).", c.notebook.state)),
        // Answered with a button before it gets here (`confirm_delete`).
        SlashCommand::Delete(name) => Ok(format!("`/notebook rm {name}` asks with a button first.")),
        SlashCommand::Snapshots => crate::snapshots::list(deps, owner)
            .await
            .map(|all| snapshots_text(&all)),
        SlashCommand::Costs => {
            let since = nbfleet_core::cost::parse_costs_query(None, deps.clock.now()).map(|(since, _)| since);
            match since {
                Ok(since) => crate::costs::report(deps, owner, since, nbfleet_core::cost::By::Notebook)
                    .await
                    .map(|c| costs_text(&c)),
                Err(e) => Err(e),
            }
        }
        SlashCommand::Launch {
            name,
            instance_type,
            idle_timeout_minutes,
        } => {
            launch_as(
                deps,
                owner,
                name,
                instance_type.as_deref(),
                *idle_timeout_minutes,
                token,
            )
            .await
        }
    };
    result.unwrap_or_else(|e| format!("Refused: {e}"))
}

/// A Slack launch: the same fields, and so the same validation, as `POST /notebooks`.
async fn launch_as(
    deps: &Deps,
    owner: &Principal,
    name: &str,
    instance_type: Option<&str>,
    idle_timeout_minutes: Option<u32>,
    token: Option<Secret>,
) -> Result<String> {
    let mut fields = serde_json::Map::new();
    fields.insert("name".into(), json!(name));
    if let Some(t) = instance_type {
        fields.insert("instance_type".into(), json!(t));
    }
    if let Some(m) = idle_timeout_minutes {
        fields.insert("idle_timeout_minutes".into(), json!(m));
    }
    let mut spec = launch_spec(&fields, &deps.cfg)?;
    if let Some(token) = token {
        spec.credential = Credential::MadeToken(token);
    }
    launch::launch(deps, owner, &spec).await?;
    Ok(format!(
        "*{name}* is launching (its token was in the first reply); you will hear when it is ready."
    ))
}

fn status_text(view: &View) -> String {
    let nb = &view.notebook;
    let mut t = format!("*{}*: {} · {}", nb.name, nb.state, nb.instance_type);
    if let Some(usd) = view.cost.cost_usd {
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

fn usd(v: Option<f64>) -> String {
    v.map_or_else(|| "no price".into(), |v| format!("${v:.2}"))
}

fn snapshots_text(all: &crate::snapshots::Snapshots) -> String {
    if all.snapshots.is_empty() {
        return "You have no snapshots (a delete keeps one).".into();
    }
    let lines: Vec<String> = all
        .snapshots
        .iter()
        .map(|s| {
            format!(
                "• `{}` of *{}*: {} GB, at most {} a month",
                s.snapshot_id,
                s.notebook.as_deref().unwrap_or("?"),
                s.size_gb,
                usd(s.monthly_usd)
            )
        })
        .collect();
    format!(
        "{}\nRestore one: `nbfleet up NAME --restore SNAPSHOT`.",
        lines.join("\n")
    )
}

fn costs_text(c: &crate::costs::Costs) -> String {
    let mut lines = vec![format!(
        "This month: {} (saved by automatic stops: {})",
        usd(c.total.total_usd),
        usd(c.total.spend.saved_usd)
    )];
    lines.extend(
        c.groups
            .iter()
            .map(|g| format!("• *{}*: {}", g.key, usd(g.total_usd))),
    );
    lines.join("\n")
}

fn list_text(all: &[View]) -> String {
    let lines: Vec<String> = all
        .iter()
        .map(|v| {
            let nb = &v.notebook;
            let stop = nb
                .idle_status
                .as_ref()
                .and_then(|s| s.planned_stop)
                .map(|t| format!(" · stops {}", t.strftime("%H:%M UTC")))
                .unwrap_or_default();
            format!("• *{}*: {} · {}{stop}", nb.name, nb.state, nb.instance_type)
        })
        .collect();
    if lines.is_empty() {
        "No notebooks yet: `/notebook launch NAME`.".into()
    } else {
        lines.join("\n")
    }
}
