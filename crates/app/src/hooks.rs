//! The owner's hooks (`hooks` at launch), run on the instance as the notebook user:
//!
//! - **pre-stop**, before every stop: automatic ones (idle, schedule, runtime cap) and a user's
//!   unless they skip it (`?hook=false`, `--no-hook`). Never waited for inside a Lambda: the
//!   stop writes Stopping, sends the hook, and records it as the pending command; the command's
//!   status-change event then stops the instance ([`pre_stop_ended`]), and if that event never
//!   comes, the deadline pass stops it anyway at the hook's time limit plus a margin. A hook
//!   that cannot be sent, fails or hangs never keeps a GPU running.
//! - **on-start**, after every Ready (first boot and every start): its result is recorded and
//!   shown; a failure is reported to the owner, and the notebook stays Ready.

use jiff::Timestamp;
use nbfleet_core::ports::{Deps, Invocation, Notice, Reach, tell};
use nbfleet_core::record::{HookRun, PendingCommand};
use nbfleet_core::scripts::{self, ScriptKind};
use nbfleet_core::{Notebook, Result, report};

/// Carries out the stop of `stopping`, a Stopping record just written: sends the pre-stop hook
/// when it has one and `use_hook` allows (EC2 is asked when it ends), else asks EC2 now.
/// `tell_owner`: the reason of an automatic stop, for the owner's `Stopped` notice. Returns the
/// record as it now stands.
pub async fn stop(
    deps: &Deps,
    stopping: Notebook,
    use_hook: bool,
    tell_owner: Option<String>,
    now: Timestamp,
) -> Result<Notebook> {
    let id = stopping.instance_id.clone().unwrap_or_default();
    let mut hook_note = String::new();
    if let Some(hook) = stopping.hooks.pre_stop.clone().filter(|_| use_hook) {
        let timeout = stopping.hooks.pre_stop_timeout_seconds;
        let sent = match scripts::hook(&stopping, ScriptKind::PreStop, &hook, timeout) {
            Ok(script) => deps.commands.send(&id, &script, Reach::Once).await,
            Err(e) => Err(e),
        };
        match sent {
            Ok(command_id) => {
                let mut next = stopping.touched(now);
                next.pending_command = Some(PendingCommand {
                    command_id: command_id.clone(),
                    kind: ScriptKind::PreStop,
                    tell: tell_owner,
                });
                next.pre_stop_hook = Some(HookRun::started(&command_id, now));
                deps.store.put(&next, stopping.expect()).await?;
                tracing::info!(notebook = %next.name, command = %command_id, "pre-stop hook sent; the stop follows it");
                return Ok(next);
            }
            // Never a GPU kept running for a hook: stop now, and say so.
            Err(e) => {
                tracing::warn!(notebook = %stopping.name, error = %e, "pre-stop hook not sent; stopping now");
                let run = HookRun::not_run(format!("not sent: {e}"), now);
                history(deps, &stopping.name, "pre_stop_hook", &run, now).await;
                hook_note = format!("\nIts pre-stop hook {}.", run.summary());
            }
        }
    }
    deps.compute.stop(&id).await?;
    if let Some(reason) = tell_owner {
        let (name, reason) = (stopping.name.clone(), format!("{reason}{hook_note}"));
        tell(deps, Notice::Stopped { name, reason }).await;
    }
    Ok(stopping)
}

/// The pre-stop hook of a Stopping record ended (`inv`): keeps its result, stops the instance,
/// and tells the owner of an automatic stop, with the hook's outcome.
pub async fn pre_stop_ended(
    deps: &Deps,
    nb: &Notebook,
    pending: &PendingCommand,
    inv: &Invocation,
    now: Timestamp,
) -> Result<Notebook> {
    let run = ended(nb.pre_stop_hook.as_ref(), inv, now);
    finish_stop(deps, nb, run, pending.tell.clone(), now).await
}

/// The pre-stop hook of a Stopping record did not report by its deadline: stops the instance
/// anyway.
pub async fn pre_stop_overdue(deps: &Deps, nb: &Notebook, now: Timestamp) -> Result<Notebook> {
    let seconds = nb.hooks.pre_stop_timeout_seconds;
    let why = format!("no result {seconds} s after its start");
    let run = match &nb.pre_stop_hook {
        Some(started) => started.ended(Err(why), now),
        None => HookRun::not_run(why, now),
    };
    let tell_owner = nb.pending_command.as_ref().and_then(|p| p.tell.clone());
    finish_stop(deps, nb, run, tell_owner, now).await
}

