//! The Parameter Store `Secrets` adapter against moto.

use nbfleet_aws::ParameterSecrets;
use nbfleet_core::ports::Secrets;
use nbfleet_local::moto;

fn secrets() -> (ParameterSecrets, aws_sdk_ssm::Client) {
    let clients = moto::clients(&moto::endpoint_from_env(), &moto::fresh_account());
    (ParameterSecrets::new(clients.ssm.clone()), clients.ssm)
}

#[tokio::test]
async fn a_secret_is_a_tagged_secure_string_and_can_be_replaced() {
    let (secrets, ssm) = secrets();
    let name = "/nbfleet/notebooks/nb-1/secret";
    secrets.put(name, "first", "nb-1").await.unwrap();
    secrets.put(name, "second", "nb-1").await.unwrap();
    assert_eq!(secrets.get(name).await.unwrap().as_deref(), Some("second"));

    let p = ssm
        .get_parameter()
        .name(name)
        .send()
        .await
        .unwrap()
        .parameter
        .unwrap();
    assert_eq!(p.r#type, Some(aws_sdk_ssm::types::ParameterType::SecureString));
    let tags = ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(name)
        .send()
        .await
        .unwrap()
        .tag_list
        .unwrap_or_default();
    assert!(
        tags.iter()
            .any(|t| t.key == "nbfleet:notebook" && t.value == "nb-1"),
        "{tags:?}"
    );
}

#[tokio::test]
async fn a_missing_secret_reads_as_none_and_deletes_quietly() {
    let (secrets, _) = secrets();
    assert_eq!(secrets.get("/nbfleet/notebooks/none/secret").await.unwrap(), None);
    secrets.delete("/nbfleet/notebooks/none/secret").await.unwrap();
    secrets
        .put("/nbfleet/notebooks/x/secret", "v", "x")
        .await
        .unwrap();
    secrets.delete("/nbfleet/notebooks/x/secret").await.unwrap();
    assert_eq!(secrets.get("/nbfleet/notebooks/x/secret").await.unwrap(), None);
}

#[tokio::test]
async fn a_secret_is_encrypted_with_the_stacks_key_when_one_is_configured() {
    let (plain, ssm) = secrets();
    let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let keyed = plain.clone().with_key(Some(key.into()));
    let key_of = |name: &'static str| {
        let ssm = ssm.clone();
        async move {
            let found = ssm
                .describe_parameters()
                .parameter_filters(
                    aws_sdk_ssm::types::ParameterStringFilter::builder()
                        .key("Name")
                        .values(name)
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
            found.parameters()[0].key_id.clone()
        }
    };
    keyed
        .put("/nbfleet/notebooks/kept/secret", "first", "kept")
        .await
        .unwrap();
    assert_eq!(
        key_of("/nbfleet/notebooks/kept/secret").await.as_deref(),
        Some(key)
    );
    // Replaced (the overwrite path), it stays under the key.
    keyed
        .put("/nbfleet/notebooks/kept/secret", "second", "kept")
        .await
        .unwrap();
    assert_eq!(
        key_of("/nbfleet/notebooks/kept/secret").await.as_deref(),
        Some(key)
    );
    // Without a key: the account's aws/ssm, as before.
    plain
        .put("/nbfleet/notebooks/plain/secret", "x", "plain")
        .await
        .unwrap();
    assert_eq!(
        key_of("/nbfleet/notebooks/plain/secret").await.as_deref(),
        Some("alias/aws/ssm")
    );
}
