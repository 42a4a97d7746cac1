//! Capacity, quota and throttling through the real EC2 adapter. moto never returns these
//! errors, so EC2 here is aws-smithy-mocks answering with real-shaped EC2 error XML (and the
//! wire status EC2 uses: 500 for capacity, 400 for quota, 503 for throttling), parsed by the
//! real SDK client with nbfleet's retry policy. The store and secrets are moto's.

use aws_sdk_ec2::operation::run_instances::RunInstancesOutput;
use aws_sdk_ec2::types::{Image, InstanceStateName, SecurityGroup};
use aws_sdk_ec2::{Client as Ec2, types as ec2t};
use aws_sdk_ssm::operation::get_parameter::GetParameterOutput;
use aws_sdk_ssm::types::Parameter;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use nbfleet_aws::Ec2Compute;
use nbfleet_core::{Error, State};
use nbfleet_local::moto::ec2_error;
use nbfleet_local::setup;
use nbfleet_testkit::Env;
use std::sync::Arc;
use std::time::Duration;

fn capacity() -> String {
    ec2_error(
        "InsufficientInstanceCapacity",
        "We currently do not have sufficient g5.xlarge capacity in the Availability Zone you requested (us-east-1a). Our system will be working on provisioning additional capacity. You can currently get g5.xlarge capacity by not specifying an Availability Zone in your request or choosing us-east-1b, us-east-1c.",
    )
}

fn launched(subnet: &str) -> RunInstancesOutput {
    RunInstancesOutput::builder()
        .instances(
            ec2t::Instance::builder()
                .instance_id("i-0b22a22eec53b9321")
                .instance_type(ec2t::InstanceType::G5Xlarge)
                .subnet_id(subnet)
                .state(
                    ec2t::InstanceState::builder()
                        .name(InstanceStateName::Pending)
                        .code(0)
                        .build(),
                )
                .build(),
        )
        .build()
}

/// The launch's other EC2 and SSM calls, answered as a fresh account would.
fn supporting_rules() -> Vec<Rule> {
    vec![
        mock!(Ec2::describe_images).then_output(|| {
            aws_sdk_ec2::operation::describe_images::DescribeImagesOutput::builder()
                .images(
                    Image::builder()
                        .image_id(setup::SEEDED_AMI)
                        .root_device_name("/dev/sda1")
                        .build(),
                )
                .build()
        }),
        mock!(Ec2::describe_security_groups).then_output(|| {
            aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput::builder()
                .set_security_groups(Some(Vec::<SecurityGroup>::new()))
                .build()
        }),
        mock!(Ec2::create_security_group).then_output(|| {
            aws_sdk_ec2::operation::create_security_group::CreateSecurityGroupOutput::builder()
                .group_id("sg-0123456789abcdef0")
                .build()
        }),
        mock!(Ec2::describe_instances).then_output(|| {
            aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput::builder().build()
        }),
    ]
}

struct Faulty {
    deps: nbfleet_core::ports::Deps,
    _env: Env,
}

/// Deps whose EC2 answers RunInstances with `run_rule`, over two subnets.
async fn deps(run_rule: &Rule) -> Faulty {
    let env = Env::with_vars([("NBFLEET_SUBNETS", "subnet-a,subnet-b")]).await;
    let mut deps = env.deps.clone();

    let others = supporting_rules();
    let mut rules: Vec<&Rule> = others.iter().collect();
    rules.push(run_rule);
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, rules, |c| {
        nbfleet_aws::ec2_retry_policy(
            c.retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(1)),
            ),
        )
    });
    let param = mock!(aws_sdk_ssm::Client::get_parameter).then_output(|| {
        GetParameterOutput::builder()
            .parameter(Parameter::builder().value(setup::SEEDED_AMI).build())
            .build()
    });
    let ssm = mock_client!(aws_sdk_ssm, [&param]);
    deps.compute = Arc::new(Ec2Compute::new(ec2, ssm, &deps.cfg.table));
    Faulty { deps, _env: env }
}

