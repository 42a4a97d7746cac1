//! Changing a notebook (`PATCH /notebooks/{name}`) through the use case: records in memory,
//! EC2 on moto (ModifyInstanceAttribute and ModifyVolume are moto's own). The states that take
//! each kind of change are read from docs/states.md's request table.

use crate::lifecycle::design_table;
use nbfleet_core::{Error, State};
use nbfleet_testkit::{Env, OWNER, api};
use serde_json::{Value, json};

async fn ec2_type(e: &Env, id: &str) -> String {
    let out = e
        .aws
        .ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    out.reservations()[0].instances()[0]
        .instance_type()
        .unwrap()
        .as_str()
        .to_string()
}

async fn root_volume_gb(e: &Env, id: &str) -> i32 {
    let out = e
        .aws
        .ec2
        .describe_volumes()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("attachment.instance-id")
                .values(id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.volumes()[0].size().unwrap()
}

async fn patch(e: &Env, caller: &str, name: &str, body: Value) -> Result<(u16, Value), Error> {
    api::modify(&e.deps, caller, name, body.to_string().as_bytes()).await
}

#[tokio::test]
async fn every_cell_of_the_change_and_type_columns_and_a_refused_type_change_leaves_ec2_alone() {
    let e = Env::in_memory().await;
    let design = design_table();
    for state in State::ALL {
        let name = format!("mod-{}", state.as_str().to_lowercase());
        let launched = e.launch(&name).await;
        let id = launched.instance_id.clone().unwrap();
        if state == State::Stopped {
            e.stop_in_ec2(&id).await;
        }
        let before = e.force_state(&name, state).await;

        // A setting.
        let result = patch(&e, OWNER, &name, json!({"idle_timeout_minutes": 45})).await;
        let status = result.as_ref().map_or_else(Error::status, |(s, _)| *s);
        assert_eq!(status, design[&(state, "change")].0, "{state} change: {result:?}");
        let after = e.record(&name).await;
        assert_eq!(after.idle.idle_timeout_minutes == 45, status == 200, "{state}");

        // The type.
        let other = if before.instance_type == "g6.xlarge" {
            "g4dn.xlarge"
        } else {
            "g6.xlarge"
        };
        let result = patch(&e, OWNER, &name, json!({"instance_type": other})).await;
        let status = result.as_ref().map_or_else(Error::status, |(s, _)| *s);
        assert_eq!(status, design[&(state, "type")].0, "{state} type: {result:?}");
        let after = e.record(&name).await;
        match status {
            200 => {
                assert_eq!(after.instance_type, other);
                assert_eq!(ec2_type(&e, &id).await, other, "{state}: EC2 has the new type");
            }
            _ => {
                assert_eq!(after.instance_type, before.instance_type, "{state}");
                assert_eq!(
                    ec2_type(&e, &id).await,
                    before.instance_type,
                    "{state}: EC2 untouched"
                );
            }
        }
    }
    // Only the Stopped notebook's type changed in EC2.
    assert_eq!(e.compute.hooks.count("set_instance_type"), 1);
    let err = patch(&e, OWNER, "mod-ready", json!({"instance_type": "g6.xlarge"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("stop it first"), "{err}");
}

#[tokio::test]
async fn a_disk_grows_in_ec2_any_time_it_has_one_never_shrinks_and_the_history_says_who() {
    let e = Env::in_memory().await;
    let nb = e.launch("mod-disk").await;
    let id = nb.instance_id.clone().unwrap();
    e.force_state("mod-disk", State::Ready).await;
    let start = root_volume_gb(&e, &id).await;
    assert_eq!(start as u32, nb.volume_gb);

    let (status, body) = patch(&e, OWNER, "mod-disk", json!({"volume_gb": nb.volume_gb + 50}))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["notebook"]["volume_gb"], nb.volume_gb + 50);
    assert_eq!(root_volume_gb(&e, &id).await as u32, nb.volume_gb + 50);

    let err = patch(&e, OWNER, "mod-disk", json!({"volume_gb": nb.volume_gb}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::BadRequest { field, .. } if field == "volume_gb"),
        "{err}"
    );
    assert_eq!(
        root_volume_gb(&e, &id).await as u32,
        nb.volume_gb + 50,
        "nothing shrank"
    );

    let history = e.deps.store.history("mod-disk").await.unwrap();
    let entry = history.iter().rev().find(|h| h["action"] == "modify").unwrap();
    assert_eq!(entry["by"], OWNER);
    assert_eq!(
        entry["changes"]["volume_gb"],
        json!({"from": nb.volume_gb, "to": nb.volume_gb + 50})
    );
}

#[tokio::test]
async fn another_user_is_403_and_bad_values_name_their_field_and_change_nothing() {
    let e = Env::in_memory().await;
    e.launch("mod-guard").await;
    let before = e.force_state("mod-guard", State::Stopped).await;
    let err = patch(&e, "mallory", "mod-guard", json!({"idle_timeout_minutes": 45}))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 403);
    for (body, field) in [
        (json!({"instance_type": "p5.48xlarge"}), "instance_type"),
        (json!({"idle_timeout_minutes": 0}), "idle_timeout_minutes"),
        (json!({"max_runtime_minutes": 100_000}), "max_runtime_minutes"),
        (json!({"hooks": {"pre_stop": 42}}), "hooks.pre_stop"),
        (
            json!({"schedule": {"tz": "Mars/Olympus", "windows": []}}),
            "schedule",
        ),
        (json!({"password": "a-new-password"}), "password"),
        (json!({"volume": 500}), "volume"),
    ] {
        match patch(&e, OWNER, "mod-guard", body.clone()).await {
            Err(Error::BadRequest { field: f, .. }) => assert!(f.starts_with(field), "{body}: {f}"),
            other => panic!("{body}: not a 400: {other:?}"),
        }
    }
    let after = e.record("mod-guard").await;
    assert_eq!(after.version, before.version, "nothing was written");
    assert_eq!(e.compute.hooks.total(&["set_instance_type", "grow_volume"]), 0);
    assert_eq!(
        patch(&e, OWNER, "no-such", json!({"warning_minutes": 5}))
            .await
            .unwrap_err()
            .status(),
        404
    );
}

#[tokio::test]
async fn a_schedule_and_hooks_are_set_replaced_and_removed_and_a_change_to_the_same_value_writes_nothing() {
    let e = Env::in_memory().await;
    e.launch("mod-sched").await;
    e.force_state("mod-sched", State::Ready).await;
    let schedule =
        json!({"tz": "Europe/Paris", "windows": [{"days": "Mon-Fri", "from": "08:00", "to": "20:00"}]});
    let (_, body) = patch(
        &e,
        OWNER,
        "mod-sched",
        json!({"schedule": schedule, "hooks": {"pre_stop": "git -C ~/work commit -am wip"}, "warning_minutes": 5}),
    )
    .await
    .unwrap();
    assert_eq!(body["notebook"]["idle"]["schedule"]["tz"], "Europe/Paris");
    assert_eq!(body["notebook"]["idle"]["warning_minutes"], 5);
    assert_eq!(
        body["notebook"]["hooks"]["pre_stop"],
        "git -C ~/work commit -am wip"
    );

    let version = e.record("mod-sched").await.version;
    let (status, _) = patch(&e, OWNER, "mod-sched", json!({"warning_minutes": 5}))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        e.record("mod-sched").await.version,
        version,
        "the same value writes nothing"
    );

    e.advance(1); // history entries are keyed by their time
    let (_, body) = patch(&e, OWNER, "mod-sched", json!({"schedule": null, "hooks": null}))
        .await
        .unwrap();
    assert!(body["notebook"]["idle"].get("schedule").is_none(), "{body}");
    assert!(body["notebook"].get("hooks").is_none(), "{body}");
    let history = e.deps.store.history("mod-sched").await.unwrap();
    assert_eq!(history.iter().filter(|h| h["action"] == "modify").count(), 2);
}

