//! What EC2 and SSM tell nbfleet about its instances. Two events:
//!
//! - **EC2 instance state-change.** What the state means for the record is
//!   `nbfleet_core::reconcile::on_ec2_state`'s decision (reconcile feeds the same function):
//!   `running` for one of our instances sends the bootstrap (first boot) or the health check
//!   (after a restart) over SSM Run Command and returns; the record moves to Configuring and
//!   remembers the command. `stopped` and `terminated` bring the record in line with EC2.
//! - **SSM command invocation status-change.** When the command the record waits on finishes,
//!   its output decides: success moves the record to Ready with how to connect, the
//!   certificate fingerprint, the GPU and the Jupyter version; failure stops the instance
//!   and moves the record to Failed with the exit code and the stderr tail. When it is the
//!   health check of a credential change ([`crate::credential`]), the change is settled,
//!   applied or failed, and the notebook stays as it is.
//!
//! Events for instances that are not ours are ignored. Every move is a conditional write, so
//! a duplicate event finds the record already moved and changes nothing.

use jiff::Timestamp;
use nbfleet_core::events::Event;
use nbfleet_core::ports::{CommandStatus, Deps, InstanceState, Invocation, Notice, Reach, tell};
use nbfleet_core::reconcile::{Ec2Step, on_ec2_state, stopped_from_outside, terminated};
use nbfleet_core::record::{
    CredentialChange, CredentialStatus, Failure, HookStatus, PendingCommand, connect_for,
};
use nbfleet_core::scripts::{self, ScriptKind};
use nbfleet_core::{Notebook, Result, State, report};

/// The pauses, in milliseconds, after which an early "running" event looks again for its
/// record: doubling from 10 ms, so that a write a moment behind is seen within a few ms of
/// landing, and one second in all before the event fails for Lambda's retry.
const EARLY_EVENT_PAUSES_MS: [u64; 7] = [10, 20, 40, 80, 160, 320, 370];

/// What an event did, for the log and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not about one of our notebooks.
    Ignored(String),
    /// About one of ours, but nothing to do (a duplicate, or a state already reached).
    NoOp(String),
    /// Sent a script and moved the record to Configuring.
    Sent {
        notebook: String,
        command_id: String,
        kind: ScriptKind,
    },
    /// Moved the record.
    Moved { notebook: String, to: State },
    /// Kept the result of a hook (and, for the pre-stop hook, stopped the instance).
    Hook { notebook: String, hook: ScriptKind },
    /// Settled a credential change.
    Credential {
        notebook: String,
        status: CredentialStatus,
    },
}

/// Handles one event (parsed from EventBridge's JSON by `Event::parse` at the edge).
pub async fn handle(deps: &Deps, event: &Event) -> Result<Outcome> {
    let now = deps.clock.now();
    let outcome = match event {
        Event::InstanceState {
            instance_id,
            state,
            at,
        } => on_instance_state(deps, instance_id, *state, Source::Event { at: *at }, now).await?,
        Event::CommandInvocation {
            command_id,
            instance_id,
            status,
        } => on_command(deps, command_id, instance_id, *status, now).await?,
    };
    tracing::info!(?outcome, "event handled");
    Ok(outcome)
}

/// Who says what state an instance is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// EC2's state-change event, with when EC2 saw it. Events come late, twice and out of
    /// order, so a "running" for a Stopping or Stopped record is confirmed with
    /// DescribeInstances before anything is sent; the send waits for the agent to register.
    Event { at: Option<Timestamp> },
    /// The sweep's reconcile, from this round's DescribeInstances. The sweep never waits for
    /// an agent: the send is tried once, and a record it cannot reach is left to its deadline.
    Reconcile,
}

impl Source {
    fn at(self) -> Option<Timestamp> {
        match self {
            Source::Event { at } => at,
            Source::Reconcile => None,
        }
    }

    fn reach(self) -> Reach {
        match self {
            Source::Event { .. } => Reach::WaitForAgent,
            Source::Reconcile => Reach::Once,
        }
    }
}

