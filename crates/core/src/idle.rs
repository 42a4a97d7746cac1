//! The idle policy: a pure function of (record, observation, now) → (verdict, action, reason,
//! planned stop). It decides whether a running notebook is working, and when it stops.
//!
//! What counts as activity (docs/idle.md): a busy kernel (a silent cell keeps its
//! `last_activity` frozen at the cell's start, so busy itself counts), a kernel's or a
//! terminal's activity within the timeout, GPU utilisation at or above the threshold. An open
//! browser tab does **not** count unless the notebook opts in (`count_connections`): JupyterLab
//! polls every ≈ 10 s, and counting that would keep a forgotten tab's GPU running all night.
//!
//! A probe that failed, came late, could not be parsed, or whose agent is offline is
//! **unknown**, and unknown is never idle. The runtime cap applies regardless. Every automatic
//! stop is announced first: a warning at `warning_minutes` before, which `extend` can snooze.

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
    /// Utilisation per GPU, in percent; empty without a GPU.
    pub gpu_utilization: Vec<u32>,
}

/// The probe's result for one instance in one sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Active,
    Idle,
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
    /// When it will stop if nothing changes.
    pub planned_stop: Option<Timestamp>,
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
fn ongoing(obs: &Observation, policy: &IdlePolicy) -> Option<String> {
    if obs.busy_kernels > 0 {
        return Some(format!(
            "{} of {} kernels are busy",
            obs.busy_kernels, obs.kernels
        ));
    }
    if let Some(max) = obs
        .gpu_utilization
        .iter()
        .max()
        .filter(|u| **u >= policy.gpu_threshold_pct)
    {
        return Some(format!(
            "GPU utilisation is {max} % (threshold {} %)",
            policy.gpu_threshold_pct
        ));
    }
    if policy.count_connections && obs.connections > 0 {
        return Some(format!(
            "{} browser connections are open (counted for this notebook)",
            obs.connections
        ));
    }
    None
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

    let (verdict, idle_stop, why) = match probe {
        Probe::Unknown(cause) => (
            Verdict::Unknown,
            None,
            format!("the probe gave no answer ({cause}); unknown is never idle"),
        ),
        Probe::Seen(obs) => match ongoing(obs, policy) {
            Some(why) => (Verdict::Active, None, why),
            None => {
                // Idle time counts from the latest of: activity, the last start, the last extend.
                let last = [obs.kernel_activity, obs.terminal_activity, ctx.running_since]
                    .into_iter()
                    .chain(policy.count_connections.then_some(obs.server_activity))
                    .flatten()
                    .filter(|t| *t <= now)
                    .max()
                    .unwrap_or(now);
                let stop = snooze(last + mins(policy.idle_timeout_minutes));
                if now < stop - lead {
                    let why = format!(
                        "last activity at {}, within the {} minute timeout",
                        hhmm(last),
                        policy.idle_timeout_minutes
                    );
                    (Verdict::Active, Some(stop), why)
                } else {
                    let why = format!(
                        "idle since {}: no busy kernel, no GPU use, no kernel or terminal activity",
                        hhmm(last)
                    );
                    (Verdict::Idle, Some(stop), why)
                }
            }
        },
    };

    // The schedule: outside its windows a notebook stops (after the warning); inside, at the
    // window's close.
    let window = policy
        .schedule
        .as_ref()
        .map(|sch| snooze(sch.closes_at(now).unwrap_or(now)));
    let (planned, cause) = [
        (idle_stop, Cause::Idle),
        (cap, Cause::Cap),
        (window, Cause::Schedule),
    ]
    .into_iter()
    .filter_map(|(t, c)| Some((t?, c)))
    .min_by_key(|(t, _)| *t)
    .map_or((None, Cause::Idle), |(t, c)| (Some(t), c));
    let cap_note = |r: String| match cause {
        Cause::Idle => r,
        Cause::Cap => {
            let ran = match (ctx.running_since, planned) {
                (Some(since), Some(stop)) => stop.duration_since(since).as_mins(),
                _ => i64::from(policy.max_runtime_minutes),
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
    let Some(planned) = planned else {
        return Decision {
            verdict,
            action: Action::None,
            reason: why,
            planned_stop: None,
        };
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
    let reason = match action {
        Action::Stop => cap_note(format!("stopped: {why}")),
        _ => cap_note(format!("{why}; stops at {} unless extended", hhmm(planned_stop))),
    };
    let planned_stop = Some(planned_stop);
    Decision {
        verdict,
        action,
        reason,
        planned_stop,
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
        }
    }
}

/// What a round's decision leaves on the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub status: IdleStatus,
    /// Whether the conclusion changed (verdict, warning, the start of an unknown streak): then
    /// the record is written and a history entry kept. The planned stop moving with activity
    /// is no change, so a notebook in use costs no write per round, and the reason on the
    /// record is the one given when the verdict last changed.
    pub changed: bool,
    /// The probe failed again in a streak already recorded: written at most once an hour
    /// ([`write_due`]), so a notebook whose probe keeps failing costs no write per round.
    pub streak_grew: bool,
}

/// How often a growing unknown streak alone is written.
pub const UNKNOWN_STREAK_WRITE_EVERY: SignedDuration = SignedDuration::from_hours(1);

/// Whether `update` is to be written, for a record last written at `written_at`.
pub fn write_due(update: &StatusUpdate, written_at: Timestamp, now: Timestamp) -> bool {
    update.changed || (update.streak_grew && now.duration_since(written_at) >= UNKNOWN_STREAK_WRITE_EVERY)
}

/// The idle status to store after `decision`, given the `previous` one and whether the probe
/// answered.
pub fn status_update(previous: Option<&IdleStatus>, decision: &Decision, probe: &Probe) -> StatusUpdate {
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
    };
    status.warning_untold = match decision.action {
        Action::Warn { .. } => true,
        _ => status.warned_stop_at.is_some() && previous.is_some_and(|p| p.warning_untold),
    };
    let streak_began = |p: &IdleStatus| (p.unknowns == 0) != (status.unknowns == 0);
    let changed = previous.is_none_or(|p| {
        (p.verdict, p.warned_stop_at) != (status.verdict, status.warned_stop_at) || streak_began(p)
    });
    let streak_grew = previous.is_some_and(|p| p.unknowns > 0 && status.unknowns > p.unknowns);
    StatusUpdate {
        status,
        changed,
        streak_grew,
    }
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
            gpu_utilization: vec![0, 97],
            ..idle_obs()
        };
        let d = decide(&policy(), &Probe::Seen(obs), &ctx(300));
        assert_eq!(d.verdict, Verdict::Active);
        assert!(d.reason.contains("97 %"), "{}", d.reason);
        let below = Observation {
            gpu_utilization: vec![9],
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
            (Verdict::Active, Action::None, Some(at(65)))
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
        assert_eq!(
            (d.verdict, d.action, d.planned_stop),
            (Verdict::Active, Action::None, Some(at(440)))
        );
    }

    #[test]
    fn a_snooze_moves_the_stop_and_voids_an_earlier_warning() {
        let mut c = ctx(64);
        c.warned_stop_at = Some(at(66));
        c.snoozed_until = Some(at(124));
        let d = decide(&policy(), &Probe::Seen(idle_obs()), &c);
        assert_eq!((d.action, d.planned_stop), (Action::None, Some(at(124))));
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

    fn decided(verdict: Verdict, action: Action, planned: Option<i64>) -> Decision {
        Decision {
            verdict,
            action,
            reason: "why".into(),
            planned_stop: planned.map(at),
        }
    }

    #[test]
    fn a_verdict_that_holds_is_not_written_again_even_as_its_planned_stop_moves() {
        let first = status_update(
            None,
            &decided(Verdict::Active, Action::None, Some(60)),
            &Probe::Seen(idle_obs()),
        );
        assert!(first.changed, "the first verdict is written");
        let again = status_update(
            Some(&first.status),
            &decided(Verdict::Active, Action::None, Some(65)),
            &Probe::Seen(idle_obs()),
        );
        assert!(!again.changed, "{again:?}");
    }

    #[test]
    fn a_warning_is_kept_while_its_stop_is_the_plan_and_unknowns_are_counted() {
        let warn = decided(Verdict::Idle, Action::Warn { stop_at: at(70) }, Some(70));
        let warned = status_update(None, &warn, &Probe::Seen(idle_obs()));
        assert_eq!(warned.status.warned_stop_at, Some(at(70)));
        let held = status_update(
            Some(&warned.status),
            &decided(Verdict::Idle, Action::None, Some(70)),
            &Probe::Seen(idle_obs()),
        );
        assert_eq!((held.status.warned_stop_at, held.changed), (Some(at(70)), false));
        let moved = status_update(
            Some(&warned.status),
            &decided(Verdict::Active, Action::None, Some(90)),
            &Probe::Seen(idle_obs()),
        );
        assert_eq!((moved.status.warned_stop_at, moved.changed), (None, true));
        let lost = Probe::Unknown("late".into());
        let one = status_update(
            Some(&held.status),
            &decided(Verdict::Unknown, Action::None, None),
            &lost,
        );
        let two = status_update(
            Some(&one.status),
            &decided(Verdict::Unknown, Action::None, None),
            &lost,
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
