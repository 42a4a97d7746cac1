//! The launch use case against moto: a hardened instance, its security group, the record, 409 on
//! a taken name, no AWS call on bad input, no secret in any command or log line, and adoption
//! after a crash between RunInstances and the record update.

use aws_sdk_ec2::types::{Filter, HttpTokensState};
use nbfleet_aws::Clients;
use nbfleet_core::{Error, State};
use nbfleet_local::setup;
use nbfleet_testkit::Env;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/DataScientist/alice";

async fn env() -> Env {
    logs();
    Env::new().await
}

async fn launch(env: &Env, body: Value) -> Result<(u16, Value), Error> {
    nbfleet_testkit::api::launch(&env.deps, ALICE, body.to_string().as_bytes()).await
}

async fn instances_of(aws: &Clients, notebook: &str) -> Vec<aws_sdk_ec2::types::Instance> {
    aws.ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("tag:nbfleet:notebook")
                .values(notebook)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .reservations()
        .iter()
        .flat_map(|r| r.instances().to_vec())
        .collect()
}

async fn ingress(aws: &Clients, group_id: &str) -> Vec<aws_sdk_ec2::types::IpPermission> {
    let groups = aws
        .ec2
        .describe_security_groups()
        .group_ids(group_id)
        .send()
        .await
        .unwrap();
    groups.security_groups()[0].ip_permissions().to_vec()
}

#[tokio::test]
async fn the_sample_event_launches_a_hardened_instance_with_no_open_port() {
    let env = env().await;
    let event =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/launch.json")).unwrap();
    let req = lambda_http::request::from_str(&event).expect("events/launch.json is an HTTP API v2 event");
    let resp = nbfleet_testkit::api::serve(&env.deps, req).await;
    assert_eq!(resp.status(), 202);
    let body: Value = serde_json::from_str(&String::from_utf8_lossy(resp.body())).unwrap();
    let nb = &body["notebook"];
    assert_eq!(nb["state"], "Launching");
    assert_eq!(nb["owner"], ALICE);
    assert_eq!(nb["instance_type"], "g5.xlarge");
    assert_eq!(
        body["token"].as_str().unwrap().len(),
        48,
        "no password: a token, shown once"
    );

    let instances = instances_of(&env.aws, "exp-42").await;
    assert_eq!(instances.len(), 1);
    let i = &instances[0];
    assert_eq!(nb["instance_id"], i.instance_id().unwrap());
    assert_eq!(i.image_id(), Some(setup::SEEDED_AMI));
    assert_eq!(
        i.metadata_options().unwrap().http_tokens(),
        Some(&HttpTokensState::Required),
        "IMDSv2"
    );
    assert_eq!(i.key_name(), None, "no key pair");
    assert!(
        i.iam_instance_profile()
            .unwrap()
            .arn()
            .unwrap()
            .ends_with(setup::INSTANCE_PROFILE)
    );
    let tag = |k: &str| {
        i.tags()
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
            .map(String::from)
    };
    assert_eq!(tag("nbfleet:notebook").as_deref(), Some("exp-42"));
    assert_eq!(tag("nbfleet:owner").as_deref(), Some(ALICE));
    assert_eq!(tag("nbfleet:generation").as_deref(), Some("1"));
    // The tunnel rule compares this tag with the caller's aws:userid: without it, nobody
    // reaches their notebook over SSM.
    let record = env.deps.store.require("exp-42").await.unwrap();
    let owner_id = record.owner_id.expect("the owner's stable id");
    assert!(
        owner_id.starts_with("AIDA") || owner_id.starts_with("AROA"),
        "{owner_id}"
    );
    assert_eq!(tag("nbfleet:owner-id"), Some(owner_id));

    let volumes = env
        .aws
        .ec2
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(i.instance_id().unwrap())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let root = &volumes.volumes()[0];
    assert_eq!(root.encrypted(), Some(true));
    assert_eq!(root.size(), Some(100));
    assert_eq!(root.volume_type().map(|t| t.as_str()), Some("gp3"));

    let sg = nb["security_group_id"].as_str().unwrap();
    assert!(ingress(&env.aws, sg).await.is_empty(), "ssm mode opens no port");

    let stored = env.deps.store.get("exp-42").await.unwrap().unwrap();
    assert_eq!(stored.state, State::Launching);
    assert_eq!(stored.launch_attempts.len(), 1);
}

