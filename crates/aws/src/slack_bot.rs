//! The Notifier port through a Slack app's bot token: a notice goes to its owner as a direct
//! message (`chat.postMessage` to their Slack user, mapped by `NBFLEET_SLACK_OWNERS`), to the
//! channel, or both (`NBFLEET_SLACK_DELIVER`); an operator's notice (an orphaned instance) to the
//! operator's channel (`NBFLEET_SLACK_OPERATOR_CHANNEL`). The token is a secret in Parameter
//! Store (`NBFLEET_SLACK_BOT_TOKEN_PARAMETER`), read once per process; without it, or for a
//! notice that has nowhere to go, the incoming webhook takes the notice as before.
//!
//! Slack's Web API answers `429` with `Retry-After` when it is rate-limited: the call waits
//! that long (at most [`MAX_WAIT`]) and tries again, [`TRIES`] times in all. A notice that
//! still cannot go out is an error its caller logs: it never blocks a transition.

use crate::parameter_secrets::KeptSecret;
use nbfleet_core::blocks::Facts;
use nbfleet_core::config::{Deliver, Slack};
use nbfleet_core::ports::{Notice, Notifier, Secrets};
use nbfleet_core::{Error, Result};
use std::sync::Arc;
use std::time::Duration;

/// Slack's Web API.
pub const SLACK_API: &str = "https://slack.com/api";
/// How many times one message is tried.
pub const TRIES: usize = 3;
/// The longest `Retry-After` waited for: a Lambda's notice must not outlive its invocation.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

pub struct SlackBot {
    token: KeptSecret,
    slack: Slack,
    api: String,
    /// Takes what the bot does not: no token, or nowhere to send a notice.
    webhook: Arc<dyn Notifier>,
    http: std::sync::OnceLock<reqwest::Client>,
}

impl SlackBot {
    /// A bot with the token in `token_parameter`, routing as `slack` says, falling back to
    /// `webhook`; `api` is Slack's Web API ([`SLACK_API`]; a local server in tests).
    pub fn new(
        secrets: Arc<dyn Secrets>,
        token_parameter: impl Into<String>,
        slack: Slack,
        webhook: Arc<dyn Notifier>,
        api: impl Into<String>,
    ) -> Self {
        SlackBot {
            token: KeptSecret::new(secrets, token_parameter),
            slack,
            api: api.into(),
            webhook,
            http: std::sync::OnceLock::new(),
        }
    }

    /// Where `notice` goes: the operator's channel for an operator's notice (an orphaned
    /// instance) where there is one; otherwise the owner's user, the channel, or both.
    fn targets(&self, notice: &Notice, facts: &Facts) -> Vec<String> {
        if let (Notice::Orphan { .. }, Some(ops)) = (notice, &self.slack.operator_channel) {
            return vec![ops.clone()];
        }
        let user = facts
            .owner_id
            .as_deref()
            .and_then(|o| self.slack.user_of(o))
            .map(str::to_string);
        let channel = self.slack.channel.clone();
        match self.slack.deliver {
            Deliver::Owner => user.or(channel).into_iter().collect(),
            Deliver::Channel => channel.into_iter().collect(),
            Deliver::Both => user.into_iter().chain(channel).collect(),
        }
    }

    /// `chat.postMessage` of `message` to `channel`, retried on 429 after its `Retry-After`.
    async fn post(&self, token: &str, channel: &str, message: &serde_json::Value) -> Result<()> {
        let http = self.http.get_or_init(crate::slack_webhook::web_client);
        let mut body = message.clone();
        body["channel"] = serde_json::json!(channel);
        let url = format!("{}/chat.postMessage", self.api);
        for attempt in 1..=TRIES {
            let answer = http
                .post(&url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .map_err(|e| Error::Unavailable(format!("Slack chat.postMessage: {}", e.without_url())))?;
            if answer.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
                let wait = answer
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                    .map_or(Duration::from_secs(1), Duration::from_secs);
                if attempt == TRIES || wait > MAX_WAIT {
                    return Err(Error::Throttled(format!(
                        "Slack chat.postMessage is rate-limited (Retry-After {} s)",
                        wait.as_secs()
                    )));
                }
                tracing::info!(wait_s = wait.as_secs(), "Slack rate-limited the notice; waiting");
                tokio::time::sleep(wait).await;
                continue;
            }
            if !answer.status().is_success() {
                return Err(Error::Unavailable(format!(
                    "Slack chat.postMessage answered {}",
                    answer.status()
                )));
            }
            // The Web API says 200 to most failures: `ok` tells.
            let said: serde_json::Value = answer
                .json()
                .await
                .map_err(|e| Error::Unavailable(format!("Slack chat.postMessage: {}", e.without_url())))?;
            return match said["ok"].as_bool() {
                Some(true) => Ok(()),
                _ => Err(Error::Unavailable(format!(
                    "Slack chat.postMessage refused it: {}",
                    said["error"].as_str().unwrap_or("no reason given")
                ))),
            };
        }
        unreachable!("the last try returns")
    }
}

#[async_trait::async_trait]
impl Notifier for SlackBot {
    async fn notify(&self, notice: &Notice, facts: &Facts) -> Result<()> {
        let token = self.token.get().await?;
        let targets = self.targets(notice, facts);
        let Some(token) = token.filter(|_| !targets.is_empty()) else {
            return self.webhook.notify(notice, facts).await;
        };
        let message = nbfleet_core::blocks::notice(notice, facts);
        let mut failed = None;
        for target in &targets {
            if let Err(e) = self.post(token, target, &message).await {
                failed = Some(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }
}
