//! The lifecycle handler: `POST /notebooks/{name}/start`, `POST /notebooks/{name}/stop` and
//! `DELETE /notebooks/{name}`, each answered exactly as DESIGN.md §3's table says
//! (`nbfleet_core::transitions`). Only the owner or a configured admin may act.
//!
//! The state is written first, with a conditional write, and EC2 is asked second: a lost race
//! is a 409 with no EC2 side effect. EC2's own events then carry the record on (configure).

pub mod reconcile;

use lambda_http::{Body, Request, RequestExt, Response};
use nbfleet_core::ports::Deps;
use nbfleet_core::record::Failure;
use nbfleet_core::transitions::{self, Request as Action, Verdict};
use nbfleet_core::validate::validate_name;
use nbfleet_core::{Error, Notebook, Result};
use serde_json::{Value, json};

/// Reads `name` and checks that `caller` may act on it.
async fn owned(deps: &Deps, caller: &str, name: &str) -> Result<Notebook> {
    validate_name(name)?;
    let nb = deps.store.require(name).await?;
    if nb.owner != caller && !deps.cfg.admins.iter().any(|a| a == caller) {
        return Err(Error::Forbidden(format!(
            "only its owner or an admin may act on notebook {name:?}"
        )));
    }
    Ok(nb)
}

fn answer(verdict: Verdict, nb: &Notebook) -> (u16, Value) {
    (verdict.status(), json!({ "notebook": nb }))
}

/// What [`claim`] did: answered at once, or wrote the move.
enum Claimed {
    Answered((u16, Value)),
    Moved(Box<Move>),
}

/// A move written: the record `before` and `after` it.
struct Move {
    before: Notebook,
    after: Notebook,
    verdict: Verdict,
}

/// How many times a move is read and written again after losing to an in-place update.
const CLAIM_TRIES: u32 = 3;