#[tokio::test]
async fn cidr_mode_opens_8888_to_the_listed_networks_only() {
    let env = env().await;
    let (status, body) = launch(
        &env,
        json!({"name": "open-nb", "access": {"mode": "cidr", "cidrs": ["203.0.113.0/24", "2001:db8::/32"]}}),
    )
    .await
    .unwrap();
    assert_eq!(status, 202);
    let perms = ingress(&env.aws, body["notebook"]["security_group_id"].as_str().unwrap()).await;
    assert_eq!(perms.len(), 1);
    let p = &perms[0];
    assert_eq!(
        (p.from_port(), p.to_port(), p.ip_protocol()),
        (Some(8888), Some(8888), Some("tcp"))
    );
    let v4: Vec<_> = p.ip_ranges().iter().filter_map(|r| r.cidr_ip()).collect();
    let v6: Vec<_> = p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()).collect();
    assert_eq!((v4, v6), (vec!["203.0.113.0/24"], vec!["2001:db8::/32"]));
}

#[tokio::test]
async fn the_same_name_again_is_409() {
    let env = env().await;
    launch(&env, json!({"name": "taken"})).await.unwrap();
    let err = launch(&env, json!({"name": "taken"})).await.unwrap_err();
    assert_eq!(err.status(), 409);
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(instances_of(&env.aws, "taken").await.len(), 1);
}

#[tokio::test]
async fn every_refusal_answers_4xx_with_the_error_body_and_makes_no_aws_call() {
    let env = env().await;
    let bodies = [
        json!({}),
        json!({"name": "Bad Name"}),
        json!({"name": "nb", "instance_type": "p2.xlarge"}),
        json!({"name": "nb", "idle_timeout_minutes": 1}),
        json!({"name": "nb", "access": {"mode": "cidr", "cidrs": ["0.0.0.0/0"]}}),
        json!({"name": "nb", "access": {"mode": "cidr", "cidrs": ["nonsense"]}}),
        json!({"name": "nb", "password": "short"}),
        json!({"name": "nb", "ami": "ami-12345678"}),
        json!({"name": "nb", "surprise": true}),
        json!({"name": "nb", "volume_gb": 5}),
    ];
    for body in bodies {
        let resp = nbfleet_testkit::api::respond(launch(&env, body.clone()).await);
        assert_eq!(resp.status(), 400, "{body}");
        let answer: Value = serde_json::from_str(&String::from_utf8_lossy(resp.body())).unwrap();
        assert_eq!(answer["error"]["code"], "BadRequest", "{body}");
        assert!(answer["error"]["field"].is_string(), "{answer}");
    }
    let huge = vec![b' '; 20_000];
    let resp = nbfleet_testkit::api::respond(nbfleet_testkit::api::launch(&env.deps, ALICE, &huge).await);
    assert_eq!(resp.status(), 413);

    let mut unsigned = lambda_http::Request::new(lambda_http::Body::Text(r#"{"name":"nb"}"#.into()));
    *unsigned.method_mut() = lambda_http::http::Method::POST;
    *unsigned.uri_mut() = "/notebooks".parse().unwrap();
    assert_eq!(
        nbfleet_testkit::api::serve(&env.deps, unsigned).await.status(),
        401
    );

    assert_eq!(env.calls.total(), 0, "a refused request made AWS calls");
}

/// Collects every log line the handlers write, in every test of this file.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

/// The one global subscriber of this test binary. A subscriber set for one thread only would
/// race with the other tests: a log call first reached on a thread without one is cached as
/// disabled everywhere.
fn logs() -> &'static Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .init();
        logs
    })
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_reaches_a_command_an_answer_or_a_log_line() {
    let env = env().await;
    let logs = logs();

    let password = "hunter2-correct-horse";
    let (_, with_password) = launch(&env, json!({"name": "pw-nb", "password": password}))
        .await
        .unwrap();
    let (_, with_token) = launch(&env, json!({"name": "token-nb"})).await.unwrap();
    let token = with_token["token"].as_str().unwrap().to_string();
    let hash = env
        .aws
        .ssm
        .get_parameter()
        .name("/nbfleet/notebooks/pw-nb/secret")
        .with_decryption(true)
        .send()
        .await;
    let hash = hash.unwrap().parameter.unwrap().value.unwrap();
    assert!(hash.starts_with("argon2:"), "the password is stored hashed");
    // Configure both (EC2 says running): the bootstraps are the commands that could carry one.
    for name in ["pw-nb", "token-nb"] {
        let id = env.record(name).await.instance_id.unwrap();
        nbfleet_testkit::api::event(&env.deps, &env.ec2_event(&id, "running"))
            .await
            .unwrap();
    }

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("launching"), "the handler logs: {logged}");
    let commands = env.aws.ssm.list_commands().send().await.unwrap();
    assert_eq!(commands.commands().len(), 2, "both bootstraps were sent");
    let sent = format!("{:?}", commands.commands());
    for secret in [password, &token, &hash] {
        assert!(!logged.contains(secret), "a secret in the logs");
        assert!(!sent.contains(secret), "a secret in a command");
    }
    let answer = with_password.to_string();
    assert!(!answer.contains(password) && !answer.contains(&hash) && with_password.get("token").is_none());
}

