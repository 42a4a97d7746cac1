//! Faults across the use cases (issue 10's matrix, the cases not covered where the code was written):
//! duplicate and racing event deliveries, probes that lie, throttling and capacity on start and
//! stop, an agent that never comes online, bootstraps that fail, time out or are cancelled, and
//! an instance terminated mid-configure. Handlers run against moto; Run Command is mocked where
//! moto has no results (see `world.rs`), and EC2 where moto never fails (throttling,
//! capacity).

use crate::world::{OWNER, World, bootstrap_report};
#[allow(dead_code)]
use aws_sdk_ec2::Client as Ec2;
use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::operation::start_instances::StartInstancesOutput;
use aws_sdk_ec2::operation::stop_instances::StopInstancesOutput;
use aws_sdk_ssm::types::CommandInvocationStatus;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use jiff::{SignedDuration, Timestamp};
use nbfleet_app::instance_events::Outcome;
use nbfleet_aws::ssm_commands::AgentWait;
use nbfleet_aws::{Ec2Compute, SsmCommands};
use nbfleet_core::events::ssm_invocation_change;
use nbfleet_core::ports::InstanceState;
use nbfleet_core::{Notebook, State};
use nbfleet_local::moto::{self, ec2_error};
use nbfleet_testkit::api::event as handle_event;
use nbfleet_testkit::hooks::HookedStore;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn changed(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Moved { .. } | Outcome::Sent { .. })
}

#[tokio::test]
async fn every_event_the_configure_handler_takes_is_a_no_op_the_second_time() {
    let w = World::new().await;
    let (mut deps, log) = w.deps("nbfleet-events");
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
async fn a_probe_that_hangs_prints_garbage_ten_megabytes_or_absurd_values_is_unknown_never_a_stop() {
    use CommandInvocationStatus::{InProgress, Success};
    for (label, status, output) in [
        ("hangs", InProgress, (|_| String::new()) as fn(&str) -> String),
        ("garbage", Success, garbage),
        ("10 MB", Success, ten_megabytes),
        ("absurd values", Success, absurd),
    ] {
        let w = World::new().await;
        let (mut deps, log) = w.deps("nbfleet-sweep");
        deps.commands = Arc::new(w.commands_ending(&log, status, 0, output, ""));
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
                ..Default::default()
            });
        })
        .await;
        let timing = nbfleet_app::sweep::Timing {
            collect_for: Duration::from_millis(600),
            poll_every: Duration::from_millis(100),
            ..Default::default()
        };
        let report = nbfleet_app::sweep::sweep(&deps, timing).await.unwrap();
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

/// EC2 answering StartInstances and StopInstances by `rules` (moto never throttles nor runs
/// out of capacity), through the real client with nbfleet's retry policy: three attempts.
fn faulty_ec2(w: &World, rules: &[&Rule]) -> Arc<Ec2Compute> {
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, rules, |c| {
        nbfleet_aws::ec2_retry_policy(
            c.retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(1)),
            ),
        )
    });
    Arc::new(Ec2Compute::new(
        ec2,
        w.aws.ssm.clone(),
        nbfleet_local::deployment::TABLE,
    ))
}

fn throttled() -> Option<String> {
    Some(ec2_error("RequestLimitExceeded", "Request limit exceeded."))
}

#[tokio::test]
async fn start_and_stop_recover_from_two_throttles_within_the_bounded_retries() {
    let w = World::new().await;
    let start = mock!(Ec2::start_instances)
        .sequence()
        .http_status(503, throttled())
        .http_status(503, throttled())
        .output(|| StartInstancesOutput::builder().build())
        .build();
    let stop = mock!(Ec2::stop_instances)
        .sequence()
        .http_status(503, throttled())
        .http_status(503, throttled())
        .output(|| StopInstancesOutput::builder().build())
        .build();
    let mut deps = w.seed.clone();
    deps.compute = faulty_ec2(&w, &[&start, &stop]);

    w.notebook("calm", |nb| nb.state = State::Stopped).await;
    let (status, _) = nbfleet_testkit::api::start(&deps, OWNER, "calm").await.unwrap();
    assert_eq!((status, start.num_calls()), (202, 3));
    assert_eq!(w.seed.store.require("calm").await.unwrap().state, State::Starting);

    w.set("calm", |nb| nb.state = State::Ready).await;
    let (status, _) = nbfleet_testkit::api::stop(&deps, OWNER, "calm").await.unwrap();
    assert_eq!((status, stop.num_calls()), (202, 3));
    assert_eq!(w.seed.store.require("calm").await.unwrap().state, State::Stopping);
}

