//! The Notifier port on a Slack incoming webhook: Block Kit messages (`nbfleet_core::blocks`),
//! buttons included. The webhook URL is a secret: it lives in
//! Parameter Store (`NBFLEET_SLACK_WEBHOOK_PARAMETER`) and is read once per process, when the
//! first notice goes out. Without that parameter, notices go to the log.
//!
//! A webhook that fails is an error to the caller, who logs it (`ports::tell`): a notification
//! never blocks a transition.

use crate::parameter_secrets::KeptSecret;
use nbfleet_core::blocks::Facts;
use nbfleet_core::ports::{Notice, Notifier, Secrets};
use nbfleet_core::{Error, Result};
use std::sync::Arc;
use std::time::Duration;

pub struct SlackWebhook {
    url: KeptSecret,
    /// Built at the first notification (it reads the TLS roots: 0.6 ms that no cold start should pay).
    http: std::sync::OnceLock<reqwest::Client>,
}

impl SlackWebhook {
    pub fn new(secrets: Arc<dyn Secrets>, parameter: impl Into<String>) -> Self {
        SlackWebhook {
            url: KeptSecret::new(secrets, parameter),
            http: std::sync::OnceLock::new(),
        }
    }
}

/// An HTTPS client for Slack: the system's certificate authorities, a 3-second timeout.
pub fn web_client() -> reqwest::Client {
    nbfleet_jupyter::web::web_client(Duration::from_secs(3))
}

#[async_trait::async_trait]
impl Notifier for SlackWebhook {
    async fn notify(&self, notice: &Notice, facts: &Facts) -> Result<()> {
        let Some(url) = self.url.get().await? else {
            tracing::info!(notebook = notice.name(), message = %notice.text(), "notification (no Slack webhook configured)");
            return Ok(());
        };
        let message = nbfleet_core::blocks::notice(notice, facts);
        post(self.http.get_or_init(web_client), url, &message, "Slack webhook").await
    }
}

/// The Responder port: posts a slash command's late answer, or a click's outcome, to Slack's
/// `response_url`.
#[derive(Default)]
pub struct ResponseUrl {
    /// Built at the first answer (it reads the TLS roots: 0.6 ms that no cold start should pay).
    http: std::sync::OnceLock<reqwest::Client>,
}

#[async_trait::async_trait]
impl nbfleet_core::ports::Responder for ResponseUrl {
    async fn respond(&self, response_url: &str, message: &serde_json::Value) -> Result<()> {
        post(
            self.http.get_or_init(web_client),
            response_url,
            message,
            "Slack response_url",
        )
        .await
    }
}

/// POSTs `message` as JSON; anything but a 2xx is an error naming `what` (never the URL, which
/// is a secret).
async fn post(http: &reqwest::Client, url: &str, message: &serde_json::Value, what: &str) -> Result<()> {
    let answer = http
        .post(url)
        .json(message)
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("{what}: {}", e.without_url())))?;
    if !answer.status().is_success() {
        return Err(Error::Unavailable(format!("{what} answered {}", answer.status())));
    }
    Ok(())
}