#[tokio::test]
async fn a_change_that_loses_a_race_to_another_write_is_planned_again_on_the_fresh_record() {
    let e = Env::in_memory().await;
    let nb = e.launch("mod-race").await;
    let id = nb.instance_id.clone().unwrap();
    e.stop_in_ec2(&id).await;
    e.force_state("mod-race", State::Stopped).await;
    // The sweep (say) writes the record between the change's read and its write, once.
    let store = e.store.inner.clone();
    let (clock, slipped) = (
        e.clock.clone(),
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let once = slipped.clone();
    e.store.hooks.before("put", move |_| {
        let (store, clock, once) = (store.clone(), clock.clone(), once.clone());
        async move {
            if !once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                let current = store.require("mod-race").await?;
                store
                    .put(
                        &current.touched(nbfleet_core::ports::Clock::now(&*clock)),
                        current.expect(),
                    )
                    .await?;
            }
            Ok(())
        }
    });
    let (status, body) = patch(
        &e,
        OWNER,
        "mod-race",
        json!({"instance_type": "g6.xlarge", "volume_gb": nb.volume_gb + 10}),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(slipped.load(std::sync::atomic::Ordering::SeqCst));
    let after = e.record("mod-race").await;
    assert_eq!(
        (after.instance_type.as_str(), after.volume_gb),
        ("g6.xlarge", nb.volume_gb + 10)
    );
    assert_eq!(ec2_type(&e, &id).await, "g6.xlarge");
    assert_eq!(root_volume_gb(&e, &id).await as u32, nb.volume_gb + 10);
    // Asked twice (once per try); the second grow found the disk already that large.
    assert_eq!(e.compute.hooks.count("grow_volume"), 2);
}

/// A notebook Stopped in EC2 whose subnet may fall back to g6.xlarge, and EC2 (a hook: moto
/// always has capacity) answering StartInstances with no capacity `refusals` times.
async fn out_of_capacity(name: &str, refusals: usize) -> (Env, String) {
    let mut e = Env::in_memory().await;
    let nb = e.launch(name).await;
    let id = nb.instance_id.clone().unwrap();
    e.stop_in_ec2(&id).await;
    e.force_state(name, State::Stopped).await;
    e.deps.cfg.fallback = vec![nbfleet_core::config::Placement {
        instance_type: "g6.xlarge".into(),
        subnet_id: nb.subnet_id.clone().unwrap(),
    }];
    let left = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(refusals));
    e.compute.hooks.before("start", move |_| {
        let left = left.clone();
        async move {
            match left.fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            ) {
                Ok(_) => Err(Error::Capacity("InsufficientInstanceCapacity".into())),
                Err(_) => Ok(()),
            }
        }
    });
    (e, id)
}