#[tokio::test]
async fn throttling_that_persists_on_start_or_stop_is_a_503_and_the_record_is_as_it_was() {
    let w = World::new().await;
    let start = mock!(Ec2::start_instances)
        .sequence()
        .http_status(503, throttled())
        .repeatedly()
        .build();
    let stop = mock!(Ec2::stop_instances)
        .sequence()
        .http_status(503, throttled())
        .repeatedly()
        .build();
    let mut deps = w.seed.clone();
    deps.compute = faulty_ec2(&w, &[&start, &stop]);

    let before = w.notebook("jammed", |nb| nb.state = State::Stopped).await;
    let err = nbfleet_testkit::api::start(&deps, OWNER, "jammed")
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.status(), start.num_calls()),
        ("Throttled", 503, 3)
    );
    let after = w.seed.store.require("jammed").await.unwrap();
    assert_eq!(after.state, State::Stopped, "a start that did not happen");
    assert_eq!(after.instance_id, before.instance_id);

    w.set("jammed", |nb| nb.state = State::Ready).await;
    let err = nbfleet_testkit::api::stop(&deps, OWNER, "jammed")
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.status(), stop.num_calls()),
        ("Throttled", 503, 3)
    );
    let after = w.seed.store.require("jammed").await.unwrap();
    assert_eq!(after.state, State::Ready, "a stop that did not happen");
    assert_eq!(after.pending_command, None);

    // Asked again once EC2 answers, the stop goes through: nothing was left half-done.
    let (status, _) = nbfleet_testkit::api::stop(&w.seed, OWNER, "jammed")
        .await
        .unwrap();
    assert_eq!(status, 202);
}

#[tokio::test]
async fn a_stopped_notebook_that_cannot_start_for_capacity_stays_stopped_and_the_answer_says_why() {
    let w = World::new().await;
    let no_capacity = ec2_error(
        "InsufficientInstanceCapacity",
        "We currently do not have sufficient g5.xlarge capacity in the Availability Zone you requested (us-east-1a).",
    );
    let start = mock!(Ec2::start_instances)
        .sequence()
        .http_status(500, Some(no_capacity))
        .repeatedly()
        .build();
    let mut deps = w.seed.clone();
    deps.compute = faulty_ec2(&w, &[&start]);
    w.notebook("starved", |nb| nb.state = State::Stopped).await;

    let resp = nbfleet_testkit::api::respond(nbfleet_testkit::api::start(&deps, OWNER, "starved").await);
    assert_eq!(resp.status(), 503);
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(body["error"]["code"], "InsufficientCapacity", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("capacity"),
        "{body}"
    );
    assert_eq!(start.num_calls(), 1, "capacity is not retried in place");
    let nb = w.seed.store.require("starved").await.unwrap();
    assert_eq!(nb.state, State::Stopped);
    assert!(
        nb.failure.unwrap().reason.contains("capacity"),
        "the record says why too"
    );
}

