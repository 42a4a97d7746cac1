//! The idle policy: a pure function of (record, observation, now) → (verdict, action, reason,
//! planned stop). It decides whether a running notebook is working, and when it stops.
//!
//! What counts as activity (docs/idle.md). Happening now: a busy kernel (a silent cell keeps
//! its `last_activity` frozen at the cell's start, so busy itself counts), GPU utilisation at
//! or above the notebook's threshold (or, on a GPU that reports none, such as MIG or vGPU, a
//! compute process on it), CPU used outside the Jupyter server at or above the notebook's
//! threshold (a `nohup python train.py &`), a live `nbfleet-busy` hold. Recently, within the
//! timeout: kernel or terminal activity, a file saved under the notebook root (JupyterLab
//! autosaves a dirty notebook every two minutes), the end of a hold, the last time a round saw
//! the notebook active. An open browser tab does **not** count unless the notebook opts in
//! (`count_connections`): JupyterLab polls every ≈ 10 s, and counting that would keep a
//! forgotten tab's GPU running all night.
//!
//! A Jupyter that does not answer is not unknown: its kernels cannot be read, the other signals
//! still count (and the sweep restarts it). A probe that did not run, came late or could not be
//! parsed, or GPUs that could not be read while nothing else shows activity, is **unknown**,
//! and unknown is never idle. The runtime cap applies regardless. Every automatic stop is
//! announced first: a warning at `warning_minutes` before, which `extend` can snooze.

use crate::record::{IdlePolicy, IdleStatus, Notebook};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// What the probe saw on the instance.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Observation {
    pub kernels: u32,
    pub busy_kernels: u32,
    /// The newest `last_activity` over the kernels.
    pub kernel_activity: Option<Timestamp>,
    /// The newest `last_activity` over the terminals.
    pub terminal_activity: Option<Timestamp>,
    /// Open connections (browser tabs), and the server's own last activity, which tab polling
    /// moves: counted only with `count_connections`.
    pub connections: u32,
    pub server_activity: Option<Timestamp>,
    /// Jupyter did not answer: why. Its fields above are then empty; the others still count.
    pub jupyter_down: Option<String>,
    /// The newest modification of a user's file under the notebook root, and its path there.
    pub last_edit: Option<Timestamp>,
    pub last_edit_path: Option<String>,
    /// The scan for edits stopped at its bound (20,000 entries or 1 s) before the end.
    pub edit_scan_cut: bool,
    /// CPU used by the notebook user's processes other than the Jupyter server since the
    /// previous probe, in percent of one core; none on the first probe after a boot.
    pub cpu_outside_pct: Option<u32>,
    /// A live `nbfleet-busy` hold.
    pub hold: Option<Hold>,
    /// When the latest `nbfleet-busy --for` hold ended (or was released).
    pub hold_ended: Option<Timestamp>,
    /// Utilisation per GPU, in percent; `None` where nvidia-smi reports none (MIG, vGPU).
    /// Empty without a GPU.
    pub gpu_utilization: Vec<Option<u32>>,
    /// Compute processes, counted when a GPU reports no utilisation.
    pub gpu_processes: u32,
    /// nvidia-smi is there but could not be read: the GPU signal is unknown.
    pub gpu_error: Option<String>,
}

/// An `nbfleet-busy` hold: until when (`None`: while its command runs), and what it holds for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub until: Option<Timestamp>,
    pub what: String,
}

/// The probe's result for one instance in one sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
// One per notebook for one round: boxing the observation would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Probe {
    Seen(Observation),
    /// Why nothing usable came back (failed, late, unparsable, agent offline).
    Unknown(String),
}

/// The times the policy weighs besides the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    pub now: Timestamp,
    /// When the current run started (idle time never counts from before it).
    pub running_since: Option<Timestamp>,
    /// `extend` snoozes automatic stops until then.
    pub snoozed_until: Option<Timestamp>,
    /// The stop time already announced, if a warning went out.
    pub warned_stop_at: Option<Timestamp>,
    /// The last time a round saw the notebook active, as recorded.
    pub last_active_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Verdict {
    Active,
    Idle,
    #[default]
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Nothing to do this round.
    None,
    /// Announce the stop at this time.
    Warn { stop_at: Timestamp },
    /// Stop now (it was announced, and its time has come).
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub action: Action,
    /// One sentence a user can read: why it runs, or why it stops.
    pub reason: String,
    /// When it will stop if nothing changes. For an active notebook only the stops activity
    /// cannot move (runtime cap, schedule): its idle stop is always the timeout after its last
    /// activity, which the reason says.
    pub planned_stop: Option<Timestamp>,
    /// The last time it was seen active, as of this round.
    pub last_active: Option<Timestamp>,
    /// Whether something is happening right now (not only recently).
    pub active_now: bool,
}

/// What sets the planned stop.
#[derive(Clone, Copy)]
enum Cause {
    Idle,
    Cap,
    Schedule,
}

fn mins(m: u32) -> SignedDuration {
    SignedDuration::from_mins(i64::from(m))
}

fn hhmm(t: Timestamp) -> String {
    t.strftime("%H:%M UTC").to_string()
}

