//! The disks delete keeps, and restores from them: `GET /snapshots`, `DELETE /snapshots/{id}`
//! and `POST /notebooks` with `restore_from`, through the use cases on moto (snapshots, images
//! and volumes are moto's own; moto holds no disk contents: the local stack's e2e test checks
//! that a file comes back).

use nbfleet_core::{Error, State};
use nbfleet_testkit::{Env, OWNER, api};
use serde_json::{Value, json};

/// Launches `name` and deletes it with a snapshot; answers the snapshot id.
async fn deleted_with_snapshot(e: &Env, name: &str) -> String {
    e.launch(name).await;
    e.force_state(name, State::Ready).await;
    api::delete(&e.deps, OWNER, name, true).await.unwrap();
    e.record(name).await.snapshot_id.expect("a snapshot")
}

async fn restore(e: &Env, caller: &str, name: &str, from: &str) -> Result<(u16, Value), Error> {
    let body = json!({"name": name, "restore_from": from}).to_string();
    api::launch(&e.deps, caller, body.as_bytes()).await
}

async fn restore_images(e: &Env) -> usize {
    let out = e.aws.ec2.describe_images().owners("self").send().await.unwrap();
    out.images()
        .iter()
        .filter(|i| i.name().is_some_and(|n| n.starts_with("nbfleet-restore-")))
        .count()
}

#[tokio::test]
async fn a_deleted_notebooks_snapshot_is_listed_for_its_owner_only_with_what_it_costs_a_month() {
    let e = Env::in_memory().await;
    let id = deleted_with_snapshot(&e, "snap-list").await;
    let (status, body) = api::snapshots(&e.deps, OWNER).await.unwrap();
    assert_eq!(status, 200);
    let listed = &body["snapshots"][0];
    assert_eq!(listed["snapshot_id"], id.as_str());
    assert_eq!(listed["notebook"], "snap-list");
    let gb = listed["size_gb"].as_f64().unwrap();
    assert!(gb > 0.0);
    // us-east-1's bundled price: $0.05 per GB-month.
    assert_eq!(
        listed["monthly_usd"].as_f64(),
        Some((gb * 0.05 * 100.0).round() / 100.0)
    );
    assert!(body["price_source"].as_str().unwrap().contains("us-east-1"));
    let (_, theirs) = api::snapshots(&e.deps, "mallory").await.unwrap();
    assert_eq!(theirs["snapshots"], json!([]), "another user sees none of them");
}

