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

/// Acts on every record of `live` past its deadline at `now`; one line per record acted on.
pub async fn enforce(deps: &Deps, live: &[Notebook], now: Timestamp) -> Result<Vec<String>> {
    let mut done = Vec::new();
    for nb in live {
        let Some(step) = overdue_step(nb, now)? else {
            continue;
        };
        let instance = nb.instance_id.as_deref();
        match (step, instance) {
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
        let since = now.duration_since(nb.state_since).as_mins();
        tracing::warn!(notebook = %nb.name, state = %nb.state, minutes = since, "past its deadline");
        done.push(format!("{}: {} for {since} min", nb.name, nb.state));
    }
    Ok(done)
}
