//! The `Compute` port on EC2 (plus the SSM parameter that names the AMI).
//!
//! Instances are launched hardened: IMDSv2 required, an encrypted gp3 root volume, the
//! instance profile, no key pair, and tags that tie them to their notebook and generation.
//! EC2 error codes become core errors here: capacity, quota, throttling, not-found and
//! incorrect-state.

use crate::errors;
use crate::parameter_secrets::NOTEBOOK_TAG;
use async_trait::async_trait;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::operation::run_instances::RunInstancesError;
use aws_sdk_ec2::operation::start_instances::StartInstancesError;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, HttpTokensState, IamInstanceProfileSpecification,
    InstanceMetadataEndpointState, InstanceMetadataOptionsRequest, InstanceType, IpPermission, IpRange,
    Ipv6Range, ResourceType, ShutdownBehavior, Tag, TagSpecification, VolumeType,
};
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use nbfleet_core::ports::{
    Ami, Compute, Instance, InstanceState, RestoreImage, RunRequest, Snapshot, SnapshotRequest,
};
use nbfleet_core::validate::{Access, AccessMode};
use nbfleet_core::{Error, Result};
use std::fmt::Debug;

pub const OWNER_TAG: &str = "nbfleet:owner";
/// The owner's unique id (`identity::Principal::id`, `aws:userid` in person mode): what a
/// policy can compare with the caller's.
pub const OWNER_ID_TAG: &str = "nbfleet:owner-id";
/// Which nbfleet deployment made a resource (its table's name): two stacks in one account
/// never take each other's instances for orphans, or each other's groups for leftovers.
pub const STACK_TAG: &str = "nbfleet:stack";
pub const GENERATION_TAG: &str = "nbfleet:generation";
pub const CREATED_TAG: &str = "nbfleet:created";
/// On a restored notebook's instance: the snapshot its disk was made from.
pub const RESTORED_FROM_TAG: &str = "nbfleet:restored-from";
/// On a snapshot the retention rule will delete: from when (set when its owner is told).
pub const DELETE_AFTER_TAG: &str = "nbfleet:delete-after";
/// The name every restore image starts with (`RestoreImage::name`).
pub const RESTORE_IMAGE_PREFIX: &str = "nbfleet-restore-";
/// Jupyter's port, opened only in cidr mode.
pub const JUPYTER_PORT: i32 = 8888;

/// Keeps the SDK from retrying a capacity error. EC2 answers InsufficientInstanceCapacity with
/// HTTP 500, which the standard retry treats as transient; capacity does not come back within
/// a backoff, and the launch falls back to the next (type, subnet) pair instead.
#[derive(Debug, Clone, Copy, Default)]
pub struct CapacityIsNotRetried;

impl ClassifyRetry for CapacityIsNotRetried {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(Err(err)) = ctx.output_or_error() else {
            return RetryAction::NoActionIndicated;
        };
        let Some(op) = err.as_operation_error() else {
            return RetryAction::NoActionIndicated;
        };
        let code = op
            .downcast_ref::<RunInstancesError>()
            .and_then(|e| e.code())
            .or_else(|| op.downcast_ref::<StartInstancesError>().and_then(|e| e.code()));
        match code {
            Some(c) if CAPACITY_CODES.contains(&c) => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "CapacityIsNotRetried"
    }
}

/// Error codes that mean "no room here right now": try another (type, subnet) pair.
/// `Unsupported` means the type is not offered in that zone.
const CAPACITY_CODES: [&str; 3] = [
    "InsufficientInstanceCapacity",
    "InsufficientHostCapacity",
    "Unsupported",
];

#[derive(Debug, Clone)]
pub struct Ec2Compute {
    ec2: aws_sdk_ec2::Client,
    ssm: aws_sdk_ssm::Client,
    /// This deployment's name ([`STACK_TAG`]'s value): the notebook table's.
    stack: String,
}

impl Ec2Compute {
    pub fn new(ec2: aws_sdk_ec2::Client, ssm: aws_sdk_ssm::Client, stack: impl Into<String>) -> Self {
        Ec2Compute {
            ec2,
            ssm,
            stack: stack.into(),
        }
    }

