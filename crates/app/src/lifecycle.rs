//! What a user does to an existing notebook: start, stop, delete, extend. Each is answered as
//! the request table says (`nbfleet_core::transitions`), and only its owner or a configured
//! admin may do it.
//!
//! The state is written first, with a conditional write, and EC2 is asked second: a lost race
//! is a conflict with no EC2 side effect. EC2's own events then carry the record on
//! ([`crate::instance_events`]).

use crate::instance_events::finish_termination;
use jiff::Timestamp;
use nbfleet_core::identity::Principal;
use nbfleet_core::idle::{self, snoozed};
use nbfleet_core::ports::{Deps, SnapshotRequest};
use nbfleet_core::record::Failure;
use nbfleet_core::transitions::{self, Effect, Op};
use nbfleet_core::validate::{extend_minutes, validate_name};
use nbfleet_core::{Error, Notebook, Result, State};

/// What an operation did: the record as it now stands, and the table's effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub notebook: Notebook,
    pub effect: Effect,
}

/// Reads `name` and checks that `caller` may act on it.
pub(crate) async fn owned(deps: &Deps, caller: &Principal, name: &str) -> Result<Notebook> {
    validate_name(name)?;
    let nb = deps.store.require(name).await?;
    if !nb.may_be_changed_by(caller) {
        return Err(Error::Forbidden(format!(
            "only its owner or an admin may act on notebook {name:?}"
        )));
    }
    Ok(nb)
}

/// What [`claim`] did: answered at once, or wrote the move.
enum Claimed {
    Answered(Box<Changed>),
    Moved(Box<Move>),
}

/// A move written: the record `before` and `after` it.
struct Move {
    before: Notebook,
    after: Notebook,
    effect: Effect,
}

/// How many times a move is read and written again after losing to an in-place update.
const CLAIM_TRIES: u32 = 3;

