//! Each function's IAM actions in template.yaml equal the AWS operations its code calls.
//!
//! Every handler is driven here through its paths against moto, on clients that record each
//! operation they send (an SDK interceptor, `moto::CallLog`), one log per function. moto's gaps
//! are filled with aws-smithy-mocks clients carrying the same interceptor: Run Command results
//! (moto has no ListCommandInvocations, and its GetCommandInvocation has no script output) and
//! Lambda's asynchronous invoke (the Slack self-invocation). The template side comes from
//! `scripts/check-template.py --facts`.
//!
//! Actions IAM checks that are no API operation of their own are implied by the operation that
//! needs them: tag-on-create (`ec2:CreateTags`) and passing the instance role (`iam:PassRole`).

use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput;
use aws_sdk_ssm::operation::list_command_invocations::ListCommandInvocationsOutput;
use aws_sdk_ssm::operation::send_command::SendCommandOutput;
use aws_sdk_ssm::types::{Command, CommandInvocation, CommandInvocationStatus, CommandPlugin};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use jiff::{SignedDuration, Timestamp};
use nbfleet_aws::moto::{self, CallLog};
use nbfleet_aws::{Clients, SsmCommands};
use nbfleet_core::events::{ec2_state_change, ssm_invocation_change};
use nbfleet_core::ports::{Deps, Jobs};
use nbfleet_core::{Expect, Notebook, State};
use nbfleet_local::setup;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

const OWNER: &str = "arn:aws:iam::123456789012:user/alice";
const FINGERPRINT: &str = "4f0c8a2d3b1e5f6a7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b";

/// One moto account, a seeding client, and the template's facts.
struct World {
    endpoint: String,
    account: String,
    seed: Deps,
    aws: Clients,
    facts: Value,
}

/// Probe and bootstrap outputs the mocked Run Command gives, by instance.
type Sent = Arc<Mutex<HashMap<String, Vec<String>>>>;

impl World {
    async fn new() -> World {
        let endpoint = moto::endpoint_from_env();
        let account = moto::fresh_account();
        let aws = setup::provision(&endpoint, &account).await.unwrap();
        let seed = aws.deps(nbfleet_core::config::from_vars(setup::vars()).unwrap());
        World {
            endpoint,
            account,
            seed,
            aws,
            facts: nbfleet_tests::template_facts(),
        }
    }

    /// `function`'s ports on clients that log into its own CallLog, configured as the template
    /// configures it (the names of moto's table and parameters kept).
    fn deps(&self, function: &str) -> (Deps, CallLog) {
        let log = CallLog::default();
        let env = &self.facts["functions"][function]["env"];
        let mut vars = setup::vars();
        for key in ["NBFLEET_ACCOUNT_ID", "NBFLEET_SLACK_WEBHOOK_PARAMETER"] {
            if let Some(v) = env[key].as_str() {
                vars.push((key.into(), v.into()));
            }
        }
        let cfg = nbfleet_core::config::from_vars(vars).unwrap();
        let deps = moto::clients_logged(&self.endpoint, &self.account, log.clone()).deps(cfg);
        (deps, log)
    }

