//! Adapters that implement nbfleet's ports on AWS with the official SDK clients.
//!
//! Each adapter owns its service's pagination, retries, item mapping and error codes, and
//! answers with `nbfleet_core::Error`. Decisions stay in `nbfleet-core`.

pub mod clock;
pub mod dynamo_store;
pub mod errors;
pub mod moto;
pub mod parameter_secrets;

pub use clock::SystemClock;
pub use dynamo_store::DynamoStore;
pub use parameter_secrets::ParameterSecrets;

/// The SDK clients a handler needs, built once at start from one `SdkConfig`.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl Clients {
    pub fn new(conf: &aws_config::SdkConfig) -> Self {
        Clients {
            ec2: aws_sdk_ec2::Client::new(conf),
            ssm: aws_sdk_ssm::Client::new(conf),
            dynamodb: aws_sdk_dynamodb::Client::new(conf),
        }
    }

    /// Clients from the standard AWS chain (environment, profile, Lambda role);
    /// `AWS_ENDPOINT_URL` points them at moto locally.
    pub async fn from_env() -> Self {
        Self::new(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
    }
}
