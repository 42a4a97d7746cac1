//! The deadline pass of the sweep: steps in for records stuck in flight. What to do with an
//! overdue record is `nbfleet_core::reconcile::overdue_step`'s decision: a stuck delete is
//! driven again, a stuck stop asked again, anything else failed with its instance stopped, so a
//! failure never burns GPU money.

use crate::instance_events::finish_termination;
use jiff::Timestamp;
use nbfleet_core::Notebook;
use nbfleet_core::Result;
use nbfleet_core::ports::Deps;
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

/// Acts on every record of `live` past its deadline at `now`.
pub async fn enforce(deps: &Deps, live: &[Notebook], now: Timestamp) -> Deadlines {
    let mut pass = Deadlines::default();
    for nb in live {
        let since = now.duration_since(nb.state_since).as_mins();
        match enforce_one(deps, nb, now).await {
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
            Some(i) if !i.state.is_gone() => deps.compute.terminate(id).await?,
            _ => {
                finish_termination(deps, nb, now).await?;
            }
        },
        (OverdueStep::DriveTermination, None) => {
            finish_termination(deps, nb, now).await?;
        }
        (OverdueStep::StopAgain, id) => deps.compute.stop(id.unwrap_or_default()).await?,
        (OverdueStep::Fail(failed), id) => {
            if let Some(id) = id {
                deps.compute.stop(id).await?;
            }
            deps.store.put(&failed, nb.expect()).await?;
        }
    }
    Ok(true)
}
