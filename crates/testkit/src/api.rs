//! The HTTP API's answers for tests that call use cases directly: each function runs the use
//! case as the router would (the same body parsing, the same answer mapping) and gives back
//! `(status, body)`, keeping a refusal as its typed core error so a test can match on it.
//! [`serve`] goes through the whole Lambda edge instead.

use lambda_http::{Body, Request, Response};
use nbfleet_app::instance_events::{self, Outcome};
use nbfleet_app::slack::Signed;
use nbfleet_app::{Deps, launch, lifecycle, read, slack};
use nbfleet_core::Result;
use nbfleet_core::events::Event;
use nbfleet_core::identity::{self, Principal};
use nbfleet_core::ports::Jobs;
use nbfleet_core::validate::{parse_extend, parse_launch};
use nbfleet_http::{Answer, Api, lambda};
use serde_json::Value;

fn pair(a: Answer) -> (u16, Value) {
    (a.status, a.body)
}

/// The principal `caller` (an ARN or a name) acts as, as the edge makes it: its unique id is
/// the one IAM would give (`identity::local_unique_id`), under the configured owner mode and
/// admins.
pub fn principal(deps: &Deps, caller: &str) -> Result<Principal> {
    let id = identity::local_unique_id(caller);
    identity::principal(caller, &id, deps.cfg.owner_mode, &deps.cfg.admins)
}

/// `POST /notebooks` with `body`, by `owner`.
pub async fn launch(deps: &Deps, owner: &str, body: &[u8]) -> Result<(u16, Value)> {
    let spec = parse_launch(body, &deps.cfg)?;
    Ok(pair(Answer::launched(
        launch::launch(deps, &principal(deps, owner)?, &spec).await?,
    )))
}

/// `GET /notebooks/{name}`.
pub async fn get(deps: &Deps, name: &str) -> Result<(u16, Value)> {
    Ok(pair(Answer::view(read::get(deps, name).await?)))
}

/// `GET /notebooks`.
pub async fn list(deps: &Deps) -> Result<(u16, Value)> {
    Ok(pair(Answer::views(read::list(deps).await?)))
}

/// `GET /orphans`.
pub async fn orphans(deps: &Deps, caller: &str) -> Result<(u16, Value)> {
    Ok(pair(Answer::orphans(
        read::orphans(deps, &principal(deps, caller)?).await?,
    )))
}

/// `POST /notebooks/{name}/start`.
pub async fn start(deps: &Deps, caller: &str, name: &str) -> Result<(u16, Value)> {
    Ok(pair(Answer::changed(
        lifecycle::start(deps, &principal(deps, caller)?, name).await?,
    )))
}

/// `POST /notebooks/{name}/stop`.
pub async fn stop(deps: &Deps, caller: &str, name: &str) -> Result<(u16, Value)> {
    Ok(pair(Answer::changed(
        lifecycle::stop(deps, &principal(deps, caller)?, name, true).await?,
    )))
}

/// `DELETE /notebooks/{name}` (`?snapshot=false` when `snapshot` is false).
pub async fn delete(deps: &Deps, caller: &str, name: &str, snapshot: bool) -> Result<(u16, Value)> {
    Ok(pair(Answer::changed(
        lifecycle::delete(deps, &principal(deps, caller)?, name, snapshot).await?,
    )))
}

/// `POST /notebooks/{name}/extend` with `body`.
pub async fn extend(deps: &Deps, caller: &str, name: &str, body: &[u8]) -> Result<(u16, Value)> {
    let minutes = parse_extend(body)?;
    Ok(pair(Answer::changed(
        lifecycle::extend(deps, &principal(deps, caller)?, name, minutes).await?,
    )))
}

/// `POST /notebooks/{name}/check`, waiting at most `wait` for the probe.
pub async fn check(deps: &Deps, caller: &str, name: &str, wait: std::time::Duration) -> Result<(u16, Value)> {
    let decision = nbfleet_app::check::check(deps, &principal(deps, caller)?, name, wait).await?;
    Ok(pair(Answer::ok(decision)))
}

/// `GET /types`.
pub fn types(deps: &Deps) -> (u16, Value) {
    pair(Answer::ok(read::offers(deps)))
}

/// `POST /notebooks/{name}/credential` with `body`.
pub async fn credential(deps: &Deps, caller: &str, name: &str, body: &[u8]) -> Result<(u16, Value)> {
    Ok(pair(Answer::credential(
        nbfleet_app::credential::change(deps, &principal(deps, caller)?, name, body).await?,
    )))
}

/// `PATCH /notebooks/{name}` with `body`.
pub async fn modify(deps: &Deps, caller: &str, name: &str, body: &[u8]) -> Result<(u16, Value)> {
    let changes = nbfleet_core::modify::parse(body, &deps.cfg)?;
    Ok(pair(Answer::changed(
        nbfleet_app::modify::modify(deps, &principal(deps, caller)?, name, &changes).await?,
    )))
}

/// `GET /costs` with `query`.
pub async fn costs(deps: &Deps, caller: &str, query: &str) -> Result<(u16, Value)> {
    let (since, by) = nbfleet_core::cost::parse_costs_query(Some(query), deps.clock.now())?;
    let report = nbfleet_app::costs::report(deps, &principal(deps, caller)?, since, by).await?;
    Ok(pair(Answer::ok(report)))
}

