//! The request table of DESIGN.md §3, as data: what `start`, `stop`, `delete` and `extend`
//! do in each state. Handlers ask [`decide`] and map its answer to HTTP; they never reimplement
//! the table.

use crate::error::Error;
use crate::state::State;
use serde::{Deserialize, Serialize};

/// A user's request on an existing notebook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Request {
    Start,
    Stop,
    Delete,
    Extend,
}

impl Request {
    pub const ALL: [Request; 4] = [Request::Start, Request::Stop, Request::Delete, Request::Extend];

    pub fn as_str(self) -> &'static str {
        match self {
            Request::Start => "start",
            Request::Stop => "stop",
            Request::Delete => "delete",
            Request::Extend => "extend",
        }
    }
}

/// What a request does in a given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted: move to this state and act (202).
    Move(State),
    /// Accepted and done in place, without a state change (`extend` on Ready): 200.
    Apply,
    /// Already there or already under way: 200, nothing changes.
    NoOp,
    /// Not possible in this state: 409.
    Refuse,
}

impl Verdict {
    /// The HTTP status this verdict answers with.
    pub fn status(self) -> u16 {
        match self {
            Verdict::Move(_) => 202,
            Verdict::Apply | Verdict::NoOp => 200,
            Verdict::Refuse => 409,
        }
    }
}

use State::*;
use Verdict::*;

/// One row per state, one column per request, in the order of [`Request::ALL`]:
/// start, stop, delete, extend. This is DESIGN.md §3's table, cell for cell.
pub const TABLE: [(State, [Verdict; 4]); 10] = [
    (Pending, [Refuse, Refuse, Move(Terminating), Refuse]),
    (Launching, [Refuse, Refuse, Move(Terminating), Refuse]),
    (Configuring, [NoOp, Move(Stopping), Move(Terminating), Refuse]),
    (Ready, [NoOp, Move(Stopping), Move(Terminating), Apply]),
    (Starting, [NoOp, Refuse, Move(Terminating), Refuse]),
    (Stopping, [Refuse, NoOp, Move(Terminating), Refuse]),
    (Stopped, [Move(Starting), NoOp, Move(Terminating), Refuse]),
    (Failed, [Move(Starting), NoOp, Move(Terminating), Refuse]),
    (Terminating, [Refuse, Refuse, NoOp, Refuse]),
    (Terminated, [Refuse, Refuse, NoOp, Refuse]),
];

/// What `request` does to a notebook in `state`.
pub fn decide(state: State, request: Request) -> Verdict {
    let row = TABLE
        .iter()
        .find(|(s, _)| *s == state)
        .map(|(_, row)| row)
        .expect("every state has a row");
    let col = Request::ALL
        .iter()
        .position(|r| *r == request)
        .expect("every request has a column");
    row[col]
}

/// [`decide`], with a refusal turned into the 409 error that explains it.
pub fn check(name: &str, state: State, request: Request) -> Result<Verdict, Error> {
    match decide(state, request) {
        Refuse => Err(Error::Conflict(refusal_reason(name, state, request))),
        v => Ok(v),
    }
}

fn refusal_reason(name: &str, state: State, request: Request) -> String {
    let hint = match (state, request) {
        (Pending | Launching, Request::Stop) => "; retry when it is Ready",
        (Pending | Launching | Starting, Request::Start) => "; it is already on its way up",
        (Stopping, Request::Start) => "; retry when it is Stopped",
        (Starting, Request::Stop) => "; retry when it is Ready",
        (_, Request::Extend) => "; only a Ready notebook has an idle stop to snooze",
        (Terminating | Terminated, _) => "; it is deleted",
        _ => "",
    };
    format!(
        "cannot {} notebook {name:?} while it is {state}{hint}",
        request.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table from DESIGN.md §3, written out as text so a reader can compare it by eye.
    /// `202>X` moves to X, `200` is a no-op or in-place apply, `409` refuses.
    const DESIGN_TABLE: &str = "
        Pending      409      409      202>Terminating 409
        Launching    409      409      202>Terminating 409
        Configuring  200      202>Stopping 202>Terminating 409
        Ready        200      202>Stopping 202>Terminating 200
        Starting     200      409      202>Terminating 409
        Stopping     409      200      202>Terminating 409
        Stopped      202>Starting 200  202>Terminating 409
        Failed       202>Starting 200  202>Terminating 409
        Terminating  409      409      200             409
        Terminated   409      409      200             409
    ";

    #[test]
    fn every_cell_matches_the_design_table() {
        let mut cells = 0;
        for line in DESIGN_TABLE.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut words = line.split_whitespace();
            let state: State = words.next().unwrap().parse().unwrap();
            for (request, cell) in Request::ALL.into_iter().zip(words) {
                let verdict = decide(state, request);
                let (status, target) = match cell.split_once('>') {
                    Some((s, t)) => (s, Some(t.parse::<State>().unwrap())),
                    None => (cell, None),
                };
                assert_eq!(verdict.status().to_string(), status, "{state} {request:?}");
                match verdict {
                    Move(to) => {
                        assert_eq!(Some(to), target, "{state} {request:?}");
                        assert!(state.can_move_to(to), "{state} -> {to} must be a legal move");
                    }
                    _ => assert_eq!(target, None, "{state} {request:?}"),
                }
                cells += 1;
            }
        }
        assert_eq!(cells, 40);
    }

    #[test]
    fn only_extend_on_ready_applies_in_place() {
        for (state, row) in TABLE {
            for (request, verdict) in Request::ALL.into_iter().zip(row) {
                assert_eq!(
                    verdict == Apply,
                    state == Ready && request == Request::Extend,
                    "{state} {request:?}"
                );
            }
        }
    }

    #[test]
    fn a_refusal_is_a_409_that_names_the_notebook_and_its_state() {
        let err = check("nb-1", Launching, Request::Stop).unwrap_err();
        assert_eq!(err.status(), 409);
        let msg = err.to_string();
        assert!(
            msg.contains("\"nb-1\"") && msg.contains("Launching") && msg.contains("retry when it is Ready"),
            "{msg}"
        );
    }

    #[test]
    fn failed_restarts_through_starting() {
        assert_eq!(check("x", Failed, Request::Start).unwrap(), Move(Starting));
    }
}
