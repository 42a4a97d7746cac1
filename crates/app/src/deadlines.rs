//! The deadline pass of the sweep: steps in for records stuck in flight. What to do with an
//! overdue record is `nbfleet_core::reconcile::overdue_step`'s decision: a stuck delete is
//! driven again, a stuck stop asked again, anything else failed with its instance stopped, so a
//! failure never burns GPU money.
//!
//! A delete is driven again, but never terminates while the snapshot it promised is missing:
//! the snapshot is tried again, and the owner told the delete is held.
//!
//! Failing is claimed first (the Failed record is written, conditionally), then the instance is
//! stopped: a concurrent request loses the race instead of the stop, and a stop that fails
//! leaves a Failed record whose instance runs, which reconcile stops next round. A record that
//! never learned its instance id (a launch that died after RunInstances) has its instance found
//! by its (name, generation) tags.

use crate::budget::Budget;
use crate::instance_events::finish_termination;
use crate::lifecycle::terminate;
use jiff::Timestamp;
use nbfleet_core::Notebook;
use nbfleet_core::Result;
use nbfleet_core::ports::{Deps, Notice, tell};
use nbfleet_core::reconcile::{OverdueStep, overdue_step};

/// What a deadline pass did, one line per record.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Deadlines {
    /// Records acted on: `name: <state> for <minutes> min`.
    pub done: Vec<String>,
    /// Records that could not be acted on this round, and why: `name: <error>`. One record
    /// never stops the pass; the next round tries again.
    pub failed: Vec<String>,
}

/// Acts on every record of `live` past its deadline at `now`, one at a time within `budget`.
pub async fn enforce(deps: &Deps, live: &[Notebook], now: Timestamp, budget: Budget) -> Deadlines {
    let mut pass = Deadlines::default();
    for nb in live {
        let since = now.duration_since(nb.state_since).as_mins();
        match budget.run(enforce_one(deps, nb, now)).await {
            Ok(false) => {}
            Ok(true) => {
                tracing::warn!(notebook = %nb.name, state = %nb.state, minutes = since, "past its deadline");
                pass.done
                    .push(format!("{}: {} for {since} min", nb.name, nb.state));
            }
            Err(e) => {
                tracing::warn!(notebook = %nb.name, state = %nb.state, error = %e, "past its deadline, and could not be acted on");
                pass.failed.push(format!("{}: {e}", nb.name));
            }
        }
    }
    pass
}

/// Acts on `nb` if it is past its deadline; whether it was.
async fn enforce_one(deps: &Deps, nb: &Notebook, now: Timestamp) -> Result<bool> {
    let Some(step) = overdue_step(nb, now)? else {
        return Ok(false);
    };
    match (step, nb.instance_id.as_deref()) {
        (OverdueStep::DriveTermination, Some(id)) => match deps.compute.describe(id).await? {
            Some(i) if !i.state.is_gone() => {
                if let Err(e) = terminate(deps, nb, now).await {
                    if nb.snapshot_owed {
                        raise_held_delete(deps, nb, &e, now).await;
                    }
                    return Err(e);
                }
            }
            _ => {
                finish_termination(deps, nb, now).await?;
            }
        },
        (OverdueStep::DriveTermination, None) => {
            finish_termination(deps, nb, now).await?;
        }
        (OverdueStep::StopAgain, id) => deps.compute.stop(id.unwrap_or_default()).await?,
        (OverdueStep::StopWithoutHook, _) => {
            crate::hooks::pre_stop_overdue(deps, nb, now).await?;
        }
        (OverdueStep::Fail(mut failed), id) => {
            let ids: Vec<String> = match id {
                Some(id) => vec![id.to_string()],
                None => deps
                    .compute
                    .find_instances(&nb.name, nb.generation)
                    .await?
                    .into_iter()
                    .filter(|i| !i.state.is_gone())
                    .map(|i| i.id)
                    .collect(),
            };
            // The record learns the instance it never wrote down, so reconcile watches it and
            // a delete terminates it.
            failed.instance_id = failed.instance_id.or_else(|| ids.first().cloned());
            deps.store.put(&failed, nb.expect()).await?;
            for id in &ids {
                deps.compute.stop(id).await?;
            }
        }
    }
    Ok(true)
}

/// Tells the owner, once a day, that a delete is held for its snapshot (the round's `failed`
/// reports it every round, for the operator's alarm).
async fn raise_held_delete(deps: &Deps, nb: &Notebook, e: &nbfleet_core::Error, now: Timestamp) {
    let key = format!("delete-held#{}#{}", nb.name, nb.generation);
    let until = now + jiff::SignedDuration::from_hours(24);
    if deps.store.first_time(&key, until).await.unwrap_or(true) {
        let (name, error) = (nb.name.clone(), e.to_string());
        tell(deps, Notice::DeleteHeld { name, error }).await;
    }
}
