//! Pointing the real SDK clients at a moto server, for the local stack and tests. It lives
//! here, not in `nbfleet-aws`, so that no Lambda binary carries it.
//!
//! Nothing here changes how the adapters behave: the clients are the production clients with
//! an endpoint, dummy static credentials, and retries off (moto answers unimplemented calls with
//! HTTP 500, and retrying those only makes tests slow). Each test may use its own moto account
//! through the `x-moto-account-id` header, so tests share one server and run in parallel.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_dynamodb::config::{ConfigBag, Credentials, Intercept, RuntimeComponents, SharedInterceptor};
use aws_sdk_dynamodb::error::BoxError;
use nbfleet_aws::Clients;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// moto's default account.
pub const DEFAULT_ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// The moto endpoint tests use: `MOTO_ENDPOINT`, else `http://127.0.0.1:$NBFLEET_MOTO_PORT`
/// (default port 5000).
pub fn endpoint_from_env() -> String {
    std::env::var("MOTO_ENDPOINT").unwrap_or_else(|_| {
        let port = std::env::var("NBFLEET_MOTO_PORT").unwrap_or_else(|_| "5000".into());
        format!("http://127.0.0.1:{port}")
    })
}

/// SDK configuration for a moto server at `endpoint`, with retries off.
pub fn sdk_config(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            Credentials::new("test", "test", None, None, "moto"),
        ))
        .retry_config(RetryConfig::disabled())
        // moto on a busy 2-core machine can pause a response for over a second: that is a slow
        // test double, not the stalled network the SDK's protection is for.
        .stalled_stream_protection(aws_sdk_dynamodb::config::StalledStreamProtectionConfig::disabled())
        .build()
}

/// Clients for one moto account: every request carries `x-moto-account-id: <account>`.
pub fn clients(endpoint: &str, account: &str) -> Clients {
    clients_logged(endpoint, account, CallLog::default())
}

/// The AWS operations some clients sent, named as IAM names them (`ec2:RunInstances`), with how
/// many times each. Tests use it to prove that bad input makes no call, and to compare what
/// each function calls with the IAM actions the template grants it; the sweep benchmark counts
/// its calls per API with it.
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<BTreeMap<String, usize>>>);

impl CallLog {
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }

    pub fn total(&self) -> usize {
        self.counts().values().sum()
    }

    pub fn clear(&self) {
        if let Ok(mut m) = self.0.lock() {
            m.clear();
        }
    }

    pub fn record(&self, action: impl Into<String>) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(action.into()).or_default() += 1;
        }
    }
}

/// [`clients`], recording every operation they send in `log`.
pub fn clients_logged(endpoint: &str, account: &str, log: CallLog) -> Clients {
    let conf = sdk_config(endpoint);
    let header = SharedInterceptor::new(AccountHeader {
        account: account.to_string(),
        log,
    });
    Clients {
        ec2: nbfleet_aws::ec2_client(aws_sdk_ec2::config::Builder::from(&conf).interceptor(header.clone())),
        ssm: aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::from(&conf)
                .interceptor(header.clone())
                .build(),
        ),
        dynamodb: aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&conf)
                .interceptor(header)
                .build(),
        ),
    }
}

/// The interceptor [`clients_logged`] puts on its clients (the moto account header and the call
/// log), for clients built elsewhere: aws-smithy-mocks clients in tests.
pub fn call_logger(account: &str, log: CallLog) -> SharedInterceptor {
    SharedInterceptor::new(AccountHeader {
        account: account.to_string(),
        log,
    })
}

/// A fresh random moto account id, so one test's resources never meet another's.
pub fn fresh_account() -> String {
    use std::sync::atomic::AtomicU32;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mix = (u64::from(std::process::id()) * 1_000_003 + u64::from(nanos) + u64::from(n) * 7919)
        % 900_000_000_000;
    format!("{}", 100_000_000_000 + mix)
}

#[derive(Debug)]
struct AccountHeader {
    account: String,
    log: CallLog,
}

impl Intercept for AccountHeader {
    fn name(&self) -> &'static str {
        "MotoAccountHeader"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(op) = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>() {
            self.log
                .record(format!("{}:{}", op.service().to_ascii_lowercase(), op.name()));
        }
        context
            .request_mut()
            .headers_mut()
            .insert("x-moto-account-id", self.account.clone());
        Ok(())
    }
}

/// An EC2 error response as EC2 writes it, for mocked calls where moto never fails (capacity,
/// quota, throttling).
pub fn ec2_error(code: &str, message: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>4f2a9c7e-1b3d-4e5f-8a6b-7c8d9e0f1a2b</RequestID></Response>"#
    )
}
