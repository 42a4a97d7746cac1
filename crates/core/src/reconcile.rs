//! Keeping records true to EC2, as pure decisions: what EC2's view of an instance means for
//! its record (reconcile), and when an in-flight record has waited too long (deadlines).
//! The sweep applies them; EC2 is the truth for what runs.

use crate::ports::InstanceState;
use crate::record::Notebook;
use crate::state::State;
use jiff::{SignedDuration, Timestamp};

/// What EC2 says about a record's instance, as the EC2 event that would have said it, if the
/// record does not already agree. `None`: nothing to do.
pub fn drift(nb: &Notebook, ec2: Option<InstanceState>) -> Option<InstanceState> {
    let ec2 = match ec2 {
        // Gone from EC2 (or never there after a launch): as good as terminated.
        None if nb.instance_id.is_some() => InstanceState::Terminated,
        None => return None,
        Some(s) => s,
    };
    match (nb.state, ec2) {
        (State::Terminated, _) => None,
        (_, InstanceState::Terminated | InstanceState::ShuttingDown) => Some(InstanceState::Terminated),
        // Stopped in the console or from inside the OS.
        (s, InstanceState::Stopped) if s.may_be_running() => Some(InstanceState::Stopped),
        // Started by hand outside nbfleet, or a launch whose running event was lost.
        (State::Stopped | State::Launching, InstanceState::Running) => Some(InstanceState::Running),
        _ => None,
    }
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

/// Whether `nb` has been in its in-flight state past its deadline at `now`.
pub fn overdue(nb: &Notebook, now: Timestamp) -> bool {
    deadline(nb.state).is_some_and(|d| now.duration_since(nb.state_since) > d)
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

    #[test]
    fn terminated_behind_our_back_becomes_terminated() {
        assert_eq!(
            drift(&nb(State::Ready), Some(InstanceState::Terminated)),
            Some(InstanceState::Terminated)
        );
        assert_eq!(drift(&nb(State::Stopped), None), Some(InstanceState::Terminated));
        assert_eq!(drift(&nb(State::Terminated), None), None);
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
                drift(&nb(s), Some(InstanceState::Stopped)),
                Some(InstanceState::Stopped),
                "{s}"
            );
        }
        assert_eq!(drift(&nb(State::Stopped), Some(InstanceState::Stopped)), None);
        assert_eq!(drift(&nb(State::Failed), Some(InstanceState::Stopped)), None);
    }

    #[test]
    fn started_by_hand_is_configured_again() {
        assert_eq!(
            drift(&nb(State::Stopped), Some(InstanceState::Running)),
            Some(InstanceState::Running)
        );
        assert_eq!(drift(&nb(State::Ready), Some(InstanceState::Running)), None);
    }

    #[test]
    fn a_record_without_an_instance_has_no_drift() {
        let mut pending = nb(State::Pending);
        pending.instance_id = None;
        assert_eq!(drift(&pending, None), None);
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
}