/// What an EC2 state change means for the record of `instance_id` (also fed by reconcile).
pub async fn on_instance_state(
    deps: &Deps,
    instance_id: &str,
    state: InstanceState,
    source: Source,
    now: Timestamp,
) -> Result<Outcome> {
    let mut found = deps.store.by_instance(instance_id).await?;
    if found.is_none()
        && state == InstanceState::Running
        && deps
            .compute
            .describe(instance_id)
            .await?
            .is_some_and(|i| i.notebook.is_some())
    {
        // EC2 can say "running" before the launch has written the instance id to the record.
        // Our tag tells: the event is early, not foreign. The write is a moment behind, so wait
        // for it here; past that, fail for a retry (Lambda's comes a minute later).
        for pause in EARLY_EVENT_PAUSES_MS {
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            found = deps.store.by_instance(instance_id).await?;
            if found.is_some() {
                break;
            }
        }
        if found.is_none() {
            return Err(nbfleet_core::Error::Unavailable(format!(
                "{instance_id} is tagged for nbfleet but its record does not name it yet; retry"
            )));
        }
    }
    let Some(nb) = found else {
        return Ok(Outcome::Ignored(format!(
            "{instance_id} is not an nbfleet instance"
        )));
    };
    match on_ec2_state(&nb, state, source.at(), now)? {
        Ec2Step::Configure
            if matches!(source, Source::Event { .. })
                && matches!(nb.state, State::Stopping | State::Stopped) =>
        {
            // Never a health check to a stopping instance: EC2 must say running now.
            match deps.compute.describe(instance_id).await?.map(|i| i.state) {
                Some(InstanceState::Running) => configure(deps, nb, source.reach(), now).await,
                now_state => Ok(Outcome::NoOp(format!(
                    "{} is {}; EC2 said running, but the instance is {now_state:?} now",
                    nb.name, nb.state
                ))),
            }
        }
        Ec2Step::Configure => configure(deps, nb, source.reach(), now).await,
        Ec2Step::Write(next) => save(deps, &nb, *next).await,
        Ec2Step::FinishTermination => {
            let done = finish_termination(deps, &nb, now).await?;
            Ok(Outcome::Moved {
                notebook: done.name,
                to: done.state,
            })
        }
        Ec2Step::Nothing(why) => Ok(Outcome::NoOp(why)),
    }
}

/// Sends the bootstrap (never configured before) or the health check, then records the
/// command. The record is claimed (moved to Configuring by a conditional write) before the
/// send, so when the EC2 event and reconcile both see `running`, only one of them sends.
async fn configure(deps: &Deps, nb: Notebook, reach: Reach, now: Timestamp) -> Result<Outcome> {
    let instance_id = nb.instance_id.clone().unwrap_or_default();
    let script = if nb.cert_fingerprint.is_some() {
        scripts::health_check(&nb, &deps.cfg, &deps.cfg.region)?
    } else {
        scripts::bootstrap(&nb, &deps.cfg, &deps.cfg.region)?
    };
    let mut claimed = nb.moved_to(State::Configuring, now)?;
    claimed.started_running(now);
    claimed.pending_command = None;
    claimed.failure = None;
    deps.store.put(&claimed, nb.expect()).await?;
    let command_id = match deps.commands.send(&instance_id, &script, reach).await {
        Ok(id) => id,
        Err(e) => {
            // Hand the claim back, so the retried event sends again.
            let back = nb.handed_back(&claimed, now);
            if let Err(undo) = deps.store.put(&back, claimed.expect()).await {
                tracing::warn!(notebook = %nb.name, error = %undo, "could not hand back the claim; the deadline will");
            }
            return Err(e);
        }
    };
    let mut sent = claimed.touched(now);
    sent.pending_command = Some(PendingCommand {
        command_id: command_id.clone(),
        kind: script.kind,
        tell: None,
    });
    deps.store.put(&sent, claimed.expect()).await?;
    tracing::info!(notebook = %nb.name, instance = %instance_id, command = %command_id, kind = ?script.kind, "configuring");
    Ok(Outcome::Sent {
        notebook: nb.name,
        command_id,
        kind: script.kind,
    })
}

