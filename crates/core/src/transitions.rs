//! The request table (docs/states.md), as data: what `start`, `stop`, `delete`, `extend` and
//! `credential` do in each state, and how a launch claims a name. Use cases ask [`decide`] and
//! [`claim_name`]; the HTTP edge maps an [`Effect`] to a status. Nobody reimplements the table.

use crate::error::Error;
use crate::identity::Principal;
use crate::record::{Expect, IdlePolicy, Notebook};
use crate::state::State;
use crate::validate::LaunchSpec;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A user's operation on an existing notebook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Start,
    Stop,
    Delete,
    Extend,
    /// Replace the token or password (`POST /notebooks/{name}/credential`).
    Credential,
    /// Change settings: idle policy, schedule, hooks, disk size (`PATCH /notebooks/{name}`).
    Change,
    /// Change the instance type (`PATCH` with `instance_type`).
    Retype,
}

impl Op {
    pub const ALL: [Op; 7] = [
        Op::Start,
        Op::Stop,
        Op::Delete,
        Op::Extend,
        Op::Credential,
        Op::Change,
        Op::Retype,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Delete => "delete",
            Op::Extend => "extend",
            Op::Credential => "change the credential of",
            Op::Change => "change",
            Op::Retype => "change the instance type of",
        }
    }
}

/// What an operation does in a given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Accepted: move to this state and act (HTTP 202).
    Move(State),
    /// Accepted and done in place, without a state change (`extend` on Ready, a new
    /// credential): 200, or 202 where the in-place change goes on after the answer.
    Apply,
    /// Already there or already under way: 200, nothing changes.
    NoOp,
    /// Not possible in this state: 409.
    Refuse,
}

use Effect::*;
use State::*;

/// One row per state, one column per operation, in the order of [`Op::ALL`]:
/// start, stop, delete, extend, credential, change, type. This is docs/states.md's table, cell
/// for cell.
#[rustfmt::skip]
pub const TABLE: [(State, [Effect; 7]); 10] = [
    (Pending,     [Refuse,         Refuse,         Move(Terminating), Refuse, Refuse, Refuse, Refuse]),
    (Launching,   [Refuse,         Refuse,         Move(Terminating), Refuse, Refuse, Apply,  Refuse]),
    (Configuring, [NoOp,           Move(Stopping), Move(Terminating), Refuse, Refuse, Apply,  Refuse]),
    (Ready,       [NoOp,           Move(Stopping), Move(Terminating), Apply,  Apply,  Apply,  Refuse]),
    (Starting,    [NoOp,           Refuse,         Move(Terminating), Refuse, Refuse, Apply,  Refuse]),
    (Stopping,    [Refuse,         NoOp,           Move(Terminating), Refuse, Apply,  Apply,  Refuse]),
    (Stopped,     [Move(Starting), NoOp,           Move(Terminating), Refuse, Apply,  Apply,  Apply]),
    (Failed,      [Move(Starting), NoOp,           Move(Terminating), Refuse, Apply,  Apply,  Refuse]),
    (Terminating, [Refuse,         Refuse,         NoOp,              Refuse, Refuse, Refuse, Refuse]),
    (Terminated,  [Refuse,         Refuse,         NoOp,              Refuse, Refuse, Refuse, Refuse]),
];

/// What `op` does to a notebook in `state`.
pub fn decide(state: State, op: Op) -> Effect {
    let row = TABLE
        .iter()
        .find(|(s, _)| *s == state)
        .map(|(_, row)| row)
        .expect("every state has a row");
    let col = Op::ALL
        .iter()
        .position(|r| *r == op)
        .expect("every operation has a column");
    row[col]
}

/// [`decide`], with a refusal turned into the conflict error that explains it.
pub fn check(name: &str, state: State, op: Op) -> Result<Effect, Error> {
    match decide(state, op) {
        Refuse => Err(Error::Conflict(refusal_reason(name, state, op))),
        v => Ok(v),
    }
}