    fn stack_tag(&self) -> Tag {
        tag(STACK_TAG, &self.stack)
    }

    fn this_stack(&self) -> Filter {
        Filter::builder()
            .name(format!("tag:{STACK_TAG}"))
            .values(&self.stack)
            .build()
    }
}

fn tag(key: &str, value: impl Into<String>) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn tags_for(kind: ResourceType, tags: &[Tag]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(tags.to_vec()))
        .build()
}

fn group_name(notebook: &str, generation: u32) -> String {
    format!("nbfleet-{notebook}-g{generation}")
}

/// The id of a group found under a notebook's group name, if it carries that notebook's tag:
/// a group someone else made under the name (open to who knows what) is refused.
fn reused_group(group: &aws_sdk_ec2::types::SecurityGroup, notebook: &str, name: &str) -> Result<String> {
    let ours = group
        .tags()
        .iter()
        .any(|t| t.key() == Some(NOTEBOOK_TAG) && t.value() == Some(notebook));
    let id = group.group_id.clone().unwrap_or_default();
    if !ours {
        return Err(Error::Conflict(format!(
            "a security group named {name} ({id}) exists that nbfleet did not make for this \
             notebook; delete it or pick another name"
        )));
    }
    Ok(id)
}

/// The networks a group lets in: every ingress rule as a CIDR, or an error naming a rule that
/// is no CIDR on Jupyter's port (another port, a group reference, a prefix list).
fn open_to(group: &aws_sdk_ec2::types::SecurityGroup) -> Result<Vec<String>> {
    let mut nets = Vec::new();
    for p in group.ip_permissions() {
        let on_port = p.ip_protocol() == Some("tcp")
            && p.from_port() == Some(JUPYTER_PORT)
            && p.to_port() == Some(JUPYTER_PORT);
        let other = !p.user_id_group_pairs().is_empty() || !p.prefix_list_ids().is_empty();
        if !on_port || other {
            return Err(Error::Conflict(format!(
                "security group {} has a rule nbfleet never makes ({:?} {:?}-{:?}); delete the \
                 group or the rule, then launch again",
                group.group_id().unwrap_or_default(),
                p.ip_protocol(),
                p.from_port(),
                p.to_port()
            )));
        }
        nets.extend(p.ip_ranges().iter().filter_map(|r| r.cidr_ip().map(String::from)));
        nets.extend(
            p.ipv6_ranges()
                .iter()
                .filter_map(|r| r.cidr_ipv6().map(String::from)),
        );
    }
    Ok(nets)
}

/// Maps an EC2 error by its code; `what` says what was being done.
fn map_ec2<E: ProvideErrorMetadata + Debug, R: Debug>(err: SdkError<E, R>, what: &str) -> Error {
    let message = err
        .as_service_error()
        .and_then(|e| e.message())
        .unwrap_or("")
        .to_string();
    match errors::code(&err) {
        Some(c) if CAPACITY_CODES.contains(&c) => {
            Error::Capacity(format!("EC2 has no capacity to {what}: {message}"))
        }
        Some("InstanceLimitExceeded" | "VcpuLimitExceeded" | "MaxSpotInstanceCountExceeded") => {
            Error::Quota(format!(
                "an EC2 quota stops this: {message} (ask AWS for a higher limit, or stop other instances)"
            ))
        }
        Some("InvalidInstanceID.NotFound" | "InvalidInstanceID.Malformed") => {
            Error::NotFound(format!("EC2 does not know the instance: {message}"))
        }
        Some("IncorrectInstanceState" | "IncorrectState") => {
            Error::Conflict(format!("the instance is not in a state to {what}: {message}"))
        }
        Some("VolumeModificationRateExceeded" | "IncorrectModificationState") => Error::Conflict(format!(
            "EBS resizes a disk only so often, and one change at a time: {message} (retry later)"
        )),
        Some("InvalidSnapshot.NotFound") => {
            Error::NotFound(format!("EC2 does not know the snapshot: {message}"))
        }
        Some("InvalidSnapshot.InUse") => Error::Conflict(format!(
            "the snapshot is in use (an AMI or a volume being made from it): {message}"
        )),
        _ => errors::map(err, what),
    }
}

