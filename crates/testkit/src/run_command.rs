//! The one Run Command stand-in: the real `SsmCommands` adapter on an SSM client whose
//! SendCommand, GetCommandInvocation, ListCommandInvocations and ListCommands are
//! aws-smithy-mocks. It fills moto's gaps: moto's SendCommand never refuses an instance, its
//! GetCommandInvocation has no output, it has no ListCommandInvocations at all, and its
//! commands never run (so never show InProgress).

use aws_sdk_ssm::Client as Ssm;
use aws_sdk_ssm::config::SharedInterceptor;
use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput;
use aws_sdk_ssm::operation::list_command_invocations::ListCommandInvocationsOutput;
use aws_sdk_ssm::operation::list_commands::ListCommandsOutput;
use aws_sdk_ssm::operation::send_command::{SendCommandError, SendCommandOutput};
use aws_sdk_ssm::types::{Command, CommandInvocation, CommandInvocationStatus, CommandPlugin};
use aws_smithy_mocks::{MockResponse, Rule, RuleMode, mock, mock_client};
use nbfleet_aws::SsmCommands;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Output = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// How every command ends, and what it prints, by instance.
#[derive(Clone)]
pub struct RunCommand {
    status: CommandInvocationStatus,
    code: i32,
    output: Output,
    stderr: &'static str,
    refused: Option<String>,
    logger: Option<SharedInterceptor>,
    in_progress_polls: usize,
}

/// The mocked calls, for counting.
pub struct Rules {
    pub send: Rule,
    pub get: Rule,
    pub list: Rule,
    /// ListCommands.
    pub commands: Rule,
}

impl RunCommand {
    /// Every command succeeds, printing `output(instance)`.
    pub fn succeeding(output: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        RunCommand {
            status: CommandInvocationStatus::Success,
            code: 0,
            output: Arc::new(output),
            stderr: "",
            refused: None,
            logger: None,
            in_progress_polls: 0,
        }
    }

    /// Every command ends in `status` with exit code `code`, printing `stderr` too.
    pub fn ending(mut self, status: CommandInvocationStatus, code: i32, stderr: &'static str) -> Self {
        (self.status, self.code, self.stderr) = (status, code, stderr);
        self
    }

    /// A SendCommand that names `instance_id` fails as SSM fails it for an instance whose
    /// agent is not registered (`InvalidInstanceId`): the whole call, every instance in it.
    pub fn refusing(mut self, instance_id: &str) -> Self {
        self.refused = Some(instance_id.to_string());
        self
    }

    /// Each command runs until ListCommands has listed it `polls` times (InProgress there and in
    /// ListCommandInvocations, without output), then ends as set, as SSM does while a probe
    /// runs.
    pub fn finishing_after(mut self, polls: usize) -> Self {
        self.in_progress_polls = polls;
        self
    }

    /// Every call also passes `logger` (a moto call log, say).
    pub fn logged(mut self, logger: SharedInterceptor) -> Self {
        self.logger = Some(logger);
        self
    }

    /// The adapter on the mocked client, and the mocked calls.
    pub fn build(self) -> (SsmCommands, Rules) {
        let sent: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
        let (w, r, listed) = (sent.clone(), sent.clone(), sent);
        // How many times ListCommands has listed each command.
        let polled: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (counted, seen) = (polled.clone(), polled);
        let polls = self.in_progress_polls;
        let running = move |seen: usize| polls > 0 && seen <= polls;
        let refused = self.refused.clone();
        let send = mock!(Ssm::send_command).then_compute_response(move |req| {
            let ids = req.instance_ids().to_vec();
            if refused.as_ref().is_some_and(|b| ids.contains(b)) {
                return MockResponse::Error(SendCommandError::generic(
                    aws_sdk_ssm::error::ErrorMetadata::builder()
                        .code("InvalidInstanceId")
                        .message("Instances not in a valid state for account")
                        .build(),
                ));
            }
            let mut map = w.lock().unwrap();
            let id = format!("cmd-{}", map.len());
            map.insert(id.clone(), ids);
            MockResponse::Output(
                SendCommandOutput::builder()
                    .command(Command::builder().command_id(id).build())
                    .build(),
            )
        });
        let this = self.clone();
        let get = mock!(Ssm::get_command_invocation).then_compute_output(move |req| {
            let id = req.instance_id().unwrap_or_default();
            GetCommandInvocationOutput::builder()
                .command_id(req.command_id().unwrap_or_default())
                .instance_id(id)
                .status(this.status.clone())
                .response_code(this.code)
                .standard_output_content((this.output)(id))
                .standard_error_content(this.stderr)
                .build()
        });
        let this = self.clone();
        let list = mock!(Ssm::list_command_invocations).then_compute_output(move |req| {
            let command = req.command_id().unwrap_or_default();
            let ids = r.lock().unwrap().get(command).cloned().unwrap_or_default();
            let mut out = ListCommandInvocationsOutput::builder();
            if running(seen.lock().unwrap().get(command).copied().unwrap_or(0)) {
                for id in ids {
                    out = out.command_invocations(
                        CommandInvocation::builder()
                            .command_id(command)
                            .instance_id(&id)
                            .status(CommandInvocationStatus::InProgress)
                            .build(),
                    );
                }
                return out.build();
            }
            for id in ids {
                out = out.command_invocations(
                    CommandInvocation::builder()
                        .command_id(command)
                        .instance_id(&id)
                        .status(this.status.clone())
                        .command_plugins(
                            CommandPlugin::builder()
                                .response_code(this.code)
                                .output((this.output)(&id))
                                .build(),
                        )
                        .build(),
                );
            }
            out.build()
        });
        let ended = aws_sdk_ssm::types::CommandStatus::from(self.status.as_str());
        let commands = mock!(Ssm::list_commands).then_compute_output(move |_| {
            let mut counts = counted.lock().unwrap();
            let mut out = ListCommandsOutput::builder();
            for command in listed.lock().unwrap().keys() {
                let seen = counts.entry(command.clone()).or_default();
                *seen += 1;
                let status = match running(*seen) {
                    true => aws_sdk_ssm::types::CommandStatus::InProgress,
                    false => ended.clone(),
                };
                out = out.commands(Command::builder().command_id(command).status(status).build());
            }
            out.build()
        });
        let logger = self.logger.clone();
        let ssm = mock_client!(
            aws_sdk_ssm,
            RuleMode::MatchAny,
            [&send, &get, &list, &commands],
            |c| match &logger {
                Some(l) => c.interceptor(l.clone()),
                None => c,
            }
        );
        (
            SsmCommands::new(ssm),
            Rules {
                send,
                get,
                list,
                commands,
            },
        )
    }
}
