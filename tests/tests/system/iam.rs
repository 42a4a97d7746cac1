//! Each function's IAM actions in template.yaml equal the AWS operations its code calls.
//!
//! Every function is driven here through its paths against moto, on clients that record each
//! operation they send (an SDK interceptor, `moto::CallLog`), one log per function. moto's gaps
//! are filled with aws-smithy-mocks clients carrying the same interceptor: Run Command results
//! (moto has no ListCommandInvocations, and its GetCommandInvocation has no script output) and
//! Lambda's asynchronous invoke (the Slack self-invocation). The template side comes from
//! `scripts/check-template.py --facts`.
//!
//! Actions IAM checks that are no API operation of their own are implied by the operation that
//! needs them: tag-on-create (`ec2:CreateTags`, for instances, groups and snapshots) and
//! passing the instance role (`iam:PassRole`).

use crate::world::{OWNER, World, bootstrap_report, idle_probe};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use jiff::{SignedDuration, Timestamp};
use nbfleet_core::events::ssm_invocation_change;
use nbfleet_core::ports::Jobs;
use nbfleet_core::{Notebook, State};
use nbfleet_local::moto::{self, CallLog};
use nbfleet_local::setup;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The operations in `log`, as IAM actions.
fn called(log: &CallLog) -> BTreeSet<String> {
    let alias = |op: &str| match op {
        // Lambda's API operation `Invoke` is the IAM action `InvokeFunction`.
        "lambda:Invoke" => "lambda:InvokeFunction".to_string(),
        other => other.to_string(),
    };
    let mut actions: BTreeSet<String> = log.counts().keys().map(|k| alias(k)).collect();
    if actions.contains("ec2:RunInstances") {
        actions.extend(["ec2:CreateTags".into(), "iam:PassRole".into()]);
    }
    if [
        "ec2:CreateSecurityGroup",
        "ec2:CreateSnapshot",
        "ec2:RegisterImage",
    ]
    .iter()
    .any(|a| actions.contains(*a))
    {
        actions.insert("ec2:CreateTags".into());
    }
    actions
}