/// Activity that holds right now, whatever the clock says: why, if any.
fn ongoing(obs: &Observation, policy: &IdlePolicy, now: Timestamp) -> Option<String> {
    if obs.busy_kernels > 0 {
        return Some(format!(
            "{} of {} kernels are busy",
            obs.busy_kernels, obs.kernels
        ));
    }
    let busiest = obs
        .gpu_utilization
        .iter()
        .enumerate()
        .filter_map(|(i, u)| Some((i, (*u)?)))
        .max_by_key(|(_, u)| *u);
    if let Some((i, u)) = busiest.filter(|(_, u)| *u >= policy.gpu_threshold_pct) {
        return Some(format!(
            "GPU {i} at {u} % (threshold {} %)",
            policy.gpu_threshold_pct
        ));
    }
    if obs.gpu_utilization.contains(&None) && obs.gpu_processes > 0 {
        return Some(format!(
            "{} compute processes on a GPU that reports no utilisation (MIG or vGPU)",
            obs.gpu_processes
        ));
    }
    if let Some(cpu) = obs
        .cpu_outside_pct
        .filter(|c| policy.cpu_threshold_pct > 0 && *c >= policy.cpu_threshold_pct)
    {
        return Some(format!(
            "CPU {cpu} % outside Jupyter (threshold {} %)",
            policy.cpu_threshold_pct
        ));
    }
    match &obs.hold {
        Some(Hold { until: None, what }) => {
            return Some(format!("held by nbfleet-busy while `{what}` runs"));
        }
        Some(Hold {
            until: Some(until),
            what,
        }) if *until > now => {
            return Some(format!("held by nbfleet-busy until {} ({what})", hhmm(*until)));
        }
        _ => {}
    }
    if policy.count_connections && obs.connections > 0 {
        return Some(format!(
            "{} browser connections are open (counted for this notebook)",
            obs.connections
        ));
    }
    None
}

/// The newest past activity, and what it was: idle time counts from it.
fn recent(obs: &Observation, policy: &IdlePolicy, ctx: &Timeline) -> (Timestamp, String) {
    const EDIT: &str = "";
    let hold_end = obs.hold.as_ref().and_then(|h| h.until).max(obs.hold_ended);
    let candidates = [
        (obs.kernel_activity, "kernel activity at"),
        (obs.terminal_activity, "terminal activity at"),
        (obs.last_edit, EDIT),
        (
            obs.server_activity.filter(|_| policy.count_connections),
            "browser activity at",
        ),
        (hold_end, "an nbfleet-busy hold ended at"),
        (ctx.last_active_at, "last seen active at"),
        (ctx.running_since, "started at"),
    ];
    let newest = candidates
        .into_iter()
        .filter_map(|(t, what)| Some((t.filter(|t| *t <= ctx.now)?, what)))
        .max_by_key(|(t, _)| *t);
    match newest {
        None => (ctx.now, "no activity seen yet".into()),
        Some((t, EDIT)) => match &obs.last_edit_path {
            Some(path) => (t, format!("editing: {path} saved at {}", hhmm(t))),
            None => (t, format!("a file saved at {}", hhmm(t))),
        },
        Some((t, what)) => (t, format!("{what} {}", hhmm(t))),
    }
}

/// Decides one running notebook's round.
pub fn decide(policy: &IdlePolicy, probe: &Probe, ctx: &Timeline) -> Decision {
    let now = ctx.now;
    let lead = mins(policy.warning_minutes);
    let snooze = |t: Timestamp| ctx.snoozed_until.map_or(t, |s| t.max(s));

    // The runtime cap holds whatever the probe says; extend puts it off, never past the ceiling.
    let cap = ctx.running_since.and_then(|s| {
        let soft = (policy.max_runtime_minutes > 0).then(|| snooze(s + mins(policy.max_runtime_minutes)));
        let hard = (policy.runtime_ceiling_minutes > 0).then(|| s + mins(policy.runtime_ceiling_minutes));
        match (soft, hard) {
            (Some(soft), Some(hard)) => Some(soft.min(hard)),
            (soft, hard) => soft.or(hard),
        }
    });

    let mut active_now = false;
    let (verdict, idle_stop, why, last_active) = match probe {
        Probe::Unknown(cause) => (
            Verdict::Unknown,
            None,
            format!("the probe gave no answer ({cause}); unknown is never idle"),
            ctx.last_active_at,
        ),
        Probe::Seen(obs) => {
            let down = obs
                .jupyter_down
                .as_ref()
                .map_or(String::new(), |why| format!("Jupyter does not answer ({why}); "));
            match (ongoing(obs, policy, now), &obs.gpu_error) {
                (Some(why), _) => {
                    active_now = true;
                    (Verdict::Active, None, format!("{down}{why}"), Some(now))
                }
                (None, Some(error)) => (
                    Verdict::Unknown,
                    None,
                    format!("{down}the GPUs could not be read ({error}); unknown is never idle"),
                    ctx.last_active_at,
                ),
                (None, None) => {
                    // Idle time counts from the latest activity, the last start or the last extend.
                    let (last, what) = recent(obs, policy, ctx);
                    let stop = snooze(last + mins(policy.idle_timeout_minutes));
                    let why = if now < stop - lead {
                        let snoozed = ctx.snoozed_until.filter(|s| *s > now).map_or(String::new(), |s| {
                            format!(", and not before {} (extended)", hhmm(s))
                        });
                        format!(
                            "{down}{what}; it stops {} minutes after the last activity{snoozed}",
                            policy.idle_timeout_minutes
                        )
                    } else {
                        format!(
                            "{down}idle since {} ({what}): no busy kernel, GPU or CPU use, edit or hold since",
                            hhmm(last)
                        )
                    };
                    // Said where it matters: a save the bounded scan did not reach cannot
                    // keep the notebook running.
                    let why = match obs.edit_scan_cut {
                        true => format!(
                            "{why} (the edit scan stopped at its bound, 20,000 entries or 1 s: \
                             a save beyond it is not seen)"
                        ),
                        false => why,
                    };
                    let verdict = if now < stop - lead {
                        Verdict::Active
                    } else {
                        Verdict::Idle
                    };
                    (verdict, Some(stop), why, Some(last))
                }
            }
        }
    };

    // The schedule: outside its windows a notebook stops (after the warning); inside, at the
    // window's close.
    let window = policy
        .schedule
        .as_ref()
        .map(|sch| snooze(sch.closes_at(now).unwrap_or(now)));
    let earliest = |stops: &[(Option<Timestamp>, Cause)]| {
        stops
            .iter()
            .filter_map(|(t, c)| Some(((*t)?, *c)))
            .min_by_key(|(t, _)| *t)
    };
    let fixed = earliest(&[(cap, Cause::Cap), (window, Cause::Schedule)]);
    let due = earliest(&[
        (idle_stop, Cause::Idle),
        (cap, Cause::Cap),
        (window, Cause::Schedule),
    ]);
    let cap_note = |r: String, cause: Cause, planned: Timestamp| match cause {
        Cause::Idle => r,
        Cause::Cap => {
            let ran = match ctx.running_since {
                Some(since) => planned.duration_since(since).as_mins(),
                None => i64::from(policy.max_runtime_minutes),
            };
            format!(
                "{r}; it reaches the runtime cap ({} h {:02} min of running)",
                ran / 60,
                ran % 60
            )
        }
        Cause::Schedule => {
            let sch = policy.schedule.as_ref().map(|s| s.describe()).unwrap_or_default();
            if policy
                .schedule
                .as_ref()
                .is_some_and(|s| s.closes_at(now).is_none())
            {
                format!("{r}; it is outside its schedule ({sch})")
            } else {
                format!("{r}; its schedule ({sch}) closes")
            }
        }
    };
    let decided = |action, reason, planned_stop| Decision {
        verdict,
        action,
        reason,
        planned_stop,
        last_active,
        active_now,
    };
    let Some((planned, cause)) = due else {
        return decided(Action::None, why, None);
    };
    // A warning for an earlier time than now planned was snoozed away: it no longer holds.
    let warned = ctx.warned_stop_at.filter(|w| *w >= planned);
    let (action, planned_stop) = match warned {
        Some(w) if w <= now => (Action::Stop, w),
        Some(w) => (Action::None, w),
        // Due within the lead, or overdue without a warning: announce it, with the full lead.
        None if planned - lead <= now => {
            let stop_at = planned.max(now + lead);
            (Action::Warn { stop_at }, stop_at)
        }
        None => (Action::None, planned),
    };
    match action {
        Action::Stop => decided(
            action,
            cap_note(format!("stopped: {why}"), cause, planned),
            Some(planned_stop),
        ),
        // Active, nothing announced: only a stop that activity cannot move is a time to show.
        Action::None if verdict == Verdict::Active && warned.is_none() => match fixed {
            Some((at, cause)) => decided(
                action,
                cap_note(format!("{why}; stops at {} unless extended", hhmm(at)), cause, at),
                Some(at),
            ),
            None => decided(action, why, None),
        },
        _ => decided(
            action,
            cap_note(
                format!("{why}; stops at {} unless extended", hhmm(planned_stop)),
                cause,
                planned,
            ),
            Some(planned_stop),
        ),
    }
}

