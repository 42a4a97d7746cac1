//! Faults across handlers (issue 10's matrix, the cases not covered where the code was written):
//! duplicate event deliveries, and probes that lie. Handlers run against moto; Run Command is
//! mocked where moto has no results (see `support/world.rs`).

#[path = "support/world.rs"]
#[allow(dead_code)]
mod world;

use jiff::{SignedDuration, Timestamp};
use nbfleet_aws::moto;
use nbfleet_configure::{Outcome, handle_event};
use nbfleet_core::events::ssm_invocation_change;
use nbfleet_core::{Notebook, State};
use std::sync::Arc;
use world::{World, bootstrap_report};

fn changed(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Moved { .. } | Outcome::Sent { .. })
}

#[tokio::test]
async fn every_event_the_configure_handler_takes_is_a_no_op_the_second_time() {
    let w = World::new().await;
    let (mut deps, log) = w.deps("nbfleet-configure");
    deps.commands = Arc::new(w.commands(&log, bootstrap_report));
    let nb = w.notebook("dup", |_| {}).await;
    let id = nb.instance_id.clone().unwrap();

    let running = w.ec2_event(&id, "running");
    assert!(changed(&handle_event(&deps, &running).await.unwrap()));
    let again = handle_event(&deps, &running).await.unwrap();
    assert!(!changed(&again), "a second running event: {again:?}");
    assert_eq!(
        log.counts().get("ssm:SendCommand"),
        Some(&1),
        "the bootstrap was sent twice"
    );

    let cmd = w
        .seed
        .store
        .require("dup")
        .await
        .unwrap()
        .pending_command
        .unwrap();
    let done = ssm_invocation_change(&cmd.command_id, &id, "Success", &w.account, moto::REGION, "t");
    assert!(changed(&handle_event(&deps, &done).await.unwrap()));
    let ready = w.seed.store.require("dup").await.unwrap();
    assert_eq!(ready.state, State::Ready);
    assert!(!changed(&handle_event(&deps, &done).await.unwrap()));
    assert_eq!(w.seed.store.require("dup").await.unwrap().version, ready.version);

    let stopped = w.ec2_event(&id, "stopped");
    assert!(changed(&handle_event(&deps, &stopped).await.unwrap()));
    let after = w.seed.store.require("dup").await.unwrap();
    assert!(!changed(&handle_event(&deps, &stopped).await.unwrap()));
    assert_eq!(w.seed.store.require("dup").await.unwrap().version, after.version);

    w.set("dup", |nb| nb.state = State::Terminating).await;
    let terminated = w.ec2_event(&id, "terminated");
    assert!(changed(&handle_event(&deps, &terminated).await.unwrap()));
    let gone = w.seed.store.require("dup").await.unwrap();
    assert_eq!(gone.state, State::Terminated);
    assert!(!changed(&handle_event(&deps, &terminated).await.unwrap()));
    assert_eq!(w.seed.store.require("dup").await.unwrap().version, gone.version);
}

/// A probe that prints this is never a reason to stop.
fn garbage(_: &str) -> String {
    "Traceback (most recent call last):\n  nvidia-smi: command not found".into()
}

fn ten_megabytes(_: &str) -> String {
    format!(
        r#"{{"nbfleet":"probe","k":0,"kb":0,"pad":"{}"}}"#,
        "x".repeat(10 << 20)
    )
}

fn absurd(_: &str) -> String {
    r#"{"nbfleet":"probe","k":-1,"kb":99999999999999999999,"ka":"9999-99-99T99:99:99Z","ta":[],"c":"many","sa":null,"g":[-5,1e309]}"#
        .into()
}

#[tokio::test]
async fn a_probe_that_prints_garbage_ten_megabytes_or_absurd_values_is_unknown_never_a_stop() {
    for (label, output) in [
        ("garbage", garbage as fn(&str) -> String),
        ("10 MB", ten_megabytes),
        ("absurd values", absurd),
    ] {
        let w = World::new().await;
        let (mut deps, log) = w.deps("nbfleet-sweep");
        deps.commands = Arc::new(w.commands(&log, output));
        // Idle for hours and warned for a stop that is due: only a real observation may stop it.
        let long_ago = Timestamp::now() - SignedDuration::from_hours(5);
        let due = long_ago + SignedDuration::from_mins(60);
        w.notebook("lying", |nb: &mut Notebook| {
            nb.state = State::Ready;
            nb.running_since = Some(long_ago);
            nb.idle_status = Some(nbfleet_core::record::IdleStatus {
                verdict: nbfleet_core::idle::Verdict::Idle,
                reason: "idle".into(),
                planned_stop: Some(due),
                warned_stop_at: Some(due),
                unknowns: 0,
            });
        })
        .await;
        let report = nbfleet_sweep::sweep(&deps, nbfleet_sweep::Timing::default())
            .await
            .unwrap();
        assert!(
            report.stopped.is_empty(),
            "{label}: stopped on a bad probe: {report:?}"
        );
        assert_eq!(report.unknown.len(), 1, "{label}: {report:?}");
        let nb = w.seed.store.require("lying").await.unwrap();
        assert_eq!(nb.state, State::Ready, "{label}");
        assert_eq!(nb.idle_status.unwrap().unknowns, 1, "{label}");
    }
}
