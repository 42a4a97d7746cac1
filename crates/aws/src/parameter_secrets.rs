//! The `Secrets` port on SSM Parameter Store: one SecureString per notebook, tagged
//! `nbfleet:notebook=<name>` so the instance role can read its own secret only
//! (attribute-based access in `template.yaml`).

use crate::errors;
use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{ParameterType, ResourceTypeForTagging, Tag};
use nbfleet_core::Result;
use nbfleet_core::ports::Secrets;

/// The tag that ties an AWS resource to its notebook.
pub const NOTEBOOK_TAG: &str = "nbfleet:notebook";

#[derive(Debug, Clone)]
pub struct ParameterSecrets {
    client: Client,
    /// The KMS key notebook secrets are encrypted with (`NBFLEET_SECRETS_KEY`, the stack's
    /// own key, which only a notebook's instance may decrypt, through SSM); none: `aws/ssm`.
    key: Option<String>,
}

impl ParameterSecrets {
    pub fn new(client: Client) -> Self {
        ParameterSecrets { client, key: None }
    }

    /// Notebook secrets encrypted with `key` (a key id, ARN or alias).
    pub fn with_key(mut self, key: Option<String>) -> Self {
        self.key = key;
        self
    }
}

fn notebook_tag(notebook: &str) -> Tag {
    tag(NOTEBOOK_TAG, notebook)
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .expect("key and value are set")
}

/// The tag naming the instance allowed to read a secret (see the instance role in template.yaml).
pub const INSTANCE_TAG: &str = "nbfleet:instance";

#[async_trait]
impl Secrets for ParameterSecrets {
    async fn put(&self, name: &str, value: &str, notebook: &str) -> Result<()> {
        // PutParameter refuses tags together with Overwrite: create with the tag, and on an
        // existing parameter overwrite it and tag it separately.
        let created = self
            .client
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::SecureString)
            .set_key_id(self.key.clone())
            .tags(notebook_tag(notebook))
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if errors::code(&e) == Some("ParameterAlreadyExists") => {
                self.client
                    .put_parameter()
                    .name(name)
                    .value(value)
                    .r#type(ParameterType::SecureString)
                    .set_key_id(self.key.clone())
                    .overwrite(true)
                    .send()
                    .await
                    .map_err(|e| errors::map(e, "store the notebook's secret"))?;
                self.client
                    .add_tags_to_resource()
                    .resource_type(ResourceTypeForTagging::Parameter)
                    .resource_id(name)
                    .tags(notebook_tag(notebook))
                    .send()
                    .await
                    .map_err(|e| errors::map(e, "tag the notebook's secret"))?;
                Ok(())
            }
            Err(e) => Err(errors::map(e, "store the notebook's secret")),
        }
    }

    async fn grant_to_instance(&self, name: &str, instance_arn: &str) -> Result<()> {
        self.client
            .add_tags_to_resource()
            .resource_type(ResourceTypeForTagging::Parameter)
            .resource_id(name)
            .tags(tag(INSTANCE_TAG, instance_arn))
            .send()
            .await
            .map_err(|e| errors::map(e, "grant the secret to its instance"))?;
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<Option<String>> {
        match self
            .client
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
        {
            Ok(out) => Ok(out.parameter.and_then(|p| p.value)),
            Err(e) if errors::code(&e) == Some("ParameterNotFound") => Ok(None),
            Err(e) => Err(errors::map(e, "read the notebook's secret")),
        }
    }

    async fn delete(&self, name: &str) -> Result<()> {
        match self.client.delete_parameter().name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) if errors::code(&e) == Some("ParameterNotFound") => Ok(()),
            Err(e) => Err(errors::map(e, "delete the notebook's secret")),
        }
    }
}

/// A secret read from `secrets` at its first use and kept for the process (a Slack webhook URL
/// or bot token: one read per container, none at a cold start). `None`: the parameter does not
/// exist.
pub struct KeptSecret {
    secrets: std::sync::Arc<dyn Secrets>,
    parameter: String,
    value: tokio::sync::OnceCell<Option<String>>,
}

impl KeptSecret {
    pub fn new(secrets: std::sync::Arc<dyn Secrets>, parameter: impl Into<String>) -> Self {
        KeptSecret {
            secrets,
            parameter: parameter.into(),
            value: tokio::sync::OnceCell::new(),
        }
    }

    pub async fn get(&self) -> Result<Option<&str>> {
        let value = self
            .value
            .get_or_try_init(|| self.secrets.get(&self.parameter))
            .await?;
        Ok(value.as_deref())
    }
}
