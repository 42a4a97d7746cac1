//! The idle-shutdown sweep, run on a schedule. One round:
//!
//! 1. reconcile records with EC2 and step in for records stuck in flight (on the records
//!    reconcile left alone); a record whose step fails is logged, reported by name and left to
//!    the next round, and the round goes on. Each phase has a time budget ([`Timing`]), so a
//!    record that hangs never keeps the round from probing, warning and stopping;
//! 2. send the Ready notebooks (of the same read of the live records) the probe, at most 50
//!    instances per SendCommand; a batch that fails is split in half until the bad instance is
//!    alone, so one bad instance never blocks the others (as Instance Scheduler does);
//! 3. collect the probes in the same run with a bounded wait (one listing of the round's
//!    commands per poll says which have ended; each is read once): late means unknown;
//! 4. decide with the pure idle policy (`nbfleet_core::idle::decide`), keep what
//!    `idle::status_update` says to keep, then warn, stop and record, 16 notebooks at a time;
//! 5. start the stopped notebooks whose schedule asks to start when its window opens.
//!
//! A record is written when its verdict or warning changes, and otherwise at most once per 30
//! minutes (`idle::REFRESH_EVERY`), so a duplicate schedule event changes nothing and a round
//! over notebooks whose verdict holds writes nothing until their refresh is due. The clock is
//! read once, when the round starts.

use crate::budget::Budget;
use crate::{deadlines, lifecycle, reconcile};
use jiff::Timestamp;
use nbfleet_core::idle::{self, Action, Probe, Timeline};
use nbfleet_core::ports::{CommandStatus, Deps, Invocation, Notice, Reach, tell};
use nbfleet_core::record::IdleStatus;
use nbfleet_core::{Notebook, Result, State, report, scripts};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// At most this many instances per SendCommand (SSM's limit).
pub const BATCH: usize = 50;

/// The time budget of each phase of a round. The defaults add up to 110 s, within the sweep
/// function's timeout (template.yaml) with room for the reads between phases.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Reconcile: the tag listing, then one record at a time.
    pub reconcile_for: Duration,
    /// The deadline pass, one record at a time.
    pub deadlines_for: Duration,
    /// Sending the probes and collecting what comes back: late means unknown.
    pub collect_for: Duration,
    pub poll_every: Duration,
    /// Deciding, warning, stopping and the scheduled starts, one record at a time.
    pub act_for: Duration,
}

impl Timing {
    /// The whole round's budget.
    pub fn total(&self) -> Duration {
        self.reconcile_for + self.deadlines_for + self.collect_for + self.act_for
    }
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            reconcile_for: Duration::from_secs(20),
            deadlines_for: Duration::from_secs(15),
            collect_for: Duration::from_secs(45),
            poll_every: Duration::from_secs(3),
            act_for: Duration::from_secs(30),
        }
    }
}

/// What a round found and did.
#[derive(Debug, Default, Clone)]
pub struct RoundReport {
    pub reconcile: reconcile::Reconciled,
    pub overdue: Vec<String>,
    /// Steps that failed for one record (or for reconcile as a whole), `name: <error>`: logged,
    /// reported, and left to the next round, never the end of this one.
    pub failed: Vec<String>,
    pub probed: usize,
    pub commands_sent: usize,
    pub unknown: Vec<String>,
    pub warned: Vec<String>,
    pub stopped: Vec<String>,
    pub started: Vec<String>,
    /// What the cleanup rules did (`crate::cleanup`).
    pub cleaned: Vec<String>,
}

