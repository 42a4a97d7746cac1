//! "Would it stop now, and why?": the idle probe run on demand (`POST /notebooks/{name}/check`,
//! `nbfleet check`, `make smoke`), judged by the sweep's own policy against the record's
//! timeline. Nothing is written and nothing is stopped: the sweep's next round decides and acts.

use crate::lifecycle::owned;
use nbfleet_core::identity::Principal;
use nbfleet_core::idle::{self, Decision, Probe, Timeline};
use nbfleet_core::ports::Deps;
use nbfleet_core::{Error, Result, State, scripts};
use std::time::{Duration, Instant};

/// How long a check waits for the probe: under API Gateway's 30 s, with room for the calls.
pub const WAIT: Duration = Duration::from_secs(20);
/// How often the probe's command is asked whether it has ended.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// Probes `name` (its owner's or an admin's) and returns what the sweep would decide now.
pub async fn check(deps: &Deps, caller: &Principal, name: &str, wait: Duration) -> Result<Decision> {
    let nb = owned(deps, caller, name).await?;
    let id = match (nb.state, &nb.instance_id) {
        (State::Ready, Some(id)) => id.clone(),
        (state, _) => {
            return Err(Error::Conflict(format!(
                "notebook {name:?} is {state}: only a Ready notebook can be probed"
            )));
        }
    };
    let sent = deps.clock.now();
    let command = deps
        .commands
        .send_batch(std::slice::from_ref(&id), &scripts::probe()?)
        .await?;
    let since = sent - jiff::SignedDuration::from_mins(1);
    let until = Instant::now() + wait;
    while Instant::now() < until {
        match deps
            .commands
            .still_running(std::slice::from_ref(&command), since)
            .await
        {
            Ok(running) if !running.contains(&command) => break,
            _ => tokio::time::sleep(POLL_EVERY).await,
        }
    }
    let probe = match deps.commands.invocations(&command).await {
        Ok(all) => crate::sweep::probe_of(all.iter().find(|i| i.instance_id == id)),
        Err(e) => Probe::Unknown(format!("the probe's result could not be read: {e}")),
    };
    Ok(idle::decide(
        &nb.idle,
        &probe,
        &Timeline::of(&nb, deps.clock.now()),
    ))
}
