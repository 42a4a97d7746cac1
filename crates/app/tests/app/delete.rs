//! Delete never destroys a disk without the snapshot it promised: the snapshot is a
//! precondition of termination, for the delete itself, a retried delete and the deadline pass.
//! Records in memory, EC2 on moto; the snapshot failures are hooks on the Compute port
//! (moto's CreateSnapshot never throttles).

use nbfleet_app::budget::Budget;
use nbfleet_app::deadlines::enforce;
use nbfleet_app::lifecycle::delete;
use nbfleet_app::reconcile::live;
use nbfleet_core::ports::Notice;
use nbfleet_core::{Error, State};
use nbfleet_testkit::{Env, OWNER};
use std::time::Duration;

/// Every CreateSnapshot fails as EC2 fails it under load.
fn snapshots_fail(e: &Env) {
    e.compute.hooks.before("snapshot", |_| async {
        Err(Error::Throttled("SnapshotCreationPerVolumeRateExceeded".into()))
    });
}

fn snapshots_work(e: &Env) {
    e.compute.hooks.before("snapshot", |_| async { Ok(()) });
}

async fn ready(e: &Env, name: &str) -> String {
    let id = e.launch(name).await.instance_id.unwrap();
    e.force_state(name, State::Ready).await;
    id
}

#[tokio::test]
async fn a_snapshot_that_fails_keeps_the_instance_and_a_retried_delete_takes_it() {
    let e = Env::in_memory().await;
    let id = ready(&e, "precious").await;
    snapshots_fail(&e);
    let err = delete(
        &e.deps,
        &nbfleet_testkit::api::principal(&e.deps, OWNER).unwrap(),
        "precious",
        true,
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("nothing was deleted"), "{err}");
    assert_eq!(
        e.ec2_state(&id).await,
        "running",
        "no disk destroyed without its snapshot"
    );
    let held = e.record("precious").await;
    assert_eq!((held.state, held.snapshot_owed), (State::Terminating, true));
    assert_eq!(e.compute.hooks.count("terminate"), 0);

    snapshots_work(&e);
    let done = delete(
        &e.deps,
        &nbfleet_testkit::api::principal(&e.deps, OWNER).unwrap(),
        "precious",
        true,
    )
    .await
    .unwrap();
    let snapshot = done
        .notebook
        .snapshot_id
        .clone()
        .expect("the retry took the snapshot");
    assert!(!done.notebook.snapshot_owed);
    assert!(matches!(
        e.ec2_state(&id).await.as_str(),
        "shutting-down" | "terminated"
    ));
    // Tagged as the notebook's, and in its history.
    let tags = e
        .aws
        .ec2
        .describe_snapshots()
        .snapshot_ids(&snapshot)
        .send()
        .await
        .unwrap()
        .snapshots()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect::<std::collections::BTreeMap<_, _>>();
    assert_eq!(tags.get("nbfleet:notebook").map(String::as_str), Some("precious"));
    assert_eq!(tags.get("nbfleet:owner").map(String::as_str), Some(OWNER));
    assert_eq!(tags.get("nbfleet:generation").map(String::as_str), Some("1"));
    assert!(tags.contains_key("nbfleet:created"), "{tags:?}");
    let history = e.deps.store.history("precious").await.unwrap();
    assert!(
        history
            .iter()
            .any(|h| h["snapshot_id"] == snapshot.as_str() && h["generation"] == 1),
        "{history:?}"
    );
}

#[tokio::test]
async fn the_deadline_pass_never_terminates_while_a_promised_snapshot_is_missing() {
    let e = Env::in_memory().await;
    let id = ready(&e, "held").await;
    snapshots_fail(&e);
    delete(
        &e.deps,
        &nbfleet_testkit::api::principal(&e.deps, OWNER).unwrap(),
        "held",
        true,
    )
    .await
    .unwrap_err();
    let pass = |e: &Env| {
        let deps = e.deps.clone();
        let now = e.now();
        async move {
            let live = live(&deps).await.unwrap();
            enforce(&deps, &live, now, Budget::of(Duration::from_secs(30))).await
        }
    };
    for round in 0..2 {
        e.advance(31);
        let done = pass(&e).await;
        assert_eq!(done.failed.len(), 1, "round {round}: {done:?}");
        assert!(done.failed[0].starts_with("held: "), "{done:?}");
        assert_eq!(e.ec2_state(&id).await, "running", "round {round}");
    }
    assert_eq!(e.compute.hooks.count("terminate"), 0);
    assert_eq!(
        e.compute.hooks.count("snapshot"),
        3,
        "the delete, then each round"
    );
    // The owner is told once, not every round.
    let held: Vec<_> = e
        .heard
        .notices()
        .into_iter()
        .filter(|n| matches!(n, Notice::DeleteHeld { .. }))
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0].text().contains("--no-snapshot"), "{}", held[0].text());

    snapshots_work(&e);
    e.advance(31);
    let done = pass(&e).await;
    assert!(done.failed.is_empty(), "{done:?}");
    assert!(e.record("held").await.snapshot_id.is_some());
    assert!(matches!(
        e.ec2_state(&id).await.as_str(),
        "shutting-down" | "terminated"
    ));
}

#[tokio::test]
async fn a_delete_without_a_snapshot_waives_the_one_still_owed() {
    let e = Env::in_memory().await;
    let id = ready(&e, "waived").await;
    snapshots_fail(&e);
    delete(
        &e.deps,
        &nbfleet_testkit::api::principal(&e.deps, OWNER).unwrap(),
        "waived",
        true,
    )
    .await
    .unwrap_err();
    let done = delete(
        &e.deps,
        &nbfleet_testkit::api::principal(&e.deps, OWNER).unwrap(),
        "waived",
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        (done.notebook.snapshot_owed, done.notebook.snapshot_id),
        (false, None)
    );
    assert!(matches!(
        e.ec2_state(&id).await.as_str(),
        "shutting-down" | "terminated"
    ));
}

#[tokio::test]
async fn relaunching_a_name_keeps_the_old_generations_snapshot_in_its_history() {
    let e = Env::in_memory().await;
    let id = ready(&e, "reborn").await;
    let first = delete(
        &e.deps,
        &nbfleet_testkit::api::principal(&e.deps, OWNER).unwrap(),
        "reborn",
        true,
    )
    .await
    .unwrap();
    let snapshot = first.notebook.snapshot_id.unwrap();
    e.terminate_in_ec2(&id).await;
    let event = e.ec2_event(&id, "terminated");
    nbfleet_testkit::api::event(&e.deps, &event).await.unwrap();
    assert_eq!(e.record("reborn").await.state, State::Terminated);
    let second = e.launch("reborn").await;
    assert_eq!(second.generation, 2);
    let kept = &second.earlier_snapshots;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        (kept[0].snapshot_id.as_str(), kept[0].generation),
        (snapshot.as_str(), 1)
    );
    let history = e.deps.store.history("reborn").await.unwrap();
    assert!(
        history
            .iter()
            .any(|h| h["snapshot_id"] == snapshot.as_str() && h["generation"] == 1),
        "{history:?}"
    );
}
