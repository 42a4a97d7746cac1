//! 20 concurrent start and stop requests on one notebook, through the local stack's HTTP API
//! (the stack runs in-process here so that a wrapper on the Compute port can count EC2 calls).
//! Conditional writes must let exactly one transition through at a time: every answer is 200,
//! 202 or 409 (a request whose write lost reads again and answers from the state the winner
//! wrote), the record ends in agreement with EC2, and EC2 saw one call per 202.

use nbfleet_local::harness::{Api, http_client};
use nbfleet_local::moto;
use nbfleet_local::stack;
use nbfleet_testkit::hooks::{HookedCompute, HookedStore};
use nbfleet_testkit::stack::{InProcess, Options, in_process};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_starts_and_stops_let_one_transition_through_at_a_time() {
    let InProcess {
        mut stack,
        listener,
        settings,
        base,
    } = in_process(Options {
        watch_interval_ms: 100,
        transition_ms: 500,
        ..Options::new("concurrency")
    })
    .await;
    let counting = HookedCompute::new(stack.deps.compute.clone());
    stack.deps.compute = counting.clone();
    // The requests' writes (EC2's events go through the stack's own copy of the ports).
    let writes = HookedStore::new(stack.deps.store.clone());
    stack.deps.store = writes.clone();
    let runner = stack.runner.clone();
    tokio::spawn(stack::serve(stack.deps, listener));
    let api = Api::new(&base);
    let wait_for = |states: &'static [&'static str]| {
        let api = api.clone();
        async move {
            api.wait_for("busy", states, Duration::from_secs(120), |_, _| {})
                .await
                .unwrap()
        }
    };

    let client = http_client();
    let launched = client
        .post(format!("{base}/notebooks"))
        .json(&json!({"name": "busy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(launched.status(), 202);
    wait_for(&["Ready"]).await;

    let moves_before = writes.moves().len();
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (client, base, barrier) = (client.clone(), base.clone(), barrier.clone());
        let action = if i % 2 == 0 { "stop" } else { "start" };
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let began = Instant::now();
            let status = client
                .post(format!("{base}/notebooks/busy/{action}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            (action, status, began, Instant::now())
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }

    let overlapped = results
        .iter()
        .any(|a| results.iter().any(|b| a.2 < b.2 && b.2 < a.3));
    assert!(overlapped, "the requests ran one after another");
    assert!(
        results.iter().all(|r| [200, 202, 409].contains(&r.1)),
        "{results:?}"
    );
    let accepted = |action: &str| results.iter().filter(|r| r.0 == action && r.1 == 202).count();
    assert_eq!(counting.hooks.count("stop"), accepted("stop"), "{results:?}");
    assert_eq!(counting.hooks.count("start"), accepted("start"), "{results:?}");
    // Each 202 is exactly one move the store took, and no move was taken without one.
    let moves = writes.moves().split_off(moves_before);
    let moved_to = |to: &str| moves.iter().filter(|(_, t)| t.as_str() == to).count();
    assert_eq!(moved_to("Stopping"), accepted("stop"), "{moves:?} {results:?}");
    assert_eq!(moved_to("Starting"), accepted("start"), "{moves:?} {results:?}");
    assert_eq!(moves.len(), accepted("stop") + accepted("start"), "{moves:?}");
    assert!(
        accepted("stop") >= 1,
        "the first stop of the burst goes through: {results:?}"
    );

    let nb = wait_for(&["Ready", "Stopped"]).await;
    let id = nb["instance_id"].as_str().unwrap();
    let ec2 = moto::clients(&settings.moto_endpoint, &settings.account).ec2;
    let out = ec2.describe_instances().instance_ids(id).send().await.unwrap();
    let ec2_state = out.reservations()[0].instances()[0]
        .state()
        .unwrap()
        .name()
        .unwrap()
        .as_str()
        .to_string();
    let expected = if nb["state"] == "Ready" {
        "running"
    } else {
        "stopped"
    };
    assert_eq!(
        ec2_state, expected,
        "the record ({}) disagrees with EC2",
        nb["state"]
    );
    runner.stop_all();
}