    /// Run Command as mocks on `log`: every command succeeds, printing `output(instance)`.
    fn commands(&self, log: &CallLog, output: fn(&str) -> String) -> SsmCommands {
        let sent: Sent = Arc::default();
        let (w, r1) = (sent.clone(), sent.clone());
        let send = mock!(aws_sdk_ssm::Client::send_command).then_compute_output(move |req| {
            let mut map = w.lock().unwrap();
            let id = format!("cmd-{}", map.len());
            map.insert(id.clone(), req.instance_ids().to_vec());
            SendCommandOutput::builder()
                .command(Command::builder().command_id(id).build())
                .build()
        });
        let get = mock!(aws_sdk_ssm::Client::get_command_invocation).then_compute_output(move |req| {
            let id = req.instance_id().unwrap_or_default();
            GetCommandInvocationOutput::builder()
                .command_id(req.command_id().unwrap_or_default())
                .instance_id(id)
                .status(CommandInvocationStatus::Success)
                .response_code(0)
                .standard_output_content(output(id))
                .build()
        });
        let list = mock!(aws_sdk_ssm::Client::list_command_invocations).then_compute_output(move |req| {
            let ids = r1
                .lock()
                .unwrap()
                .get(req.command_id().unwrap_or_default())
                .cloned()
                .unwrap_or_default();
            let mut out = ListCommandInvocationsOutput::builder();
            for id in ids {
                out = out.command_invocations(
                    CommandInvocation::builder()
                        .command_id(req.command_id().unwrap_or_default())
                        .instance_id(&id)
                        .status(CommandInvocationStatus::Success)
                        .command_plugins(
                            CommandPlugin::builder()
                                .response_code(0)
                                .output(output(&id))
                                .build(),
                        )
                        .build(),
                );
            }
            out.build()
        });
        let logger = moto::call_logger(&self.account, log.clone());
        let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&send, &get, &list], |c| c
            .interceptor(logger.clone()));
        SsmCommands::new(ssm)
    }

    /// A notebook launched by the seeding client, then set as `change` says.
    async fn notebook(&self, name: &str, change: impl FnOnce(&mut Notebook)) -> Notebook {
        let body = json!({"name": name}).to_string();
        nbfleet_launch::handle(&self.seed, OWNER, body.as_bytes())
            .await
            .unwrap();
        self.set(name, change).await
    }

    async fn set(&self, name: &str, change: impl FnOnce(&mut Notebook)) -> Notebook {
        let mut nb = self.seed.store.require(name).await.unwrap();
        let expect: Expect = nb.expect();
        change(&mut nb);
        nb.version += 1;
        self.seed.store.put(&nb, expect).await.unwrap();
        nb
    }

    fn event(&self, v: Value) -> Value {
        v
    }

    fn ec2_event(&self, id: &str, state: &str) -> Value {
        self.event(ec2_state_change(
            id,
            state,
            &self.account,
            moto::REGION,
            &Timestamp::now().to_string(),
        ))
    }
}

fn bootstrap_report(_: &str) -> String {
    json!({"nbfleet": "bootstrap", "fingerprint": FINGERPRINT, "gpu_csv": "", "torch_cuda": "False",
           "jupyter_server": "2.21.1", "jupyterlab": "4.6.6", "port": 8888})
    .to_string()
}