async fn launch(f: &Faulty, name: &str) -> nbfleet_core::Result<(u16, serde_json::Value)> {
    nbfleet_testkit::api::launch(&f.deps, "alice", format!(r#"{{"name":"{name}"}}"#).as_bytes()).await
}

#[tokio::test]
async fn no_capacity_in_the_first_subnet_falls_back_to_the_second() {
    let run = mock!(Ec2::run_instances)
        .sequence()
        .http_status(500, Some(capacity()))
        .output(|| launched("subnet-b"))
        .build();
    let f = deps(&run).await;
    let (status, body) = launch(&f, "fallback").await.unwrap();
    assert_eq!(status, 202);
    assert_eq!(run.num_calls(), 2, "the capacity error was not retried in place");
    let nb = f.deps.store.get("fallback").await.unwrap().unwrap();
    assert_eq!(nb.state, State::Launching);
    assert_eq!(nb.subnet_id.as_deref(), Some("subnet-b"));
    let outcomes: Vec<&str> = nb.launch_attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert!(outcomes[0].starts_with("InsufficientCapacity"), "{outcomes:?}");
    assert_eq!(outcomes[1], "launched i-0b22a22eec53b9321");
    assert_eq!(body["notebook"]["launch_attempts"][0]["subnet_id"], "subnet-a");
}

#[tokio::test]
async fn no_capacity_anywhere_fails_the_notebook_and_runs_nothing() {
    let run = mock!(Ec2::run_instances)
        .sequence()
        .http_status(500, Some(capacity()))
        .repeatedly()
        .build();
    let f = deps(&run).await;
    let err = launch(&f, "starved").await.unwrap_err();
    assert!(matches!(err, Error::Capacity(_)), "{err:?}");
    assert_eq!(err.status(), 503);
    assert!(
        err.to_string()
            .contains("g5.xlarge in subnet-a, g5.xlarge in subnet-b"),
        "{err}"
    );
    assert_eq!(run.num_calls(), 2);
    let nb = f.deps.store.get("starved").await.unwrap().unwrap();
    assert_eq!(nb.state, State::Failed);
    assert_eq!(nb.instance_id, None, "nothing runs");
    assert_eq!(nb.launch_attempts.len(), 2);
    assert!(nb.failure.unwrap().reason.contains("no capacity"));
}

#[tokio::test]
async fn a_quota_error_stops_at_once_and_says_quota() {
    let quota = ec2_error(
        "VcpuLimitExceeded",
        "You have requested more vCPU capacity than your current vCPU limit of 0 allows for the instance bucket that the specified instance type belongs to.",
    );
    let run = mock!(Ec2::run_instances)
        .sequence()
        .http_status(400, Some(quota))
        .repeatedly()
        .build();
    let f = deps(&run).await;
    let err = launch(&f, "over-quota").await.unwrap_err();
    assert_eq!(err.code(), "QuotaExceeded");
    assert!(err.to_string().contains("quota"), "{err}");
    assert_eq!(run.num_calls(), 1, "neither retried nor tried in the next subnet");
    let nb = f.deps.store.get("over-quota").await.unwrap().unwrap();
    assert_eq!(nb.state, State::Failed);
    assert_eq!(nb.launch_attempts.len(), 1);
}

#[tokio::test]
async fn two_throttles_then_success_launches() {
    let throttle = || Some(ec2_error("RequestLimitExceeded", "Request limit exceeded."));
    let run = mock!(Ec2::run_instances)
        .sequence()
        .http_status(503, throttle())
        .http_status(503, throttle())
        .output(|| launched("subnet-a"))
        .build();
    let f = deps(&run).await;
    let (status, _) = launch(&f, "throttled").await.unwrap();
    assert_eq!(status, 202);
    assert_eq!(run.num_calls(), 3);
    let nb = f.deps.store.get("throttled").await.unwrap().unwrap();
    assert_eq!((nb.state, nb.launch_attempts.len()), (State::Launching, 1));
}

#[tokio::test]
async fn throttling_that_persists_is_a_503_and_leaves_the_record_pending_for_a_retry() {
    let throttle = ec2_error("RequestLimitExceeded", "Request limit exceeded.");
    let run = mock!(Ec2::run_instances)
        .sequence()
        .http_status(503, Some(throttle))
        .repeatedly()
        .build();
    let f = deps(&run).await;
    let err = launch(&f, "throttled-out").await.unwrap_err();
    assert_eq!((err.code(), err.status()), ("Throttled", 503));
    assert_eq!(run.num_calls(), 3, "the SDK's standard retry, bounded");
    let nb = f.deps.store.get("throttled-out").await.unwrap().unwrap();
    assert_eq!((nb.state, nb.instance_id), (State::Pending, None));
}