impl Timeline {
    /// The timeline of `nb`'s current run at `now`.
    pub fn of(nb: &Notebook, now: Timestamp) -> Timeline {
        Timeline {
            now,
            running_since: nb.running_since,
            snoozed_until: nb.snoozed_until,
            warned_stop_at: nb.idle_status.as_ref().and_then(|s| s.warned_stop_at),
            // Work happening at the last write may have gone on until the round before this one,
            // which wrote nothing: it counts as active until now, so its end never comes early.
            last_active_at: nb
                .idle_status
                .as_ref()
                .and_then(|s| if s.active_now { Some(now) } else { s.last_active_at }),
        }
    }
}

/// What a round's decision leaves on the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub status: IdleStatus,
    /// Whether the conclusion changed (verdict, warning, the start of an unknown streak, the
    /// end of work happening now): then the record is written and a history entry kept. The
    /// planned stop moving with activity is no change, so a notebook in use is written at most
    /// once per [`REFRESH_EVERY`].
    pub changed: bool,
    /// The probe failed again in a streak already recorded: written at most once an hour
    /// ([`write_due`]), so a notebook whose probe keeps failing costs no write per round.
    pub streak_grew: bool,
}

/// How often a growing unknown streak alone is written.
pub const UNKNOWN_STREAK_WRITE_EVERY: SignedDuration = SignedDuration::from_hours(1);

/// How often a verdict that holds is written again, so that the reason, when it was checked
/// and when it was last active are never older than this: one write per active notebook per
/// 30 minutes.
pub const REFRESH_EVERY: SignedDuration = SignedDuration::from_mins(30);

/// Whether `update` is to be written, for a record last written at `written_at`.
pub fn write_due(update: &StatusUpdate, written_at: Timestamp, now: Timestamp) -> bool {
    let age = now.duration_since(written_at);
    update.changed
        || (update.streak_grew && age >= UNKNOWN_STREAK_WRITE_EVERY)
        || (update.status.verdict != Verdict::Unknown && age >= REFRESH_EVERY)
}

/// The idle status to store after `decision` at `now`, given the `previous` one and whether
/// the probe answered.
pub fn status_update(
    previous: Option<&IdleStatus>,
    decision: &Decision,
    probe: &Probe,
    now: Timestamp,
) -> StatusUpdate {
    let warned_before = previous.and_then(|s| s.warned_stop_at);
    let mut status = IdleStatus {
        verdict: decision.verdict,
        reason: decision.reason.clone(),
        planned_stop: decision.planned_stop,
        warned_stop_at: match decision.action {
            Action::Warn { stop_at } => Some(stop_at),
            // A warning holds while its stop is still the plan; activity or a snooze ends it.
            _ => warned_before.filter(|w| decision.planned_stop == Some(*w)),
        },
        unknowns: match probe {
            Probe::Unknown(_) => previous.map_or(0, |s| s.unknowns) + 1,
            Probe::Seen(_) => 0,
        },
        warning_untold: false,
        checked_at: Some(now),
        last_active_at: decision.last_active.max(previous.and_then(|p| p.last_active_at)),
        active_now: decision.active_now,
        jupyter_restarted_at: previous.and_then(|p| p.jupyter_restarted_at),
        stopped_automatically: false,
    };
    status.warning_untold = match decision.action {
        Action::Warn { .. } => true,
        _ => status.warned_stop_at.is_some() && previous.is_some_and(|p| p.warning_untold),
    };
    let streak_began = |p: &IdleStatus| (p.unknowns == 0) != (status.unknowns == 0);
    // Work that was happening now has ended: written at once, so that idle time counts from
    // this round and not from the last write.
    let work_ended = |p: &IdleStatus| p.active_now && !status.active_now;
    let changed = previous.is_none_or(|p| {
        (p.verdict, p.warned_stop_at) != (status.verdict, status.warned_stop_at)
            || streak_began(p)
            || work_ended(p)
    });
    let streak_grew = previous.is_some_and(|p| p.unknowns > 0 && status.unknowns > p.unknowns);
    StatusUpdate {
        status,
        changed,
        streak_grew,
    }
}