fn refusal_reason(name: &str, state: State, op: Op) -> String {
    let hint = match (state, op) {
        (Pending | Launching, Op::Stop) => "; retry when it is Ready",
        (Pending | Launching | Starting, Op::Start) => "; it is already on its way up",
        (Stopping, Op::Start) => "; retry when it is Stopped",
        (Starting, Op::Stop) => "; retry when it is Ready",
        (_, Op::Extend) => "; only a Ready notebook has an idle stop to snooze",
        (Pending | Launching | Configuring | Starting, Op::Credential) => {
            "; retry when it is Ready (or Stopped)"
        }
        (Pending, Op::Change) => "; retry when it is Launching",
        (Terminating | Terminated, _) => "; it is deleted",
        (_, Op::Retype) => {
            "; stop it first (`nbfleet stop NAME`): the instance type changes only while Stopped"
        }
        _ => "",
    };
    format!(
        "cannot {} notebook {name:?} while it is {state}{hint}",
        op.as_str()
    )
}

/// How a launch claims `spec.name`, given the record stored under it: the record to write and
/// what the conditional write must find. A new name gets generation 1; a Terminated one the
/// next generation; a Pending one of the same owner is a retry and is resumed (with its
/// attempts so far). Anything else is a conflict.
pub fn claim_name(
    existing: Option<&Notebook>,
    spec: &LaunchSpec,
    owner: &Principal,
    idle: IdlePolicy,
    now: Timestamp,
) -> Result<(Notebook, Expect), Error> {
    let fresh = |generation| Notebook::new(spec, owner, generation, idle.clone(), now);
    match existing {
        None => Ok((fresh(1), Expect::Absent)),
        Some(old) if old.state == Terminated => {
            let mut next = fresh(old.generation + 1);
            next.version = old.version + 1;
            next.created_at = old.created_at;
            // The disks of earlier generations stay with their owner: a name deleted and taken
            // by someone else starts with none (the snapshots keep their owner's tags).
            if old.is_owned_by(owner) {
                next.earlier_snapshots = old.earlier_snapshots.clone();
                next.earlier_snapshots
                    .extend(old.snapshot_id.iter().map(|id| crate::record::KeptSnapshot {
                        snapshot_id: id.clone(),
                        generation: old.generation,
                    }));
            }
            Ok((next, old.expect()))
        }
        Some(old) if old.state == Pending && old.is_owned_by(owner) => {
            let mut resumed = fresh(old.generation);
            resumed.version = old.version + 1;
            resumed.created_at = old.created_at;
            resumed.launch_attempts = old.launch_attempts.clone();
            Ok((resumed, old.expect()))
        }
        Some(old) => Err(Error::Conflict(format!(
            "notebook {:?} already exists ({}); delete it first or pick another name",
            spec.name, old.state
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of docs/states.md, written out as text so a reader can compare it by eye.
    /// `202>X` moves to X, `200` is a no-op or in-place apply, `409` refuses.
    const DESIGN_TABLE: &str = "
        Pending      409      409      202>Terminating 409 409 409 409
        Launching    409      409      202>Terminating 409 409 200 409
        Configuring  200      202>Stopping 202>Terminating 409 409 200 409
        Ready        200      202>Stopping 202>Terminating 200 200 200 409
        Starting     200      409      202>Terminating 409 409 200 409
        Stopping     409      200      202>Terminating 409 200 200 409
        Stopped      202>Starting 200  202>Terminating 409 200 200 200
        Failed       202>Starting 200  202>Terminating 409 200 200 409
        Terminating  409      409      200             409 409 409 409
        Terminated   409      409      200             409 409 409 409
    ";

    #[test]
    fn every_cell_matches_the_design_table() {
        let mut cells = 0;
        for line in DESIGN_TABLE.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut words = line.split_whitespace();
            let state: State = words.next().unwrap().parse().unwrap();
            for (request, cell) in Op::ALL.into_iter().zip(words) {
                let verdict = decide(state, request);
                let (status, target) = match cell.split_once('>') {
                    Some((s, t)) => (s, Some(t.parse::<State>().unwrap())),
                    None => (cell, None),
                };
                // The design writes each cell as the status the HTTP edge answers with.
                let written = match verdict {
                    Move(_) => "202",
                    Apply | NoOp => "200",
                    Refuse => "409",
                };
                assert_eq!(written, status, "{state} {request:?}");
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
        assert_eq!(cells, 70);
    }

    #[test]
    fn only_extend_on_ready_a_credential_with_the_disk_settled_a_change_and_a_type_while_stopped_apply_in_place()
     {
        for (state, row) in TABLE {
            for (request, verdict) in Op::ALL.into_iter().zip(row) {
                let settled = matches!(state, Ready | Stopping | Stopped | Failed);
                let live = !matches!(state, Pending | Terminating | Terminated);
                assert_eq!(
                    verdict == Apply,
                    (state == Ready && request == Op::Extend)
                        || (settled && request == Op::Credential)
                        || (live && request == Op::Change)
                        || (state == Stopped && request == Op::Retype),
                    "{state} {request:?}"
                );
            }
        }
    }

    #[test]
    fn a_refusal_is_a_409_that_names_the_notebook_and_its_state() {
        let err = check("nb-1", Launching, Op::Stop).unwrap_err();
        assert_eq!(err.status(), 409);
        let msg = err.to_string();
        assert!(
            msg.contains("\"nb-1\"") && msg.contains("Launching") && msg.contains("retry when it is Ready"),
            "{msg}"
        );
    }

    #[test]
    fn failed_restarts_through_starting() {
        assert_eq!(check("x", Failed, Op::Start).unwrap(), Move(Starting));
    }

    fn spec(name: &str) -> LaunchSpec {
        let cfg = crate::config::tests::test_config();
        crate::validate::parse_launch(format!(r#"{{"name":"{name}"}}"#).as_bytes(), &cfg).unwrap()
    }

    fn policy() -> IdlePolicy {
        let cfg = crate::config::tests::test_config();
        crate::validate::idle_policy(&spec("nb-1"), &cfg)
    }

    #[test]
    fn a_launch_claims_a_new_name_at_generation_one_and_a_deleted_one_at_the_next() {
        let t0 = Timestamp::UNIX_EPOCH;
        let (nb, expect) = claim_name(None, &spec("nb-1"), &alice(), policy(), t0).unwrap();
        assert_eq!((nb.generation, nb.state, expect), (1, Pending, Expect::Absent));
        let mut gone = nb.clone();
        gone.state = Terminated;
        gone.version = 7;
        let t1 = Timestamp::from_second(60).unwrap();
        let (next, expect) = claim_name(Some(&gone), &spec("nb-1"), &bob(), policy(), t1).unwrap();
        assert_eq!(
            (next.generation, next.version, next.owner.as_str()),
            (2, 8, "bob")
        );
        assert_eq!((next.created_at, expect), (t0, gone.expect()));
    }

    fn alice() -> Principal {
        Principal::named("alice")
    }

    fn bob() -> Principal {
        Principal::named("bob")
    }

    #[test]
    fn a_deleted_name_taken_by_someone_else_does_not_carry_the_earlier_owners_disks() {
        let t0 = Timestamp::UNIX_EPOCH;
        let (mut gone, _) = claim_name(None, &spec("nb-1"), &alice(), policy(), t0).unwrap();
        gone.state = Terminated;
        gone.snapshot_id = Some("snap-0alice".into());
        let (hers, _) = claim_name(Some(&gone), &spec("nb-1"), &alice(), policy(), t0).unwrap();
        assert_eq!(hers.earlier_snapshots.len(), 1);
        let (his, _) = claim_name(Some(&gone), &spec("nb-1"), &bob(), policy(), t0).unwrap();
        assert!(his.earlier_snapshots.is_empty(), "{:?}", his.earlier_snapshots);
    }

    #[test]
    fn a_retried_launch_of_its_own_pending_name_resumes_and_anything_else_conflicts() {
        let t0 = Timestamp::UNIX_EPOCH;
        let (mut pending, _) = claim_name(None, &spec("nb-1"), &alice(), policy(), t0).unwrap();
        pending.launch_attempts.push(crate::record::LaunchAttempt {
            instance_type: "g5.xlarge".into(),
            subnet_id: String::new(),
            outcome: "InsufficientCapacity".into(),
        });
        let (resumed, _) = claim_name(Some(&pending), &spec("nb-1"), &alice(), policy(), t0).unwrap();
        assert_eq!((resumed.generation, resumed.launch_attempts.len()), (1, 1));
        let other = claim_name(Some(&pending), &spec("nb-1"), &bob(), policy(), t0).unwrap_err();
        assert!(matches!(other, Error::Conflict(_)), "{other:?}");
        let mut ready = pending.clone();
        ready.state = Ready;
        let taken = claim_name(Some(&ready), &spec("nb-1"), &alice(), policy(), t0).unwrap_err();
        assert!(taken.to_string().contains("already exists (Ready)"), "{taken}");
    }
}