fn to_instance(i: aws_sdk_ec2::types::Instance) -> Option<Instance> {
    let state = InstanceState::parse(i.state.as_ref()?.name.as_ref()?.as_str())?;
    let root = i.root_device_name.clone();
    let root_volume_id = i
        .block_device_mappings()
        .iter()
        .find(|m| m.device_name.is_some() && m.device_name == root)
        .and_then(|m| m.ebs.as_ref()?.volume_id.clone());
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let tagged = |key: &str| {
        i.tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(String::from)
    };
    let (notebook, owner, owner_id) = (tagged(NOTEBOOK_TAG), tagged(OWNER_TAG), tagged(OWNER_ID_TAG));
    let security_group_ids = i
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id.clone())
        .collect();
    let launched_at = i
        .launch_time
        .and_then(|t| jiff::Timestamp::new(t.secs(), t.subsec_nanos() as i32).ok());
    Some(Instance {
        id: i.instance_id?,
        notebook,
        owner,
        owner_id,
        launched_at,
        state,
        instance_type: i
            .instance_type
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        subnet_id: non_empty(i.subnet_id),
        private_ip: non_empty(i.private_ip_address),
        public_ip: non_empty(i.public_ip_address),
        public_dns: non_empty(i.public_dns_name),
        root_volume_id,
        security_group_ids,
        image_id: non_empty(i.image_id),
        instance_profile: i
            .iam_instance_profile
            .and_then(|p| p.arn)
            .and_then(|arn| arn.rsplit('/').next().map(str::to_string)),
    })
}

impl Ec2Compute {
    /// A snapshot as nbfleet sees it: nbfleet's when it carries this stack's tag and a
    /// notebook's.
    fn to_snapshot(&self, s: aws_sdk_ec2::types::Snapshot) -> Snapshot {
        let tag = |key: &str| {
            s.tags()
                .iter()
                .find(|t| t.key() == Some(key))
                .and_then(|t| t.value())
                .map(str::to_string)
        };
        let notebook = tag(NOTEBOOK_TAG);
        Snapshot {
            id: s.snapshot_id().unwrap_or_default().to_string(),
            nbfleet: notebook.is_some() && tag(STACK_TAG).as_deref() == Some(self.stack.as_str()),
            notebook,
            owner: tag(OWNER_TAG),
            owner_id: tag(OWNER_ID_TAG),
            generation: tag(GENERATION_TAG).and_then(|g| g.parse().ok()),
            size_gb: s.volume_size().unwrap_or(0).max(0) as u32,
            created: s
                .start_time()
                .and_then(|t| jiff::Timestamp::from_second(t.secs()).ok()),
            state: s.state().map(|st| st.as_str().to_string()).unwrap_or_default(),
            delete_after: tag(DELETE_AFTER_TAG).and_then(|t| t.parse().ok()),
        }
    }

    /// This account's restore images whose name matches `name` (wildcards allowed), each with
    /// the snapshots it is made from.
    async fn restore_images(&self, name: &str) -> Result<Vec<(String, Vec<String>)>> {
        let out = self
            .ec2
            .describe_images()
            .owners("self")
            .filters(Filter::builder().name("name").values(name).build())
            .send()
            .await
            .map_err(|e| map_ec2(e, "look for restore images"))?;
        Ok(out
            .images()
            .iter()
            .filter(|i| i.name().is_some_and(|n| n.starts_with(RESTORE_IMAGE_PREFIX)))
            .filter_map(|i| {
                let snapshots = i
                    .block_device_mappings()
                    .iter()
                    .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
                    .collect();
                Some((i.image_id()?.to_string(), snapshots))
            })
            .collect())
    }

    /// Every instance matching `filters`, all pages of up to 1000.
    async fn describe_all(
        &self,
        filters: Vec<Filter>,
        what: &str,
    ) -> Result<Vec<aws_sdk_ec2::types::Instance>> {
        let reservations = self
            .ec2
            .describe_instances()
            .set_filters(Some(filters))
            .max_results(1000)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<Vec<_>, _>>()
            .await
            .map_err(|e| map_ec2(e, what))?;
        Ok(reservations
            .into_iter()
            .flat_map(|r| r.instances.unwrap_or_default())
            .collect())
    }
}

