//! The lifecycle states of a notebook and which moves between them are legal.
//!
//! This is the state machine of docs/states.md. User requests (start, stop, delete, extend) are
//! decided in `transitions.rs`; this file answers the lower-level question every conditional
//! write asks: may a record in state A become state B at all?

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a notebook is in its life. Stored in DynamoDB by its name (`"Ready"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    /// The record is written; no instance has been asked for yet.
    Pending,
    /// RunInstances succeeded; waiting for the instance to run.
    Launching,
    /// The instance runs; the bootstrap or health check is in flight over SSM.
    Configuring,
    /// Jupyter answers over HTTPS.
    Ready,
    Stopping,
    Stopped,
    Starting,
    /// Something went wrong. The instance is always stopped in this state.
    Failed,
    Terminating,
    /// The instance is gone. The record stays, with its snapshot and history.
    Terminated,
}

impl State {
    pub const ALL: [State; 10] = [
        State::Pending,
        State::Launching,
        State::Configuring,
        State::Ready,
        State::Stopping,
        State::Stopped,
        State::Starting,
        State::Failed,
        State::Terminating,
        State::Terminated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "Pending",
            State::Launching => "Launching",
            State::Configuring => "Configuring",
            State::Ready => "Ready",
            State::Stopping => "Stopping",
            State::Stopped => "Stopped",
            State::Starting => "Starting",
            State::Failed => "Failed",
            State::Terminating => "Terminating",
            State::Terminated => "Terminated",
        }
    }

    /// States in which work is under way and a deadline applies (the sweep re-drives them).
    pub fn is_in_flight(self) -> bool {
        matches!(
            self,
            State::Pending
                | State::Launching
                | State::Configuring
                | State::Starting
                | State::Stopping
                | State::Terminating
        )
    }

    /// States in which the instance may be running and costing money.
    pub fn may_be_running(self) -> bool {
        matches!(
            self,
            State::Launching | State::Configuring | State::Ready | State::Starting | State::Stopping
        )
    }

    /// Whether a record may move from `self` to `to`. Moving to the same state is not a move.
    pub fn can_move_to(self, to: State) -> bool {
        use State::*;
        if self == to {
            return false;
        }
        match (self, to) {
            // Anything not yet gone can fail or be deleted.
            (Terminating | Terminated, Failed) => false,
            (_, Failed) => true,
            (Terminated, _) => false,
            (_, Terminating) => true,
            (Terminating, Terminated) => true,
            // The instance can vanish out of band from any state.
            (_, Terminated) => true,
            (Pending, Launching) => true,
            (Launching, Configuring) => true,
            (Configuring, Ready) => true,
            (Configuring | Ready | Starting, Stopping) => true,
            // An instance stopped from inside the OS or the console skips Stopping.
            (Launching | Configuring | Ready | Starting | Stopping, Stopped) => true,
            (Stopped | Failed, Starting) => true,
            (Starting, Configuring) => true,
            // Started by hand outside nbfleet: the next configure pass checks its health.
            (Stopped | Stopping, Configuring) => true,
            _ => false,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown state {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;

    #[test]
    fn the_happy_path_is_legal() {
        let path = [
            Pending,
            Launching,
            Configuring,
            Ready,
            Stopping,
            Stopped,
            Starting,
            Configuring,
            Ready,
        ];
        for pair in path.windows(2) {
            assert!(pair[0].can_move_to(pair[1]), "{} -> {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn any_live_state_can_fail_or_be_deleted() {
        for s in State::ALL {
            if s != Terminating && s != Terminated && s != Failed {
                assert!(s.can_move_to(Failed), "{s} -> Failed");
            }
            if s != Terminated && s != Terminating {
                assert!(s.can_move_to(Terminating), "{s} -> Terminating");
            }
        }
    }

    #[test]
    fn terminated_is_final_and_a_state_never_moves_to_itself() {
        for s in State::ALL {
            assert!(!Terminated.can_move_to(s), "Terminated -> {s}");
            assert!(!s.can_move_to(s), "{s} -> {s}");
        }
    }

    #[test]
    fn ready_cannot_skip_back_to_launching() {
        assert!(!Ready.can_move_to(Launching));
        assert!(!Stopped.can_move_to(Ready));
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for s in State::ALL {
            assert_eq!(s.as_str().parse::<State>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert!("ready".parse::<State>().is_err());
    }
}
