//! The pre-stop hook under faults: the stop waits for it, its event stops the instance, a lost
//! event is cut by the deadline, a hook that cannot be sent stops at once, and a late "running"
//! while it runs changes nothing. Records in memory, EC2 on moto, Run Command on the test
//! kit's stand-in (moto's commands never run or report output).

use aws_sdk_ssm::types::CommandInvocationStatus;
use nbfleet_app::budget::Budget;
use nbfleet_app::instance_events::Outcome;
use nbfleet_core::events::ssm_invocation_change;
use nbfleet_core::ports::{Clock, Notice};
use nbfleet_core::record::HookStatus;
use nbfleet_core::scripts::ScriptKind;
use nbfleet_core::{Notebook, State};
use nbfleet_testkit::{Env, OWNER, RunCommand, api};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn hook_report(exit: i32, tail: &str) -> String {
    json!({"nbfleet": "hook", "hook": "pre_stop", "exit": exit, "timed_out": false, "tail": tail}).to_string()
}

/// A Ready notebook `name` with a pre-stop hook, on an environment whose commands run as `run`.
async fn with_hook(run: RunCommand, name: &str) -> (Env, Notebook) {
    let mut e = Env::in_memory().await;
    e.deps.commands = Arc::new(run.build().0);
    let body = json!({"name": name, "hooks": {"pre_stop": "aws s3 sync ~/work s3://bucket/work"}});
    api::launch(&e.deps, OWNER, body.to_string().as_bytes())
        .await
        .unwrap();
    let nb = e.force_state(name, State::Ready).await;
    (e, nb)
}

