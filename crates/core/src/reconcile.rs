//! Keeping records true to EC2, as pure decisions: what an EC2 state means for a record
//! ([`on_ec2_state`], shared by the EC2 event and reconcile), what EC2's view of an instance
//! says was missed ([`drift`]), and what to do with an in-flight record that has waited too
//! long ([`overdue_step`]). The use cases apply them; EC2 is the truth for what runs.

use crate::error::Result;
use crate::ports::{Instance, InstanceState};
use crate::record::{Failure, Notebook};
use crate::state::State;
use jiff::{SignedDuration, Timestamp};

/// What an EC2 state change means for the record of its instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ec2Step {
    /// Running where the record waits for it: send the bootstrap or the health check.
    Configure,
    /// Write this record: the way down, as EC2 shows it.
    Write(Box<Notebook>),
    /// The instance is gone: clean up after it and record Terminated.
    FinishTermination,
    /// Nothing to do, and why (a duplicate, or a state already reached).
    Nothing(String),
}

/// What EC2 saying `state` (at `seen_at`, when the event says) means for `nb` at `now`.
///
/// Why a notebook that was Ready went down without nbfleet asking: its record says so, and its
/// owner is told ([`stopped_from_outside`]).
pub const STOPPED_OUTSIDE: &str = "stopped outside nbfleet: from the EC2 console or API, or by the \
                                   machine itself (a shutdown, or the on-instance idle fallback)";
/// The same while it was being configured: most often nbfleet's own stop of a failed
/// configuration, whose events can beat the Failed write, so nobody is told of it.
const STOPPED_WHILE_CONFIGURING: &str = "stopped outside nbfleet while it was being configured";

/// Whether the move from `prev` to `next` is a Ready notebook reaching Stopped that nbfleet did
/// not stop: news to its owner, told once (at Stopped, when a Start can be pressed).
pub fn stopped_from_outside(prev: &Notebook, next: &Notebook) -> bool {
    prev.state != State::Stopped
        && next.state == State::Stopped
        && next
            .idle_status
            .as_ref()
            .is_some_and(|s| s.reason == STOPPED_OUTSIDE)
}

