//! The SSM `Commands` adapter's wire behaviour that moto does not have: moto's SendCommand
//! never answers InvalidInstanceId, GetCommandInvocation never InvocationDoesNotExist, and
//! ListCommandInvocations is not implemented at all (HTTP 500). These answers come from
//! aws-smithy-mocks with the JSON bodies SSM sends, parsed by the real client.

use aws_sdk_ssm::Client;
use aws_sdk_ssm::operation::list_command_invocations::ListCommandInvocationsOutput;
use aws_sdk_ssm::operation::send_command::SendCommandOutput;
use aws_sdk_ssm::types::{Command, CommandInvocation, CommandInvocationStatus, CommandPlugin};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use nbfleet_aws::SsmCommands;
use nbfleet_aws::ssm_commands::AgentWait;
use nbfleet_core::ports::{CommandStatus, Commands, Reach};
use nbfleet_core::scripts::{Script, ScriptKind};
use std::time::Duration;

fn script() -> Script {
    Script {
        kind: ScriptKind::Bootstrap,
        text: "#!/bin/bash\necho hi\n".into(),
    }
}

fn ssm_error(kind: &str) -> Option<String> {
    Some(format!(
        r#"{{"__type":"{kind}","Message":"Instances [[i-0abc]] not in a valid state for account 123456789012"}}"#
    ))
}

fn wait() -> AgentWait {
    AgentWait {
        attempts: 3,
        interval: Duration::from_millis(1),
    }
}

#[tokio::test]
async fn send_retries_while_the_agent_is_not_registered() {
    let rule = mock!(Client::send_command)
        .sequence()
        .http_status(400, ssm_error("InvalidInstanceId"))
        .http_status(400, ssm_error("InvalidInstanceId"))
        .output(|| {
            SendCommandOutput::builder()
                .command(Command::builder().command_id("cmd-1").build())
                .build()
        })
        .build();
    let commands = SsmCommands::new(mock_client!(aws_sdk_ssm, [&rule])).with_agent_wait(wait());
    let sent = commands.send("i-0abc", &script(), Reach::WaitForAgent).await;
    assert_eq!(sent.unwrap(), "cmd-1");
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test]
async fn send_gives_up_within_its_bound_with_a_clear_reason() {
    let rule = mock!(Client::send_command)
        .sequence()
        .http_status(400, ssm_error("InvalidInstanceId"))
        .repeatedly()
        .build();
    let commands = SsmCommands::new(mock_client!(aws_sdk_ssm, [&rule])).with_agent_wait(wait());
    let err = commands
        .send("i-0abc", &script(), Reach::WaitForAgent)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("did not come online"), "{err}");
    assert!(err.is_retryable());
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test]
async fn a_send_that_may_not_wait_tries_the_agent_once() {
    let rule = mock!(Client::send_command)
        .sequence()
        .http_status(400, ssm_error("InvalidInstanceId"))
        .repeatedly()
        .build();
    let commands = SsmCommands::new(mock_client!(aws_sdk_ssm, [&rule])).with_agent_wait(wait());
    let err = commands.send("i-0abc", &script(), Reach::Once).await.unwrap_err();
    assert!(err.to_string().contains("i-0abc is not online"), "{err}");
    assert!(err.is_retryable());
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn an_invocation_not_yet_visible_is_pending_not_failed() {
    let rule = mock!(Client::get_command_invocation)
        .sequence()
        .http_status(400, Some(r#"{"__type":"InvocationDoesNotExist"}"#.into()))
        .build();
    let commands = SsmCommands::new(mock_client!(aws_sdk_ssm, [&rule]));
    let inv = commands.invocation("cmd-1", "i-0abc").await.unwrap();
    assert_eq!(inv.status, CommandStatus::Pending);
}

#[tokio::test]
async fn list_invocations_reads_every_page_with_details() {
    let page = |ids: &[&str], next: Option<&str>| {
        let mut out = ListCommandInvocationsOutput::builder();
        for id in ids {
            out = out.command_invocations(
                CommandInvocation::builder()
                    .command_id("cmd-7")
                    .instance_id(*id)
                    .status(CommandInvocationStatus::Success)
                    .command_plugins(
                        CommandPlugin::builder()
                            .name("aws:runShellScript")
                            .response_code(0)
                            .output(format!("{{\"probe\":\"{id}\"}}"))
                            .build(),
                    )
                    .build(),
            );
        }
        out.set_next_token(next.map(String::from)).build()
    };
    let first = mock!(Client::list_command_invocations)
        .match_requests(|r| r.next_token().is_none())
        .then_output(move || page(&["i-1", "i-2"], Some("page-2")));
    let second = mock!(Client::list_command_invocations)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(move || page(&["i-3"], None));
    let commands = SsmCommands::new(mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&first, &second]));
    let all = commands.invocations("cmd-7").await.unwrap();
    let ids: Vec<&str> = all.iter().map(|i| i.instance_id.as_str()).collect();
    assert_eq!(ids, ["i-1", "i-2", "i-3"]);
    assert!(
        all.iter()
            .all(|i| i.status == CommandStatus::Success && i.exit_code == Some(0))
    );
    assert_eq!(all[2].stdout, r#"{"probe":"i-3"}"#);
}

#[tokio::test]
async fn still_running_lists_the_rounds_commands_not_their_instances() {
    use aws_sdk_ssm::operation::list_commands::ListCommandsOutput;
    use aws_sdk_ssm::types::{CommandFilterKey, CommandStatus as Status};
    let since: jiff::Timestamp = "2026-12-05T10:00:00Z".parse().unwrap();
    let rule = mock!(Client::list_commands)
        .match_requests(|r| {
            r.filters().first().is_some_and(|f| {
                f.key() == &CommandFilterKey::InvokedAfter && f.value() == "2026-12-05T10:00:00Z"
            })
        })
        .then_output(|| {
            ListCommandsOutput::builder()
                .commands(
                    Command::builder()
                        .command_id("cmd-1")
                        .status(Status::Success)
                        .build(),
                )
                .commands(
                    Command::builder()
                        .command_id("cmd-2")
                        .status(Status::InProgress)
                        .build(),
                )
                .commands(
                    Command::builder()
                        .command_id("cmd-other")
                        .status(Status::Failed)
                        .build(),
                )
                .build()
        });
    let commands = SsmCommands::new(mock_client!(aws_sdk_ssm, [&rule]));
    let asked = ["cmd-1", "cmd-2", "cmd-3"].map(String::from);
    let mut running: Vec<String> = commands
        .still_running(&asked, since)
        .await
        .unwrap()
        .into_iter()
        .collect();
    running.sort();
    // cmd-3 is not listed yet (the listing lags SendCommand): still running.
    assert_eq!(running, ["cmd-2", "cmd-3"]);
    assert_eq!(rule.num_calls(), 1);
}