#[tokio::test]
async fn a_restore_launches_from_an_image_of_the_snapshot_at_least_its_size_and_the_image_goes_after() {
    let e = Env::in_memory().await;
    let id = deleted_with_snapshot(&e, "snap-src").await;
    let (status, body) = restore(&e, OWNER, "snap-dst", "snap-src").await.unwrap();
    assert_eq!(status, 202, "{body}");
    let nb = e.record("snap-dst").await;
    assert_eq!(nb.state, State::Launching);
    assert_eq!(nb.restored_from.as_deref(), Some(id.as_str()));
    let snapshot = e.deps.compute.describe_snapshot(&id).await.unwrap().unwrap();
    assert!(nb.volume_gb >= snapshot.size_gb);
    // Launched from the restore image, not the configured AMI, and tagged with its snapshot.
    let instance = e
        .deps
        .compute
        .describe(nb.instance_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    let seeded = e
        .deps
        .compute
        .resolve_ami(&e.deps.cfg.ami_parameter)
        .await
        .unwrap();
    assert_ne!(instance.image_id.as_deref(), Some(seeded.id.as_str()));
    assert_eq!(nb.ami_id, instance.image_id);
    let out = e
        .aws
        .ec2
        .describe_instances()
        .instance_ids(&instance.id)
        .send()
        .await
        .unwrap();
    let tags = out.reservations()[0].instances()[0].tags();
    assert!(
        tags.iter()
            .any(|t| t.key() == Some("nbfleet:restored-from") && t.value() == Some(id.as_str()))
    );
    assert_eq!(
        restore_images(&e).await,
        0,
        "the image is deregistered once launched"
    );
    let history = e.deps.store.history("snap-dst").await.unwrap();
    assert!(
        history
            .iter()
            .any(|h| h["action"] == "restore" && h["snapshot_id"] == id.as_str())
    );
    // By snapshot id too.
    let (status, _) = restore(&e, OWNER, "snap-dst2", &id).await.unwrap();
    assert_eq!(status, 202);
}

#[tokio::test]
async fn restoring_someone_elses_or_a_foreign_or_a_missing_snapshot_is_refused_and_claims_nothing() {
    let e = Env::in_memory().await;
    let id = deleted_with_snapshot(&e, "snap-ana").await;
    let err = restore(&e, "mallory", "snap-mal", &id).await.unwrap_err();
    assert_eq!(err.status(), 403, "{err}");
    let err = restore(&e, "mallory", "snap-mal", "snap-ana").await.unwrap_err();
    assert_eq!(err.status(), 403, "by name too: {err}");
    let err = restore(&e, OWNER, "snap-x", "snap-0123456789abcdef0")
        .await
        .unwrap_err();
    assert_eq!(err.status(), 404, "{err}");
    let err = restore(&e, OWNER, "snap-x", "no-such-notebook")
        .await
        .unwrap_err();
    assert_eq!(err.status(), 404, "{err}");
    // A snapshot someone took outside nbfleet, of an nbfleet disk even.
    let nb = e.launch("snap-other").await;
    let volume = e
        .deps
        .compute
        .describe(nb.instance_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap()
        .root_volume_id
        .unwrap();
    let foreign = e
        .aws
        .ec2
        .create_snapshot()
        .volume_id(volume)
        .send()
        .await
        .unwrap();
    let err = restore(&e, OWNER, "snap-x", foreign.snapshot_id().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.status(), 403, "{err}");
    assert!(err.to_string().contains("not taken by this nbfleet"), "{err}");
    for name in ["snap-mal", "snap-x"] {
        assert!(
            e.deps.store.get(name).await.unwrap().is_none(),
            "{name} was claimed"
        );
    }
    assert_eq!(e.compute.hooks.count("image_from_snapshot"), 0);
    let err = restore(&e, OWNER, "snap-x", "Not A Name").await.unwrap_err();
    assert!(
        matches!(&err, Error::BadRequest { field, .. } if field == "restore_from"),
        "{err}"
    );
}

#[tokio::test]
async fn only_its_owner_deletes_a_snapshot_and_its_notebook_then_offers_it_no_more() {
    let e = Env::in_memory().await;
    let id = deleted_with_snapshot(&e, "snap-del").await;
    let err = api::delete_snapshot(&e.deps, "mallory", &id).await.unwrap_err();
    assert_eq!(err.status(), 403);
    let (status, body) = api::delete_snapshot(&e.deps, OWNER, &id).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["deleted"]["snapshot_id"], id.as_str());
    assert!(e.deps.compute.describe_snapshot(&id).await.unwrap().is_none());
    assert_eq!(e.record("snap-del").await.snapshot_id, None);
    let err = restore(&e, OWNER, "snap-again", "snap-del").await.unwrap_err();
    assert_eq!(err.status(), 404, "{err}");
    let err = api::delete_snapshot(&e.deps, OWNER, &id).await.unwrap_err();
    assert_eq!(err.status(), 404, "deleted already: {err}");
    let err = api::delete_snapshot(&e.deps, OWNER, "vol-123").await.unwrap_err();
    assert_eq!(err.status(), 400);
}

#[tokio::test]
async fn a_restore_ec2_has_no_capacity_for_fails_and_leaves_no_image_behind() {
    let e = Env::in_memory().await;
    deleted_with_snapshot(&e, "snap-full").await;
    e.compute.hooks.before("run_instance", |_| async {
        Err(Error::Capacity("InsufficientInstanceCapacity".into()))
    });
    let err = restore(&e, OWNER, "snap-none", "snap-full").await.unwrap_err();
    assert_eq!(err.status(), 503, "{err}");
    assert_eq!(e.record("snap-none").await.state, State::Failed);
    assert_eq!(e.compute.hooks.count("image_from_snapshot"), 1);
    assert_eq!(restore_images(&e).await, 0, "deregistered");
}