/// A "running" older than the stop a Stopping or Stopped record went through is late (events
/// come out of order, and twice): it says nothing about the instance now; so is a "stopping" or
/// "stopped" older than the start a Starting, Configuring or Ready record went through (a stop
/// before a restart, delivered after it). Event times are whole seconds, so within a second of
/// the record's move it is taken as new. Reconcile's look (no event time) is never late.
pub fn on_ec2_state(
    nb: &Notebook,
    state: InstanceState,
    seen_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<Ec2Step> {
    let moved = |to: State| -> Result<Ec2Step> {
        let mut next = nb.moved_to(to, now)?;
        next.pending_command = None;
        // Not a stop nbfleet asked for (that one is Stopping already): say so.
        let why = match nb.state {
            State::Ready => Some(STOPPED_OUTSIDE),
            State::Configuring => Some(STOPPED_WHILE_CONFIGURING),
            _ => None,
        };
        if let Some(why) = why {
            next.idle_status = Some(crate::idle::stopped_by(nb.idle_status.as_ref(), why.into(), now));
        }
        if to == State::Stopped {
            next.stopped_running(now);
            next.connect = None;
        }
        Ok(Ec2Step::Write(Box::new(next)))
    };
    match state {
        InstanceState::Running if nb.awaits_pre_stop_hook() => Ok(Ec2Step::Nothing(format!(
            "{} runs its pre-stop hook; the stop follows it",
            nb.name
        ))),
        InstanceState::Running => match nb.state {
            State::Stopped | State::Stopping
                if seen_at.is_some_and(|at| at + SignedDuration::from_secs(1) < nb.state_since) =>
            {
                Ok(Ec2Step::Nothing(format!(
                    "{} is {} since {}; a running from before that is late",
                    nb.name, nb.state, nb.state_since
                )))
            }
            State::Launching | State::Starting | State::Stopped | State::Stopping => Ok(Ec2Step::Configure),
            s => Ok(Ec2Step::Nothing(format!(
                "{} is {s}; running changes nothing",
                nb.name
            ))),
        },
        InstanceState::Stopping | InstanceState::Stopped
            if matches!(nb.state, State::Starting | State::Configuring | State::Ready)
                && seen_at.is_some_and(|at| at + SignedDuration::from_secs(1) < nb.state_since) =>
        {
            Ok(Ec2Step::Nothing(format!(
                "{} is {} since {}; a {state:?} from before that is late",
                nb.name, nb.state, nb.state_since
            )))
        }
        InstanceState::Stopped if nb.state.may_be_running() => moved(State::Stopped),
        // Stopped or terminated outside nbfleet: show the way down as it happens.
        InstanceState::Stopping if matches!(nb.state, State::Configuring | State::Ready) => {
            moved(State::Stopping)
        }
        InstanceState::ShuttingDown if !matches!(nb.state, State::Terminating | State::Terminated) => {
            moved(State::Terminating)
        }
        InstanceState::Terminated if nb.state != State::Terminated => Ok(Ec2Step::FinishTermination),
        s => Ok(Ec2Step::Nothing(format!(
            "{} is {}; EC2 {s:?} changes nothing",
            nb.name, nb.state
        ))),
    }
}

/// `nb` as Terminated at `now`: nothing runs, nothing is awaited, there is no way in.
pub fn terminated(nb: &Notebook, now: Timestamp) -> Result<Notebook> {
    let mut next = nb.moved_to(State::Terminated, now)?;
    next.stopped_running(now);
    if next.disk_created_at.is_some() {
        next.disk_deleted_at.get_or_insert(now);
    }
    next.pending_command = None;
    next.connect = None;
    // Terminated outside nbfleet while a snapshot was owed: the disk is gone, nothing is owed.
    next.snapshot_owed = false;
    Ok(next)
}

/// How long after a record's last move an instance EC2 does not know may be a lag of
/// DescribeInstances (eventually consistent: a new instance can be missing for a while)
/// rather than gone.
pub const NOT_FOUND_GRACE: SignedDuration = SignedDuration::from_mins(5);

/// What EC2 says about a record's instance (`None`: not found, even asked by its id), as the
/// EC2 event that would have said it, if the record does not already agree. `None`: nothing
/// to do.
pub fn drift(nb: &Notebook, ec2: Option<InstanceState>, now: Timestamp) -> Option<InstanceState> {
    let ec2 = match ec2 {
        // Gone from EC2 (or never there after a launch): as good as terminated, once the
        // record is old enough that EC2 would know its instance.
        None if nb.instance_id.is_some() && now.duration_since(nb.state_since) > NOT_FOUND_GRACE => {
            InstanceState::Terminated
        }
        None => return None,
        Some(s) => s,
    };
    match (nb.state, ec2) {
        (State::Terminated, _) => None,
        (_, InstanceState::Terminated | InstanceState::ShuttingDown) => Some(InstanceState::Terminated),
        // Stopped in the console or from inside the OS.
        (s, InstanceState::Stopped) if s.may_be_running() => Some(InstanceState::Stopped),
        // Started by hand outside nbfleet, or a launch or start whose running event was lost or
        // whose configure could not be sent.
        (State::Stopped | State::Launching | State::Starting, InstanceState::Running) => {
            Some(InstanceState::Running)
        }
        _ => None,
    }
}

/// Whether EC2 runs an instance that `nb` says must not run: a Failed record's (Failed always
/// means nothing runs, but the deadline pass claims Failed before it stops, and a stop can
/// fail; or someone started it in the console). The sweep stops it.
pub fn runs_when_failed(nb: &Notebook, ec2: Option<InstanceState>) -> bool {
    nb.state == State::Failed
        && nb.instance_id.is_some()
        && matches!(ec2, Some(InstanceState::Pending | InstanceState::Running))
}

/// The tagged instances (`(notebook, instance)`, as the tag listing gives them) that no `live`
/// record owns and that are not on their way out: orphans. A launch that died after
/// RunInstances, a relaunch that lost the race, a record deleted by hand leave them.
pub fn orphans<'a>(tagged: &'a [(String, Instance)], live: &[Notebook]) -> Vec<&'a Instance> {
    let owned: std::collections::HashSet<&str> =
        live.iter().filter_map(|nb| nb.instance_id.as_deref()).collect();
    tagged
        .iter()
        .map(|(_, i)| i)
        .filter(|i| !owned.contains(i.id.as_str()) && !i.state.is_gone())
        .collect()
}