fn allowed(facts: &Value, function: &str) -> BTreeSet<String> {
    facts["functions"][function]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn compare(facts: &Value, function: &str, log: &CallLog, report: &mut BTreeMap<String, String>) {
    let (called, mut allowed) = (called(log), allowed(facts, function));
    if function == "nbfleet-lifecycle" || function == "nbfleet-sweep" {
        // moto's gap: its RegisterImage keeps no block device mapping, so no image in moto is
        // ever made from a snapshot, and deleting a snapshot never finds a leftover restore
        // image to deregister (crates/aws/src/ec2_compute.rs, `delete_snapshot`).
        allowed.remove("ec2:DeregisterImage");
    }
    if called != allowed {
        report.insert(
            function.into(),
            format!(
                "called but not allowed: {:?}; allowed but never called: {:?}",
                called.difference(&allowed).collect::<Vec<_>>(),
                allowed.difference(&called).collect::<Vec<_>>()
            ),
        );
    }
}

#[tokio::test]
async fn each_functions_iam_actions_are_the_operations_its_code_calls() {
    let w = World::new().await;
    let mut mismatches = BTreeMap::new();

    // launch: a token notebook, and one open to a network (its own security group rule), by
    // an owner with a budget (their spend this month is read first).
    let (mut deps, log) = w.deps("nbfleet-launch");
    let owner_id = nbfleet_testkit::api::principal(&deps, OWNER).unwrap().id;
    deps.cfg.budgets.insert(owner_id.clone(), 1000.0);
    for body in [
        json!({"name": "la-token"}),
        json!({"name": "la-cidr", "access": {"mode": "cidr", "cidrs": ["203.0.113.0/24"]}}),
    ] {
        nbfleet_testkit::api::launch(&deps, OWNER, body.to_string().as_bytes())
            .await
            .unwrap();
    }
    let (launch_deps, launch_log) = (deps, log);

    // read: the list, one notebook with its history, the orphans, the snapshots.
    let (deps, log) = w.deps("nbfleet-read");
    nbfleet_testkit::api::snapshots(&deps, OWNER).await.unwrap();
    nbfleet_testkit::api::list(&deps).await.unwrap();
    nbfleet_testkit::api::get(&deps, "la-token").await.unwrap();
    nbfleet_testkit::api::orphans(&deps, OWNER).await.unwrap();
    nbfleet_testkit::api::types(&deps);
    compare(&w.facts, "nbfleet-read", &log, &mut mismatches);

    Box::pin(lifecycle_calls(
        &w,
        (launch_deps, launch_log),
        owner_id,
        &mut mismatches,
    ))
    .await;

    // configure: first boot (bootstrap sent, then Ready from its report); a restart whose
    // report does not match (Failed, instance stopped); stopped and terminated events; an early
    // "running" for a tagged instance no record names yet.
    let (mut deps, log) = w.deps("nbfleet-events");
    deps.commands = Arc::new(w.commands(&log, bootstrap_report));
    let first = w.notebook("cf-a", |_| {}).await;
    let id = first.instance_id.clone().unwrap();
    nbfleet_testkit::api::event(&deps, &w.ec2_event(&id, "running"))
        .await
        .unwrap();
    let cmd = w
        .seed
        .store
        .require("cf-a")
        .await
        .unwrap()
        .pending_command
        .unwrap();
    let done = ssm_invocation_change(&cmd.command_id, &id, "Success", &w.account, moto::REGION, "t");
    nbfleet_testkit::api::event(&deps, &done).await.unwrap();
    assert_eq!(w.seed.store.require("cf-a").await.unwrap().state, State::Ready);
    let other = w
        .notebook("cf-b", |nb| {
            nb.state = State::Stopped;
            nb.cert_fingerprint = Some("0".repeat(64));
        })
        .await;
    let other_id = other.instance_id.clone().unwrap();
    nbfleet_testkit::api::event(&deps, &w.ec2_event(&other_id, "running"))
        .await
        .unwrap();
    let cmd = w
        .seed
        .store
        .require("cf-b")
        .await
        .unwrap()
        .pending_command
        .unwrap();
    let done = ssm_invocation_change(
        &cmd.command_id,
        &other_id,
        "Success",
        &w.account,
        moto::REGION,
        "t",
    );
    nbfleet_testkit::api::event(&deps, &done).await.unwrap();
    assert_eq!(w.seed.store.require("cf-b").await.unwrap().state, State::Failed);
    nbfleet_testkit::api::event(&deps, &w.ec2_event(&id, "stopped"))
        .await
        .unwrap();
    w.set("cf-a", |nb| nb.state = State::Terminating).await;
    nbfleet_testkit::api::event(&deps, &w.ec2_event(&id, "terminated"))
        .await
        .unwrap();
    let stray = setup::run_seeded(&w.aws.ec2, 1, Some("cf-early")).await.unwrap();
    let early = nbfleet_testkit::api::event(&deps, &w.ec2_event(&stray[0], "running")).await;
    assert!(early.is_err(), "an early event is retried");
    compare(&w.facts, "nbfleet-events", &log, &mut mismatches);

    // sweep: reconcile, an overdue delete re-driven, an idle notebook past its warning stopped,
    // a stopped one started when its schedule window opens.
    let (mut deps, log) = w.deps("nbfleet-sweep");
    deps.commands = Arc::new(w.commands(&log, idle_probe));
    let long_ago = Timestamp::now() - SignedDuration::from_hours(5);
    w.notebook("sw-idle", |nb| {
        nb.state = State::Ready;
        nb.running_since = Some(long_ago);
        nb.idle_status = Some(nbfleet_core::record::IdleStatus {
            verdict: nbfleet_core::idle::Verdict::Idle,
            reason: "idle".into(),
            // Warned earlier for this very stop: idle since it started, 60 minutes' timeout.
            planned_stop: Some(long_ago + SignedDuration::from_mins(60)),
            warned_stop_at: Some(long_ago + SignedDuration::from_mins(60)),
            ..Default::default()
        });
    })
    .await;
    // A delete held for its snapshot: the deadline pass takes it, then terminates.
    w.notebook("sw-gone", |nb| {
        nb.state = State::Terminating;
        nb.state_since = long_ago;
        nb.snapshot_owed = true;
    })
    .await;
    let stopped = w
        .notebook("sw-sched", |nb| {
            nb.state = State::Stopped;
            nb.state_since = long_ago - SignedDuration::from_hours(24 * 8);
            nb.idle.schedule = Some(
                nbfleet_core::schedule::Schedule::parse(&json!({"tz": "UTC", "start_at_open": true,
                    "windows": [{"days": "daily", "from": "00:00", "to": "24:00"}]}))
                .unwrap(),
            );
        })
        .await;
    w.seed
        .compute
        .stop(stopped.instance_id.as_deref().unwrap())
        .await
        .unwrap();
    let report = nbfleet_app::sweep::sweep(&deps, nbfleet_app::sweep::Timing::default())
        .await
        .unwrap();
    assert!(report.stopped.contains(&"sw-idle".to_string()), "{report:?}");
    assert!(report.started.contains(&"sw-sched".to_string()), "{report:?}");
    assert!(!report.overdue.is_empty(), "{report:?}");
    // The cleanup rules, a month on: the held delete's snapshot is past a 7-day retention
    // (marked, then deleted a week later).
    let mut deps = deps;
    deps.cfg.cleanup.snapshot_retention_days = 7;
    let month = Timestamp::now() + SignedDuration::from_hours(24 * 30);
    let marked = nbfleet_app::cleanup::round(&deps, &[], month).await.unwrap();
    assert!(marked.iter().any(|d| d.contains("marked")), "{marked:?}");
    let later = month + SignedDuration::from_hours(24 * 8);
    let deleted = nbfleet_app::cleanup::round(&deps, &[], later).await.unwrap();
    assert!(deleted.iter().any(|d| d.contains("deleted")), "{deleted:?}");
    compare(&w.facts, "nbfleet-sweep", &log, &mut mismatches);

    // (Its own future: the whole test in one would outgrow a test thread's stack in a debug build.)
    Box::pin(slack_calls(&w, &mut mismatches)).await;

    assert!(
        mismatches.is_empty(),
        "template.yaml and the code disagree:\n{}",
        mismatches
            .iter()
            .map(|(f, m)| format!("  {f}: {m}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The lifecycle function's paths (and a restore through the launch function, whose calls are
/// compared here), as [`each_functions_iam_actions_are_the_operations_its_code_calls`] drives
/// them.
async fn lifecycle_calls(
    w: &World,
    (launch_deps, launch_log): (nbfleet_core::ports::Deps, CallLog),
    owner_id: String,
    mismatches: &mut BTreeMap<String, String>,
) {
    // lifecycle: extend, probe and stop a Ready notebook, start a Stopped one, delete two (one with an
    // instance, one without).
    let (mut deps, log) = w.deps("nbfleet-lifecycle");
    deps.cfg.budgets.insert(owner_id.clone(), 1000.0);
    let ready = |nb: &mut Notebook| {
        nb.state = State::Ready;
        nb.running_since = Some(Timestamp::now());
    };
    w.notebook("lc-a", ready).await;
    let extend = json!({"minutes": 30}).to_string();
    nbfleet_testkit::api::extend(&deps, OWNER, "lc-a", extend.as_bytes())
        .await
        .unwrap();
    // A new token while Ready (the secret replaced, the health check sent), then again once
    // the first is settled (the parameter exists: overwritten, then tagged).
    nbfleet_testkit::api::credential(&deps, OWNER, "lc-a", b"{}")
        .await
        .unwrap();
    w.set("lc-a", |nb| nb.credential_change = None).await;
    nbfleet_testkit::api::credential(&deps, OWNER, "lc-a", b"{}")
        .await
        .unwrap();
    // The idle probe on demand.
    let mut probing = deps.clone();
    probing.commands = Arc::new(w.commands(&log, idle_probe));
    let wait = std::time::Duration::from_secs(5);
    let (status, _) = nbfleet_testkit::api::check(&probing, OWNER, "lc-a", wait)
        .await
        .unwrap();
    assert_eq!(status, 200);
    // A bigger disk while Ready; a new type once Stopped.
    let bigger = json!({"volume_gb": 200}).to_string();
    nbfleet_testkit::api::modify(&deps, OWNER, "lc-a", bigger.as_bytes())
        .await
        .unwrap();
    nbfleet_testkit::api::stop(&deps, OWNER, "lc-a").await.unwrap();
    w.set("lc-a", |nb| nb.state = State::Stopped).await;
    let retype = json!({"instance_type": "g6.xlarge"}).to_string();
    nbfleet_testkit::api::modify(&deps, OWNER, "lc-a", retype.as_bytes())
        .await
        .unwrap();
    nbfleet_testkit::api::start(&deps, OWNER, "lc-a").await.unwrap();
    w.notebook("lc-b", ready).await;
    nbfleet_testkit::api::delete(&deps, OWNER, "lc-b", true)
        .await
        .unwrap();
    // launch again: a restore of lc-b's disk (an image of its snapshot, then deregistered).
    let restore = json!({"name": "la-restored", "restore_from": "lc-b"}).to_string();
    nbfleet_testkit::api::launch(&launch_deps, OWNER, restore.as_bytes())
        .await
        .unwrap();
    compare(&w.facts, "nbfleet-launch", &launch_log, mismatches);
    // lifecycle: the snapshot deleted.
    let snapshot = w.seed.store.require("lc-b").await.unwrap().snapshot_id.unwrap();
    nbfleet_testkit::api::delete_snapshot(&deps, OWNER, &snapshot)
        .await
        .unwrap();
    // A launch that failed before any instance: deleting it finishes at once.
    w.notebook("lc-c", |nb| {
        nb.state = State::Failed;
        nb.instance_id = None;
    })
    .await;
    nbfleet_testkit::api::delete(&deps, OWNER, "lc-c", true)
        .await
        .unwrap();
    // A start past the owner's budget: refused, and the owner told (the webhook's parameter).
    w.set("lc-a", |nb| nb.state = State::Stopped).await;
    let mut broke = deps.clone();
    broke.cfg.budgets.insert(owner_id, 1e-9);
    let refused = nbfleet_testkit::api::start(&broke, OWNER, "lc-a").await;
    assert!(refused.is_err(), "past the budget: {refused:?}");
    compare(&w.facts, "nbfleet-lifecycle", &log, mismatches);
}

/// A response_url nobody reads.
struct Ignore;

#[async_trait::async_trait]
impl nbfleet_core::ports::Responder for Ignore {
    async fn respond(&self, _: &str, _: &Value) -> nbfleet_core::Result<()> {
        Ok(())
    }
}

/// The slack function's paths, as [`each_functions_iam_actions_are_the_operations_its_code_calls`] drives them.
async fn slack_calls(w: &World, mismatches: &mut BTreeMap<String, String>) {
    // slack: the signing secret, a quick answer, slow work (launch, stop, start) in the job,
    // buttons (extend, delete), and the self-invocation itself.
    let (deps, log) = w.deps("nbfleet-slack");
    nbfleet_app::slack::signing_secret(&deps).await.unwrap();
    let secret = nbfleet_local::setup::SLACK_SIGNING_SECRET;
    // Each request signed a second apart, now (a job older than an hour is refused).
    let t0 = Timestamp::now().as_second();
    let run = |ts: i64, text: &str| {
        let req = nbfleet_testkit::api::slack_request(secret, ts, "TLOCAL", "U1", text);
        let job = nbfleet_testkit::api::slack_job(&req);
        let deps = deps.clone();
        async move { nbfleet_app::slack::run_job(&deps, &Ignore, secret.as_bytes(), &job).await }
    };
    run(t0 + 1, "list").await.unwrap();
    let _ = run(t0 + 2, "launch sl-a").await;
    w.set("sl-a", |nb| nb.state = State::Ready).await;
    run(t0 + 3, "stop sl-a").await.unwrap();
    run(t0 + 4, "status sl-a").await.unwrap();
    w.set("sl-a", |nb| nb.state = State::Stopped).await;
    run(t0 + 5, "start sl-a").await.unwrap();
    run(t0 + 6, "set sl-a volume=200").await.unwrap();
    w.set("sl-a", |nb| nb.state = State::Stopped).await;
    run(t0 + 7, "set sl-a type=g6.xlarge").await.unwrap();
    run(t0 + 8, "snapshots").await.unwrap();
    run(t0 + 9, "costs").await.unwrap();
    // Buttons: keep a Ready notebook running, delete another (its disk kept as a snapshot).
    let click = |ts: i64, action: &str, name: &str| {
        let req =
            nbfleet_testkit::api::slack_click(secret, ts, ("TLOCAL", "U1"), action, name, &ts.to_string());
        let job = nbfleet_testkit::api::slack_job(&req);
        let deps = deps.clone();
        async move { nbfleet_app::slack::run_job(&deps, &Ignore, secret.as_bytes(), &job).await }
    };
    w.set("sl-a", |nb| {
        nb.state = State::Ready;
        nb.running_since = Some(Timestamp::now());
    })
    .await;
    click(t0 + 10, "nbfleet_extend_60", "sl-a").await.unwrap();
    click(t0 + 11, "nbfleet_delete", "sl-a").await.unwrap();
    let invoke = mock!(aws_sdk_lambda::Client::invoke).then_output(|| {
        aws_sdk_lambda::operation::invoke::InvokeOutput::builder()
            .status_code(202)
            .build()
    });
    let logger = moto::call_logger(&w.account, log.clone());
    let lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&invoke], |c| c
        .interceptor(logger.clone()));
    nbfleet_aws::lambda_jobs::LambdaJobs::new(lambda, "nbfleet-slack")
        .submit(&json!({"nbfleet_slack_job": {}}))
        .await
        .unwrap();
    compare(&w.facts, "nbfleet-slack", &log, mismatches);
}
