//! The `Commands` port on SSM Run Command: AWS-RunShellScript to one instance at a time,
//! retried, where the caller waits (`Reach::WaitForAgent`), while the instance's agent has not
//! registered yet (SendCommand answers InvalidInstanceId for tens of seconds after boot), and
//! reading results back.
//!
//! The script travels as the `commands` parameter. It never contains a secret: scripts fetch
//! their own from Parameter Store.

use crate::errors;
use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{Command, CommandFilter, CommandFilterKey, CommandInvocation};
use nbfleet_core::ports::{CommandStatus, Commands, Invocation, Reach};
use nbfleet_core::scripts::{Script, ScriptKind};
use nbfleet_core::{Error, Result};
use std::collections::HashSet;
use std::time::Duration;

/// How long SendCommand keeps trying an instance whose agent is not registered yet.
#[derive(Debug, Clone, Copy)]
pub struct AgentWait {
    pub attempts: u32,
    pub interval: Duration,
}

impl Default for AgentWait {
    /// Two minutes: agents on a fresh DLAMI usually register within one.
    fn default() -> Self {
        AgentWait {
            attempts: 24,
            interval: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SsmCommands {
    client: Client,
    wait: AgentWait,
}

impl SsmCommands {
    pub fn new(client: Client) -> Self {
        SsmCommands {
            client,
            wait: AgentWait::default(),
        }
    }

    pub fn with_agent_wait(mut self, wait: AgentWait) -> Self {
        self.wait = wait;
        self
    }

    /// All invocations of `command_id` with their output, every page. Each instance's output
    /// is cut by SSM at 2,500 characters here: probes keep theirs short.
    async fn list_invocations(&self, command_id: &str) -> Result<Vec<Invocation>> {
        let pages: Vec<CommandInvocation> = self
            .client
            .list_command_invocations()
            .command_id(command_id)
            .details(true)
            .max_results(50)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<_, _>>()
            .await
            .map_err(|e| errors::map(e, "list command invocations"))?;
        Ok(pages.into_iter().map(from_list_item).collect())
    }
}

fn status(s: Option<&str>) -> CommandStatus {
    s.and_then(CommandStatus::parse).unwrap_or(CommandStatus::Pending)
}

fn from_list_item(inv: CommandInvocation) -> Invocation {
    let plugin = inv.command_plugins.unwrap_or_default().into_iter().next();
    let (exit_code, stdout) = match plugin {
        Some(p) => (
            Some(p.response_code).filter(|c| *c != -1),
            p.output.unwrap_or_default(),
        ),
        None => (None, String::new()),
    };
    Invocation {
        command_id: inv.command_id.unwrap_or_default(),
        instance_id: inv.instance_id.unwrap_or_default(),
        status: status(inv.status.as_ref().map(|s| s.as_str())),
        exit_code,
        stdout,
        stderr: String::new(),
    }
}

#[async_trait]
impl Commands for SsmCommands {
    async fn send(&self, instance_id: &str, script: &Script, reach: Reach) -> Result<String> {
        let attempts = match reach {
            Reach::WaitForAgent => self.wait.attempts,
            Reach::Once => 1,
        };
        let comment = match script.kind {
            ScriptKind::Bootstrap => "nbfleet bootstrap",
            ScriptKind::Health => "nbfleet health check",
            ScriptKind::Probe => "nbfleet idle probe",
            ScriptKind::PreStop => "nbfleet pre-stop hook",
            ScriptKind::OnStart => "nbfleet on-start hook",
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .client
                .send_command()
                .document_name("AWS-RunShellScript")
                .instance_ids(instance_id)
                .comment(comment)
                .parameters("commands", vec![script.text.clone()])
                .parameters("executionTimeout", vec!["1800".to_string()])
                .timeout_seconds(600)
                .send()
                .await;
            match sent {
                Ok(out) => {
                    return out
                        .command
                        .and_then(|c| c.command_id)
                        .ok_or_else(|| Error::internal("SendCommand returned no command id"));
                }
                Err(e) if errors::code(&e) == Some("InvalidInstanceId") && attempt < attempts => {
                    tracing::info!(
                        instance = instance_id,
                        attempt,
                        "SSM agent not registered yet; retrying"
                    );
                    tokio::time::sleep(self.wait.interval).await;
                }
                Err(e) if errors::code(&e) == Some("InvalidInstanceId") => {
                    return Err(Error::Unavailable(match reach {
                        Reach::WaitForAgent => format!(
                            "the SSM agent on {instance_id} did not come online within {} s",
                            self.wait.interval.as_secs() * u64::from(attempts)
                        ),
                        Reach::Once => format!("the SSM agent on {instance_id} is not online"),
                    }));
                }
                Err(e) => return Err(errors::map(e, "send the command")),
            }
        }
    }

    async fn send_batch(&self, instance_ids: &[String], script: &Script) -> Result<String> {
        let out = self
            .client
            .send_command()
            .document_name("AWS-RunShellScript")
            .set_instance_ids(Some(instance_ids.to_vec()))
            .comment("nbfleet idle probe")
            .parameters("commands", vec![script.text.clone()])
            .parameters("executionTimeout", vec!["60".to_string()])
            .timeout_seconds(60)
            .send()
            .await
            .map_err(|e| errors::map(e, "send the probe"))?;
        out.command
            .and_then(|c| c.command_id)
            .ok_or_else(|| Error::internal("SendCommand returned no command id"))
    }

    async fn invocations(&self, command_id: &str) -> Result<Vec<Invocation>> {
        self.list_invocations(command_id).await
    }

    async fn still_running(&self, command_ids: &[String], since: jiff::Timestamp) -> Result<HashSet<String>> {
        // One listing of the commands sent since `since`, 50 a page: a command's own status is
        // final only once every instance it ran on is done.
        let listed: Vec<Command> = self
            .client
            .list_commands()
            .filters(
                CommandFilter::builder()
                    .key(CommandFilterKey::InvokedAfter)
                    .value(since.to_string())
                    .build()
                    .map_err(Error::internal)?,
            )
            .max_results(50)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<_, _>>()
            .await
            .map_err(|e| errors::map(e, "list the commands"))?;
        let ended: HashSet<&str> = listed
            .iter()
            .filter(|c| status(c.status.as_ref().map(|s| s.as_str())).is_final())
            .filter_map(|c| c.command_id.as_deref())
            .collect();
        // A command not listed yet (the listing lags SendCommand) is still running.
        Ok(command_ids
            .iter()
            .filter(|id| !ended.contains(id.as_str()))
            .cloned()
            .collect())
    }

    async fn invocation(&self, command_id: &str, instance_id: &str) -> Result<Invocation> {
        match self
            .client
            .get_command_invocation()
            .command_id(command_id)
            .instance_id(instance_id)
            .send()
            .await
        {
            Ok(out) => Ok(Invocation {
                command_id: command_id.to_string(),
                instance_id: instance_id.to_string(),
                status: status(out.status.as_ref().map(|s| s.as_str())),
                exit_code: Some(out.response_code).filter(|c| *c != -1),
                stdout: out.standard_output_content.unwrap_or_default(),
                stderr: out.standard_error_content.unwrap_or_default(),
            }),
            // Right after SendCommand the invocation may not exist yet: that is pending.
            Err(e) if errors::code(&e) == Some("InvocationDoesNotExist") => Ok(Invocation {
                command_id: command_id.to_string(),
                instance_id: instance_id.to_string(),
                status: CommandStatus::Pending,
                exit_code: None,
                stdout: String::new(),
                stderr: String::new(),
            }),
            Err(e) => Err(errors::map(e, "read the command's result")),
        }
    }
}