async fn pre_stop_finished(e: &Env, nb: &Notebook, status: &str) -> Outcome {
    let record = e.record(&nb.name).await;
    let command = record.pending_command.expect("the hook is pending").command_id;
    let id = nb.instance_id.as_deref().unwrap();
    api::event(
        &e.deps,
        &ssm_invocation_change(&command, id, status, &e.account, "us-east-1", "t"),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_stop_waits_for_the_pre_stop_hook_and_its_event_stops_the_instance() {
    let run = RunCommand::succeeding(|_| hook_report(0, "upload: 3 files"));
    let (e, nb) = with_hook(run, "hooked").await;
    let id = nb.instance_id.clone().unwrap();
    let (status, _) = api::stop(&e.deps, OWNER, "hooked").await.unwrap();
    assert_eq!(status, 202);
    let waiting = e.record("hooked").await;
    assert_eq!(waiting.state, State::Stopping);
    assert_eq!(
        waiting.pending_command.as_ref().map(|p| p.kind),
        Some(ScriptKind::PreStop)
    );
    assert_eq!(
        e.ec2_state(&id).await,
        "running",
        "the instance runs while its hook does"
    );

    // A late or duplicate "running" while the hook runs sends no health check.
    let late = api::event(&e.deps, &e.ec2_event(&id, "running")).await.unwrap();
    assert!(matches!(late, Outcome::NoOp(_)), "{late:?}");

    let outcome = pre_stop_finished(&e, &nb, "Success").await;
    assert!(
        matches!(
            outcome,
            Outcome::Hook {
                hook: ScriptKind::PreStop,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_ne!(e.ec2_state(&id).await, "running");
    let after = e.record("hooked").await;
    assert_eq!(after.pending_command, None);
    let run = after.pre_stop_hook.unwrap();
    assert_eq!(
        (run.status, run.tail.as_deref()),
        (HookStatus::Succeeded, Some("upload: 3 files"))
    );
    let history = e.deps.store.history("hooked").await.unwrap();
    assert!(
        history.iter().any(|h| h["action"] == "pre_stop_hook"),
        "{history:?}"
    );
}

#[tokio::test]
async fn a_pre_stop_hook_whose_event_never_comes_is_cut_by_its_deadline_and_the_instance_stops() {
    let (e, nb) = with_hook(RunCommand::succeeding(|_| hook_report(0, "")), "lost").await;
    let id = nb.instance_id.clone().unwrap();
    api::stop(&e.deps, OWNER, "lost").await.unwrap();
    let deadlines = || async {
        let live = nbfleet_app::reconcile::live(&e.deps).await.unwrap();
        nbfleet_app::deadlines::enforce(&e.deps, &live, e.clock.now(), Budget::of(Duration::from_secs(30)))
            .await
    };
    // Its limit (120 s) plus the margin (60 s) is not over yet.
    e.advance(2);
    assert!(deadlines().await.done.is_empty());
    assert_eq!(e.ec2_state(&id).await, "running");
    e.advance(2);
    assert_eq!(deadlines().await.done.len(), 1);
    assert_ne!(e.ec2_state(&id).await, "running");
    let run = e.record("lost").await.pre_stop_hook.unwrap();
    assert_eq!(run.status, HookStatus::Failed);
    assert!(
        run.summary().contains("no result 120 s after its start"),
        "{}",
        run.summary()
    );
}

#[tokio::test]
async fn a_pre_stop_hook_that_cannot_be_sent_never_keeps_the_gpu_running() {
    let mut e = Env::in_memory().await;
    let body = json!({"name": "offline", "hooks": {"pre_stop": "git commit -am wip"}});
    api::launch(&e.deps, OWNER, body.to_string().as_bytes())
        .await
        .unwrap();
    let nb = e.force_state("offline", State::Ready).await;
    let id = nb.instance_id.clone().unwrap();
    e.deps.commands = Arc::new(RunCommand::succeeding(|_| String::new()).refusing(&id).build().0);
    api::stop(&e.deps, OWNER, "offline").await.unwrap();
    assert_ne!(e.ec2_state(&id).await, "running");
    let history = e.deps.store.history("offline").await.unwrap();
    let entry = history.iter().find(|h| h["action"] == "pre_stop_hook").unwrap();
    assert!(entry["reason"].as_str().unwrap().contains("not sent"), "{entry}");
}

#[tokio::test]
async fn an_automatic_stop_tells_the_owner_with_the_hooks_outcome_once_it_ends() {
    let run = RunCommand::succeeding(|_| hook_report(1, "upload failed: AccessDenied"));
    let (e, nb) = with_hook(run, "told").await;
    let now = e.clock.now();
    let mut stopping = nb.moved_to(State::Stopping, now).unwrap();
    stopping.running_since = Some(now - jiff::SignedDuration::from_hours(2));
    e.deps.store.put(&stopping, nb.expect()).await.unwrap();
    let reason = "stopped: idle since 10:00 UTC".to_string();
    nbfleet_app::hooks::stop(&e.deps, stopping, true, Some(reason), now)
        .await
        .unwrap();
    assert!(e.heard.notices().is_empty(), "told only when the hook ends");
    pre_stop_finished(&e, &nb, "Success").await;
    let told = e.heard.notices();
    let text = match told.as_slice() {
        [notice @ Notice::Stopped { .. }] => notice.text(),
        other => panic!("{other:?}"),
    };
    assert!(
        text.contains("idle since 10:00 UTC")
            && text.contains("pre-stop hook failed (exit 1): upload failed: AccessDenied"),
        "{text}"
    );
    let (hours, usd) = e.heard.facts()[0]
        .run
        .expect("the Stopped notice says what the run cost");
    assert_eq!(hours, 2.0, "the run the stop ends");
    assert!(usd.is_some_and(|u| u > 0.0), "{usd:?}");
}

#[tokio::test]
async fn a_hook_runner_that_fails_still_stops_the_instance() {
    let run = RunCommand::succeeding(|_| String::new()).ending(
        CommandInvocationStatus::Failed,
        1,
        "runuser: user ubuntu does not exist\n",
    );
    let (e, nb) = with_hook(run, "broken").await;
    let id = nb.instance_id.clone().unwrap();
    api::stop(&e.deps, OWNER, "broken").await.unwrap();
    pre_stop_finished(&e, &nb, "Failed").await;
    assert_ne!(e.ec2_state(&id).await, "running");
    let run = e.record("broken").await.pre_stop_hook.unwrap();
    assert!(
        run.summary().contains("runuser: user ubuntu does not exist"),
        "{}",
        run.summary()
    );
}
