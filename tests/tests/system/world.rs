//! A moto account with nbfleet's handlers around it, for tests that drive handlers directly:
//! per-function ports on logged clients, Run Command as smithy mocks (moto has no
//! ListCommandInvocations and no script output), and notebooks set up in any state.

use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput;
use aws_sdk_ssm::operation::list_command_invocations::ListCommandInvocationsOutput;
use aws_sdk_ssm::operation::send_command::SendCommandOutput;
use aws_sdk_ssm::types::{Command, CommandInvocation, CommandInvocationStatus, CommandPlugin};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use jiff::Timestamp;
use nbfleet_aws::{Clients, SsmCommands};
use nbfleet_core::events::ec2_state_change;
use nbfleet_core::ports::Deps;
use nbfleet_core::{Expect, Notebook};
use nbfleet_local::moto::{self, CallLog};
use nbfleet_local::setup;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const OWNER: &str = "arn:aws:iam::123456789012:user/alice";
pub const FINGERPRINT: &str = "4f0c8a2d3b1e5f6a7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b";

/// One moto account, a seeding client, and the template's facts.
pub struct World {
    pub endpoint: String,
    pub account: String,
    pub seed: Deps,
    pub aws: Clients,
    pub facts: Value,
}

/// Probe and bootstrap outputs the mocked Run Command gives, by instance.
type Sent = Arc<Mutex<HashMap<String, Vec<String>>>>;

impl World {
    pub async fn new() -> World {
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
    pub fn deps(&self, function: &str) -> (Deps, CallLog) {
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
    pub fn commands(&self, log: &CallLog, output: fn(&str) -> String) -> SsmCommands {
        self.commands_ending(log, CommandInvocationStatus::Success, 0, output, "")
    }

    /// Run Command as mocks on `log`: every command ends in `status` with `code`, printing
    /// `output(instance)` and `stderr`.
    pub fn commands_ending(
        &self,
        log: &CallLog,
        status: CommandInvocationStatus,
        code: i32,
        output: fn(&str) -> String,
        stderr: &'static str,
    ) -> SsmCommands {
        let status2 = status.clone();
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
                .status(status.clone())
                .response_code(code)
                .standard_output_content(output(id))
                .standard_error_content(stderr)
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
                        .status(status2.clone())
                        .command_plugins(
                            CommandPlugin::builder()
                                .response_code(code)
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
    pub async fn notebook(&self, name: &str, change: impl FnOnce(&mut Notebook)) -> Notebook {
        let body = json!({"name": name}).to_string();
        nbfleet_testkit::api::launch(&self.seed, OWNER, body.as_bytes())
            .await
            .unwrap();
        self.set(name, change).await
    }

    pub async fn set(&self, name: &str, change: impl FnOnce(&mut Notebook)) -> Notebook {
        let mut nb = self.seed.store.require(name).await.unwrap();
        let expect: Expect = nb.expect();
        change(&mut nb);
        nb.version += 1;
        self.seed.store.put(&nb, expect).await.unwrap();
        nb
    }

    pub fn ec2_event(&self, id: &str, state: &str) -> Value {
        ec2_state_change(
            id,
            state,
            &self.account,
            moto::REGION,
            &Timestamp::now().to_string(),
        )
    }
}

pub fn bootstrap_report(_: &str) -> String {
    json!({"nbfleet": "bootstrap", "fingerprint": FINGERPRINT, "gpu_csv": "", "torch_cuda": "False",
           "jupyter_server": "2.21.1", "jupyterlab": "4.6.6", "port": 8888})
    .to_string()
}

pub fn idle_probe(_: &str) -> String {
    r#"{"nbfleet":"probe","k":0,"kb":0,"ka":null,"ta":null,"c":0,"sa":null,"g":[]}"#.into()
}
