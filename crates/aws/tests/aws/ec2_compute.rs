//! The EC2 `Compute` adapter's security groups against moto: a group found under a notebook's
//! name when a launch is retried is used only if it is that notebook's and lets in no more
//! than asked, and a rule a failed first try left out is added.

use aws_sdk_ec2::types::{IpPermission, IpRange};
use nbfleet_aws::Ec2Compute;
use nbfleet_core::Error;
use nbfleet_core::ports::Compute;
use nbfleet_core::validate::{Access, AccessMode};
use nbfleet_local::moto;

fn compute() -> (Ec2Compute, aws_sdk_ec2::Client) {
    let clients = moto::clients(&moto::endpoint_from_env(), &moto::fresh_account());
    (stack(&clients, "nbfleet-test"), clients.ec2)
}

/// The adapter of the stack whose table is `table`.
fn stack(clients: &nbfleet_aws::Clients, table: &str) -> Ec2Compute {
    Ec2Compute::new(clients.ec2.clone(), clients.ssm.clone(), table)
}

fn cidr(nets: &[&str]) -> Access {
    Access {
        mode: AccessMode::Cidr,
        cidrs: nets.iter().map(|n| n.parse().unwrap()).collect(),
    }
}

/// TCP `port` from `net`.
fn rule(port: i32, net: &str) -> IpPermission {
    IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(port)
        .to_port(port)
        .ip_ranges(IpRange::builder().cidr_ip(net).build())
        .build()
}

/// Opens `group` to `rule`, behind nbfleet's back.
async fn open(ec2: &aws_sdk_ec2::Client, group: &str, rule: IpPermission) {
    ec2.authorize_security_group_ingress()
        .group_id(group)
        .ip_permissions(rule)
        .send()
        .await
        .unwrap();
}

async fn open_to(ec2: &aws_sdk_ec2::Client, group: &str) -> Vec<String> {
    let out = ec2
        .describe_security_groups()
        .group_ids(group)
        .send()
        .await
        .unwrap();
    let mut nets: Vec<String> = out.security_groups()[0]
        .ip_permissions()
        .iter()
        .flat_map(|p| p.ip_ranges().iter().filter_map(|r| r.cidr_ip().map(String::from)))
        .collect();
    nets.sort();
    nets
}

#[tokio::test]
async fn a_retried_launch_adds_the_rule_its_first_try_left_out() {
    let (compute, ec2) = compute();
    let access = cidr(&["203.0.113.0/24"]);
    let group = compute
        .ensure_security_group("nb", 1, &access, None)
        .await
        .unwrap();
    assert_eq!(open_to(&ec2, &group).await, ["203.0.113.0/24"]);
    // As if the first try died between creating the group and opening it.
    ec2.revoke_security_group_ingress()
        .group_id(&group)
        .ip_permissions(rule(8888, "203.0.113.0/24"))
        .send()
        .await
        .unwrap();
    let again = compute
        .ensure_security_group("nb", 1, &access, None)
        .await
        .unwrap();
    assert_eq!(again, group, "the same group, reused");
    assert_eq!(open_to(&ec2, &group).await, ["203.0.113.0/24"]);
}

#[tokio::test]
async fn a_group_under_the_notebooks_name_that_is_not_its_own_is_refused() {
    let (compute, ec2) = compute();
    // Someone made a group with the name nbfleet would use, open to the world.
    let planted = ec2
        .create_security_group()
        .group_name("nbfleet-nb-g1")
        .description("not nbfleet's")
        .send()
        .await
        .unwrap()
        .group_id
        .unwrap();
    open(&ec2, &planted, rule(8888, "0.0.0.0/0")).await;
    let err = compute
        .ensure_security_group("nb", 1, &Access::default(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref m) if m.contains("did not make")),
        "{err}"
    );
}

#[tokio::test]
async fn a_reused_group_that_lets_in_more_than_asked_is_refused() {
    let (compute, ec2) = compute();
    let access = cidr(&["203.0.113.0/24"]);
    let group = compute
        .ensure_security_group("nb", 1, &access, None)
        .await
        .unwrap();
    open(&ec2, &group, rule(8888, "0.0.0.0/0")).await;
    let err = compute
        .ensure_security_group("nb", 1, &access, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref m) if m.contains("0.0.0.0/0")),
        "{err}"
    );
    // An ssm-mode notebook lets nothing in: any rule is too much.
    let ssm = compute
        .ensure_security_group("quiet", 1, &Access::default(), None)
        .await
        .unwrap();
    open(&ec2, &ssm, rule(22, "198.51.100.0/24")).await;
    let err = compute
        .ensure_security_group("quiet", 1, &Access::default(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict(ref m) if m.contains("never makes")),
        "{err}"
    );
}

#[tokio::test]
async fn the_tagged_groups_are_this_stacks_only() {
    let clients = moto::clients(&moto::endpoint_from_env(), &moto::fresh_account());
    let (compute, other_stack) = (stack(&clients, "nbfleet-test"), stack(&clients, "other"));
    let ours = compute
        .ensure_security_group("nb", 1, &Access::default(), None)
        .await
        .unwrap();
    let theirs = other_stack
        .ensure_security_group("nb", 2, &Access::default(), None)
        .await
        .unwrap();
    let listed = compute.list_tagged_groups().await.unwrap();
    assert_eq!(listed, [(ours, "nb".to_string())], "not {theirs}");
}