async fn on_command(
    deps: &Deps,
    command_id: &str,
    instance_id: &str,
    status: CommandStatus,
    now: Timestamp,
) -> Result<Outcome> {
    let Some(nb) = deps.store.by_instance(instance_id).await? else {
        return Ok(Outcome::Ignored(format!(
            "{instance_id} is not an nbfleet instance"
        )));
    };
    if let Some(pending) = nb.pending_command.clone().filter(|p| {
        p.command_id == command_id && p.kind == ScriptKind::PreStop && nb.state == State::Stopping
    }) {
        if !status.is_final() {
            return Ok(Outcome::NoOp(format!("{}: pre-stop hook is {status:?}", nb.name)));
        }
        let inv = deps.commands.invocation(command_id, instance_id).await?;
        let next = crate::hooks::pre_stop_ended(deps, &nb, &pending, &inv, now).await?;
        return Ok(Outcome::Hook {
            notebook: next.name,
            hook: ScriptKind::PreStop,
        });
    }
    if nb
        .on_start_hook
        .as_ref()
        .is_some_and(|h| h.status == HookStatus::Running && h.command_id.as_deref() == Some(command_id))
    {
        if !status.is_final() {
            return Ok(Outcome::NoOp(format!("{}: on-start hook is {status:?}", nb.name)));
        }
        let inv = deps.commands.invocation(command_id, instance_id).await?;
        let next = crate::hooks::on_start_ended(deps, &nb, &inv, now).await?;
        return Ok(Outcome::Hook {
            notebook: next.name,
            hook: ScriptKind::OnStart,
        });
    }
    if let Some(change) = nb
        .credential_change
        .as_ref()
        .filter(|c| c.status == CredentialStatus::Applying && c.command_id.as_deref() == Some(command_id))
    {
        return credential_settled(deps, &nb, change, command_id, instance_id, status, now).await;
    }
    if nb.state == State::Configuring && nb.pending_command.is_none() {
        // Claimed and sent, but the command id is not written yet: come back.
        return Err(nbfleet_core::Error::Unavailable(format!(
            "{} has not recorded its command yet; retry",
            nb.name
        )));
    }
    let Some(pending) = nb.pending_command.clone().filter(|p| p.command_id == command_id) else {
        return Ok(Outcome::NoOp(format!(
            "{} is not waiting on command {command_id}",
            nb.name
        )));
    };
    if nb.state != State::Configuring || !status.is_final() {
        return Ok(Outcome::NoOp(format!(
            "{}: command {command_id} is {status:?}",
            nb.name
        )));
    }
    let inv = deps.commands.invocation(command_id, instance_id).await?;
    if inv.status == CommandStatus::Success && inv.exit_code.unwrap_or(0) == 0 {
        match ready(deps, &nb, pending.kind, &inv, now).await {
            Ok(next) => {
                let notice = Notice::Ready {
                    name: next.name.clone(),
                    connect: next.connect.clone(),
                    fingerprint: next.cert_fingerprint.clone(),
                };
                let outcome = save(deps, &nb, next.clone()).await?;
                tell(deps, notice).await;
                if let Err(e) = crate::hooks::on_start(deps, &next, now).await {
                    tracing::warn!(notebook = %next.name, error = %e, "the on-start hook could not be recorded");
                }
                Ok(outcome)
            }
            Err(reason) => fail(deps, &nb, reason, &inv, now).await,
        }
    } else {
        let what = match pending.kind {
            ScriptKind::Bootstrap => "the bootstrap",
            ScriptKind::Health => "the health check",
            ScriptKind::Probe => "the probe",
            ScriptKind::PreStop | ScriptKind::OnStart => "a hook",
        };
        let reason = match inv.status {
            CommandStatus::TimedOut => format!("{what} timed out"),
            CommandStatus::Cancelled => format!("{what} was cancelled"),
            _ => format!("{what} failed"),
        };
        fail(deps, &nb, reason, &inv, now).await
    }
}

