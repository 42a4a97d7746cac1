//! What notebooks cost and what automatic stops saved (`GET /costs`), through the use cases and
//! EC2's events: records in memory, EC2 on moto, the clock the test moves.

use nbfleet_core::State;
use nbfleet_core::record::IdleStatus;
use nbfleet_testkit::{Env, OWNER, api};
use serde_json::Value;

/// `name` launched at the start of the test's clock, running from then on.
async fn running(e: &Env, name: &str) -> String {
    let nb = e.launch(name).await;
    let id = nb.instance_id.clone().unwrap();
    let now = e.now();
    e.force(name, |nb| {
        (nb.state, nb.running_since, nb.disk_created_at) = (State::Ready, Some(now), Some(now));
    })
    .await;
    id
}

fn since(e: &Env) -> String {
    format!("since={}", e.now())
}

#[tokio::test]
async fn an_idle_stop_then_a_start_two_hours_later_saved_two_hours_and_the_disk_costs_throughout() {
    let e = Env::in_memory().await;
    let window = since(&e);
    let id = running(&e, "cost-a").await;
    e.advance(60);
    // The sweep stops it for idleness (its status says so), and EC2 says stopped.
    e.force("cost-a", |nb| {
        nb.state = State::Stopping;
        nb.idle_status = Some(IdleStatus {
            stopped_automatically: true,
            ..Default::default()
        });
    })
    .await;
    e.stop_in_ec2(&id).await;
    api::event(&e.deps, &e.ec2_event(&id, "stopped")).await.unwrap();
    assert_eq!(e.record("cost-a").await.state, State::Stopped);
    e.advance(120);
    api::start(&e.deps, OWNER, "cost-a").await.unwrap();
    api::event(&e.deps, &e.ec2_event(&id, "running")).await.unwrap();
    e.advance(60);

    let (status, body) = api::costs(&e.deps, OWNER, &format!("{window}&by=notebook"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let g = &body["groups"][0];
    assert_eq!(g["key"], "cost-a");
    // 2 hours run at $1.006, 2 hours saved, 100 GB for 4 hours at $0.08 a GB-month.
    assert_eq!(g["compute_usd"].as_f64(), Some(2.01), "{body}");
    assert_eq!(g["saved_usd"].as_f64(), Some(2.01), "{body}");
    assert_eq!(g["disk_usd"].as_f64(), Some(0.04), "{body}");
    assert_eq!(g["total_usd"].as_f64(), Some(2.05), "{body}");
    assert!(
        body["saved_rule"]
            .as_str()
            .unwrap()
            .contains("at most 24 h per stop")
    );
    assert_eq!(body["total"]["total_usd"], g["total_usd"]);
    let days: f64 = body["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["total_usd"].as_f64().unwrap())
        .sum();
    assert!((days - 2.05).abs() < 0.02, "the days add up: {body}");
    // The record's cost to date agrees.
    let (_, view) = api::get(&e.deps, "cost-a").await.unwrap();
    assert_eq!(view["cost"]["compute_usd"].as_f64(), Some(2.01), "{view}");
}

#[tokio::test]
async fn each_owner_sees_their_own_spend_and_an_admin_sees_everyones_by_owner() {
    let mut e = Env::in_memory().await;
    let window = since(&e);
    running(&e, "cost-mine").await;
    // Someone else's.
    let body = serde_json::json!({"name": "cost-theirs"}).to_string();
    api::launch(&e.deps, "bob", body.as_bytes()).await.unwrap();
    let now = e.now();
    e.force("cost-theirs", |nb| {
        (nb.state, nb.running_since) = (State::Ready, Some(now))
    })
    .await;
    e.advance(60);
    let (_, mine) = api::costs(&e.deps, OWNER, &window).await.unwrap();
    let keys = |b: &Value| -> Vec<String> {
        b["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["key"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(keys(&mine), ["cost-mine"]);
    e.deps.cfg.admins = vec!["arn:aws:iam::123456789012:role/Platform".parse().unwrap()];
    let admin = "arn:aws:sts::123456789012:assumed-role/Platform/oncall";
    let (_, all) = api::costs(&e.deps, admin, &format!("{window}&by=owner"))
        .await
        .unwrap();
    assert_eq!(keys(&all).len(), 2, "{all}");
    assert!(keys(&all).contains(&"bob".to_string()), "{all}");
}

#[tokio::test]
async fn a_bad_costs_query_names_its_parameter() {
    let e = Env::in_memory().await;
    for (query, field) in [
        ("since=yesterday", "since"),
        ("since=2999-01-01", "since"),
        ("by=team", "by"),
        ("from=2026-01-01", "from"),
    ] {
        match api::costs(&e.deps, OWNER, query).await {
            Err(nbfleet_core::Error::BadRequest { field: f, .. }) => assert_eq!(f, field, "{query}"),
            other => panic!("{query}: {other:?}"),
        }
    }
    let (status, body) = api::costs(&e.deps, OWNER, "since=2026-11-01").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        body["since"].as_str().unwrap().starts_with("2026-11-01T00:00:00"),
        "{body}"
    );
}