/// The first write of a Launching record fails, as if the Lambda died right after RunInstances.
fn crash_after_run_instances(env: &Env) {
    let crashed = AtomicBool::new(false);
    env.store.hooks.before("put", move |s| {
        let crash = s.record().is_some_and(|nb| nb.state == State::Launching)
            && !crashed.swap(true, Ordering::SeqCst);
        async move {
            match crash {
                true => Err(Error::Unavailable("injected crash".into())),
                false => Ok(()),
            }
        }
    });
}

#[tokio::test]
async fn a_crash_after_run_instances_is_adopted_on_retry_with_exactly_one_instance() {
    let env = env().await;
    crash_after_run_instances(&env);

    let err = launch(&env, json!({"name": "crashy"})).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        env.deps.store.get("crashy").await.unwrap().unwrap().state,
        State::Pending
    );
    assert_eq!(instances_of(&env.aws, "crashy").await.len(), 1);

    let (status, body) = launch(&env, json!({"name": "crashy"})).await.unwrap();
    assert_eq!(status, 202);
    let instances = instances_of(&env.aws, "crashy").await;
    assert_eq!(instances.len(), 1, "the retry adopted the first instance");
    assert_eq!(
        body["notebook"]["instance_id"],
        instances[0].instance_id().unwrap()
    );
    assert_eq!(body["notebook"]["state"], "Launching");
    let outcome = body["notebook"]["launch_attempts"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["outcome"]
        .clone();
    assert!(outcome.as_str().unwrap().starts_with("adopted"), "{outcome}");
}

#[tokio::test]
async fn an_instance_only_tagged_like_the_launch_is_refused_and_handed_nothing() {
    use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
    let env = env().await;
    // Someone who may tag instances plants one for the launch to adopt: the right tags and
    // AMI, but the default security group and no instance profile.
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    let planted = env
        .aws
        .ec2
        .run_instances()
        .image_id(setup::SEEDED_AMI)
        .instance_type(InstanceType::G5Xlarge)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(tag("nbfleet:notebook", "planted"))
                .tags(tag("nbfleet:generation", "1"))
                .tags(tag(
                    nbfleet_aws::ec2_compute::STACK_TAG,
                    nbfleet_local::deployment::TABLE,
                ))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    let err = launch(&env, json!({"name": "planted"})).await.unwrap_err();
    assert_eq!(err.status(), 409, "{err}");
    assert!(err.to_string().contains("nbfleet did not launch it"), "{err}");
    assert!(err.to_string().contains("security groups"), "{err}");
    let nb = env.deps.store.require("planted").await.unwrap();
    assert_eq!((nb.state, nb.instance_id.as_deref()), (State::Pending, None));
    // Its secret was never granted to the planted instance.
    let tags = env
        .aws
        .ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id("/nbfleet/notebooks/planted/secret")
        .send()
        .await
        .unwrap();
    assert!(
        !tags.tag_list().iter().any(|t| t.value().contains(&planted)),
        "{:?}",
        tags.tag_list()
    );
}