/// Settles a credential change by its health check's result: applied, or failed with the
/// reason (the owner is told; the next start takes the new credential).
async fn credential_settled(
    deps: &Deps,
    nb: &Notebook,
    change: &CredentialChange,
    command_id: &str,
    instance_id: &str,
    status: CommandStatus,
    now: Timestamp,
) -> Result<Outcome> {
    if !status.is_final() {
        return Ok(Outcome::NoOp(format!(
            "{}: credential command {command_id} is {status:?}",
            nb.name
        )));
    }
    let inv = deps.commands.invocation(command_id, instance_id).await?;
    let result = match (inv.status, inv.exit_code.unwrap_or(0)) {
        (CommandStatus::Success, 0) => match report::parse_health(&inv.stdout) {
            Ok(r) if nb.cert_fingerprint.as_deref() == Some(r.fingerprint.as_str()) => Ok(()),
            Ok(_) => Err("Jupyter serves a different certificate than the one recorded".to_string()),
            Err(_) => Err("the health check printed no readable report".to_string()),
        },
        (CommandStatus::TimedOut, _) => Err("the health check timed out".to_string()),
        _ => {
            let stderr = nbfleet_core::text::plain(&inv.stderr);
            let last = stderr
                .trim_end()
                .lines()
                .last()
                .unwrap_or("no output")
                .to_string();
            Err(format!("the health check failed: {}", tail(&last, 1, 300)))
        }
    };
    let mut next = nb.touched(now);
    next.credential_change = Some(change.settled(result.clone(), now));
    deps.store.put(&next, nb.expect()).await?;
    crate::credential::history(deps, &next, now).await;
    if let Err(error) = result {
        tracing::warn!(notebook = %nb.name, %error, "credential not applied");
        let name = nb.name.clone();
        tell(deps, Notice::CredentialNotApplied { name, error }).await;
    }
    Ok(Outcome::Credential {
        notebook: next.name,
        status: next
            .credential_change
            .map_or(CredentialStatus::Failed, |c| c.status),
    })
}

/// The Ready record from a successful run's report, or why the report is not good enough.
async fn ready(
    deps: &Deps,
    nb: &Notebook,
    kind: ScriptKind,
    inv: &Invocation,
    now: Timestamp,
) -> std::result::Result<Notebook, String> {
    let mut next = nb.moved_to(State::Ready, now).map_err(|e| e.to_string())?;
    let port = match kind {
        ScriptKind::Bootstrap => {
            let r = report::parse_bootstrap(&inv.stdout)
                .map_err(|_| "the bootstrap printed no readable report")?;
            next.cert_fingerprint = Some(r.fingerprint);
            next.gpu = Some(r.gpu);
            next.jupyter_version = Some(format!(
                "jupyter_server {}, jupyterlab {}",
                r.jupyter_server, r.jupyterlab
            ));
            r.port
        }
        ScriptKind::Probe | ScriptKind::PreStop | ScriptKind::OnStart => {
            return Err("only the bootstrap or the health check configures a notebook".into());
        }
        ScriptKind::Health => {
            let r = report::parse_health(&inv.stdout)
                .map_err(|_| "the health check printed no readable report")?;
            if nb.cert_fingerprint.as_deref() != Some(r.fingerprint.as_str()) {
                return Err("Jupyter now serves a different certificate than the one recorded".into());
            }
            r.port
        }
    };
    let instance_id = nb.instance_id.as_deref().unwrap_or_default();
    let address = match deps.compute.describe(instance_id).await {
        Ok(Some(i)) => {
            // EC2's word on the type (a change whose record write was lost, a fallback start).
            if !i.instance_type.is_empty() {
                next.instance_type = i.instance_type;
            }
            i.public_dns.or(i.public_ip).or(i.private_ip)
        }
        _ => None,
    };
    next.connect = Some(connect_for(
        nb.access.mode,
        instance_id,
        address.as_deref(),
        port,
        &deps.cfg.region,
        &deps.cfg.tunnel_document,
    ));
    next.pending_command = None;
    next.failure = None;
    // Both scripts fetch the secret and check that Jupyter serves with it: a change stored
    // while the notebook was down, or whose command failed, is now taken.
    if let Some(change) = &nb.credential_change
        && change.status != CredentialStatus::Applied
    {
        next.credential_change = Some(change.settled(Ok(()), now));
    }
    Ok(next)
}