/// Runs one round.
pub async fn sweep(deps: &Deps, timing: Timing) -> Result<RoundReport> {
    let now = deps.clock.now();
    // One read of the live records serves every step of the round.
    let live = reconcile::live(deps).await?;
    let phase = Budget::of(timing.reconcile_for);
    let reconciled = phase
        .run(reconcile::reconcile(deps, &live, now, phase))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reconcile could not run this round");
            reconcile::Reconciled {
                failed: vec![format!("reconcile: {e}")],
                ..Default::default()
            }
        });
    // A record reconcile just moved (or could not) is left to the next round: its copy here
    // is stale. (The deadlines only move records in flight, which are neither Ready nor
    // Stopped.)
    let live: Vec<Notebook> = live
        .into_iter()
        .filter(|nb| !reconciled.moved.contains(&nb.name))
        .collect();
    let deadlines = deadlines::enforce(deps, &live, now, Budget::of(timing.deadlines_for)).await;
    let mut report = RoundReport {
        failed: [reconciled.failed.clone(), deadlines.failed].concat(),
        reconcile: reconciled,
        overdue: deadlines.done,
        ..RoundReport::default()
    };
    let (ready, stopped): (Vec<Notebook>, Vec<Notebook>) = live
        .into_iter()
        .filter(|nb| nb.instance_id.is_some())
        .filter(|nb| matches!(nb.state, State::Ready | State::Stopped))
        .partition(|nb| nb.state == State::Ready);
    report.probed = ready.len();
    let probes = probe_all(deps, &ready, timing, now, &mut report.commands_sent).await?;
    // Each notebook's decision and writes are its own: up to ACT_AT_ONCE at a time, so a first
    // round over thousands (every verdict new, two writes each) fits its budget.
    let phase = Budget::of(timing.act_for);
    let shared = Arc::new(deps.clone());
    let mut acting = tokio::task::JoinSet::new();
    for nb in ready {
        let id = nb.instance_id.clone().unwrap_or_default();
        let probe = probes
            .get(&id)
            .cloned()
            .unwrap_or_else(|| Probe::Unknown("no probe result".into()));
        if let Probe::Unknown(why) = &probe {
            report.unknown.push(format!("{}: {why}", nb.name));
        }
        let deps = shared.clone();
        acting.spawn(async move {
            let done = phase.run(apply(&deps, &nb, &probe, now)).await;
            (nb.name, done)
        });
        while acting.len() >= ACT_AT_ONCE {
            if let Some(done) = acting.join_next().await {
                record(done, &mut report);
            }
        }
    }
    while let Some(done) = acting.join_next().await {
        record(done, &mut report);
    }
    report.warned.sort();
    report.stopped.sort();
    report.started = start_scheduled(deps, &stopped, now, phase).await;
    if let Err(e) = crate::costs::budget_round(deps, now).await {
        report.failed.push(format!("budgets: {e}"));
    }
    match crate::cleanup::round(deps, &stopped, now).await {
        Ok(done) => report.cleaned = done,
        Err(e) => report.failed.push(format!("cleanup: {e}")),
    }
    tracing::info!(?report, "sweep done");
    Ok(report)
}

/// How many notebooks' decisions are acted on at once.
const ACT_AT_ONCE: usize = 16;

/// Puts one notebook's outcome into the round's report.
fn record(
    done: std::result::Result<(String, Result<Option<Action>>), tokio::task::JoinError>,
    report: &mut RoundReport,
) {
    let (name, outcome) = match done {
        Ok(done) => done,
        Err(e) => {
            tracing::error!(error = %e, "a notebook's step panicked");
            report.failed.push(format!("a notebook's step panicked: {e}"));
            return;
        }
    };
    match outcome {
        Ok(Some(Action::Warn { .. })) => report.warned.push(name),
        Ok(Some(Action::Stop)) => report.stopped.push(name),
        Ok(_) => {}
        // A lost race with a user's request is fine: the next round sees the new state.
        Err(nbfleet_core::Error::Conflict(why)) => {
            tracing::info!(notebook = %name, %why, "the record moved meanwhile");
        }
        // A stop that failed leaves the record Stopping: its deadline asks EC2 again.
        Err(e) => {
            tracing::warn!(notebook = %name, error = %e, "sweep could not apply its decision");
            report.failed.push(format!("{name}: {e}"));
        }
    }
}

/// Starts the stopped notebooks whose schedule window opened after they stopped.
async fn start_scheduled(deps: &Deps, stopped: &[Notebook], now: Timestamp, phase: Budget) -> Vec<String> {
    let mut started = Vec::new();
    for nb in stopped {
        let Some(reason) = idle::start_due(&nb.idle, nb.state_since, now) else {
            continue;
        };
        match phase
            .run(lifecycle::start(deps, &nb.owner_principal(), &nb.name))
            .await
        {
            Ok(_) => {
                let entry = serde_json::json!({"action": "start", "reason": reason});
                if let Err(e) = deps.store.append_history(&nb.name, now, &entry).await {
                    tracing::warn!(notebook = %nb.name, error = %e, "cannot record the scheduled start");
                }
                let name = nb.name.clone();
                tell(deps, Notice::Started { name, reason }).await;
                started.push(nb.name.clone());
            }
            // The record keeps the failure; the window does not retry it (see `start_due`).
            Err(e) => tracing::warn!(notebook = %nb.name, error = %e, "scheduled start failed"),
        }
    }
    started
}

