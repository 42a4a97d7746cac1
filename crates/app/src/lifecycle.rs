//! What a user does to an existing notebook: start, stop, delete, extend. Each is answered as
//! the request table says (`nbfleet_core::transitions`), and only its owner or a configured
//! admin may do it.
//!
//! The state is written first, with a conditional write, and EC2 is asked second: a lost race
//! is a conflict with no EC2 side effect. EC2's own events then carry the record on
//! ([`crate::instance_events`]).

use crate::instance_events::finish_termination;
use jiff::Timestamp;
use nbfleet_core::idle::snoozed;
use nbfleet_core::ports::Deps;
use nbfleet_core::record::Failure;
use nbfleet_core::transitions::{self, Effect, Op};
use nbfleet_core::validate::{extend_minutes, validate_name};
use nbfleet_core::{Error, Notebook, Result};

/// What an operation did: the record as it now stands, and the table's effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub notebook: Notebook,
    pub effect: Effect,
}

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
    caller: &str,
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

/// Starts a stopped or failed notebook (EC2's running event then configures it again).
pub async fn start(deps: &Deps, caller: &str, name: &str) -> Result<Changed> {
    let now = deps.clock.now();
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
    if let Err(err) = deps.compute.start(&instance_id).await {
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

/// Stops a notebook (EC2's stopped event then records Stopped).
pub async fn stop(deps: &Deps, caller: &str, name: &str) -> Result<Changed> {
    let now = deps.clock.now();
    let claimed = claim(deps, caller, name, Op::Stop, now, |_, stopping| {
        stopping.pending_command = None;
        Ok(())
    })
    .await?;
    let (nb, stopping, effect) = match claimed {
        Claimed::Answered(a) => return Ok(*a),
        Claimed::Moved(m) => (m.before, m.after, m.effect),
    };
    if let Some(id) = &nb.instance_id
        && let Err(err) = deps.compute.stop(id).await
    {
        // Nothing stopped: hand the record back, so that asking again stops it.
        deps.store
            .put(&nb.handed_back(&stopping, now), stopping.expect())
            .await?;
        return Err(err);
    }
    Ok(Changed {
        notebook: stopping,
        effect,
    })
}

/// Deletes a notebook: snapshots the root volume (unless `snapshot` is false), terminates the
/// instance; the security group and the secret go once EC2 says the instance is terminated.
/// The record stays, as Terminated, with the snapshot id.
pub async fn delete(deps: &Deps, caller: &str, name: &str, snapshot: bool) -> Result<Changed> {
    let now = deps.clock.now();
    let claimed = claim(deps, caller, name, Op::Delete, now, |_, terminating| {
        terminating.pending_command = None;
        Ok(())
    })
    .await?;
    let (nb, mut terminating, effect) = match claimed {
        Claimed::Answered(a) => return Ok(*a),
        Claimed::Moved(m) => (m.before, m.after, m.effect),
    };

    let Some(instance_id) = nb.instance_id.clone() else {
        // Never launched: nothing to wait for.
        let done = finish_termination(deps, &terminating, now).await?;
        return Ok(Changed {
            notebook: done,
            effect,
        });
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
            let mut with_snapshot = terminating.touched(now);
            with_snapshot.snapshot_id = Some(id);
            deps.store.put(&with_snapshot, terminating.expect()).await?;
            terminating = with_snapshot;
        }
    }
    deps.compute.terminate(&instance_id).await?;
    tracing::info!(notebook = %name, instance = %instance_id, snapshot = ?terminating.snapshot_id, "terminating");
    Ok(Changed {
        notebook: terminating,
        effect,
    })
}

/// Snoozes a Ready notebook's automatic stop (idle, runtime cap, schedule) for `minutes`.
pub async fn extend(deps: &Deps, caller: &str, name: &str, minutes: u32) -> Result<Changed> {
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
