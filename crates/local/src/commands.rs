//! The local `Commands` adapter (docs/local.md). moto's Run Command is a stub that records what
//! was sent and says Success with no output, so this adapter:
//!
//! 1. sends the command to moto through the real SSM adapter (moto records the parameters and
//!    gives the command id, so "no secret in SendCommand" is checkable through moto);
//! 2. runs **the same bytes** on this machine with the local runner, keyed by that id;
//! 3. keeps the result for `invocation` and emits the SSM invocation status-change event,
//!    as EventBridge would.

use crate::runner::{Runner, instance_credentials};
use async_trait::async_trait;
use nbfleet_aws::SsmCommands;
use nbfleet_core::Result;
use nbfleet_core::events::ssm_invocation_change;
use nbfleet_core::ports::{CommandStatus, Commands, Invocation, Reach};
use nbfleet_core::scripts::Script;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// The SSM `executionTimeout` the adapter sends, enforced here too.
const EXECUTION_LIMIT: Duration = Duration::from_secs(1800);

fn key(command_id: &str, instance_id: &str) -> String {
    format!("{command_id}/{instance_id}")
}

#[derive(Clone)]
pub struct LocalCommands {
    ssm: SsmCommands,
    runner: Runner,
    endpoint: String,
    account: String,
    region: String,
    results: Arc<Mutex<HashMap<String, Invocation>>>,
    events: UnboundedSender<Value>,
}

impl LocalCommands {
    pub fn new(
        ssm: SsmCommands,
        runner: Runner,
        endpoint: &str,
        account: &str,
        region: &str,
        events: UnboundedSender<Value>,
    ) -> Self {
        LocalCommands {
            ssm,
            runner,
            endpoint: endpoint.into(),
            account: account.into(),
            region: region.into(),
            results: Arc::default(),
            events,
        }
    }

    fn record(&self, inv: Invocation) {
        self.results
            .lock()
            .expect("not poisoned")
            .insert(key(&inv.command_id, &inv.instance_id), inv);
    }

    /// SSM refuses a SendCommand naming an instance whose agent is offline (`InvalidInstanceId`,
    /// the whole call): moto never does, so the sandbox says (`Sandbox::set_agent_offline`).
    fn refuse_offline(&self, instance_ids: &[String]) -> Result<()> {
        match instance_ids
            .iter()
            .find(|id| self.runner.sandbox(id).is_ok_and(|sb| sb.agent_offline()))
        {
            Some(id) => Err(nbfleet_core::Error::Unavailable(format!(
                "InvalidInstanceId: the SSM agent of {id} is not online"
            ))),
            None => Ok(()),
        }
    }

    /// Marks the command in progress on `instance_id` and runs it there in the background.
    fn start(&self, command_id: &str, instance_id: &str, script: &Script) {
        self.record(Invocation {
            command_id: command_id.into(),
            instance_id: instance_id.into(),
            status: CommandStatus::InProgress,
            exit_code: None,
            stdout: String::new(),
            stderr: String::new(),
        });
        tokio::spawn(
            self.clone()
                .execute(command_id.into(), instance_id.into(), script.text.clone()),
        );
    }

    async fn execute(self, command_id: String, instance_id: String, text: String) {
        let finished = async {
            let sandbox = self.runner.sandbox(&instance_id)?;
            let creds = instance_credentials(&self.endpoint, &self.account).await?;
            self.runner
                .run(&sandbox, &command_id, &text, &creds, EXECUTION_LIMIT)
                .await
        }
        .await;
        let inv = match finished {
            Ok(out) => Invocation {
                command_id: command_id.clone(),
                instance_id: instance_id.clone(),
                status: match out.exit_code {
                    Some(0) => CommandStatus::Success,
                    Some(_) => CommandStatus::Failed,
                    None => CommandStatus::TimedOut,
                },
                exit_code: out.exit_code,
                stdout: out.stdout,
                stderr: out.stderr,
            },
            Err(e) => Invocation {
                command_id: command_id.clone(),
                instance_id: instance_id.clone(),
                status: CommandStatus::Failed,
                exit_code: None,
                stdout: String::new(),
                stderr: format!("the local runner could not run the command: {e}"),
            },
        };
        tracing::info!(command = %command_id, instance = %instance_id, status = ?inv.status, "local command finished");
        let status = match inv.status {
            CommandStatus::Success => "Success",
            CommandStatus::TimedOut => "TimedOut",
            _ => "Failed",
        };
        self.record(inv);
        let now = jiff::Timestamp::now().to_string();
        let _ = self.events.send(ssm_invocation_change(
            &command_id,
            &instance_id,
            status,
            &self.account,
            &self.region,
            &now,
        ));
    }
}

#[async_trait]
impl Commands for LocalCommands {
    async fn send(&self, instance_id: &str, script: &Script, reach: Reach) -> Result<String> {
        self.refuse_offline(&[instance_id.to_string()])?;
        let command_id = self.ssm.send(instance_id, script, reach).await?;
        self.start(&command_id, instance_id, script);
        Ok(command_id)
    }

    async fn send_batch(&self, instance_ids: &[String], script: &Script) -> Result<String> {
        self.refuse_offline(instance_ids)?;
        let command_id = self.ssm.send_batch(instance_ids, script).await?;
        for id in instance_ids {
            self.start(&command_id, id, script);
        }
        Ok(command_id)
    }

    async fn invocation(&self, command_id: &str, instance_id: &str) -> Result<Invocation> {
        let found = self
            .results
            .lock()
            .expect("not poisoned")
            .get(&key(command_id, instance_id))
            .cloned();
        Ok(found.unwrap_or_else(|| Invocation {
            command_id: command_id.into(),
            instance_id: instance_id.into(),
            status: CommandStatus::Pending,
            exit_code: None,
            stdout: String::new(),
            stderr: String::new(),
        }))
    }

    async fn invocations(&self, command_id: &str) -> Result<Vec<Invocation>> {
        let results = self.results.lock().expect("not poisoned");
        Ok(results
            .values()
            .filter(|i| i.command_id == command_id)
            .cloned()
            .collect())
    }
}
