//! The AWS adapters against moto (with aws-smithy-mocks where moto has gaps), in one test binary.

mod dynamo_store;
mod ec2_compute;
mod fake_slack;
mod metrics;
mod parameter_secrets;
mod slack_bot;
mod slack_webhook;
mod ssm_commands;