/// Sends the probe to every notebook and collects what came back, by instance id. While the
/// probes run, one listing of the round's commands says which have ended (`still_running`:
/// one call per 50 commands); each ended command's results are then read once. When the time
/// is nearly up, whatever has not ended is read as it stands, and a probe still running is
/// unknown.
async fn probe_all(
    deps: &Deps,
    ready: &[Notebook],
    timing: Timing,
    now: Timestamp,
    sent: &mut usize,
) -> Result<HashMap<String, Probe>> {
    let script = scripts::probe()?;
    let ids: Vec<String> = ready.iter().filter_map(|nb| nb.instance_id.clone()).collect();
    let mut results = HashMap::new();
    let mut pending = Vec::new();
    let phase = Budget::of(timing.collect_for);
    for batch in ids.chunks(BATCH) {
        send_bisecting(deps, batch, &script, phase, &mut pending, &mut results, sent).await;
    }
    // Commands sent this round, with a minute's room for the clocks of Lambda and SSM.
    let since = now - jiff::SignedDuration::from_mins(1);
    while !pending.is_empty() {
        let command_ids: Vec<String> = pending.iter().map(|(c, _)| c.clone()).collect();
        let running = phase
            .run(deps.commands.still_running(&command_ids, since))
            .await
            .unwrap_or_else(|_| command_ids.iter().cloned().collect());
        let last = phase.left() <= timing.poll_every;
        let (ended, waiting): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|(command, _)| last || !running.contains(command));
        for (command, batch) in ended {
            read_batch(deps, phase, &command, batch, &mut results).await;
        }
        pending = waiting;
        if !pending.is_empty() {
            tokio::time::sleep(timing.poll_every).await;
        }
    }
    Ok(results)
}

/// Reads one command's invocations into `results`: each instance's probe, or unknown (ended
/// otherwise than Success, still running, or not readable).
async fn read_batch(
    deps: &Deps,
    phase: Budget,
    command_id: &str,
    batch: Vec<String>,
    results: &mut HashMap<String, Probe>,
) {
    let invocations = match phase.run(deps.commands.invocations(command_id)).await {
        Ok(all) => all,
        Err(e) => {
            for id in batch {
                results.insert(
                    id,
                    Probe::Unknown(format!("the probe's result could not be read: {e}")),
                );
            }
            return;
        }
    };
    let by_instance: HashMap<&str, &Invocation> =
        invocations.iter().map(|i| (i.instance_id.as_str(), i)).collect();
    for id in batch {
        let probe = probe_of(by_instance.get(id.as_str()).copied());
        results.insert(id, probe);
    }
}

/// What one instance's invocation of the probe says: its observation, or unknown (ended
/// otherwise than Success, still running, or absent).
pub(crate) fn probe_of(invocation: Option<&Invocation>) -> Probe {
    match invocation {
        Some(inv) if inv.status == CommandStatus::Success => report::parse_probe(&inv.stdout),
        Some(inv) if inv.status.is_final() => Probe::Unknown(format!("the probe ended {:?}", inv.status)),
        _ => Probe::Unknown("the probe did not answer in time".into()),
    }
}

/// Sends one batch; on failure splits it until the failing instances are alone, and marks
/// those unknown.
async fn send_bisecting(
    deps: &Deps,
    batch: &[String],
    script: &scripts::Script,
    phase: Budget,
    commands: &mut Vec<(String, Vec<String>)>,
    results: &mut HashMap<String, Probe>,
    sent: &mut usize,
) {
    let mut stack = vec![batch.to_vec()];
    while let Some(ids) = stack.pop() {
        if phase.left().is_zero() {
            for id in ids {
                let why = "the probe was not sent: the round ran out of time";
                results.insert(id, Probe::Unknown(why.into()));
            }
            continue;
        }
        *sent += 1;
        match phase.run(deps.commands.send_batch(&ids, script)).await {
            Ok(command_id) => commands.push((command_id, ids)),
            Err(e) if ids.len() == 1 => {
                results.insert(
                    ids[0].clone(),
                    Probe::Unknown(format!("the probe could not be sent: {e}")),
                );
            }
            Err(_) => {
                let (a, b) = ids.split_at(ids.len() / 2);
                stack.push(b.to_vec());
                stack.push(a.to_vec());
            }
        }
    }
}

