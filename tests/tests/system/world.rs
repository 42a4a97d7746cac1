//! The test kit's moto account ([`Env`]) with the template beside it, for tests that drive use
//! cases directly: each function's ports on clients that log into its own CallLog and are
//! configured as the template configures that function, and notebooks set up in any state.

use aws_sdk_ssm::types::CommandInvocationStatus;
use nbfleet_aws::SsmCommands;
use nbfleet_core::Notebook;
use nbfleet_core::ports::Deps;
use nbfleet_local::moto::{self, CallLog};
use nbfleet_local::setup;
use nbfleet_testkit::{Env, RunCommand};
use serde_json::{Value, json};

pub const OWNER: &str = "arn:aws:iam::123456789012:user/alice";
pub const FINGERPRINT: &str = "4f0c8a2d3b1e5f6a7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b";

/// One moto account, the ports that seed it, and the template's facts.
pub struct World {
    env: Env,
    /// The ports that set notebooks up (the test kit's, on the test clock).
    pub seed: Deps,
    pub facts: Value,
}

impl std::ops::Deref for World {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.env
    }
}

impl World {
    pub async fn new() -> World {
        let env = Env::new().await;
        World {
            seed: env.deps.clone(),
            env,
            facts: nbfleet_tests::template_facts(),
        }
    }

    /// An EC2 state-change event for instance `id`, stamped now on the real clock, as the
    /// functions' ports (from [`World::deps`]) read it: EC2 stamps a change when it happens, after
    /// whatever the record did before it.
    pub fn ec2_event(&self, id: &str, state: &str) -> Value {
        let now = jiff::Timestamp::now().to_string();
        nbfleet_core::events::ec2_state_change(id, state, &self.account, moto::REGION, &now)
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

    /// Run Command on `log`: every command succeeds, printing `output(instance)`.
    pub fn commands(&self, log: &CallLog, output: fn(&str) -> String) -> SsmCommands {
        self.commands_ending(log, CommandInvocationStatus::Success, 0, output, "")
    }

    /// Run Command on `log`: every command ends in `status` with `code`, printing
    /// `output(instance)` and `stderr`.
    pub fn commands_ending(
        &self,
        log: &CallLog,
        status: CommandInvocationStatus,
        code: i32,
        output: fn(&str) -> String,
        stderr: &'static str,
    ) -> SsmCommands {
        RunCommand::succeeding(output)
            .ending(status, code, stderr)
            .logged(moto::call_logger(&self.account, log.clone()))
            .build()
            .0
    }

    /// A notebook launched by [`OWNER`], then set as `change` says.
    pub async fn notebook(&self, name: &str, change: impl FnOnce(&mut Notebook)) -> Notebook {
        let body = json!({"name": name}).to_string();
        nbfleet_testkit::api::launch(&self.seed, OWNER, body.as_bytes())
            .await
            .unwrap();
        self.force(name, change).await
    }

    pub async fn set(&self, name: &str, change: impl FnOnce(&mut Notebook)) -> Notebook {
        self.force(name, change).await
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