fn idle_probe(_: &str) -> String {
    r#"{"nbfleet":"probe","k":0,"kb":0,"ka":null,"ta":null,"c":0,"sa":null,"g":[]}"#.into()
}

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
    if actions.contains("ec2:CreateSecurityGroup") {
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
    let (called, allowed) = (called(log), allowed(facts, function));
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

    // launch: a token notebook, and one open to a network (its own security group rule).
    let (deps, log) = w.deps("nbfleet-launch");
    for body in [
        json!({"name": "la-token"}),
        json!({"name": "la-cidr", "access": {"mode": "cidr", "cidrs": ["203.0.113.0/24"]}}),
    ] {
        nbfleet_launch::handle(&deps, OWNER, body.to_string().as_bytes())
            .await
            .unwrap();
    }
    compare(&w.facts, "nbfleet-launch", &log, &mut mismatches);

    // read: the list and one notebook with its history.
    let (deps, log) = w.deps("nbfleet-read");
    nbfleet_read::list(&deps).await.unwrap();
    nbfleet_read::get(&deps, "la-token").await.unwrap();
    compare(&w.facts, "nbfleet-read", &log, &mut mismatches);

    // lifecycle: extend and stop a Ready notebook, start a Stopped one, delete two (one with an
    // instance, one without).
    let (deps, log) = w.deps("nbfleet-lifecycle");
    let ready = |nb: &mut Notebook| {
        nb.state = State::Ready;
        nb.running_since = Some(Timestamp::now());
    };
    w.notebook("lc-a", ready).await;
    let extend = json!({"minutes": 30}).to_string();
    nbfleet_lifecycle::extend(&deps, OWNER, "lc-a", extend.as_bytes())
        .await
        .unwrap();
    nbfleet_lifecycle::stop(&deps, OWNER, "lc-a").await.unwrap();
    w.set("lc-a", |nb| nb.state = State::Stopped).await;
    nbfleet_lifecycle::start(&deps, OWNER, "lc-a").await.unwrap();
    w.notebook("lc-b", ready).await;
    nbfleet_lifecycle::delete(&deps, OWNER, "lc-b", true)
        .await
        .unwrap();
    // A launch that failed before any instance: deleting it finishes at once.
    w.notebook("lc-c", |nb| {
        nb.state = State::Failed;
        nb.instance_id = None;
    })
    .await;
    nbfleet_lifecycle::delete(&deps, OWNER, "lc-c", true)
        .await
        .unwrap();
    compare(&w.facts, "nbfleet-lifecycle", &log, &mut mismatches);

    // configure: first boot (bootstrap sent, then Ready from its report); a restart whose
    // report does not match (Failed, instance stopped); stopped and terminated events; an early
    // "running" for a tagged instance no record names yet.
    let (mut deps, log) = w.deps("nbfleet-configure");
    deps.commands = Arc::new(w.commands(&log, bootstrap_report));
    let first = w.notebook("cf-a", |_| {}).await;
    let id = first.instance_id.clone().unwrap();
    nbfleet_configure::handle_event(&deps, &w.ec2_event(&id, "running"))
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
    nbfleet_configure::handle_event(&deps, &done).await.unwrap();
    assert_eq!(w.seed.store.require("cf-a").await.unwrap().state, State::Ready);
    let other = w
        .notebook("cf-b", |nb| {
            nb.state = State::Stopped;
            nb.cert_fingerprint = Some("0".repeat(64));
        })
        .await;
    let other_id = other.instance_id.clone().unwrap();
    nbfleet_configure::handle_event(&deps, &w.ec2_event(&other_id, "running"))
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
    nbfleet_configure::handle_event(&deps, &done).await.unwrap();
    assert_eq!(w.seed.store.require("cf-b").await.unwrap().state, State::Failed);
    nbfleet_configure::handle_event(&deps, &w.ec2_event(&id, "stopped"))
        .await
        .unwrap();
    w.set("cf-a", |nb| nb.state = State::Terminating).await;
    nbfleet_configure::handle_event(&deps, &w.ec2_event(&id, "terminated"))
        .await
        .unwrap();
    let stray = setup::run_seeded(&w.aws.ec2, 1, Some("cf-early")).await.unwrap();
    let early = nbfleet_configure::handle_event(&deps, &w.ec2_event(&stray[0], "running")).await;
    assert!(early.is_err(), "an early event is retried");
    compare(&w.facts, "nbfleet-configure", &log, &mut mismatches);

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
            unknowns: 0,
        });
    })
    .await;
    w.notebook("sw-gone", |nb| {
        nb.state = State::Terminating;
        nb.state_since = long_ago;
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
    let report = nbfleet_sweep::sweep(&deps, nbfleet_sweep::Timing::default())
        .await
        .unwrap();
    assert!(report.stopped.contains(&"sw-idle".to_string()), "{report:?}");
    assert!(report.started.contains(&"sw-sched".to_string()), "{report:?}");
    assert!(!report.overdue.is_empty(), "{report:?}");
    compare(&w.facts, "nbfleet-sweep", &log, &mut mismatches);

    // slack: the signing secret, a quick answer, slow work (launch, stop, start) in the job,
    // and the self-invocation itself.
    let (deps, log) = w.deps("nbfleet-slack");
    nbfleet_slack::signing_secret(&deps).await.unwrap();
    let owner = "slack:TLOCAL:U1";
    for command in [
        nbfleet_core::slack::Command::List,
        nbfleet_core::slack::Command::Launch {
            name: "sl-a".into(),
            instance_type: None,
            idle_minutes: None,
        },
    ] {
        let job = nbfleet_slack::Job {
            owner: owner.into(),
            command,
            response_url: "https://hooks.slack.com/commands/x".into(),
        };
        let _ = nbfleet_slack::run_job(&deps, &Ignore, &job).await;
    }
    w.set("sl-a", |nb| nb.state = State::Ready).await;
    for command in [
        nbfleet_core::slack::Command::Stop("sl-a".into()),
        nbfleet_core::slack::Command::Status("sl-a".into()),
    ] {
        let job = nbfleet_slack::Job {
            owner: owner.into(),
            command,
            response_url: "https://hooks.slack.com/commands/x".into(),
        };
        nbfleet_slack::run_job(&deps, &Ignore, &job).await.unwrap();
    }
    w.set("sl-a", |nb| nb.state = State::Stopped).await;
    let job = nbfleet_slack::Job {
        owner: owner.into(),
        command: nbfleet_core::slack::Command::Start("sl-a".into()),
        response_url: "https://hooks.slack.com/commands/x".into(),
    };
    nbfleet_slack::run_job(&deps, &Ignore, &job).await.unwrap();
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
    compare(&w.facts, "nbfleet-slack", &log, &mut mismatches);

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

/// A response_url nobody reads.
struct Ignore;

#[async_trait::async_trait]
impl nbfleet_core::ports::Responder for Ignore {
    async fn respond(&self, _: &str, _: &Value) -> nbfleet_core::Result<()> {
        Ok(())
    }
}