#[tokio::test]
async fn an_agent_that_never_comes_online_ends_failed_with_its_instance_stopped_at_the_deadline() {
    let w = World::new().await;
    let (mut deps, _log) = w.deps("nbfleet-events");
    let offline = mock!(aws_sdk_ssm::Client::send_command)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"InvalidInstanceId","Message":"Instances not in a valid state"}"#.into()),
        )
        .repeatedly()
        .build();
    deps.commands = Arc::new(
        SsmCommands::new(mock_client!(aws_sdk_ssm, [&offline])).with_agent_wait(AgentWait {
            attempts: 2,
            interval: Duration::from_millis(1),
        }),
    );
    let nb = w.notebook("silent", |_| {}).await;
    let id = nb.instance_id.clone().unwrap();

    // Each delivery (Lambda retries it) waits its bound and gives the record back.
    for _ in 0..3 {
        let err = handle_event(&deps, &w.ec2_event(&id, "running"))
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(err.to_string().contains("did not come online"), "{err}");
        assert_eq!(
            w.seed.store.require("silent").await.unwrap().state,
            State::Launching
        );
    }
    // Past the Launching deadline, the sweep's pass fails it and stops the instance.
    w.set("silent", |nb| {
        nb.state_since = Timestamp::now() - SignedDuration::from_mins(16)
    })
    .await;
    let live = nbfleet_app::reconcile::live(&w.seed).await.unwrap();
    let done = nbfleet_app::deadlines::enforce(&w.seed, &live, Timestamp::now(), a_minute())
        .await
        .done;
    assert_eq!(done.len(), 1, "{done:?}");
    let nb = w.seed.store.require("silent").await.unwrap();
    assert_eq!(nb.state, State::Failed);
    assert!(nb.failure.unwrap().reason.contains("stuck in Launching"));
    let ec2 = w.seed.compute.describe(&id).await.unwrap().unwrap();
    assert!(
        matches!(ec2.state, InstanceState::Stopping | InstanceState::Stopped),
        "{:?}",
        ec2.state
    );
}

/// With terminal escapes, as a hostile or colourful instance prints them: they are stored as
/// plain text.
const STDERR: &str = "Collecting jupyterlab\n\u{1b}[2J\u{1b}]0;pwned\u{7}ERROR: Could not find a version that satisfies the requirement jupyterlab\nnbfleet-bootstrap: installing JupyterLab: \u{1b}[31mpip install jupyterlab failed\u{1b}[0m";

#[tokio::test]
async fn a_bootstrap_that_fails_times_out_or_is_cancelled_ends_failed_and_stopped_with_its_stderr_tail() {
    for (status, code, says) in [
        (CommandInvocationStatus::Failed, 1, "the bootstrap failed"),
        (CommandInvocationStatus::TimedOut, -1, "the bootstrap timed out"),
        (
            CommandInvocationStatus::Cancelled,
            -1,
            "the bootstrap was cancelled",
        ),
    ] {
        let w = World::new().await;
        let (mut deps, log) = w.deps("nbfleet-events");
        deps.commands = Arc::new(w.commands_ending(&log, status.clone(), code, |_| String::new(), STDERR));
        let nb = w.notebook("broken", |_| {}).await;
        let id = nb.instance_id.clone().unwrap();
        handle_event(&deps, &w.ec2_event(&id, "running")).await.unwrap();
        let cmd = w
            .seed
            .store
            .require("broken")
            .await
            .unwrap()
            .pending_command
            .unwrap();
        let event = ssm_invocation_change(
            &cmd.command_id,
            &id,
            status.as_str(),
            &w.account,
            moto::REGION,
            "t",
        );
        handle_event(&deps, &event).await.unwrap();

        let nb = w.seed.store.require("broken").await.unwrap();
        assert_eq!(nb.state, State::Failed, "{status:?}");
        let failure = nb.failure.unwrap();
        assert_eq!(failure.reason, says);
        let tail = failure.stderr_tail.unwrap();
        assert!(
            tail.ends_with("pip install jupyterlab failed"),
            "{status:?}: {tail:?}"
        );
        assert!(!tail.contains('\u{1b}') && !tail.contains('\u{7}'), "{tail:?}");
        let secret = w
            .aws
            .ssm
            .get_parameter()
            .name("/nbfleet/notebooks/broken/secret")
            .with_decryption(true)
            .send()
            .await
            .unwrap();
        let secret = secret.parameter.unwrap().value.unwrap();
        let shown = serde_json::to_string(&w.seed.store.require("broken").await.unwrap()).unwrap();
        assert!(!shown.contains(&secret), "the record holds the secret");
        let ec2 = w.seed.compute.describe(&id).await.unwrap().unwrap();
        assert!(
            matches!(ec2.state, InstanceState::Stopping | InstanceState::Stopped),
            "{status:?}: {:?}",
            ec2.state
        );
    }
}