/// Whether the sweep stops `orphan` at `now`: it runs, and has run past `grace` (a launch in
/// flight has its instance before its record names it). Never terminated: its disk may hold
/// someone's work.
pub fn orphan_to_stop(orphan: &Instance, grace: SignedDuration, now: Timestamp) -> bool {
    matches!(orphan.state, InstanceState::Pending | InstanceState::Running)
        && orphan.launched_at.is_none_or(|t| now.duration_since(t) >= grace)
}

/// How long a record may sit in an in-flight state before the sweep steps in.
pub fn deadline(state: State) -> Option<SignedDuration> {
    let minutes = match state {
        State::Pending => 10,
        State::Launching => 15,
        // The bootstrap may install JupyterLab; SSM's execution timeout is 30 minutes.
        State::Configuring => 40,
        State::Starting | State::Stopping => 15,
        State::Terminating => 30,
        _ => return None,
    };
    Some(SignedDuration::from_mins(minutes))
}

/// How long past its time limit a pre-stop hook may go unreported before the stop goes on
/// without it (its status-change event lost, its agent gone).
pub const PRE_STOP_MARGIN: SignedDuration = SignedDuration::from_secs(60);

/// Whether `nb` has been in its in-flight state past its deadline at `now`. A notebook
/// waiting for its pre-stop hook has the hook's time limit plus [`PRE_STOP_MARGIN`].
pub fn overdue(nb: &Notebook, now: Timestamp) -> bool {
    let limit = match nb.awaits_pre_stop_hook() {
        true => Some(SignedDuration::from_secs(nb.hooks.pre_stop_timeout_seconds.into()) + PRE_STOP_MARGIN),
        false => deadline(nb.state),
    };
    limit.is_some_and(|d| now.duration_since(nb.state_since) > d)
}

/// What the sweep does with a record past its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverdueStep {
    /// A delete that stalled: terminate again while the instance is there, else finish it.
    DriveTermination,
    /// A stop that stalled: ask EC2 again.
    StopAgain,
    /// A pre-stop hook that never reported: stop without it.
    StopWithoutHook,
    /// Anything else: stop the instance, if any, and write this Failed record, so that a
    /// failure never burns GPU money.
    Fail(Box<Notebook>),
}