#[async_trait]
impl Compute for Ec2Compute {
    async fn resolve_ami(&self, parameter: &str) -> Result<Ami> {
        let id = match self.ssm.get_parameter().name(parameter).send().await {
            Ok(out) => out.parameter.and_then(|p| p.value).unwrap_or_default(),
            Err(e) if errors::code(&e) == Some("ParameterNotFound") => {
                return Err(Error::internal(format!(
                    "the AMI parameter {parameter} does not exist"
                )));
            }
            Err(e) => return Err(errors::map(e, "read the AMI parameter")),
        };
        if !id.starts_with("ami-") {
            return Err(Error::internal(format!(
                "the AMI parameter {parameter} holds no AMI id"
            )));
        }
        let images = self
            .ec2
            .describe_images()
            .image_ids(&id)
            .send()
            .await
            .map_err(|e| map_ec2(e, "describe the AMI"))?;
        let root_device = images
            .images()
            .first()
            .and_then(|img| img.root_device_name.clone())
            .ok_or_else(|| Error::internal(format!("AMI {id} (from {parameter}) is not available")))?;
        Ok(Ami { id, root_device })
    }

    async fn ensure_security_group(
        &self,
        notebook: &str,
        generation: u32,
        access: &Access,
        vpc_id: Option<&str>,
    ) -> Result<String> {
        let name = group_name(notebook, generation);
        let mut filters = vec![Filter::builder().name("group-name").values(&name).build()];
        if let Some(vpc) = vpc_id {
            filters.push(Filter::builder().name("vpc-id").values(vpc).build());
        }
        let existing = self
            .ec2
            .describe_security_groups()
            .set_filters(Some(filters))
            .send()
            .await
            .map_err(|e| map_ec2(e, "look up the security group"))?;
        let (id, rules) = match existing.security_groups().first() {
            // Reused (a launch retried): it must be ours, and open to no more than asked.
            Some(group) => (reused_group(group, notebook, &name)?, open_to(group)?),
            None => {
                let created = self
                    .ec2
                    .create_security_group()
                    .group_name(&name)
                    .description(format!("nbfleet notebook {notebook}: {:?} access", access.mode))
                    .set_vpc_id(vpc_id.map(String::from))
                    .tag_specifications(tags_for(
                        ResourceType::SecurityGroup,
                        &[tag(NOTEBOOK_TAG, notebook), self.stack_tag()],
                    ))
                    .send()
                    .await
                    .map_err(|e| map_ec2(e, "create the security group"))?;
                let id = created
                    .group_id
                    .ok_or_else(|| Error::internal("CreateSecurityGroup returned no id"))?;
                (id, Vec::new())
            }
        };
        let wanted: Vec<String> = match access.mode {
            AccessMode::Cidr => access.cidrs.iter().map(|n| n.to_string()).collect(),
            AccessMode::Ssm => Vec::new(),
        };
        if let Some(extra) = rules.iter().find(|r| !wanted.contains(r)) {
            return Err(Error::Conflict(format!(
                "security group {id} ({name}) lets {extra} in, which this notebook does not ask for; \
                 delete the group or the rule, then launch again"
            )));
        }
        // What a first try that failed between creating the group and opening it left out.
        let missing: Vec<&ipnet::IpNet> = access
            .cidrs
            .iter()
            .filter(|n| access.mode == AccessMode::Cidr && !rules.contains(&n.to_string()))
            .collect();
        if !missing.is_empty() {
            let mut perm = IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(JUPYTER_PORT)
                .to_port(JUPYTER_PORT);
            for net in missing {
                let cidr = net.to_string();
                perm = match net {
                    ipnet::IpNet::V4(_) => {
                        perm.ip_ranges(IpRange::builder().cidr_ip(cidr).description("Jupyter").build())
                    }
                    ipnet::IpNet::V6(_) => perm.ipv6_ranges(
                        Ipv6Range::builder()
                            .cidr_ipv6(cidr)
                            .description("Jupyter")
                            .build(),
                    ),
                };
            }
            self.ec2
                .authorize_security_group_ingress()
                .group_id(&id)
                .ip_permissions(perm.build())
                .send()
                .await
                .map_err(|e| map_ec2(e, "open Jupyter's port to the listed networks"))?;
        }
        Ok(id)
    }

