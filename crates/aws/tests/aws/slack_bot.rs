//! The bot-token notifier against a local HTTP server standing in for Slack's Web API, with the
//! token in moto's Parameter Store: a mapped owner gets a direct message, an unmapped one's
//! notice goes to the channel, a 429 is waited out for its Retry-After, and without a token the
//! webhook takes the notice.

use crate::fake_slack::{self, Answer, Got};
use nbfleet_aws::ParameterSecrets;
use nbfleet_aws::slack_bot::SlackBot;
use nbfleet_core::blocks::Facts;
use nbfleet_core::config::{Deliver, Slack};
use nbfleet_core::ports::{Notice, Notifier, Secrets};
use nbfleet_local::moto;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Slack's Web API: answers with `answers` in turn (then `200 {"ok": true}`).
async fn slack_api(answers: Vec<Answer>) -> (String, Arc<Mutex<Vec<Got>>>) {
    fake_slack::serve("/api", answers, (200, "", r#"{"ok":true}"#)).await
}

/// The channel of each message Slack's API received, in order.
fn channels_of(got: &Mutex<Vec<Got>>) -> Vec<Value> {
    got.lock()
        .unwrap()
        .iter()
        .map(|g| g.body["channel"].clone())
        .collect()
}

/// A notifier that keeps what it was given: the webhook the bot falls back to.
#[derive(Default)]
struct Webhook(Mutex<Vec<Notice>>);

#[async_trait::async_trait]
impl Notifier for Webhook {
    async fn notify(&self, notice: &Notice, _: &Facts) -> nbfleet_core::Result<()> {
        self.0.lock().unwrap().push(notice.clone());
        Ok(())
    }
}

const TOKEN: &str = "xoxb-test-token";
const PARAMETER: &str = "/nbfleet/slack/bot-token";

async fn secrets(with_token: bool) -> Arc<dyn Secrets> {
    let clients = moto::clients(&moto::endpoint_from_env(), &moto::fresh_account());
    let secrets: Arc<dyn Secrets> = Arc::new(ParameterSecrets::new(clients.ssm));
    if with_token {
        secrets.put(PARAMETER, TOKEN, "-").await.unwrap();
    }
    secrets
}

fn slack(deliver: Deliver, channel: Option<&str>) -> Slack {
    Slack {
        owners: [("U0ALICE".to_string(), "AIDAALICE".to_string())].into(),
        channel: channel.map(String::from),
        deliver,
        ..Slack::default()
    }
}

/// A bot on `api` (with the token stored, or not), routing as `deliver` and `channel` say,
/// falling back to `webhook`.
async fn bot(
    token: bool,
    deliver: Deliver,
    channel: Option<&str>,
    webhook: &Arc<Webhook>,
    api: &str,
) -> SlackBot {
    SlackBot::new(
        secrets(token).await,
        PARAMETER,
        slack(deliver, channel),
        webhook.clone(),
        api,
    )
}

fn soon() -> Notice {
    Notice::StoppingSoon {
        name: "exp-1".into(),
        stop_at: "2026-12-06T16:40:00Z".parse().unwrap(),
        reason: "idle since 15:30 UTC".into(),
    }
}

fn owned_by(owner: &str) -> Facts {
    Facts {
        owner_id: Some(owner.into()),
        state: Some("Ready".into()),
        instance_type: Some("g5.xlarge".into()),
        cost_usd: Some(2.0),
        run: None,
    }
}

#[tokio::test]
async fn a_mapped_owner_gets_a_direct_message_with_the_buttons() {
    let (api, got) = slack_api(vec![]).await;
    let webhook = Arc::new(Webhook::default());
    let bot = bot(true, Deliver::Owner, Some("C0OPS"), &webhook, &api).await;
    bot.notify(&soon(), &owned_by("AIDAALICE")).await.unwrap();
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/api/chat.postMessage");
    assert_eq!(got[0].authorization, format!("Bearer {TOKEN}"));
    assert_eq!(got[0].body["channel"], "U0ALICE", "to the owner, not the channel");
    assert_eq!(
        got[0].body["blocks"][2]["elements"][0]["action_id"],
        "nbfleet_extend_60"
    );
    assert!(webhook.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_owner_without_a_slack_user_is_told_in_the_channel_and_both_sends_to_each() {
    let (api, got) = slack_api(vec![]).await;
    let webhook = Arc::new(Webhook::default());
    let owner = bot(true, Deliver::Owner, Some("C0OPS"), &webhook, &api).await;
    owner.notify(&soon(), &owned_by("AIDABOB")).await.unwrap();
    let both = bot(true, Deliver::Both, Some("C0OPS"), &webhook, &api).await;
    both.notify(&soon(), &owned_by("AIDAALICE")).await.unwrap();
    let channels = channels_of(&got);
    assert_eq!(channels, [json!("C0OPS"), json!("U0ALICE"), json!("C0OPS")]);
    // No channel and no user: the webhook takes it.
    let nowhere = bot(true, Deliver::Owner, None, &webhook, &api).await;
    nowhere.notify(&soon(), &owned_by("AIDABOB")).await.unwrap();
    assert_eq!(webhook.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after() {
    let limited = (429, "retry-after: 1\r\n", r#"{"ok":false,"error":"ratelimited"}"#);
    let (api, got) = slack_api(vec![limited]).await;
    let bot = bot(true, Deliver::Owner, None, &Arc::default(), &api).await;
    bot.notify(&soon(), &owned_by("AIDAALICE")).await.unwrap();
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "tried again");
    assert!(
        got[1].at - got[0].at >= Duration::from_secs(1),
        "waited for Retry-After"
    );
}

#[tokio::test]
async fn a_refusal_or_a_long_rate_limit_is_an_error_for_the_caller_to_log() {
    let refused = (200, "", r#"{"ok":false,"error":"channel_not_found"}"#);
    let (api, _) = slack_api(vec![refused]).await;
    let bot1 = bot(true, Deliver::Owner, None, &Arc::default(), &api).await;
    let e = bot1.notify(&soon(), &owned_by("AIDAALICE")).await.unwrap_err();
    assert!(e.to_string().contains("channel_not_found"), "{e}");
    let (api, got) = slack_api(vec![(429, "retry-after: 3600\r\n", "{}")]).await;
    let bot2 = bot(true, Deliver::Owner, None, &Arc::default(), &api).await;
    let e = bot2.notify(&soon(), &owned_by("AIDAALICE")).await.unwrap_err();
    assert!(e.to_string().contains("rate-limited"), "{e}");
    assert_eq!(
        got.lock().unwrap().len(),
        1,
        "an hour's Retry-After is not waited for"
    );
}

#[tokio::test]
async fn without_a_bot_token_the_webhook_takes_every_notice() {
    let (api, got) = slack_api(vec![]).await;
    let webhook = Arc::new(Webhook::default());
    let bot = bot(false, Deliver::Owner, Some("C0OPS"), &webhook, &api).await;
    bot.notify(&soon(), &owned_by("AIDAALICE")).await.unwrap();
    assert!(got.lock().unwrap().is_empty());
    assert_eq!(webhook.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_orphan_goes_to_the_operators_channel_and_the_owners_notices_do_not() {
    let (api, got) = slack_api(vec![]).await;
    let webhook = Arc::new(Webhook::default());
    let with_ops = Slack {
        operator_channel: Some("C0PLATFORM".into()),
        ..slack(Deliver::Owner, Some("C0TEAM"))
    };
    let ops = SlackBot::new(secrets(true).await, PARAMETER, with_ops, webhook.clone(), &api);
    let orphan = Notice::Orphan {
        name: "exp-1".into(),
        instance_id: "i-0123".into(),
    };
    ops.notify(&orphan, &Facts::default()).await.unwrap();
    ops.notify(&soon(), &owned_by("AIDAALICE")).await.unwrap();
    let channels = channels_of(&got);
    assert_eq!(channels, [json!("C0PLATFORM"), json!("U0ALICE")]);
    // Without an operator's channel an orphan goes where any notice without an owner goes.
    let plain = bot(true, Deliver::Owner, Some("C0TEAM"), &webhook, &api).await;
    plain.notify(&orphan, &Facts::default()).await.unwrap();
    assert_eq!(got.lock().unwrap().last().unwrap().body["channel"], "C0TEAM");
}