/// What to do with `nb` at `now`, if it is past its deadline.
pub fn overdue_step(nb: &Notebook, now: Timestamp) -> Result<Option<OverdueStep>> {
    if !overdue(nb, now) {
        return Ok(None);
    }
    Ok(Some(match nb.state {
        State::Terminating => OverdueStep::DriveTermination,
        State::Stopping if nb.awaits_pre_stop_hook() => OverdueStep::StopWithoutHook,
        State::Stopping if nb.instance_id.is_some() => OverdueStep::StopAgain,
        state => {
            let since = now.duration_since(nb.state_since).as_mins();
            let mut failed = nb.moved_to(State::Failed, now)?;
            failed.stopped_running(now);
            failed.pending_command = None;
            failed.failure = Some(Failure {
                reason: format!("stuck in {state} for {since} minutes; the instance was stopped"),
                exit_code: None,
                stderr_tail: None,
            });
            OverdueStep::Fail(Box::new(failed))
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample;

    fn nb(state: State) -> Notebook {
        let mut nb = sample(Timestamp::UNIX_EPOCH);
        nb.state = state;
        nb.instance_id = Some("i-1".into());
        nb
    }

    fn late() -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_hours(1)
    }

    #[test]
    fn an_instance_ec2_does_not_know_yet_is_not_terminated() {
        let young = Timestamp::UNIX_EPOCH + SignedDuration::from_mins(4);
        assert_eq!(drift(&nb(State::Launching), None, young), None);
        assert_eq!(drift(&nb(State::Ready), None, young), None);
        assert_eq!(
            drift(&nb(State::Launching), None, late()),
            Some(InstanceState::Terminated)
        );
    }

    #[test]
    fn terminated_behind_our_back_becomes_terminated() {
        assert_eq!(
            drift(&nb(State::Ready), Some(InstanceState::Terminated), late()),
            Some(InstanceState::Terminated)
        );
        assert_eq!(
            drift(&nb(State::Stopped), None, late()),
            Some(InstanceState::Terminated)
        );
        assert_eq!(drift(&nb(State::Terminated), None, late()), None);
    }

    #[test]
    fn stopped_behind_our_back_becomes_stopped() {
        for s in [
            State::Ready,
            State::Configuring,
            State::Starting,
            State::Launching,
        ] {
            assert_eq!(
                drift(&nb(s), Some(InstanceState::Stopped), late()),
                Some(InstanceState::Stopped),
                "{s}"
            );
        }
        assert_eq!(
            drift(&nb(State::Stopped), Some(InstanceState::Stopped), late()),
            None
        );
        assert_eq!(
            drift(&nb(State::Failed), Some(InstanceState::Stopped), late()),
            None
        );
    }

    #[test]
    fn started_by_hand_is_configured_again() {
        assert_eq!(
            drift(&nb(State::Stopped), Some(InstanceState::Running), late()),
            Some(InstanceState::Running)
        );
        assert_eq!(
            drift(&nb(State::Ready), Some(InstanceState::Running), late()),
            None
        );
    }

    fn instance(id: &str, state: InstanceState, launched_at: Timestamp) -> (String, Instance) {
        let i = Instance {
            id: id.into(),
            notebook: Some("nb".into()),
            owner: Some("alice".into()),
            owner_id: Some("alice".into()),
            state,
            instance_type: "g5.xlarge".into(),
            subnet_id: None,
            private_ip: None,
            public_ip: None,
            public_dns: None,
            image_id: None,
            security_group_ids: vec![],
            instance_profile: None,
            root_volume_id: None,
            launched_at: Some(launched_at),
        };
        ("nb".into(), i)
    }

    #[test]
    fn an_orphan_is_a_tagged_instance_no_live_record_owns_and_is_stopped_after_its_grace() {
        let t0 = Timestamp::UNIX_EPOCH;
        let tagged = vec![
            instance("i-1", InstanceState::Running, t0),
            instance("i-orphan", InstanceState::Running, t0),
            instance("i-going", InstanceState::ShuttingDown, t0),
            instance("i-parked", InstanceState::Stopped, t0),
        ];
        let found: Vec<&str> = orphans(&tagged, &[nb(State::Ready)])
            .iter()
            .map(|i| i.id.as_str())
            .collect();
        assert_eq!(found, ["i-orphan", "i-parked"]);
        let grace = SignedDuration::from_mins(30);
        let orphan = &tagged[1].1;
        assert!(!orphan_to_stop(orphan, grace, t0 + SignedDuration::from_mins(29)));
        assert!(orphan_to_stop(orphan, grace, t0 + SignedDuration::from_mins(30)));
        assert!(!orphan_to_stop(&tagged[3].1, grace, late()), "stopped already");
    }

    #[test]
    fn a_start_whose_configure_was_not_sent_is_driven_again() {
        assert_eq!(
            drift(&nb(State::Starting), Some(InstanceState::Running), late()),
            Some(InstanceState::Running)
        );
    }

    #[test]
    fn a_failed_record_whose_instance_runs_is_to_be_stopped() {
        assert!(runs_when_failed(&nb(State::Failed), Some(InstanceState::Running)));
        assert!(runs_when_failed(&nb(State::Failed), Some(InstanceState::Pending)));
        assert!(!runs_when_failed(
            &nb(State::Failed),
            Some(InstanceState::Stopped)
        ));
        assert!(!runs_when_failed(&nb(State::Ready), Some(InstanceState::Running)));
    }

    #[test]
    fn a_late_running_for_a_stopping_record_configures_nothing() {
        let stop = Timestamp::from_second(600).unwrap();
        let mut stopping = nb(State::Stopping);
        stopping.state_since = stop;
        let before = Some(stop - SignedDuration::from_secs(30));
        let step = on_ec2_state(&stopping, InstanceState::Running, before, stop).unwrap();
        assert!(
            matches!(step, Ec2Step::Nothing(ref why) if why.contains("late")),
            "{step:?}"
        );
        // Within the second the event's time is cut to, and after: new.
        let same_second = Some(Timestamp::from_second(600).unwrap());
        for at in [same_second, Some(stop + SignedDuration::from_secs(5)), None] {
            assert_eq!(
                on_ec2_state(&stopping, InstanceState::Running, at, stop).unwrap(),
                Ec2Step::Configure
            );
        }
        // A launch's record may be written after EC2's running: never late.
        let mut launching = nb(State::Launching);
        launching.state_since = stop;
        assert_eq!(
            on_ec2_state(&launching, InstanceState::Running, before, stop).unwrap(),
            Ec2Step::Configure
        );
    }

    #[test]
    fn a_late_stopped_for_a_starting_record_leaves_it_starting() {
        let start = Timestamp::from_second(600).unwrap();
        let mut starting = nb(State::Starting);
        starting.state_since = start;
        // The stop before this start, delivered after it.
        let before = Some(start - SignedDuration::from_secs(5));
        let step = on_ec2_state(&starting, InstanceState::Stopped, before, start).unwrap();
        assert!(
            matches!(step, Ec2Step::Nothing(ref why) if why.contains("late")),
            "{step:?}"
        );
        // A stopped from after the start (it failed to come up, or was stopped again) counts.
        for at in [Some(start + SignedDuration::from_secs(5)), None] {
            let Ec2Step::Write(next) = on_ec2_state(&starting, InstanceState::Stopped, at, start).unwrap()
            else {
                panic!("a new stopped moves the record");
            };
            assert_eq!(next.state, State::Stopped);
        }
    }

    #[test]
    fn a_stop_from_before_a_restart_delivered_after_it_leaves_the_notebook_up() {
        let restarted = Timestamp::from_second(6000).unwrap();
        let before = Some(restarted - SignedDuration::from_secs(600));
        for s in [State::Starting, State::Configuring, State::Ready] {
            let mut up = nb(s);
            up.state_since = restarted;
            for old in [InstanceState::Stopping, InstanceState::Stopped] {
                let step = on_ec2_state(&up, old, before, restarted).unwrap();
                assert!(
                    matches!(step, Ec2Step::Nothing(ref why) if why.contains("late")),
                    "{s} {old:?}: {step:?}"
                );
            }
        }
    }

    #[test]
    fn only_a_ready_notebook_stopped_from_outside_is_news_and_only_once_it_is_stopped() {
        let t = Timestamp::from_second(6000).unwrap();
        let after = |prev: &Notebook, state: InstanceState| match on_ec2_state(prev, state, None, t).unwrap()
        {
            Ec2Step::Write(next) => *next,
            other => panic!("{} stays: {other:?}", prev.state),
        };
        let walk = |from: State| {
            let prev = nb(from);
            let stopping = after(&prev, InstanceState::Stopping);
            let stopped = after(&stopping, InstanceState::Stopped);
            (
                stopped_from_outside(&prev, &stopping),
                stopped_from_outside(&stopping, &stopped),
            )
        };
        assert_eq!(walk(State::Ready), (false, true), "told at Stopped, once");
        // nbfleet's own stop of a configuration that failed races its Failed write.
        assert_eq!(walk(State::Configuring), (false, false));
        // Straight to stopped (the stopping event lost): told.
        let ready = nb(State::Ready);
        assert!(stopped_from_outside(
            &ready,
            &after(&ready, InstanceState::Stopped)
        ));
        // nbfleet's own stop (the record was Stopping already): not news.
        let mut asked = nb(State::Stopping);
        asked.idle_status = None;
        assert!(!stopped_from_outside(
            &asked,
            &after(&asked, InstanceState::Stopped)
        ));
    }

    #[test]
    fn a_record_without_an_instance_has_no_drift() {
        let mut pending = nb(State::Pending);
        pending.instance_id = None;
        assert_eq!(drift(&pending, None, late()), None);
    }

    #[test]
    fn in_flight_states_have_deadlines_and_settled_ones_do_not() {
        let mut c = nb(State::Configuring);
        assert!(!overdue(&c, Timestamp::from_second(39 * 60).unwrap()));
        assert!(overdue(&c, Timestamp::from_second(41 * 60).unwrap()));
        c.state = State::Ready;
        assert!(!overdue(&c, Timestamp::from_second(100 * 3600).unwrap()));
        for s in State::ALL {
            assert_eq!(deadline(s).is_some(), s.is_in_flight(), "{s}");
        }
    }

    #[test]
    fn running_configures_only_a_record_that_waits_for_it() {
        let t = Timestamp::from_second(60).unwrap();
        for s in [State::Launching, State::Starting, State::Stopped, State::Stopping] {
            assert_eq!(
                on_ec2_state(&nb(s), InstanceState::Running, None, t).unwrap(),
                Ec2Step::Configure,
                "{s}"
            );
        }
        let ready = on_ec2_state(&nb(State::Ready), InstanceState::Running, None, t).unwrap();
        assert!(
            matches!(ready, Ec2Step::Nothing(ref why) if why.contains("Ready")),
            "{ready:?}"
        );
    }

    #[test]
    fn the_way_down_is_written_as_ec2_shows_it() {
        let t = Timestamp::from_second(60).unwrap();
        let mut ready = nb(State::Ready);
        ready.running_since = Some(Timestamp::UNIX_EPOCH);
        let Ec2Step::Write(stopped) = on_ec2_state(&ready, InstanceState::Stopped, None, t).unwrap() else {
            panic!("a stop is written")
        };
        assert_eq!(
            (stopped.state, stopped.running_seconds, stopped.connect.clone()),
            (State::Stopped, 60, None)
        );
        let Ec2Step::Write(going) = on_ec2_state(&ready, InstanceState::ShuttingDown, None, t).unwrap()
        else {
            panic!("shutting down is written")
        };
        assert_eq!(going.state, State::Terminating);
        assert_eq!(
            on_ec2_state(&ready, InstanceState::Terminated, None, t).unwrap(),
            Ec2Step::FinishTermination
        );
        let done = on_ec2_state(&nb(State::Terminated), InstanceState::Terminated, None, t).unwrap();
        assert!(matches!(done, Ec2Step::Nothing(_)), "{done:?}");
    }

    #[test]
    fn an_overdue_record_is_driven_on_or_failed() {
        let late = Timestamp::from_second(3600).unwrap();
        assert_eq!(overdue_step(&nb(State::Ready), late).unwrap(), None);
        assert_eq!(
            overdue_step(&nb(State::Terminating), late).unwrap(),
            Some(OverdueStep::DriveTermination)
        );
        assert_eq!(
            overdue_step(&nb(State::Stopping), late).unwrap(),
            Some(OverdueStep::StopAgain)
        );
        let Some(OverdueStep::Fail(failed)) = overdue_step(&nb(State::Configuring), late).unwrap() else {
            panic!("a stuck configure fails")
        };
        assert_eq!(failed.state, State::Failed);
        let reason = failed.failure.clone().unwrap().reason;
        assert_eq!(
            reason,
            "stuck in Configuring for 60 minutes; the instance was stopped"
        );
    }
}