/// Reads `name`, checks `action` against its state and, if the table says move, writes the move
/// (`prepare` completes it, or refuses). A write that lost to a concurrent update of the same
/// record (configure recording its command, the sweep its verdict) is tried again on a fresh
/// read: nothing has touched EC2 yet. A lost race on the state itself ends as the table says.
async fn claim(
    deps: &Deps,
    caller: &str,
    name: &str,
    action: Action,
    prepare: impl Fn(&Notebook, &mut Notebook) -> Result<()>,
) -> Result<Claimed> {
    let mut tries = 1;
    loop {
        let nb = owned(deps, caller, name).await?;
        let verdict = transitions::check(name, nb.state, action)?;
        let Verdict::Move(to) = verdict else {
            return Ok(Claimed::Answered(answer(verdict, &nb)));
        };
        let mut next = nb.moved_to(to, deps.clock.now())?;
        prepare(&nb, &mut next)?;
        match deps.store.put(&next, nb.expect()).await {
            Ok(()) => {
                return Ok(Claimed::Moved(Box::new(Move {
                    before: nb,
                    after: next,
                    verdict,
                })));
            }
            Err(Error::Conflict(_)) if tries < CLAIM_TRIES => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// `POST /notebooks/{name}/start`.
pub async fn start(deps: &Deps, caller: &str, name: &str) -> Result<(u16, Value)> {
    let claimed = claim(deps, caller, name, Action::Start, |nb, starting| {
        if nb.instance_id.is_none() {
            return Err(Error::Conflict(format!("{name:?} has no instance")));
        }
        starting.failure = None;
        Ok(())
    })
    .await?;
    let (nb, starting, verdict) = match claimed {
        Claimed::Answered(a) => return Ok(a),
        Claimed::Moved(m) => (m.before, m.after, m.verdict),
    };
    let instance_id = nb.instance_id.clone().unwrap_or_default();
    if let Err(err) = deps.compute.start(&instance_id).await {
        // Nothing started: put the record back where it was, with the reason, and say so.
        let mut back = starting.moved_to(nb.state, deps.clock.now())?;
        back.failure = Some(Failure {
            reason: format!("start failed: {err}"),
            exit_code: None,
            stderr_tail: None,
        });
        deps.store.put(&back, starting.expect()).await?;
        return Err(err);
    }
    Ok(answer(verdict, &starting))
}

/// `POST /notebooks/{name}/stop`.
pub async fn stop(deps: &Deps, caller: &str, name: &str) -> Result<(u16, Value)> {
    let claimed = claim(deps, caller, name, Action::Stop, |_, stopping| {
        stopping.pending_command = None;
        Ok(())
    })
    .await?;
    let (nb, stopping, verdict) = match claimed {
        Claimed::Answered(a) => return Ok(a),
        Claimed::Moved(m) => (m.before, m.after, m.verdict),
    };
    if let Some(id) = &nb.instance_id
        && let Err(err) = deps.compute.stop(id).await
    {
        // Nothing stopped: hand the record back, so that asking again stops it.
        deps.store
            .put(&nb.handed_back(&stopping, deps.clock.now()), stopping.expect())
            .await?;
        return Err(err);
    }
    Ok(answer(verdict, &stopping))
}

/// `DELETE /notebooks/{name}[?snapshot=false]`: snapshot the root volume (unless told not
/// to), terminate the instance; the security group and the secret go once EC2 says the
/// instance is terminated. The record stays, as Terminated, with the snapshot id.
pub async fn delete(deps: &Deps, caller: &str, name: &str, snapshot: bool) -> Result<(u16, Value)> {
    let claimed = claim(deps, caller, name, Action::Delete, |_, terminating| {
        terminating.pending_command = None;
        Ok(())
    })
    .await?;
    let (nb, mut terminating, verdict) = match claimed {
        Claimed::Answered(a) => return Ok(a),
        Claimed::Moved(m) => (m.before, m.after, m.verdict),
    };

    let Some(instance_id) = nb.instance_id.clone() else {
        // Never launched: nothing to wait for.
        let done = nbfleet_configure::finish_termination(deps, &terminating).await?;
        return Ok(answer(verdict, &done));
    };
    if snapshot {
        let root = deps
            .compute
            .describe(&instance_id)
            .await?
            .and_then(|i| i.root_volume_id);
        if let Some(volume) = root {
            let id = deps
                .compute
                .snapshot(&volume, &format!("nbfleet {name} (generation {})", nb.generation))
                .await?;
            let mut with_snapshot = terminating.touched(deps.clock.now());
            with_snapshot.snapshot_id = Some(id);
            deps.store.put(&with_snapshot, terminating.expect()).await?;
            terminating = with_snapshot;
        }
    }
    deps.compute.terminate(&instance_id).await?;
    tracing::info!(notebook = %name, instance = %instance_id, snapshot = ?terminating.snapshot_id, "terminating");
    Ok(answer(verdict, &terminating))
}

/// The longest one `extend` may snooze an automatic stop.
pub const MAX_EXTEND_MINUTES: u32 = 24 * 60;

/// `POST /notebooks/{name}/extend {"minutes": N}`: snoozes the idle (and runtime-cap) stop.
pub async fn extend(deps: &Deps, caller: &str, name: &str, body: &[u8]) -> Result<(u16, Value)> {
    let minutes = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("minutes").and_then(Value::as_u64))
        .filter(|m| (1..=u64::from(MAX_EXTEND_MINUTES)).contains(m))
        .ok_or_else(|| {
            Error::bad_request(
                "minutes",
                format!("must be a whole number of minutes from 1 to {MAX_EXTEND_MINUTES}"),
            )
        })?;
    let nb = owned(deps, caller, name).await?;
    let verdict = transitions::check(name, nb.state, Action::Extend)?;
    let now = deps.clock.now();
    let until = now + jiff::SignedDuration::from_mins(minutes as i64);
    let mut next = nb.touched(now);
    next.snoozed_until = Some(next.snoozed_until.map_or(until, |s| s.max(until)));
    if let Some(status) = &mut next.idle_status {
        status.warned_stop_at = None;
        status.planned_stop = next.snoozed_until;
        status.reason = format!("extended by {minutes} minutes");
    }
    deps.store.put(&next, nb.expect()).await?;
    tracing::info!(notebook = %name, minutes, "idle stop snoozed");
    Ok(answer(verdict, &next))
}

/// The Lambda's answer to an HTTP API request.
pub async fn handle_http(deps: &Deps, req: Request) -> Response<Body> {
    let caller = match nbfleet_http::iam_principal(&req) {
        Ok(c) => c,
        Err(e) => return nbfleet_http::error(&e),
    };
    let name = req
        .path_parameters_ref()
        .and_then(|p| p.first("name"))
        .unwrap_or_default()
        .to_string();
    let snapshot = req
        .query_string_parameters_ref()
        .and_then(|q| q.first("snapshot"))
        != Some("false");
    let result = match (req.method().as_str(), req.uri().path().rsplit('/').next()) {
        ("POST", Some("start")) => start(deps, &caller, &name).await,
        ("POST", Some("stop")) => stop(deps, &caller, &name).await,
        ("POST", Some("extend")) => extend(deps, &caller, &name, nbfleet_http::body_bytes(&req)).await,
        ("DELETE", _) => delete(deps, &caller, &name, snapshot).await,
        (m, _) => Err(Error::NotFound(format!("no route for {m} {}", req.uri().path()))),
    };
    nbfleet_http::respond(result)
}