#[tokio::test]
async fn an_instance_terminated_during_configure_ends_terminated_without_an_error() {
    let w = World::new().await;
    let (mut deps, log) = w.deps("nbfleet-events");
    deps.commands =
        Arc::new(w.commands_ending(&log, CommandInvocationStatus::Failed, -1, |_| String::new(), ""));
    let nb = w.notebook("vanishing", |_| {}).await;
    let id = nb.instance_id.clone().unwrap();
    handle_event(&deps, &w.ec2_event(&id, "running")).await.unwrap();
    let cmd = w
        .seed
        .store
        .require("vanishing")
        .await
        .unwrap()
        .pending_command
        .unwrap();

    // Someone terminates it in the console; SSM then reports the command failed.
    w.terminate_in_ec2(&id).await;
    let failed = ssm_invocation_change(&cmd.command_id, &id, "Failed", &w.account, moto::REGION, "t");
    handle_event(&deps, &failed).await.unwrap();
    handle_event(&deps, &w.ec2_event(&id, "terminated"))
        .await
        .unwrap();
    let nb = w.seed.store.require("vanishing").await.unwrap();
    assert_eq!(nb.state, State::Terminated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ec2_event_and_reconcile_racing_on_one_instance_send_one_bootstrap() {
    for round in 0..5 {
        let w = World::new().await;
        let (mut deps, log) = w.deps("nbfleet-events");
        deps.commands = Arc::new(w.commands(&log, bootstrap_report));
        let nb = w.notebook("raced", |_| {}).await;
        let id = nb.instance_id.clone().unwrap();
        let live = nbfleet_app::reconcile::live(&deps).await.unwrap();
        let event = w.ec2_event(&id, "running");
        let (by_event, by_reconcile) = tokio::join!(
            handle_event(&deps, &event),
            nbfleet_app::reconcile::reconcile(&deps, &live, Timestamp::now(), a_minute())
        );
        // The loser of the claim is a 409 (Lambda's retry then finds nothing to do).
        if let Err(e) = by_event {
            assert_eq!(e.status(), 409, "{e}");
        }
        by_reconcile.unwrap();
        assert_eq!(
            log.counts().get("ssm:SendCommand"),
            Some(&1),
            "round {round}: two bootstraps were sent"
        );
        let nb = w.seed.store.require("raced").await.unwrap();
        assert_eq!(nb.state, State::Configuring);
        assert!(nb.pending_command.is_some());
    }
}

#[tokio::test]
async fn a_stop_or_delete_that_meets_an_in_place_update_goes_through_not_409() {
    let w = World::new().await;
    for (name, act) in [("upd-stop", "stop"), ("upd-delete", "delete")] {
        w.notebook(name, |nb| nb.state = State::Configuring).await;
        // One in-place update of the record (as the events function recording its command id,
        // or the sweep its verdict) slips in just before the first write the request makes.
        let mut deps = w.seed.clone();
        let store = HookedStore::new(w.seed.store.clone());
        let (inner, done) = (w.seed.store.clone(), Arc::new(AtomicBool::new(false)));
        store.hooks.before("put", move |s| {
            let (inner, first) = (inner.clone(), !done.swap(true, Ordering::SeqCst));
            async move {
                if let (true, Some(nb)) = (first, s.record()) {
                    let current = inner.require(&nb.name).await?;
                    inner
                        .put(&current.touched(Timestamp::now()), current.expect())
                        .await?;
                }
                Ok(())
            }
        });
        deps.store = store;
        let (status, _) = match act {
            "stop" => nbfleet_testkit::api::stop(&deps, OWNER, name).await,
            _ => nbfleet_testkit::api::delete(&deps, OWNER, name, false).await,
        }
        .unwrap_or_else(|e| panic!("{act}: {e}"));
        assert_eq!(status, 202, "{act}");
        let nb = w.seed.store.require(name).await.unwrap();
        let want = if act == "stop" {
            State::Stopping
        } else {
            State::Terminating
        };
        assert_eq!(nb.state, want, "{act}");
    }
}

/// A phase budget no test here comes near.
fn a_minute() -> nbfleet_app::budget::Budget {
    nbfleet_app::budget::Budget::of(Duration::from_secs(60))
}
