//! Sets up a moto account the way `template.yaml` sets up a real one: the notebook table, the
//! instance profile notebooks launch with, and the DLAMI parameter (moto reserves
//! `/aws/service/...`, so local mode uses its own path to the seeded Deep Learning AMI).

pub use crate::deployment::*;
use crate::moto;
use nbfleet_aws::{Clients, dynamo_store};
use nbfleet_core::{Error, Result};

/// The configuration variables of a local deployment in moto.
pub fn vars() -> Vec<(String, String)> {
    [
        ("NBFLEET_TABLE", TABLE),
        ("NBFLEET_AMI_PARAMETER", AMI_PARAMETER),
        ("NBFLEET_INSTANCE_PROFILE", INSTANCE_PROFILE),
        (
            "NBFLEET_SLACK_SIGNING_SECRET_PARAMETER",
            SLACK_SIGNING_SECRET_PARAMETER,
        ),
        ("NBFLEET_SLACK_TEAMS", SLACK_TEAM),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Creates what the template would in `account` of the moto server at `endpoint`.
pub async fn provision(endpoint: &str, account: &str) -> Result<Clients> {
    let clients = moto::clients(endpoint, account);
    // Safe to run again on the same account: the stack may restart against a running moto.
    if clients
        .dynamodb
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .is_err()
    {
        dynamo_store::create_table(&clients.dynamodb, TABLE).await?;
    }
    use aws_sdk_ssm::types::ParameterType;
    put_parameter(&clients, AMI_PARAMETER, SEEDED_AMI, ParameterType::String).await?;
    put_parameter(
        &clients,
        SLACK_SIGNING_SECRET_PARAMETER,
        SLACK_SIGNING_SECRET,
        ParameterType::SecureString,
    )
    .await?;
    create_instance_profile(endpoint, account, INSTANCE_PROFILE).await?;
    Ok(clients)
}

/// Writes (or overwrites) one Parameter Store parameter.
async fn put_parameter(
    clients: &Clients,
    name: &str,
    value: &str,
    kind: aws_sdk_ssm::types::ParameterType,
) -> Result<()> {
    clients
        .ssm
        .put_parameter()
        .name(name)
        .value(value)
        .overwrite(true)
        .r#type(kind)
        .send()
        .await
        .map_err(|e| Error::internal(format!("put the parameter {name}: {e:?}")))?;
    Ok(())
}

/// moto's IAM through its query API: one call, not worth compiling the IAM SDK for.
async fn create_instance_profile(endpoint: &str, account: &str, name: &str) -> Result<()> {
    let resp = crate::harness::http_client()
        .post(endpoint)
        .header("x-moto-account-id", account)
        // moto routes by the credential scope; it does not check the signature.
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .form(&[("Action", "CreateInstanceProfile"), ("Version", "2010-05-08"), ("InstanceProfileName", name)])
        .send()
        .await
        .map_err(|e| Error::internal(format!("moto IAM: {e}")))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if status.is_success() || text.contains("EntityAlreadyExists") {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "moto IAM CreateInstanceProfile: {status} {text}"
        )))
    }
}

/// Runs `count` instances of the seeded AMI in moto, tagged `nbfleet:notebook=<notebook>` (and
/// as the local stack's, `nbfleet:stack`) when given (tests use it for instances made outside
/// nbfleet). Returns their ids.
pub async fn run_seeded(
    ec2: &aws_sdk_ec2::Client,
    count: i32,
    notebook: Option<&str>,
) -> Result<Vec<String>> {
    use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
    let tags = notebook.map(|n| {
        TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .tags(
                Tag::builder()
                    .key(nbfleet_aws::parameter_secrets::NOTEBOOK_TAG)
                    .value(n)
                    .build(),
            )
            .tags(
                Tag::builder()
                    .key(nbfleet_aws::ec2_compute::STACK_TAG)
                    .value(TABLE)
                    .build(),
            )
            .build()
    });
    let out = ec2
        .run_instances()
        .image_id(SEEDED_AMI)
        .instance_type(InstanceType::G5Xlarge)
        .min_count(count)
        .max_count(count)
        .set_tag_specifications(tags.map(|t| vec![t]))
        .send()
        .await
        .map_err(|e| Error::internal(format!("moto RunInstances: {e:?}")))?;
    Ok(out
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(String::from))
        .collect())
}