/// `GET /snapshots`.
pub async fn snapshots(deps: &Deps, caller: &str) -> Result<(u16, Value)> {
    let all = nbfleet_app::snapshots::list(deps, &principal(deps, caller)?).await?;
    Ok(pair(Answer::ok(all)))
}

/// `DELETE /snapshots/{id}`.
pub async fn delete_snapshot(deps: &Deps, caller: &str, id: &str) -> Result<(u16, Value)> {
    let s = nbfleet_app::snapshots::delete(deps, &principal(deps, caller)?, id).await?;
    Ok(pair(Answer::ok(serde_json::json!({ "deleted": s }))))
}

/// A slash command from `team`/`user` with `text`, as Slack signs it with `secret` at `ts`
/// (Unix seconds), answering on Slack's hooks host.
pub fn slack_request(secret: &str, ts: i64, team: &str, user: &str, text: &str) -> Signed {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("team_id", team)
        .append_pair("user_id", user)
        .append_pair("command", "/notebook")
        .append_pair("text", text)
        .append_pair("response_url", SLACK_RESPONSE_URL)
        .finish();
    signed(secret, ts, body)
}

/// Where [`slack_request`]s ask for their answer.
pub const SLACK_RESPONSE_URL: &str = "https://hooks.slack.com/commands/TLOCAL/1/abc";

/// The job a slow command becomes: the signed request itself.
/// A click on one of nbfleet's buttons (`action_id`, for `notebook`) by `user`, as Slack posts
/// a `block_actions` interaction (form-encoded `payload`), signed with `secret` at `ts`, on a
/// message with a section and the buttons.
pub fn slack_click(
    secret: &str,
    ts: i64,
    (team, user): (&str, &str),
    action_id: &str,
    notebook: &str,
    action_ts: &str,
) -> Signed {
    let payload = serde_json::json!({
        "type": "block_actions",
        "team": {"id": team, "domain": "example"},
        "user": {"id": user, "username": "ana", "team_id": team},
        "api_app_id": "A0123456789",
        "token": "verification-token-unused",
        "trigger_id": "1234.5678.abcdef",
        "response_url": SLACK_RESPONSE_URL,
        "container": {"type": "message", "message_ts": "1733480000.000100", "channel_id": "C0123", "is_ephemeral": false},
        "channel": {"id": "C0123", "name": "notebooks"},
        "message": {
            "type": "message",
            "text": format!("*{notebook}* stops at 16:40 UTC"),
            "ts": "1733480000.000100",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{notebook}* stops at 16:40 UTC")}},
                {"type": "actions", "block_id": format!("nbfleet_{notebook}"), "elements": [
                    {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": "Keep running 1 h"}, "value": notebook}
                ]}
            ]
        },
        "actions": [{
            "type": "button",
            "action_id": action_id,
            "block_id": format!("nbfleet_{notebook}"),
            "text": {"type": "plain_text", "text": "Keep running 1 h"},
            "value": notebook,
            "action_ts": action_ts,
        }],
    });
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    signed(secret, ts, body)
}

/// `body` as Slack signs it with `secret` at `ts`.
fn signed(secret: &str, ts: i64, body: String) -> Signed {
    Signed {
        timestamp: Some(ts.to_string()),
        signature: Some(nbfleet_core::slack::sign(
            secret.as_bytes(),
            &ts.to_string(),
            body.as_bytes(),
        )),
        body: body.into_bytes(),
    }
}

/// `POST /slack/interactions` once verified: `(status, body)` as the router answers.
pub async fn interaction(deps: &Deps, jobs: &dyn Jobs, secret: &[u8], req: &Signed) -> Result<(u16, Value)> {
    slack::interaction(deps, jobs, secret, req).await?;
    Ok((200, Value::Null))
}

pub fn slack_job(req: &Signed) -> slack::Job {
    slack::Job {
        timestamp: req.timestamp.clone().unwrap_or_default(),
        signature: req.signature.clone().unwrap_or_default(),
        body: String::from_utf8_lossy(&req.body).into_owned(),
    }
}

/// `POST /slack/commands` once verified: `(status, body)` as the router answers.
pub async fn slash(deps: &Deps, jobs: &dyn Jobs, secret: &[u8], req: &Signed) -> (u16, Value) {
    pair(Answer::slack_reply(slack::slash(deps, jobs, secret, req).await))
}

/// What the Lambda edge answers for `result` (an error through the one mapping).
pub fn respond(result: Result<(u16, Value)>) -> Response<Body> {
    lambda::response(Answer::from(result, |(status, body)| Answer::new(status, body)))
}

/// An API Lambda's answer to `req`, through the whole edge: caller, router, mapping.
pub async fn serve(deps: &Deps, req: Request) -> Response<Body> {
    lambda::serve(&Api::new(deps.clone()).serving_all(), req).await
}

/// An EventBridge event as the events Lambda takes it: parsed at the edge, then handled.
pub async fn event(deps: &Deps, event: &Value) -> Result<Outcome> {
    instance_events::handle(deps, &Event::parse(event)?).await
}
