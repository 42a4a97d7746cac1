//! Every cell of the request table (docs/states.md) for start, stop and delete, through the
//! lifecycle use cases (records in memory, EC2 on moto): the status, the record afterwards, and
//! exactly one EC2 action per accepted transition (none otherwise). The expected cells are read
//! from the design document itself, not from the table the code holds.

use nbfleet_core::State;
use nbfleet_core::transitions::Op as Request;
use nbfleet_testkit::{Env, OWNER};

/// docs/states.md's request table: `(state, request) -> (status, the state a 202 moves to)`.
pub(crate) fn design_table() -> std::collections::HashMap<(State, &'static str), (u16, Option<State>)> {
    let doc = include_str!("../../../../docs/states.md");
    let rows = doc
        .lines()
        .skip_while(|l| !l.starts_with("| state \\ request |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'));
    let mut table = std::collections::HashMap::new();
    for row in rows {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let state: State = cells[0].parse().unwrap_or_else(|_| panic!("a state: {row}"));
        for (request, cell) in [
            "start",
            "stop",
            "delete",
            "extend",
            "credential",
            "change",
            "type",
        ]
        .into_iter()
        .zip(&cells[1..])
        {
            let status: u16 = cell[..3].parse().unwrap_or_else(|_| panic!("a status: {cell}"));
            let to = cell.split_once("→ ").map(|(_, t)| t.parse::<State>().unwrap());
            table.insert((state, request), (status, to));
        }
    }
    assert_eq!(table.len(), 70, "the design table has 10 states × 7 requests");
    table
}

#[tokio::test]
async fn every_cell_of_the_table_through_the_handlers() {
    let e = Env::in_memory().await;
    let design = design_table();
    let mut checked = 0;
    for state in State::ALL {
        for request in [Request::Start, Request::Stop, Request::Delete] {
            let name = format!("{}-{}", state.as_str().to_lowercase(), request.as_str());
            let launched = e.launch(&name).await;
            let id = launched.instance_id.clone().unwrap();
            // Make EC2 agree with the state under test.
            match state {
                State::Stopped | State::Failed => e.stop_in_ec2(&id).await,
                State::Terminated => e.terminate_in_ec2(&id).await,
                _ => {}
            }
            let before = e.force_state(&name, state).await;
            let actions = e.compute.instance_changes();

            let result = match request {
                Request::Start => nbfleet_testkit::api::start(&e.deps, OWNER, &name).await,
                Request::Stop => nbfleet_testkit::api::stop(&e.deps, OWNER, &name).await,
                _ => nbfleet_testkit::api::delete(&e.deps, OWNER, &name, true).await,
            };
            let status = result
                .as_ref()
                .map(|(s, _)| *s)
                .unwrap_or_else(|err| err.status());
            let (expected, moves_to) = design[&(state, request.as_str())];
            let cell = format!("{state} {}", request.as_str());
            assert_eq!(status, expected, "{cell}: {result:?}");

            let after = e.record(&name).await;
            match moves_to {
                Some(to) => {
                    assert_eq!(after.state, to, "{cell}");
                    assert_eq!(
                        e.compute.instance_changes(),
                        actions + 1,
                        "{cell}: one EC2 action"
                    );
                }
                None => {
                    assert_eq!(
                        (after.state, after.version),
                        (before.state, before.version),
                        "{cell}: unchanged"
                    );
                    assert_eq!(e.compute.instance_changes(), actions, "{cell}: no EC2 action");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 30);
}

#[tokio::test]
async fn only_the_owner_or_an_admin_may_act_and_unknown_names_are_404() {
    const ROOT_ADMIN: &str = "arn:aws:iam::123456789012:role/Platform";
    let mut e = Env::in_memory().await;
    e.launch("guarded").await;
    e.force_state("guarded", State::Ready).await;
    let err = nbfleet_testkit::api::stop(&e.deps, "mallory", "guarded")
        .await
        .unwrap_err();
    assert_eq!(err.status(), 403);
    assert_eq!(e.compute.instance_changes(), 0);
    e.deps.cfg.admins = vec![ROOT_ADMIN.parse().unwrap()];
    // Any session of an admin role.
    let (status, _) = nbfleet_testkit::api::stop(
        &e.deps,
        "arn:aws:sts::123456789012:assumed-role/Platform/oncall",
        "guarded",
    )
    .await
    .unwrap();
    assert_eq!(status, 202);
    let err = nbfleet_testkit::api::start(&e.deps, OWNER, "no-such")
        .await
        .unwrap_err();
    assert_eq!(err.status(), 404);
    let err = nbfleet_testkit::api::start(&e.deps, OWNER, "Bad Name")
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400);
}
