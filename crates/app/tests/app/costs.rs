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
    // Each day is rounded to the cent, part by part.
    assert!((days - 2.05).abs() < 0.05, "the days add up: {body}");
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

fn budget_notices(e: &Env) -> Vec<u64> {
    e.heard
        .notices()
        .into_iter()
        .filter_map(|n| match n {
            nbfleet_core::ports::Notice::Budget {
                spent_cents,
                budget_cents,
                ..
            } => Some(spent_cents * 100 / budget_cents),
            _ => None,
        })
        .collect()
}

/// An environment where [`OWNER`] has a $5 monthly budget.
async fn budgeted() -> Env {
    let mut e = Env::in_memory().await;
    let id = api::principal(&e.deps, OWNER).unwrap().id;
    e.deps.cfg.budgets.insert(id, 5.0);
    e
}

#[tokio::test]
async fn a_budget_at_80_percent_tells_once_and_at_100_refuses_launch_and_start_except_for_an_admin() {
    let mut e = budgeted().await;
    running(&e, "bud-run").await;
    let stopped = e.launch("bud-stopped").await;
    e.stop_in_ec2(stopped.instance_id.as_deref().unwrap()).await;
    e.force_state("bud-stopped", State::Stopped).await;
    // 4 hours of a g5.xlarge: $4.02 (and a little disk) of $5.
    e.advance(240);
    let launch = |name: &str| serde_json::json!({ "name": name }).to_string();
    let (status, _) = api::launch(&e.deps, OWNER, launch("bud-two").as_bytes())
        .await
        .unwrap();
    assert_eq!(status, 202, "under budget: launched");
    let told = budget_notices(&e);
    assert!(
        matches!(told[..], [p] if (80..100).contains(&p)),
        "told at 80 %: {told:?}"
    );
    e.force_state("bud-two", State::Stopped).await;
    api::launch(&e.deps, OWNER, launch("bud-three").as_bytes())
        .await
        .unwrap();
    e.force_state("bud-three", State::Stopped).await;
    assert_eq!(budget_notices(&e).len(), 1, "once a month");

    // An hour later: past $5.
    e.advance(60);
    let err = api::launch(&e.deps, OWNER, launch("bud-four").as_bytes())
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (403, "budget_exceeded"), "{err}");
    assert!(
        e.deps.store.get("bud-four").await.unwrap().is_none(),
        "nothing claimed"
    );
    let err = api::start(&e.deps, OWNER, "bud-stopped").await.unwrap_err();
    assert_eq!(err.code(), "budget_exceeded");
    assert_eq!(e.record("bud-stopped").await.state, State::Stopped);
    assert_eq!(budget_notices(&e).len(), 2, "told at 100 %, once");
    // The running notebook is not stopped by it, and an admin may still start one.
    assert_eq!(e.record("bud-run").await.state, State::Ready);
    e.deps.cfg.admins = vec!["arn:aws:iam::123456789012:role/Platform".parse().unwrap()];
    let (status, _) = api::start(
        &e.deps,
        "arn:aws:sts::123456789012:assumed-role/Platform/oncall",
        "bud-stopped",
    )
    .await
    .unwrap();
    assert_eq!(status, 202);
    // Another owner has no budget: never refused.
    let (status, _) = api::launch(&e.deps, "bob", launch("bob-one").as_bytes())
        .await
        .unwrap();
    assert_eq!(status, 202);
}

/// Slack, rate-limited: a notice that would take a minute to go out.
struct SlowSlack;

#[async_trait::async_trait]
impl nbfleet_core::ports::Notifier for SlowSlack {
    async fn notify(
        &self,
        _: &nbfleet_core::ports::Notice,
        _: &nbfleet_core::blocks::Facts,
    ) -> nbfleet_core::Result<()> {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        Ok(())
    }
}

#[tokio::test]
async fn a_slow_budget_notice_never_holds_up_the_launch_that_crossed_it() {
    let mut e = budgeted().await;
    running(&e, "slow-run").await;
    e.advance(240);
    e.deps.notifier = std::sync::Arc::new(SlowSlack);
    let body = serde_json::json!({ "name": "slow-two" }).to_string();
    // Well inside an API function's 29 s, with the notice still waiting on Slack.
    let launched = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        api::launch(&e.deps, OWNER, body.as_bytes()),
    )
    .await
    .expect("the launch answers while Slack is slow");
    assert_eq!(launched.unwrap().0, 202);
}

#[tokio::test]
async fn the_sweep_tells_an_owner_who_crossed_80_percent_at_most_once_an_hour_and_once_a_month() {
    let e = budgeted().await;
    running(&e, "bud-sweep").await;
    e.advance(60);
    nbfleet_app::costs::budget_round(&e.deps, e.now()).await.unwrap();
    assert!(budget_notices(&e).is_empty(), "$1 of $5: nothing to say");
    e.advance(200);
    nbfleet_app::costs::budget_round(&e.deps, e.now()).await.unwrap();
    assert_eq!(budget_notices(&e).len(), 1, "{:?}", budget_notices(&e));
    e.advance(61);
    nbfleet_app::costs::budget_round(&e.deps, e.now()).await.unwrap();
    nbfleet_app::costs::budget_round(&e.deps, e.now()).await.unwrap();
    assert_eq!(
        budget_notices(&e).len(),
        2,
        "then 100 %, once: {:?}",
        budget_notices(&e)
    );
    assert_eq!(
        e.record("bud-sweep").await.state,
        State::Ready,
        "a budget stops nothing"
    );
}