/// The status of a notebook stopped by something other than the idle policy (`why`: by hand,
/// from the console): the policy's last reason no longer says why it is down.
pub fn stopped_by(previous: Option<&IdleStatus>, why: String, now: Timestamp) -> IdleStatus {
    IdleStatus {
        verdict: previous.map_or(Verdict::Unknown, |p| p.verdict),
        reason: why,
        checked_at: Some(now),
        last_active_at: previous.and_then(|p| p.last_active_at),
        ..IdleStatus::default()
    }
}

/// How often the sweep restarts a Jupyter that does not answer.
pub const JUPYTER_RESTART_EVERY: SignedDuration = SignedDuration::from_mins(15);

/// Why Jupyter is to be restarted this round, if it is: the probe ran but Jupyter did not
/// answer, and no restart was sent in the last [`JUPYTER_RESTART_EVERY`].
pub fn jupyter_restart_due<'a>(
    previous: Option<&IdleStatus>,
    probe: &'a Probe,
    now: Timestamp,
) -> Option<&'a str> {
    let Probe::Seen(obs) = probe else {
        return None;
    };
    let last = previous.and_then(|s| s.jupyter_restarted_at);
    let due = last.is_none_or(|t| now.duration_since(t) >= JUPYTER_RESTART_EVERY);
    obs.jupyter_down.as_deref().filter(|_| due)
}

/// The stop time of a warning that is written but that nobody was told of yet.
pub fn untold_warning(status: &IdleStatus) -> Option<Timestamp> {
    status.warned_stop_at.filter(|_| status.warning_untold)
}

/// The longest one `extend` may snooze an automatic stop.
pub const MAX_EXTEND_MINUTES: u32 = 24 * 60;

/// `nb` with its automatic stops (idle, runtime cap, schedule) snoozed until `minutes` after
/// `now`, never earlier than a snooze already given. A warning already sent no longer holds.
pub fn snoozed(nb: &Notebook, minutes: u32, now: Timestamp) -> Notebook {
    let until = now + mins(minutes);
    let mut next = nb.touched(now);
    next.snoozed_until = Some(next.snoozed_until.map_or(until, |s| s.max(until)));
    let ceiling = (nb.idle.runtime_ceiling_minutes > 0)
        .then(|| {
            nb.running_since
                .map(|s| s + mins(nb.idle.runtime_ceiling_minutes))
        })
        .flatten()
        .filter(|c| Some(*c) < next.snoozed_until);
    if let Some(status) = &mut next.idle_status {
        status.warned_stop_at = None;
        status.planned_stop = ceiling.or(next.snoozed_until);
        status.reason = match ceiling {
            Some(c) => format!(
                "extended by {minutes} minutes, but the runtime ceiling ({} h a run) stops it at {}",
                nb.idle.runtime_ceiling_minutes / 60,
                hhmm(c)
            ),
            None => format!("extended by {minutes} minutes"),
        };
    }
    next
}

