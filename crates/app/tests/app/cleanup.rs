//! The cleanup rules (`crates/app/src/cleanup.rs`) with a clock the test moves: records in
//! memory, EC2 and its snapshots on moto.

use jiff::{SignedDuration, Timestamp};
use nbfleet_core::State;
use nbfleet_core::ports::Notice;
use nbfleet_testkit::{Env, api};

/// Notices after 14 days stopped, deletes after 21, snapshots kept 30 days.
async fn with_rules() -> Env {
    let mut e = Env::in_memory().await;
    e.deps.cfg.cleanup.stopped_notice_days = 14;
    e.deps.cfg.cleanup.delete_stopped_after_days = 21;
    e.deps.cfg.cleanup.snapshot_retention_days = 30;
    e
}

fn told(e: &Env) -> Vec<String> {
    e.heard
        .notices()
        .into_iter()
        .filter(|n| matches!(n, Notice::LongStopped { .. } | Notice::SnapshotRetention { .. }))
        .map(|n| n.text())
        .collect()
}

/// `name` launched and stopped now.
async fn stopped(e: &Env, name: &str) {
    let nb = e.launch(name).await;
    e.stop_in_ec2(nb.instance_id.as_deref().unwrap()).await;
    e.force_state(name, State::Stopped).await;
}

async fn round(e: &Env) -> Vec<String> {
    let stopped: Vec<_> = e.deps.store.list_by_state(State::Stopped).await.unwrap();
    nbfleet_app::cleanup::round(&e.deps, &stopped, e.now())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_notebook_stopped_for_weeks_is_told_weekly_what_its_disk_costs_then_deleted_with_a_snapshot() {
    let e = with_rules().await;
    stopped(&e, "clean-old").await;
    e.advance(13 * 24 * 60);
    round(&e).await;
    assert!(told(&e).is_empty(), "13 days: nothing yet");
    e.advance(24 * 60);
    round(&e).await;
    let notices = told(&e);
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains("stopped for 14 days"), "{notices:?}");
    assert!(
        notices[0].contains("100 GB disk costs $8.00 a month"),
        "{notices:?}"
    );
    assert!(
        notices[0].contains("deletes it, with a snapshot, from"),
        "{notices:?}"
    );
    e.advance(3 * 24 * 60);
    round(&e).await;
    assert_eq!(told(&e).len(), 1, "weekly, not hourly");
    // Day 21, a week after the first notice: deleted, its disk kept as a snapshot.
    e.advance(4 * 24 * 60);
    let done = round(&e).await;
    assert!(
        done.iter().any(|d| d.contains("deleted after 21 days")),
        "{done:?}"
    );
    let nb = e.record("clean-old").await;
    assert_eq!(nb.state, State::Terminating);
    assert!(nb.snapshot_id.is_some(), "a snapshot was kept");
    assert!(told(&e).last().unwrap().contains("--restore"), "{:?}", told(&e));
    let history = e.deps.store.history("clean-old").await.unwrap();
    assert!(history.iter().any(|h| h["action"] == "cleanup_delete"));
}

#[tokio::test]
async fn a_rule_turned_on_late_tells_a_week_before_it_deletes_and_a_started_notebook_is_left_alone() {
    let e = with_rules().await;
    stopped(&e, "clean-late").await;
    stopped(&e, "clean-back").await;
    e.advance(100 * 24 * 60);
    // One of them is started and stopped again on day 99: its stop is a day old.
    let now = e.now();
    e.force("clean-back", |nb| {
        nb.state_since = now - SignedDuration::from_hours(24)
    })
    .await;
    round(&e).await;
    assert_eq!(
        e.record("clean-late").await.state,
        State::Stopped,
        "told first, not deleted"
    );
    assert_eq!(told(&e).len(), 1, "{:?}", told(&e));
    e.advance(7 * 24 * 60);
    round(&e).await;
    assert_eq!(e.record("clean-late").await.state, State::Terminating);
    assert_eq!(e.record("clean-back").await.state, State::Stopped);
}

#[tokio::test]
async fn old_nbfleet_snapshots_are_marked_and_told_then_deleted_a_week_later_and_others_are_left_alone() {
    let e = with_rules().await;
    let nb = e.launch("clean-snap").await;
    e.force_state("clean-snap", State::Ready).await;
    api::delete(&e.deps, nbfleet_testkit::OWNER, "clean-snap", true)
        .await
        .unwrap();
    let kept = e.record("clean-snap").await.snapshot_id.unwrap();
    // A snapshot someone took by hand of another disk: not nbfleet's.
    let other = e.launch("clean-other").await;
    let volume = e
        .deps
        .compute
        .describe(other.instance_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    let foreign = e
        .aws
        .ec2
        .create_snapshot()
        .volume_id(volume.root_volume_id.unwrap())
        .send()
        .await
        .unwrap()
        .snapshot_id
        .unwrap();
    let _ = nb;
    let month: Timestamp = e.now() + SignedDuration::from_hours(24 * 31);
    let done = nbfleet_app::cleanup::round(&e.deps, &[], month).await.unwrap();
    assert_eq!(done, [format!("{kept}: marked for deletion")]);
    let s = e.deps.compute.describe_snapshot(&kept).await.unwrap().unwrap();
    assert_eq!(s.delete_after, Some(month + SignedDuration::from_hours(24 * 7)));
    assert!(told(&e)[0].contains("--restore"), "{:?}", told(&e));
    // Within the week: kept.
    let soon = month + SignedDuration::from_hours(24 * 6);
    assert!(
        nbfleet_app::cleanup::round(&e.deps, &[], soon)
            .await
            .unwrap()
            .is_empty()
    );
    let later = month + SignedDuration::from_hours(24 * 8);
    let done = nbfleet_app::cleanup::round(&e.deps, &[], later).await.unwrap();
    assert_eq!(done, [format!("{kept}: deleted")]);
    assert!(e.deps.compute.describe_snapshot(&kept).await.unwrap().is_none());
    assert!(
        e.deps
            .compute
            .describe_snapshot(&foreign)
            .await
            .unwrap()
            .is_some(),
        "not nbfleet's"
    );
    assert_eq!(e.record("clean-snap").await.snapshot_id, None);
}