#[tokio::test]
async fn a_start_without_capacity_for_its_type_starts_as_the_operators_fallback_type_and_says_so() {
    let (e, id) = out_of_capacity("mod-full", 1).await;
    assert_eq!(e.record("mod-full").await.instance_type, "g5.xlarge");
    let (status, body) = api::start(&e.deps, OWNER, "mod-full").await.unwrap();
    assert_eq!(status, 202);
    assert_eq!(body["notebook"]["instance_type"], "g6.xlarge");
    assert_eq!(body["notebook"]["state"], "Starting");
    assert_eq!(ec2_type(&e, &id).await, "g6.xlarge");
    let history = e.deps.store.history("mod-full").await.unwrap();
    let entry = history.iter().find(|h| h["action"] == "start_fallback").unwrap();
    assert_eq!(
        (entry["from"].as_str(), entry["to"].as_str()),
        (Some("g5.xlarge"), Some("g6.xlarge"))
    );
}

#[tokio::test]
async fn a_start_with_no_capacity_anywhere_keeps_the_owners_type_and_the_notebook_stopped() {
    let (e, id) = out_of_capacity("mod-none", 2).await;
    let err = api::start(&e.deps, OWNER, "mod-none").await.unwrap_err();
    assert_eq!(err.status(), 503, "{err}");
    assert!(err.to_string().contains("g5.xlarge, g6.xlarge"), "{err}");
    let nb = e.record("mod-none").await;
    assert_eq!(
        (nb.state, nb.instance_type.as_str()),
        (State::Stopped, "g5.xlarge")
    );
    assert!(nb.failure.unwrap().reason.contains("no capacity"));
    assert_eq!(ec2_type(&e, &id).await, "g5.xlarge", "given its own type back");
}