#[tokio::test]
async fn another_owner_cannot_resume_a_pending_launch() {
    let env = env().await;
    crash_after_run_instances(&env);
    launch(&env, json!({"name": "mine"})).await.unwrap_err();
    let err = nbfleet_testkit::api::launch(
        &env.deps,
        "arn:aws:iam::123456789012:user/mallory",
        br#"{"name":"mine"}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), 409);
}

#[tokio::test]
async fn the_secret_is_granted_to_its_instance_by_arn_before_the_record_says_launching() {
    let mut env = env().await;
    env.deps.cfg.account_id = Some("123456789012".into());
    env.deps.cfg.partition = "aws".into();
    // What the parameter's instance tag was when the Launching record was written.
    let seen: Arc<Mutex<Option<Option<String>>>> = Arc::default();
    let (ssm, parameter, at_write) = (
        env.aws.ssm.clone(),
        env.deps.cfg.secret_parameter("granted"),
        seen.clone(),
    );
    env.store.hooks.before("put", move |s| {
        let launching = s.record().is_some_and(|nb| nb.state == State::Launching);
        let (ssm, parameter, at_write) = (ssm.clone(), parameter.clone(), at_write.clone());
        async move {
            if launching {
                let tags = ssm
                    .list_tags_for_resource()
                    .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
                    .resource_id(parameter)
                    .send()
                    .await
                    .unwrap();
                let instance = tags
                    .tag_list()
                    .iter()
                    .find(|t| t.key() == "nbfleet:instance")
                    .map(|t| t.value().to_string());
                *at_write.lock().unwrap() = Some(instance);
            }
            Ok(())
        }
    });
    let (_, body) = launch(&env, json!({"name": "granted"})).await.unwrap();
    let id = body["notebook"]["instance_id"].as_str().unwrap();
    let granted = format!("arn:aws:ec2:us-east-1:123456789012:instance/{id}");
    assert_eq!(
        seen.lock().unwrap().clone(),
        Some(Some(granted.clone())),
        "the Launching record was written before the secret was granted"
    );
    let tags = env
        .aws
        .ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(env.deps.cfg.secret_parameter("granted"))
        .send()
        .await
        .unwrap();
    let tag = |k: &str| {
        tags.tag_list()
            .iter()
            .find(|t| t.key() == k)
            .map(|t| t.value().to_string())
    };
    assert_eq!(tag("nbfleet:instance"), Some(granted));
    assert_eq!(tag("nbfleet:notebook").as_deref(), Some("granted"));
}

/// An account without a default VPC (many have none): the template makes `VpcId` and
/// `SubnetIds` parameters without defaults, and a launch puts the instance in the subnet and
/// its security group in the VPC it is given, never in a default one.
#[tokio::test]
async fn a_launch_needs_no_default_vpc_only_the_vpc_and_subnets_it_is_given() {
    let env = Env::in_memory().await;
    let ec2 = &env.aws.ec2;
    let vpc_id = ec2
        .create_vpc()
        .cidr_block("10.42.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    let subnet_id = ec2
        .create_subnet()
        .vpc_id(&vpc_id)
        .cidr_block("10.42.1.0/24")
        .send()
        .await
        .unwrap()
        .subnet()
        .unwrap()
        .subnet_id()
        .unwrap()
        .to_string();
    let default = ec2
        .describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await
        .unwrap();
    assert!(
        !default.vpcs().is_empty(),
        "moto gives each account a default VPC"
    );
    for vpc in default.vpcs() {
        let id = vpc.vpc_id().unwrap();
        let subnets = ec2
            .describe_subnets()
            .filters(Filter::builder().name("vpc-id").values(id).build())
            .send()
            .await
            .unwrap();
        for s in subnets.subnets() {
            ec2.delete_subnet()
                .subnet_id(s.subnet_id().unwrap())
                .send()
                .await
                .unwrap();
        }
        ec2.delete_vpc().vpc_id(id).send().await.unwrap();
    }
    let mut deps = env.deps.clone();
    deps.cfg.vpc_id = Some(vpc_id.clone());
    deps.cfg.subnets = vec![subnet_id.clone()];
    let body = json!({"name": "no-default-vpc"}).to_string();
    let (status, _) = nbfleet_testkit::api::launch(&deps, ALICE, body.as_bytes())
        .await
        .unwrap();
    assert_eq!(status, 202);
    let instances = instances_of(&env.aws, "no-default-vpc").await;
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].subnet_id(), Some(subnet_id.as_str()));
    assert_eq!(instances[0].vpc_id(), Some(vpc_id.as_str()));
    let group = instances[0].security_groups()[0].group_id().unwrap();
    let groups = ec2
        .describe_security_groups()
        .group_ids(group)
        .send()
        .await
        .unwrap();
    assert_eq!(groups.security_groups()[0].vpc_id(), Some(vpc_id.as_str()));
}