/// Stops the instance, then records Failed: Failed always means nothing runs.
async fn fail(
    deps: &Deps,
    nb: &Notebook,
    reason: String,
    inv: &Invocation,
    now: Timestamp,
) -> Result<Outcome> {
    if let Some(id) = &nb.instance_id
        && let Err(e) = deps.compute.stop(id).await
    {
        // Terminated out of band while it was being configured: it ends Terminated.
        if !deps.compute.describe(id).await?.is_none_or(|i| i.state.is_gone()) {
            return Err(e);
        }
        tracing::warn!(notebook = %nb.name, instance = %id, "instance gone during configure");
        let done = finish_termination(deps, nb, now).await?;
        return Ok(Outcome::Moved {
            notebook: done.name,
            to: done.state,
        });
    }
    let mut next = nb.moved_to(State::Failed, now)?;
    next.stopped_running(now);
    next.pending_command = None;
    next.failure = Some(Failure {
        reason,
        exit_code: inv.exit_code,
        stderr_tail: Some(tail(&nbfleet_core::text::plain(&inv.stderr), 20, 2000)),
    });
    tracing::warn!(notebook = %nb.name, exit_code = ?inv.exit_code, "configuration failed; instance stopped");
    let error = match &next.failure {
        Some(Failure {
            reason,
            stderr_tail: Some(t),
            ..
        }) if !t.is_empty() => {
            format!("{reason}: {}", t.lines().last().unwrap_or_default())
        }
        _ => next
            .failure
            .as_ref()
            .map(|f| f.reason.clone())
            .unwrap_or_default(),
    };
    let name = nb.name.clone();
    let outcome = save(deps, nb, next).await?;
    tell(deps, Notice::Failed { name, error }).await;
    Ok(outcome)
}

/// Once the instance is gone: removes the notebook's security group and secret, and records
/// Terminated. Works from any state, so a termination out of band ends the same way.
pub async fn finish_termination(deps: &Deps, nb: &Notebook, now: Timestamp) -> Result<Notebook> {
    if let Some(sg) = &nb.security_group_id {
        // EC2 may still hold the group for a moment after termination; a leftover group is
        // harmless (no instance uses it) and is logged for the operator.
        if let Err(e) = deps.compute.delete_security_group(sg).await {
            tracing::warn!(notebook = %nb.name, group = %sg, error = %e, "security group left behind");
        }
    }
    deps.secrets.delete(&deps.cfg.secret_parameter(&nb.name)).await?;
    let next = terminated(nb, now)?;
    deps.store.put(&next, nb.expect()).await?;
    tracing::info!(notebook = %nb.name, "terminated");
    Ok(next)
}

/// Writes EC2's word on `prev`; a Ready notebook stopped without nbfleet asking (the console,
/// the OS, the on-instance fallback) is news to its owner, told once it is Stopped: the write
/// is conditional, so a duplicate event finds it moved already.
async fn save(deps: &Deps, prev: &Notebook, next: Notebook) -> Result<Outcome> {
    deps.store.put(&next, prev.expect()).await?;
    if stopped_from_outside(prev, &next) {
        let reason = next
            .idle_status
            .as_ref()
            .map(|s| s.reason.clone())
            .unwrap_or_default();
        tell(
            deps,
            Notice::Stopped {
                name: next.name.clone(),
                reason,
            },
        )
        .await;
    }
    Ok(Outcome::Moved {
        notebook: next.name,
        to: next.state,
    })
}

/// The last `lines` lines of `text`, at most `max` characters.
fn tail(text: &str, lines: usize, max: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    let kept = all[all.len().saturating_sub(lines)..].join("\n");
    let skip = kept.chars().count().saturating_sub(max);
    kept.chars().skip(skip).collect()
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn the_stderr_tail_keeps_the_last_lines_within_the_limit() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let t = tail(&text, 3, 1000);
        assert_eq!(t, "line 28\nline 29\nline 30");
        assert_eq!(tail("abcdef", 5, 3), "def");
    }
}