/// Sends the health check, which starts (or, hung, restarts) the Jupyter service, to a notebook
/// whose Jupyter did not answer the probe; keeps it in the history and tells the owner. The
/// event of its command changes nothing: the next probe sees whether Jupyter answers.
async fn restart_jupyter(deps: &Deps, nb: &Notebook, why: &str, now: Timestamp) {
    let id = nb.instance_id.as_deref().unwrap_or_default();
    let sent = match scripts::health_check(nb, &deps.cfg, &deps.cfg.region) {
        Ok(script) => deps.commands.send(id, &script, Reach::Once).await,
        Err(e) => Err(e),
    };
    let entry = match &sent {
        Ok(command) => serde_json::json!({"action": "restart_jupyter", "reason": why, "command_id": command}),
        Err(e) => serde_json::json!({"action": "restart_jupyter", "reason": why, "error": e.to_string()}),
    };
    if let Err(e) = deps.store.append_history(&nb.name, now, &entry).await {
        tracing::warn!(notebook = %nb.name, error = %e, "the restart is not in the history");
    }
    match sent {
        Ok(_) => {
            tracing::info!(notebook = %nb.name, %why, "Jupyter did not answer; restarting it");
            let (name, why) = (nb.name.clone(), why.to_string());
            tell(deps, Notice::JupyterRestarted { name, why }).await;
        }
        Err(e) => tracing::warn!(notebook = %nb.name, error = %e, "could not send the restart"),
    }
}

/// Decides and acts for one notebook; returns the action taken, if the record changed.
async fn apply(deps: &Deps, nb: &Notebook, probe: &Probe, now: Timestamp) -> Result<Option<Action>> {
    let decision = idle::decide(&nb.idle, probe, &Timeline::of(nb, now));
    let mut update = idle::status_update(nb.idle_status.as_ref(), &decision, probe, now);
    let restart = idle::jupyter_restart_due(nb.idle_status.as_ref(), probe, now)
        .filter(|_| decision.action != Action::Stop);
    if restart.is_some() {
        update.status.jupyter_restarted_at = Some(now);
        update.changed = true;
    }
    let write = idle::write_due(&update, nb.updated_at, now);
    // History for what changed; a verdict that holds, written again to stay fresh, is not news.
    if update.changed || decision.action == Action::Stop {
        let entry = serde_json::json!({
            "verdict": decision.verdict, "action": decision.action,
            "reason": decision.reason, "planned_stop": decision.planned_stop,
        });
        deps.store.append_history(&nb.name, now, &entry).await?;
    }
    match decision.action {
        Action::Stop => {
            let mut stopping = nb.moved_to(State::Stopping, now)?;
            stopping.idle_status = Some(IdleStatus {
                stopped_automatically: true,
                ..update.status
            });
            stopping.pending_command = None;
            deps.store.put(&stopping, nb.expect()).await?;
            // The pre-stop hook first, if there is one: its end (or deadline) stops the instance.
            crate::hooks::stop(deps, stopping, true, Some(decision.reason), now).await?;
            Ok(Some(Action::Stop))
        }
        action => {
            let mut current = nb.clone();
            if write {
                current = nb.touched(now);
                current.idle_status = Some(update.status);
                deps.store.put(&current, nb.expect()).await?;
            }
            // Written first: a restart is sent at most once per JUPYTER_RESTART_EVERY.
            if let Some(why) = restart {
                restart_jupyter(deps, nb, why, now).await;
            }
            // Told after the write, and marked told after telling: a round stopped in between
            // leaves the warning untold, and the next round tells it, once.
            let Some(status) = current.idle_status.clone() else {
                return Ok(None);
            };
            let Some(stop_at) = idle::untold_warning(&status) else {
                return Ok(write.then_some(action));
            };
            let (name, reason) = (nb.name.clone(), status.reason.clone());
            tell(
                deps,
                Notice::StoppingSoon {
                    name,
                    stop_at,
                    reason,
                },
            )
            .await;
            let mut told = current.touched(now);
            if let Some(s) = told.idle_status.as_mut() {
                s.warning_untold = false;
            }
            deps.store.put(&told, current.expect()).await?;
            Ok(Some(Action::Warn { stop_at }))
        }
    }
}