    async fn list_tagged_groups(&self) -> Result<Vec<(String, String)>> {
        let groups: Vec<aws_sdk_ec2::types::SecurityGroup> = self
            .ec2
            .describe_security_groups()
            .filters(Filter::builder().name("tag-key").values(NOTEBOOK_TAG).build())
            .filters(self.this_stack())
            .max_results(1000)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<_, _>>()
            .await
            .map_err(|e| map_ec2(e, "list the notebooks' security groups"))?;
        Ok(groups
            .into_iter()
            .filter_map(|g| {
                let notebook = g
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some(NOTEBOOK_TAG))?
                    .value()?
                    .to_string();
                Some((g.group_id?, notebook))
            })
            .collect())
    }

    async fn delete_security_group(&self, group_id: &str) -> Result<()> {
        match self.ec2.delete_security_group().group_id(group_id).send().await {
            Ok(_) => Ok(()),
            Err(e) if errors::code(&e) == Some("InvalidGroup.NotFound") => Ok(()),
            Err(e) => Err(map_ec2(e, "delete the security group")),
        }
    }

    async fn run_instance(&self, req: &RunRequest) -> Result<Instance> {
        let mut tags = vec![
            tag("Name", format!("nbfleet-{}", req.notebook)),
            tag(NOTEBOOK_TAG, &req.notebook),
            tag(OWNER_TAG, &req.owner),
            tag(OWNER_ID_TAG, &req.owner_id),
            tag(GENERATION_TAG, req.generation.to_string()),
            self.stack_tag(),
        ];
        if let Some(snapshot) = &req.restored_from {
            tags.push(tag(RESTORED_FROM_TAG, snapshot));
        }
        let out = self
            .ec2
            .run_instances()
            .image_id(&req.ami.id)
            .instance_type(InstanceType::from(req.instance_type.as_str()))
            .min_count(1)
            .max_count(1)
            .set_subnet_id(Some(req.subnet_id.clone()).filter(|s| !s.is_empty()))
            .security_group_ids(&req.security_group_id)
            .set_iam_instance_profile(
                req.instance_profile
                    .as_ref()
                    .map(|p| IamInstanceProfileSpecification::builder().name(p).build()),
            )
            // An OS shutdown (the on-instance idle fallback) stops the instance, never terminates it.
            .instance_initiated_shutdown_behavior(ShutdownBehavior::Stop)
            .metadata_options(
                InstanceMetadataOptionsRequest::builder()
                    .http_tokens(HttpTokensState::Required)
                    .http_endpoint(InstanceMetadataEndpointState::Enabled)
                    .http_put_response_hop_limit(1)
                    .build(),
            )
            .block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name(&req.ami.root_device)
                    .ebs(
                        EbsBlockDevice::builder()
                            .volume_size(req.volume_gb as i32)
                            .volume_type(VolumeType::Gp3)
                            .encrypted(true)
                            .delete_on_termination(true)
                            .build(),
                    )
                    .build(),
            )
            .tag_specifications(tags_for(ResourceType::Instance, &tags))
            .tag_specifications(tags_for(ResourceType::Volume, &tags))
            .client_token(&req.client_token)
            .send()
            .await
            .map_err(|e| map_ec2(e, &format!("launch a {}", req.instance_type)))?;
        out.instances
            .unwrap_or_default()
            .into_iter()
            .find_map(to_instance)
            .ok_or_else(|| Error::internal("RunInstances returned no instance"))
    }

    async fn find_instances(&self, notebook: &str, generation: u32) -> Result<Vec<Instance>> {
        let live = ["pending", "running", "stopping", "stopped"]
            .map(String::from)
            .to_vec();
        let filters = vec![
            Filter::builder()
                .name(format!("tag:{NOTEBOOK_TAG}"))
                .values(notebook)
                .build(),
            Filter::builder()
                .name(format!("tag:{GENERATION_TAG}"))
                .values(generation.to_string())
                .build(),
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(live))
                .build(),
            self.this_stack(),
        ];
        let found = self
            .describe_all(filters, "find the notebook's instances")
            .await?;
        Ok(found.into_iter().filter_map(to_instance).collect())
    }

    async fn list_tagged(&self) -> Result<Vec<(String, Instance)>> {
        let filters = vec![
            Filter::builder().name("tag-key").values(NOTEBOOK_TAG).build(),
            self.this_stack(),
        ];
        let found = self.describe_all(filters, "list nbfleet's instances").await?;
        Ok(found
            .into_iter()
            .filter_map(to_instance)
            .filter_map(|i| Some((i.notebook.clone()?, i)))
            .collect())
    }

    async fn describe(&self, instance_id: &str) -> Result<Option<Instance>> {
        match self
            .ec2
            .describe_instances()
            .instance_ids(instance_id)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .reservations
                .unwrap_or_default()
                .into_iter()
                .flat_map(|r| r.instances.unwrap_or_default())
                .find_map(to_instance)),
            Err(e) if errors::code(&e) == Some("InvalidInstanceID.NotFound") => Ok(None),
            Err(e) => Err(map_ec2(e, "describe the instance")),
        }
    }

    async fn start(&self, instance_id: &str) -> Result<()> {
        self.ec2
            .start_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| map_ec2(e, "start"))?;
        Ok(())
    }

    async fn stop(&self, instance_id: &str) -> Result<()> {
        self.ec2
            .stop_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| map_ec2(e, "stop"))?;
        Ok(())
    }

    async fn terminate(&self, instance_id: &str) -> Result<()> {
        self.ec2
            .terminate_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| map_ec2(e, "terminate"))?;
        Ok(())
    }

    async fn snapshot(&self, req: &SnapshotRequest) -> Result<String> {
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::Snapshot)
            .set_tags(Some(vec![
                tag("Name", format!("nbfleet-{}", req.notebook)),
                tag(NOTEBOOK_TAG, &req.notebook),
                tag(OWNER_TAG, &req.owner),
                tag(OWNER_ID_TAG, &req.owner_id),
                tag(GENERATION_TAG, req.generation.to_string()),
                tag(CREATED_TAG, req.created.to_string()),
                self.stack_tag(),
            ]))
            .build();
        let out = self
            .ec2
            .create_snapshot()
            .volume_id(&req.volume_id)
            .description(format!(
                "nbfleet {} (generation {})",
                req.notebook, req.generation
            ))
            .tag_specifications(tags)
            .send()
            .await
            .map_err(|e| map_ec2(e, "snapshot the root volume"))?;
        out.snapshot_id
            .ok_or_else(|| Error::internal("CreateSnapshot returned no id"))
    }

    async fn list_snapshots(&self) -> Result<Vec<Snapshot>> {
        let filters = vec![
            Filter::builder().name("tag-key").values(NOTEBOOK_TAG).build(),
            self.this_stack(),
        ];
        let found = self
            .ec2
            .describe_snapshots()
            .owner_ids("self")
            .set_filters(Some(filters))
            .max_results(1000)
            .into_paginator()
            .items()
            .send()
            .collect::<std::result::Result<Vec<_>, _>>()
            .await
            .map_err(|e| map_ec2(e, "list nbfleet's snapshots"))?;
        Ok(found.into_iter().map(|s| self.to_snapshot(s)).collect())
    }

    async fn describe_snapshot(&self, id: &str) -> Result<Option<Snapshot>> {
        match self.ec2.describe_snapshots().snapshot_ids(id).send().await {
            Ok(out) => Ok(out
                .snapshots
                .unwrap_or_default()
                .into_iter()
                .next()
                .map(|s| self.to_snapshot(s))),
            Err(e)
                if matches!(
                    errors::code(&e),
                    Some("InvalidSnapshot.NotFound" | "InvalidSnapshotID.Malformed")
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(map_ec2(e, "describe the snapshot")),
        }
    }

    async fn delete_snapshot(&self, id: &str) -> Result<()> {
        // A restore image left by a launch that died before deregistering it holds the snapshot.
        for (image, _) in self
            .restore_images(&format!("{RESTORE_IMAGE_PREFIX}*"))
            .await?
            .into_iter()
            .filter(|(_, snapshots)| snapshots.iter().any(|s| s == id))
        {
            self.deregister_image(&image).await?;
        }
        match self.ec2.delete_snapshot().snapshot_id(id).send().await {
            Ok(_) => Ok(()),
            Err(e) if errors::code(&e) == Some("InvalidSnapshot.NotFound") => Ok(()),
            Err(e) => Err(map_ec2(e, "delete the snapshot")),
        }
    }

    async fn mark_snapshot(&self, id: &str, at: jiff::Timestamp) -> Result<()> {
        self.ec2
            .create_tags()
            .resources(id)
            .tags(tag(DELETE_AFTER_TAG, at.to_string()))
            .send()
            .await
            .map_err(|e| map_ec2(e, "mark the snapshot for deletion"))?;
        Ok(())
    }

    async fn image_from_snapshot(&self, req: &RestoreImage) -> Result<Ami> {
        let root_device = req.base.root_device.clone();
        if let Some((id, _)) = self.restore_images(&req.name).await?.into_iter().next() {
            return Ok(Ami { id, root_device });
        }
        let base = self
            .ec2
            .describe_images()
            .image_ids(&req.base.id)
            .send()
            .await
            .map_err(|e| map_ec2(e, "describe the AMI"))?;
        let base = base
            .images()
            .first()
            .ok_or_else(|| Error::internal(format!("AMI {} is not available", req.base.id)))?;
        let out = self
            .ec2
            .register_image()
            .name(&req.name)
            .description(format!("nbfleet restore of {}", req.snapshot_id))
            .root_device_name(&root_device)
            .block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name(&root_device)
                    .ebs(
                        EbsBlockDevice::builder()
                            .snapshot_id(&req.snapshot_id)
                            .volume_type(VolumeType::Gp3)
                            .delete_on_termination(true)
                            .build(),
                    )
                    .build(),
            )
            .set_architecture(base.architecture().cloned())
            .set_boot_mode(base.boot_mode().map(|m| m.as_str().into()))
            .ena_support(base.ena_support().unwrap_or(true))
            .virtualization_type("hvm")
            .tag_specifications(tags_for(
                ResourceType::Image,
                &[tag(RESTORED_FROM_TAG, &req.snapshot_id), self.stack_tag()],
            ))
            .send()
            .await
            .map_err(|e| map_ec2(e, "make an image of the snapshot"))?;
        let id = out
            .image_id
            .ok_or_else(|| Error::internal("RegisterImage returned no id"))?;
        Ok(Ami { id, root_device })
    }

    async fn deregister_image(&self, id: &str) -> Result<()> {
        match self.ec2.deregister_image().image_id(id).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    errors::code(&e),
                    Some("InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable")
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(map_ec2(e, "deregister the restore image")),
        }
    }

    async fn set_instance_type(&self, instance_id: &str, instance_type: &str) -> Result<()> {
        self.ec2
            .modify_instance_attribute()
            .instance_id(instance_id)
            .instance_type(
                aws_sdk_ec2::types::AttributeValue::builder()
                    .value(instance_type)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| map_ec2(e, &format!("change the instance type to {instance_type}")))?;
        Ok(())
    }

    async fn grow_volume(&self, volume_id: &str, gb: u32) -> Result<()> {
        let out = self
            .ec2
            .describe_volumes()
            .volume_ids(volume_id)
            .send()
            .await
            .map_err(|e| map_ec2(e, "describe the root volume"))?;
        let size = out
            .volumes()
            .first()
            .and_then(|v| v.size())
            .ok_or_else(|| Error::NotFound(format!("EC2 does not know the volume {volume_id}")))?;
        if i64::from(size) >= i64::from(gb) {
            return Ok(());
        }
        self.ec2
            .modify_volume()
            .volume_id(volume_id)
            .size(gb as i32)
            .send()
            .await
            .map_err(|e| map_ec2(e, &format!("grow the disk to {gb} GB")))?;
        Ok(())
    }
}