async fn finish_stop(
    deps: &Deps,
    nb: &Notebook,
    run: HookRun,
    tell_owner: Option<String>,
    now: Timestamp,
) -> Result<Notebook> {
    history(deps, &nb.name, "pre_stop_hook", &run, now).await;
    if let Some(id) = &nb.instance_id {
        deps.compute.stop(id).await?;
    }
    let mut next = nb.touched(now);
    next.pending_command = None;
    next.pre_stop_hook = Some(run.clone());
    deps.store.put(&next, nb.expect()).await?;
    tracing::info!(notebook = %nb.name, hook = %run.summary(), "pre-stop hook over; stopping");
    if let Some(reason) = tell_owner {
        let reason = format!("{reason}\nIts pre-stop hook {}.", run.summary());
        let name = nb.name.clone();
        tell(deps, Notice::Stopped { name, reason }).await;
    }
    Ok(next)
}

/// Sends the on-start hook to `ready`, a Ready record just written, if it has one, and records
/// it. A send that fails is recorded as failed and reported; the notebook stays Ready.
pub async fn on_start(deps: &Deps, ready: &Notebook, now: Timestamp) -> Result<()> {
    let Some(hook) = ready.hooks.on_start.clone() else {
        return Ok(());
    };
    let id = ready.instance_id.clone().unwrap_or_default();
    let timeout = nbfleet_core::record::ON_START_TIMEOUT_SECONDS;
    let sent = match scripts::hook(ready, ScriptKind::OnStart, &hook, timeout) {
        Ok(script) => deps.commands.send(&id, &script, Reach::Once).await,
        Err(e) => Err(e),
    };
    let run = match &sent {
        Ok(command_id) => HookRun::started(command_id, now),
        Err(e) => HookRun::not_run(format!("not sent: {e}"), now),
    };
    let mut next = ready.touched(now);
    next.on_start_hook = Some(run.clone());
    deps.store.put(&next, ready.expect()).await?;
    if let Err(e) = sent {
        history(deps, &ready.name, "on_start_hook", &run, now).await;
        let (name, detail) = (ready.name.clone(), format!("could not be sent: {e}"));
        tell(deps, Notice::OnStartHookFailed { name, detail }).await;
    }
    Ok(())
}

/// The on-start hook of `nb` ended (`inv`): keeps its result; a failure is reported.
pub async fn on_start_ended(
    deps: &Deps,
    nb: &Notebook,
    inv: &Invocation,
    now: Timestamp,
) -> Result<Notebook> {
    let run = ended(nb.on_start_hook.as_ref(), inv, now);
    let mut next = nb.touched(now);
    next.on_start_hook = Some(run.clone());
    deps.store.put(&next, nb.expect()).await?;
    history(deps, &nb.name, "on_start_hook", &run, now).await;
    if run.status != nbfleet_core::record::HookStatus::Succeeded {
        let (name, detail) = (nb.name.clone(), run.summary());
        tell(deps, Notice::OnStartHookFailed { name, detail }).await;
    }
    Ok(next)
}

/// `started` (or a run of `inv`'s command) as `inv` ended it.
fn ended(started: Option<&HookRun>, inv: &Invocation, now: Timestamp) -> HookRun {
    let report = match inv.status {
        nbfleet_core::ports::CommandStatus::Success => {
            report::parse_hook(&inv.stdout).map_err(|_| "the hook runner printed no report".to_string())
        }
        status => Err(format!(
            "the hook runner ended {status:?}: {}",
            nbfleet_core::text::plain(inv.stderr.trim_end().lines().last().unwrap_or("no output"))
        )),
    };
    started
        .cloned()
        .unwrap_or_else(|| HookRun::started(&inv.command_id, now))
        .ended(report, now)
}

/// A history entry for a hook's run.
async fn history(deps: &Deps, name: &str, action: &str, run: &HookRun, now: Timestamp) {
    let entry = serde_json::json!({
        "action": action, "status": run.status, "exit_code": run.exit_code,
        "reason": run.summary(), "tail": run.tail,
    });
    if let Err(e) = deps.store.append_history(name, now, &entry).await {
        tracing::warn!(notebook = %name, error = %e, "the hook's run is not in the history");
    }
}
