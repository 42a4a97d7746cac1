//! Adapters that implement nbfleet's ports on AWS with the official SDK clients.
//!
//! Each adapter owns its service's pagination, retries, item mapping and error codes, and
//! answers with `nbfleet_core::Error`. Decisions stay in `nbfleet-core`.

pub mod clock;
pub mod dynamo_store;
pub mod ec2_compute;
pub mod errors;
pub mod lambda_jobs;
pub mod metrics;
pub mod parameter_secrets;
pub mod slack_bot;
pub mod slack_webhook;
pub mod ssm_commands;
pub mod tls;

pub use clock::SystemClock;
pub use dynamo_store::DynamoStore;
pub use ec2_compute::Ec2Compute;
pub use parameter_secrets::ParameterSecrets;
pub use ssm_commands::SsmCommands;

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
            ec2: ec2_client(aws_sdk_ec2::config::Builder::from(conf)),
            ssm: aws_sdk_ssm::Client::new(conf),
            dynamodb: aws_sdk_dynamodb::Client::new(conf),
        }
    }

    /// Clients from [`sdk_config`].
    pub async fn from_env() -> Self {
        Self::new(&sdk_config().await)
    }
}

impl Clients {
    /// The ports on these clients, with the real clock.
    pub fn deps(&self, cfg: nbfleet_core::Config) -> nbfleet_core::ports::Deps {
        use nbfleet_core::ports::{LogNotifier, Notifier, Secrets};
        use std::sync::Arc;
        let secrets: Arc<dyn Secrets> =
            Arc::new(ParameterSecrets::new(self.ssm.clone()).with_key(cfg.secrets_key.clone()));
        let webhook: Arc<dyn Notifier> = match &cfg.slack.webhook_parameter {
            Some(p) => Arc::new(slack_webhook::SlackWebhook::new(secrets.clone(), p)),
            None => Arc::new(LogNotifier),
        };
        let notifier: Arc<dyn Notifier> = match &cfg.slack.bot_token_parameter {
            Some(p) => Arc::new(slack_bot::SlackBot::new(
                secrets.clone(),
                p,
                cfg.slack.clone(),
                webhook,
                slack_bot::SLACK_API,
            )),
            None => webhook,
        };
        nbfleet_core::ports::Deps {
            store: Arc::new(DynamoStore::new(self.dynamodb.clone(), cfg.table.clone())),
            secrets,
            compute: Arc::new(Ec2Compute::new(self.ec2.clone(), self.ssm.clone(), &cfg.table)),
            commands: Arc::new(SsmCommands::new(self.ssm.clone())),
            notifier,
            clock: Arc::new(SystemClock),
            cfg,
        }
    }
}

/// The SDK's configuration from the standard chain (environment, profile, Lambda role);
/// `AWS_ENDPOINT_URL` points its clients at moto locally.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The EC2 client with nbfleet's retry policy.
pub fn ec2_client(builder: aws_sdk_ec2::config::Builder) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::from_conf(ec2_retry_policy(builder).build())
}

/// nbfleet's EC2 retry policy on top of the SDK's standard one: capacity errors are not
/// retried (see [`ec2_compute::CapacityIsNotRetried`]); throttling is, within the bound.
pub fn ec2_retry_policy(builder: aws_sdk_ec2::config::Builder) -> aws_sdk_ec2::config::Builder {
    builder.retry_classifier(ec2_compute::CapacityIsNotRetried)
}

/// The start of every Lambda `main`: JSON logs, the configuration from the environment (a bad
/// variable fails the cold start with a sentence that names it), and the ports on real clients.
pub async fn lambda_deps() -> Result<nbfleet_core::ports::Deps, nbfleet_core::config::ConfigError> {
    Ok(lambda_setup().await?.1)
}

/// [`lambda_deps`], with the SDK configuration too, for a function that needs a client beyond
/// the ports (only the ones a function uses are built: each costs about 0.1 ms of cold start).
///
/// Logs how long each step of the start took ("cold start"): `make bench` reports it.
pub async fn lambda_setup()
-> Result<(aws_config::SdkConfig, nbfleet_core::ports::Deps), nbfleet_core::config::ConfigError> {
    let began = std::time::Instant::now();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter("info")
        .without_time()
        .init();
    let logging = began.elapsed();
    let cfg = nbfleet_core::config::from_vars(std::env::vars())?;
    let config = began.elapsed();
    let conf = sdk_config().await;
    let sdk = began.elapsed();
    let clients = Clients::new(&conf);
    let built = began.elapsed();
    let deps = clients.deps(cfg);
    let ports = began.elapsed();
    tracing::info!(
        logging_us = logging.as_micros() as u64,
        config_us = (config - logging).as_micros() as u64,
        sdk_config_us = (sdk - config).as_micros() as u64,
        clients_us = (built - sdk).as_micros() as u64,
        ports_us = (ports - built).as_micros() as u64,
        "cold start"
    );
    Ok((conf, deps))
}