/// Whether a stopped notebook is due to start because its schedule's window opened after it
/// stopped (`start_at_open`): the reason, if so. One stopped inside the window stays stopped.
pub fn start_due(policy: &IdlePolicy, stopped_since: Timestamp, now: Timestamp) -> Option<String> {
    let schedule = policy.schedule.as_ref().filter(|s| s.start_at_open)?;
    let opened = schedule.opened_at(now).filter(|o| stopped_since < *o)?;
    Some(format!(
        "started: its schedule ({}) opened at {}",
        schedule.describe(),
        hhmm(opened)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000;

    fn at(min: i64) -> Timestamp {
        Timestamp::from_second(T0 + min * 60).unwrap()
    }

    fn policy() -> IdlePolicy {
        IdlePolicy {
            idle_timeout_minutes: 60,
            count_connections: false,
            gpu_threshold_pct: 10,
            cpu_threshold_pct: 20,
            max_runtime_minutes: 720,
            runtime_ceiling_minutes: 1440,
            warning_minutes: 10,
            schedule: None,
            instance_fallback_minutes: 0,
        }
    }

    fn ctx(now: i64) -> Timeline {
        Timeline {
            now: at(now),
            running_since: Some(at(0)),
            snoozed_until: None,
            warned_stop_at: None,
            last_active_at: None,
        }
    }

    fn idle_obs() -> Observation {
        Observation {
            kernels: 1,
            kernel_activity: Some(at(5)),
            ..Observation::default()
        }
    }

    #[test]
    fn a_busy_kernel_with_frozen_activity_is_active() {
        // A silent `time.sleep` cell: busy, last_activity stuck at the cell's start hours ago.
        let obs = Observation {
            kernels: 2,
            busy_kernels: 1,
            kernel_activity: Some(at(1)),
            ..Default::default()
        };
        let d = decide(&policy(), &Probe::Seen(obs), &ctx(300));
        assert_eq!((d.verdict, d.action), (Verdict::Active, Action::None));
        assert!(d.reason.contains("1 of 2 kernels are busy"), "{}", d.reason);
        assert_eq!(d.planned_stop, Some(at(720)), "only the runtime cap is planned");
    }

    #[test]
    fn an_open_tab_alone_is_idle_by_default() {
        let obs = Observation {
            connections: 1,
            server_activity: Some(at(119)),
            kernel_activity: Some(at(5)),
            ..Default::default()
        };
        let d = decide(&policy(), &Probe::Seen(obs.clone()), &ctx(120));
        assert_eq!(d.verdict, Verdict::Idle);
        assert!(matches!(d.action, Action::Warn { .. }), "{d:?}");
        let mut counting = policy();
        counting.count_connections = true;
        let d = decide(&counting, &Probe::Seen(obs), &ctx(120));
        assert_eq!(d.verdict, Verdict::Active, "kept when count_connections is set");
    }

    #[test]
    fn a_busy_gpu_with_idle_kernels_is_active() {
        let obs = Observation {
            gpu_utilization: vec![Some(0), Some(97)],
            ..idle_obs()
        };
        let d = decide(&policy(), &Probe::Seen(obs), &ctx(300));
        assert_eq!(d.verdict, Verdict::Active);
        assert!(d.reason.contains("97 %"), "{}", d.reason);
        let below = Observation {
            gpu_utilization: vec![Some(9)],
            ..idle_obs()
        };
        assert_eq!(
            decide(&policy(), &Probe::Seen(below), &ctx(300)).verdict,
            Verdict::Idle
        );
    }

    #[test]
    fn recent_kernel_or_terminal_activity_is_active() {
        let k = Observation {
            kernel_activity: Some(at(280)),
            ..Default::default()
        };
        assert_eq!(
            decide(&policy(), &Probe::Seen(k), &ctx(300)).verdict,
            Verdict::Active
        );
        let t = Observation {
            terminal_activity: Some(at(290)),
            kernel_activity: Some(at(5)),
            ..Default::default()
        };
        assert_eq!(
            decide(&policy(), &Probe::Seen(t), &ctx(300)).verdict,
            Verdict::Active
        );
    }

    #[test]
    fn an_unknown_probe_is_never_idle() {
        let d = decide(&policy(), &Probe::Unknown("agent offline".into()), &ctx(300));
        assert_eq!((d.verdict, d.action), (Verdict::Unknown, Action::None));
        assert!(d.reason.contains("agent offline"));
        // Even with an old warning on the record, unknown never stops for idleness.
        let mut c = ctx(300);
        c.warned_stop_at = Some(at(200));
        let mut no_cap = policy();
        no_cap.max_runtime_minutes = 0;
        no_cap.runtime_ceiling_minutes = 0;
        let d = decide(&no_cap, &Probe::Unknown("late".into()), &c);
        assert_eq!((d.action, d.planned_stop), (Action::None, None));
    }

    #[test]
    fn idle_warns_at_the_lead_then_stops_at_the_announced_time() {
        // Last activity at minute 5, timeout 60: stop due at 65, warning from 55.
        let early = decide(&policy(), &Probe::Seen(idle_obs()), &ctx(50));
        assert_eq!(
            (early.verdict, early.action, early.planned_stop),
            (Verdict::Active, Action::None, Some(at(720))),
            "an active notebook shows only the stop activity cannot move (the cap)"
        );
        assert!(
            early.reason.contains("kernel activity at")
                && early.reason.contains("stops 60 minutes after the last activity"),
            "{}",
            early.reason
        );
        let warn = decide(&policy(), &Probe::Seen(idle_obs()), &ctx(56));
        assert_eq!(
            warn.action,
            Action::Warn { stop_at: at(66) },
            "a full lead of 10 minutes"
        );
        let mut c = ctx(60);
        c.warned_stop_at = Some(at(66));
        assert_eq!(
            decide(&policy(), &Probe::Seen(idle_obs()), &c).action,
            Action::None,
            "already warned"
        );
        c.now = at(66);
        let stop = decide(&policy(), &Probe::Seen(idle_obs()), &c);
        assert_eq!(stop.action, Action::Stop);
        assert!(stop.reason.starts_with("stopped: idle since"), "{}", stop.reason);
    }

    #[test]
    fn activity_after_a_warning_cancels_the_stop() {
        let mut c = ctx(62);
        c.warned_stop_at = Some(at(66));
        let busy = Observation {
            busy_kernels: 1,
            kernels: 1,
            ..idle_obs()
        };
        let d = decide(&policy(), &Probe::Seen(busy), &c);
        assert_eq!((d.verdict, d.action), (Verdict::Active, Action::None));
        assert_ne!(d.planned_stop, Some(at(66)));
    }

    #[test]
    fn idle_time_counts_from_the_last_start() {
        let mut c = ctx(400);
        c.running_since = Some(at(380)); // restarted 20 minutes ago; kernels idle since long before
        let d = decide(&policy(), &Probe::Seen(idle_obs()), &c);
        assert_eq!((d.verdict, d.action), (Verdict::Active, Action::None));
        assert_eq!(d.last_active, Some(at(380)));
        assert!(d.reason.starts_with("started at"), "{}", d.reason);
    }

    #[test]
    fn a_snooze_moves_the_stop_and_voids_an_earlier_warning() {
        let mut c = ctx(64);
        c.warned_stop_at = Some(at(66));
        c.snoozed_until = Some(at(124));
        let d = decide(&policy(), &Probe::Seen(idle_obs()), &c);
        assert_eq!((d.verdict, d.action), (Verdict::Active, Action::None));
        assert!(d.reason.contains("not before"), "{}", d.reason);
        c.now = at(115);
        assert_eq!(
            decide(&policy(), &Probe::Seen(idle_obs()), &c).action,
            Action::Warn { stop_at: at(125) }
        );
    }

    #[test]
    fn the_runtime_cap_stops_even_an_active_notebook_after_a_warning() {
        let busy = Observation {
            busy_kernels: 1,
            kernels: 1,
            ..Default::default()
        };
        let d = decide(&policy(), &Probe::Seen(busy.clone()), &ctx(711));
        assert_eq!(d.action, Action::Warn { stop_at: at(721) });
        assert!(
            d.reason.contains("runtime cap (12 h 00 min of running)"),
            "{}",
            d.reason
        );
        let mut c = ctx(721);
        c.warned_stop_at = Some(at(721));
        assert_eq!(decide(&policy(), &Probe::Seen(busy), &c).action, Action::Stop);
        let d = decide(&policy(), &Probe::Unknown("late".into()), &c);
        assert_eq!(d.action, Action::Stop, "the cap does not need a probe");
    }

    #[test]
    fn extend_cannot_put_the_runtime_cap_past_the_ceiling_and_failing_probes_cannot_either() {
        // Extended again and again: the snooze reaches far past the 24 h ceiling.
        let mut c = ctx(1430);
        c.snoozed_until = Some(at(5000));
        let busy = Observation {
            busy_kernels: 1,
            kernels: 1,
            ..Default::default()
        };
        let d = decide(&policy(), &Probe::Seen(busy), &c);
        assert_eq!(d.action, Action::Warn { stop_at: at(1440) }, "{}", d.reason);
        assert!(
            d.reason.contains("runtime cap (24 h 00 min of running)"),
            "{}",
            d.reason
        );
        c.now = at(1440);
        c.warned_stop_at = Some(at(1440));
        let d = decide(&policy(), &Probe::Unknown("agent offline".into()), &c);
        assert_eq!(d.action, Action::Stop, "{}", d.reason);
        // With the cap turned off, the ceiling still holds.
        let mut no_cap = policy();
        no_cap.max_runtime_minutes = 0;
        assert_eq!(
            decide(&no_cap, &Probe::Unknown("late".into()), &c).action,
            Action::Stop
        );
    }

    #[test]
    fn a_dead_jupyter_is_restarted_at_most_once_every_15_minutes_and_never_on_an_unknown_probe() {
        let down = Probe::Seen(Observation {
            jupyter_down: Some("connection refused".into()),
            ..idle_obs()
        });
        assert_eq!(
            jupyter_restart_due(None, &down, at(100)),
            Some("connection refused")
        );
        let restarted = |m: i64| IdleStatus {
            jupyter_restarted_at: Some(at(m)),
            ..IdleStatus::default()
        };
        assert_eq!(
            jupyter_restart_due(Some(&restarted(90)), &down, at(100)),
            None,
            "10 min on"
        );
        assert_eq!(
            jupyter_restart_due(Some(&restarted(85)), &down, at(100)),
            Some("connection refused"),
            "15 min on"
        );
        assert_eq!(
            jupyter_restart_due(None, &Probe::Seen(idle_obs()), at(100)),
            None,
            "it answers"
        );
        let unknown = Probe::Unknown("agent offline".into());
        assert_eq!(
            jupyter_restart_due(None, &unknown, at(100)),
            None,
            "the probe did not run"
        );
    }

    /// One row of the policy table: a notebook idle since minute 5 (timeout 60), looked at
    /// at minute 300, with one signal changed.
    struct Row {
        name: &'static str,
        obs: Observation,
        policy: IdlePolicy,
        last_active_at: Option<i64>,
        verdict: Verdict,
        says: &'static str,
    }

    fn row(
        name: &'static str,
        verdict: Verdict,
        says: &'static str,
        change: impl FnOnce(&mut Observation),
    ) -> Row {
        let mut obs = idle_obs();
        change(&mut obs);
        Row {
            name,
            obs,
            policy: policy(),
            last_active_at: None,
            verdict,
            says,
        }
    }

    #[test]
    fn the_policy_table_each_signal_alone_and_with_an_open_tab() {
        use Verdict::*;
        let hold = |until: Option<i64>, what: &str| Hold {
            until: until.map(at),
            what: what.into(),
        };
        let mut rows = vec![
            row("nothing", Idle, "idle since", |_| {}),
            row("a save 3 min ago", Active, "editing: exp/a.ipynb saved at", |o| {
                o.last_edit = Some(at(297));
                o.last_edit_path = Some("exp/a.ipynb".into());
            }),
            row("a save 2 h ago", Idle, "idle since", |o| {
                o.last_edit = Some(at(180))
            }),
            row(
                "a scan cut short",
                Idle,
                "the edit scan stopped at its bound",
                |o| o.edit_scan_cut = true,
            ),
            row("a save from the future", Idle, "idle since", |o| {
                o.last_edit = Some(at(900))
            }),
            row(
                "CPU at 180 %",
                Active,
                "CPU 180 % outside Jupyter (threshold 20 %)",
                |o| o.cpu_outside_pct = Some(180),
            ),
            row("CPU under the threshold", Idle, "idle since", |o| {
                o.cpu_outside_pct = Some(19)
            }),
            row("the first CPU reading", Idle, "idle since", |o| {
                o.cpu_outside_pct = None
            }),
            row("a hold for later", Active, "held by nbfleet-busy until", |o| {
                o.hold = Some(hold(Some(400), "held for 3h"))
            }),
            row("a command hold", Active, "while `python train.py` runs", |o| {
                o.hold = Some(hold(None, "python train.py"))
            }),
            row(
                "a hold that ended 10 min ago",
                Active,
                "an nbfleet-busy hold ended at",
                |o| o.hold_ended = Some(at(290)),
            ),
            row("a hold that ended long ago", Idle, "idle since", |o| {
                o.hold_ended = Some(at(100))
            }),
            row(
                "a MIG GPU with processes",
                Active,
                "2 compute processes on a GPU that reports no utilisation",
                |o| {
                    o.gpu_utilization = vec![None];
                    o.gpu_processes = 2;
                },
            ),
            row("a MIG GPU without processes", Idle, "idle since", |o| {
                o.gpu_utilization = vec![None]
            }),
            row(
                "GPUs that cannot be read",
                Unknown,
                "the GPUs could not be read",
                |o| o.gpu_error = Some("NVIDIA-SMI has failed".into()),
            ),
            row(
                "GPUs that cannot be read and a busy kernel",
                Active,
                "1 of 1 kernels are busy",
                |o| {
                    o.gpu_error = Some("NVIDIA-SMI has failed".into());
                    o.busy_kernels = 1;
                },
            ),
            row(
                "Jupyter down, nothing else",
                Idle,
                "Jupyter does not answer (refused); idle since",
                |o| {
                    *o = Observation {
                        jupyter_down: Some("refused".into()),
                        ..Default::default()
                    }
                },
            ),
            row(
                "Jupyter down, CPU busy",
                Active,
                "Jupyter does not answer (refused); CPU 90 %",
                |o| {
                    *o = Observation {
                        jupyter_down: Some("refused".into()),
                        cpu_outside_pct: Some(90),
                        ..Default::default()
                    }
                },
            ),
            row(
                "Jupyter down, a recent save",
                Active,
                "Jupyter does not answer (refused); editing",
                |o| {
                    *o = Observation {
                        jupyter_down: Some("refused".into()),
                        last_edit: Some(at(295)),
                        last_edit_path: Some("a.py".into()),
                        ..Default::default()
                    }
                },
            ),
        ];
        let mut off = row("CPU with the signal off", Idle, "idle since", |o| {
            o.cpu_outside_pct = Some(500)
        });
        off.policy.cpu_threshold_pct = 0;
        let mut strict = row("a GPU under a raised threshold", Idle, "idle since", |o| {
            o.gpu_utilization = vec![Some(40)]
        });
        strict.policy.gpu_threshold_pct = 50;
        let mut seen = row(
            "seen active 10 min ago by a round",
            Active,
            "last seen active at",
            |_| {},
        );
        seen.last_active_at = Some(290);
        rows.extend([off, strict, seen]);
        for r in rows {
            let mut c = ctx(300);
            c.last_active_at = r.last_active_at.map(at);
            let d = decide(&r.policy, &Probe::Seen(r.obs.clone()), &c);
            assert_eq!(d.verdict, r.verdict, "{}: {}", r.name, d.reason);
            assert!(d.reason.contains(r.says), "{}: {}", r.name, d.reason);
            // An open tab that polls changes nothing unless the notebook counts connections.
            let tab = Observation {
                connections: 2,
                server_activity: Some(at(299)),
                ..r.obs.clone()
            };
            let with_tab = decide(&r.policy, &Probe::Seen(tab), &c);
            assert_eq!(
                with_tab.verdict, r.verdict,
                "{} with a tab: {}",
                r.name, with_tab.reason
            );
        }
    }

    #[test]
    fn work_that_ends_is_written_at_once_and_a_verdict_that_holds_every_30_minutes() {
        let busy = Observation {
            cpu_outside_pct: Some(150),
            ..idle_obs()
        };
        let d = decide(&policy(), &Probe::Seen(busy.clone()), &ctx(100));
        assert!(d.active_now);
        let first = status_update(None, &d, &Probe::Seen(busy.clone()), at(100));
        assert_eq!(first.status.last_active_at, Some(at(100)));
        assert_eq!(first.status.checked_at, Some(at(100)));
        let d = decide(&policy(), &Probe::Seen(busy.clone()), &ctx(105));
        let held = status_update(Some(&first.status), &d, &Probe::Seen(busy), at(105));
        assert!(!held.changed);
        assert!(!write_due(&held, at(100), at(129)), "not again within 30 minutes");
        assert!(write_due(&held, at(100), at(130)), "refreshed after 30 minutes");
        // The CPU job ends. The record still holds the first write (active now at 100): idle
        // time counts from this round, never from the last write, and this round is written.
        let mut nb = crate::record::tests::sample(at(0));
        nb.running_since = Some(at(0));
        nb.idle_status = Some(first.status.clone());
        let c = Timeline::of(&nb, at(135));
        assert_eq!(c.last_active_at, Some(at(135)));
        let d = decide(&policy(), &Probe::Seen(idle_obs()), &c);
        assert_eq!(d.verdict, Verdict::Active, "{}", d.reason);
        let ended = status_update(nb.idle_status.as_ref(), &d, &Probe::Seen(idle_obs()), at(135));
        assert!(ended.changed, "{ended:?}");
        assert!(!ended.status.active_now);
        assert_eq!(ended.status.last_active_at, Some(at(135)));
    }

    fn decided(verdict: Verdict, action: Action, planned: Option<i64>) -> Decision {
        Decision {
            verdict,
            action,
            reason: "why".into(),
            planned_stop: planned.map(at),
            last_active: None,
            active_now: false,
        }
    }

    #[test]
    fn a_verdict_that_holds_is_not_written_again_even_as_its_planned_stop_moves() {
        let first = status_update(
            None,
            &decided(Verdict::Active, Action::None, Some(60)),
            &Probe::Seen(idle_obs()),
            at(1),
        );
        assert!(first.changed, "the first verdict is written");
        let again = status_update(
            Some(&first.status),
            &decided(Verdict::Active, Action::None, Some(65)),
            &Probe::Seen(idle_obs()),
            at(6),
        );
        assert!(!again.changed, "{again:?}");
    }

    #[test]
    fn a_warning_is_kept_while_its_stop_is_the_plan_and_unknowns_are_counted() {
        let warn = decided(Verdict::Idle, Action::Warn { stop_at: at(70) }, Some(70));
        let warned = status_update(None, &warn, &Probe::Seen(idle_obs()), at(60));
        assert_eq!(warned.status.warned_stop_at, Some(at(70)));
        let held = status_update(
            Some(&warned.status),
            &decided(Verdict::Idle, Action::None, Some(70)),
            &Probe::Seen(idle_obs()),
            at(61),
        );
        assert_eq!((held.status.warned_stop_at, held.changed), (Some(at(70)), false));
        let moved = status_update(
            Some(&warned.status),
            &decided(Verdict::Active, Action::None, Some(90)),
            &Probe::Seen(idle_obs()),
            at(61),
        );
        assert_eq!((moved.status.warned_stop_at, moved.changed), (None, true));
        let lost = Probe::Unknown("late".into());
        let one = status_update(
            Some(&held.status),
            &decided(Verdict::Unknown, Action::None, None),
            &lost,
            at(62),
        );
        let two = status_update(
            Some(&one.status),
            &decided(Verdict::Unknown, Action::None, None),
            &lost,
            at(63),
        );
        assert_eq!(
            (one.status.unknowns, one.changed, two.status.unknowns, two.changed),
            (1, true, 2, false)
        );
        assert!(two.streak_grew);
        // A probe that keeps failing is written once an hour, not every round.
        assert!(!write_due(&two, at(0), at(59)));
        assert!(write_due(&two, at(0), at(60)));
        assert!(
            write_due(&one, at(0), at(1)),
            "the streak's start is written at once"
        );
    }

    #[test]
    fn a_snooze_never_shortens_an_earlier_one_and_voids_the_warning() {
        let mut nb = crate::record::tests::sample(at(0));
        nb.idle_status = Some(IdleStatus {
            verdict: Verdict::Idle,
            reason: "idle".into(),
            planned_stop: Some(at(70)),
            warned_stop_at: Some(at(70)),
            unknowns: 0,
            warning_untold: false,
            checked_at: None,
            last_active_at: None,
            active_now: false,
            jupyter_restarted_at: None,
            stopped_automatically: false,
        });
        let long = snoozed(&nb, 120, at(60));
        assert_eq!(long.snoozed_until, Some(at(180)));
        let status = long.idle_status.clone().unwrap();
        assert_eq!(
            (status.warned_stop_at, status.planned_stop),
            (None, Some(at(180)))
        );
        assert_eq!(status.reason, "extended by 120 minutes");
        let short = snoozed(&long, 10, at(61));
        assert_eq!(
            short.snoozed_until,
            Some(at(180)),
            "a shorter snooze keeps the longer one"
        );
        assert_eq!(short.version, nb.version + 2);
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::*;
    use crate::schedule::Schedule;

    fn office() -> IdlePolicy {
        IdlePolicy {
            idle_timeout_minutes: 60,
            count_connections: false,
            gpu_threshold_pct: 10,
            cpu_threshold_pct: 20,
            max_runtime_minutes: 0,
            runtime_ceiling_minutes: 0,
            warning_minutes: 10,
            schedule: Some(
                Schedule::parse(&serde_json::json!({"tz": "Europe/Paris",
                    "windows": [{"days": "Mon-Fri", "from": "08:00", "to": "20:00"}]}))
                .unwrap(),
            ),
            instance_fallback_minutes: 0,
        }
    }

    fn busy() -> Probe {
        Probe::Seen(Observation {
            kernels: 1,
            busy_kernels: 1,
            ..Default::default()
        })
    }

    fn ctx(now: &str, warned: Option<&str>) -> Timeline {
        Timeline {
            now: now.parse().unwrap(),
            running_since: Some("2026-03-30T06:00:00Z".parse().unwrap()),
            snoozed_until: None,
            warned_stop_at: warned.map(|w| w.parse().unwrap()),
            last_active_at: None,
        }
    }

    #[test]
    fn a_busy_notebook_is_warned_before_its_window_closes_then_stopped() {
        // Monday 2026-03-30, Paris is UTC+2: the window closes at 18:00Z.
        let d = decide(&office(), &busy(), &ctx("2026-03-30T17:52:00Z", None));
        assert_eq!(
            d.action,
            Action::Warn {
                stop_at: "2026-03-30T18:02:00Z".parse().unwrap()
            }
        );
        assert!(
            d.reason
                .contains("its schedule (Mon-Fri 08:00-20:00 Europe/Paris) closes"),
            "{}",
            d.reason
        );
        let d = decide(
            &office(),
            &busy(),
            &ctx("2026-03-30T18:02:00Z", Some("2026-03-30T18:02:00Z")),
        );
        assert_eq!(d.action, Action::Stop);
    }

    #[test]
    fn outside_its_window_a_notebook_is_warned_and_then_stopped() {
        // Saturday: outside every window.
        let d = decide(&office(), &busy(), &ctx("2026-03-28T10:00:00Z", None));
        assert_eq!(
            d.action,
            Action::Warn {
                stop_at: "2026-03-28T10:10:00Z".parse().unwrap()
            }
        );
        assert!(d.reason.contains("outside its schedule"), "{}", d.reason);
    }

    #[test]
    fn the_window_follows_the_dst_change() {
        // Friday 2026-03-27 is still UTC+1: the window closes at 19:00Z, so 18:30Z is no warning.
        let d = decide(&office(), &busy(), &ctx("2026-03-27T18:30:00Z", None));
        assert_eq!(
            (d.action, d.planned_stop),
            (Action::None, Some("2026-03-27T19:00:00Z".parse().unwrap()))
        );
    }

    #[test]
    fn a_window_opening_starts_a_notebook_stopped_before_it_only_when_asked() {
        let mut policy = office();
        let monday_0830 = "2026-03-30T06:30:00Z".parse().unwrap();
        let friday_evening = "2026-03-27T19:05:00Z".parse().unwrap();
        let monday_0815 = "2026-03-30T06:15:00Z".parse().unwrap();
        assert_eq!(
            start_due(&policy, friday_evening, monday_0830),
            None,
            "off by default"
        );
        policy.schedule.as_mut().unwrap().start_at_open = true;
        let why = start_due(&policy, friday_evening, monday_0830).unwrap();
        assert!(why.contains("opened at 06:00 UTC"), "{why}");
        // Stopped by hand inside the window: left alone. Outside any window: nothing to do.
        assert_eq!(start_due(&policy, monday_0815, monday_0830), None);
        assert_eq!(
            start_due(&policy, friday_evening, "2026-03-28T10:00:00Z".parse().unwrap()),
            None
        );
    }
}