/// Reads `name`, checks `op` against its state and, if the table says move, writes the move
/// (`prepare` completes it, or refuses). A write that lost to a concurrent update of the same
/// record (the events use case recording its command, the sweep its verdict) is tried again on a fresh
/// read: nothing has touched EC2 yet. A lost race on the state itself ends as the table says.
async fn claim(
    deps: &Deps,
    caller: &Principal,
    name: &str,
    op: Op,
    now: Timestamp,
    prepare: impl Fn(&Notebook, &mut Notebook) -> Result<()>,
) -> Result<Claimed> {
    let mut tries = 1;
    loop {
        let nb = owned(deps, caller, name).await?;
        let effect = transitions::check(name, nb.state, op)?;
        let Effect::Move(to) = effect else {
            return Ok(Claimed::Answered(Box::new(Changed { notebook: nb, effect })));
        };
        let mut next = nb.moved_to(to, now)?;
        prepare(&nb, &mut next)?;
        match deps.store.put(&next, nb.expect()).await {
            Ok(()) => {
                return Ok(Claimed::Moved(Box::new(Move {
                    before: nb,
                    after: next,
                    effect,
                })));
            }
            Err(Error::Conflict(_)) if tries < CLAIM_TRIES => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Starts a stopped or failed notebook (EC2's running event then configures it again), as
/// another of the operator's types when EC2 has no capacity for its own.
pub async fn start(deps: &Deps, caller: &Principal, name: &str) -> Result<Changed> {
    let now = deps.clock.now();
    let nb = owned(deps, caller, name).await?;
    if matches!(transitions::decide(nb.state, Op::Start), Effect::Move(_)) {
        crate::costs::check_budget(deps, caller, &nb.owner_principal()).await?;
    }
    let claimed = claim(deps, caller, name, Op::Start, now, |nb, starting| {
        if nb.instance_id.is_none() {
            return Err(Error::Conflict(format!("{name:?} has no instance")));
        }
        starting.failure = None;
        Ok(())
    })
    .await?;
    let (nb, starting, effect) = match claimed {
        Claimed::Answered(a) => return Ok(*a),
        Claimed::Moved(m) => (m.before, m.after, m.effect),
    };
    let instance_id = nb.instance_id.clone().unwrap_or_default();
    let started = start_with_fallback(deps, &nb, &instance_id).await;
    if let Ok(Some(instance_type)) = &started {
        // Started as another type: the record says which (EC2's word is recorded again at Ready).
        let mut retyped = starting.touched(now);
        retyped.instance_type = instance_type.clone();
        deps.store.put(&retyped, starting.expect()).await?;
        let entry = serde_json::json!({
            "action": "start_fallback", "from": nb.instance_type, "to": instance_type,
            "reason": format!("EC2 had no capacity for {}", nb.instance_type),
        });
        if let Err(e) = deps.store.append_history(name, now, &entry).await {
            tracing::warn!(notebook = %name, error = %e, "the fallback is not in the history");
        }
        return Ok(Changed {
            notebook: retyped,
            effect,
        });
    }
    if let Err(err) = started {
        // Nothing started: put the record back where it was, with the reason, and say so.
        let mut back = starting.moved_to(nb.state, now)?;
        back.failure = Some(Failure {
            reason: format!("start failed: {err}"),
            exit_code: None,
            stderr_tail: None,
        });
        deps.store.put(&back, starting.expect()).await?;
        return Err(err);
    }
    Ok(Changed {
        notebook: starting,
        effect,
    })
}

/// Starts `nb`'s instance; when EC2 has no capacity for its type, tries the operator's other
/// types for its subnet (`Config::placements`, as a launch does), changing the stopped
/// instance's type before each try. Answers the type it started as when that is another one.
/// When none has room the instance is given its own type back and the capacity error answered.
async fn start_with_fallback(deps: &Deps, nb: &Notebook, instance_id: &str) -> Result<Option<String>> {
    let first = deps.compute.start(instance_id).await;
    let Err(Error::Capacity(_)) = first else {
        return first.map(|()| None);
    };
    let subnet = nb.subnet_id.as_deref().unwrap_or_default();
    let mut others: Vec<String> = Vec::new();
    for p in deps.cfg.placements(&nb.instance_type) {
        if (p.subnet_id.is_empty() || p.subnet_id == subnet)
            && p.instance_type != nb.instance_type
            && !others.contains(&p.instance_type)
        {
            others.push(p.instance_type);
        }
    }
    for other in &others {
        tracing::warn!(notebook = %nb.name, from = %nb.instance_type, to = %other, "no capacity; starting as another type");
        deps.compute.set_instance_type(instance_id, other).await?;
        match deps.compute.start(instance_id).await {
            Ok(()) => return Ok(Some(other.clone())),
            Err(Error::Capacity(_)) => continue,
            Err(e) => {
                deps.compute
                    .set_instance_type(instance_id, &nb.instance_type)
                    .await?;
                return Err(e);
            }
        }
    }
    if !others.is_empty() {
        deps.compute
            .set_instance_type(instance_id, &nb.instance_type)
            .await?;
    }
    let tried = std::iter::once(nb.instance_type.clone())
        .chain(others)
        .collect::<Vec<_>>();
    Err(Error::Capacity(format!(
        "EC2 has no capacity to start {:?} as any of: {}; try again later",
        nb.name,
        tried.join(", ")
    )))
}

/// Stops a notebook (EC2's stopped event then records Stopped), after its pre-stop hook
/// unless `use_hook` is false.
pub async fn stop(deps: &Deps, caller: &Principal, name: &str, use_hook: bool) -> Result<Changed> {
    let now = deps.clock.now();
    let claimed = claim(deps, caller, name, Op::Stop, now, |nb, stopping| {
        stopping.pending_command = None;
        let why = format!("stopped by hand by {}", caller.name);
        stopping.idle_status = Some(idle::stopped_by(nb.idle_status.as_ref(), why, now));
        Ok(())
    })
    .await?;
    let (nb, stopping, effect) = match claimed {
        Claimed::Answered(a) => return Ok(*a),
        Claimed::Moved(m) => (m.before, m.after, m.effect),
    };
    if nb.instance_id.is_none() {
        return Ok(Changed {
            notebook: stopping,
            effect,
        });
    }
    match crate::hooks::stop(deps, stopping.clone(), use_hook, None, now).await {
        Ok(notebook) => Ok(Changed { notebook, effect }),
        Err(err) => {
            // Nothing stopped: hand the record back, so that asking again stops it.
            deps.store
                .put(&nb.handed_back(&stopping, now), stopping.expect())
                .await?;
            Err(err)
        }
    }
}

/// Deletes a notebook: the record moves to Terminating, owing a snapshot of the root volume
/// (unless `snapshot` is false), then [`terminate`] takes it and terminates the instance; the
/// security group and the secret go once EC2 says the instance is terminated. The record stays,
/// as Terminated, with the snapshot id. A delete of a notebook whose snapshot is still owed
/// (the first try failed) tries again, or, with `snapshot` false, waives it.
pub async fn delete(deps: &Deps, caller: &Principal, name: &str, snapshot: bool) -> Result<Changed> {
    let now = deps.clock.now();
    let claimed = claim(deps, caller, name, Op::Delete, now, |nb, terminating| {
        terminating.pending_command = None;
        terminating.snapshot_owed = snapshot && nb.instance_id.is_some();
        Ok(())
    })
    .await?;
    let (terminating, effect) = match claimed {
        Claimed::Answered(a) if a.notebook.state == State::Terminating && a.notebook.snapshot_owed => {
            let held = a.notebook;
            if snapshot {
                (held, a.effect)
            } else {
                let mut waived = held.touched(now);
                waived.snapshot_owed = false;
                deps.store.put(&waived, held.expect()).await?;
                (waived, a.effect)
            }
        }
        Claimed::Answered(a) => return Ok(*a),
        Claimed::Moved(m) => (m.after, m.effect),
    };
    let notebook = terminate(deps, &terminating, now).await?;
    Ok(Changed { notebook, effect })
}

/// Drives a Terminating record: takes the snapshot it owes, if any, then terminates its
/// instance (a record without one is finished at once). The snapshot is a precondition of
/// termination: when it cannot be taken, the instance is kept with the record Terminating and
/// the snapshot still owed, and the error says so; a retried delete or the deadline pass tries
/// again. Returns the record as it now stands.
pub async fn terminate(deps: &Deps, nb: &Notebook, now: Timestamp) -> Result<Notebook> {
    let Some(instance_id) = nb.instance_id.clone() else {
        return finish_termination(deps, nb, now).await;
    };
    let nb = match nb.snapshot_owed {
        true => take_snapshot(deps, nb, &instance_id, now).await?,
        false => nb.clone(),
    };
    deps.compute.terminate(&instance_id).await?;
    tracing::info!(notebook = %nb.name, instance = %instance_id, snapshot = ?nb.snapshot_id, "terminating");
    Ok(nb)
}

/// Snapshots `nb`'s root volume, tagged as its, and records the snapshot id on the record (no
/// longer owed) and in the notebook's history, which outlives generations.
async fn take_snapshot(deps: &Deps, nb: &Notebook, instance_id: &str, now: Timestamp) -> Result<Notebook> {
    let volume = deps
        .compute
        .describe(instance_id)
        .await?
        .filter(|i| !i.state.is_gone())
        .and_then(|i| i.root_volume_id);
    let mut next = nb.touched(now);
    next.snapshot_owed = false;
    let Some(volume_id) = volume else {
        // Terminated already, outside nbfleet: the disk went with it; nothing is left to keep.
        tracing::warn!(notebook = %nb.name, instance = instance_id, "no disk left to snapshot");
        deps.store.put(&next, nb.expect()).await?;
        return Ok(next);
    };
    let req = SnapshotRequest {
        volume_id,
        notebook: nb.name.clone(),
        owner: nb.owner.clone(),
        owner_id: nb.owner_principal().id,
        generation: nb.generation,
        created: now,
    };
    let id = deps.compute.snapshot(&req).await.map_err(|e| {
        Error::Unavailable(format!(
            "the snapshot of {:?}'s disk could not be taken ({e}); nothing was deleted: \
             delete again to retry (the sweep retries too)",
            nb.name
        ))
    })?;
    next.snapshot_id = Some(id.clone());
    next.snapshot_taken_at = Some(now);
    deps.store.put(&next, nb.expect()).await?;
    let entry = serde_json::json!({"action": "snapshot", "snapshot_id": id, "generation": nb.generation});
    if let Err(e) = deps.store.append_history(&nb.name, now, &entry).await {
        tracing::warn!(notebook = %nb.name, snapshot = %id, error = %e, "snapshot not in the history");
    }
    Ok(next)
}

/// Snoozes a Ready notebook's automatic stop (idle, runtime cap, schedule) for `minutes`.
pub async fn extend(deps: &Deps, caller: &Principal, name: &str, minutes: u32) -> Result<Changed> {
    let minutes = extend_minutes(minutes.into())?;
    let now = deps.clock.now();
    let nb = owned(deps, caller, name).await?;
    let effect = transitions::check(name, nb.state, Op::Extend)?;
    let next = snoozed(&nb, minutes, now);
    deps.store.put(&next, nb.expect()).await?;
    tracing::info!(notebook = %name, minutes, "idle stop snoozed");
    Ok(Changed {
        notebook: next,
        effect,
    })
}
