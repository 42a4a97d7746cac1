//! The Slack webhook notifier against a local HTTP server standing in for hooks.slack.com, with
//! its URL in moto's Parameter Store.

use nbfleet_aws::ParameterSecrets;
use nbfleet_aws::slack_webhook::SlackWebhook;
use nbfleet_core::blocks::Facts;
use nbfleet_core::ports::{Notice, Notifier, Secrets};
use nbfleet_local::moto;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// hooks.slack.com: answers every request with `status`, keeping the JSON bodies it was sent.
async fn webhook(status: u16) -> (String, Arc<Mutex<Vec<crate::fake_slack::Got>>>) {
    crate::fake_slack::serve("/services/T/B/x", vec![], (status, "", "ok")).await
}

async fn secrets() -> Arc<dyn Secrets> {
    let clients = moto::clients(&moto::endpoint_from_env(), &moto::fresh_account());
    Arc::new(ParameterSecrets::new(clients.ssm))
}

fn stopped() -> Notice {
    Notice::Stopped {
        name: "exp-1".into(),
        reason: "stopped: idle for 60 minutes".into(),
    }
}

#[tokio::test]
async fn a_notice_is_posted_to_the_webhook_in_the_parameter() {
    let (url, got) = webhook(200).await;
    let secrets = secrets().await;
    secrets
        .put("/nbfleet/slack/webhook-url", &url, "-")
        .await
        .unwrap();
    let notifier = SlackWebhook::new(secrets, "/nbfleet/slack/webhook-url");
    notifier.notify(&stopped(), &Facts::default()).await.unwrap();
    let warn = Notice::StoppingSoon {
        name: "exp-1".into(),
        stop_at: "2026-11-26T15:00:00Z".parse().unwrap(),
        reason: "idle since 13:50 UTC".into(),
    };
    let facts = Facts {
        owner_id: None,
        state: Some("Ready".into()),
        instance_type: Some("g5.xlarge".into()),
        cost_usd: Some(1.5),
        run: None,
    };
    notifier.notify(&warn, &facts).await.unwrap();
    let got: Vec<Value> = got.lock().unwrap().iter().map(|g| g.body.clone()).collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["text"], "*exp-1* was stopped: idle for 60 minutes");
    let soon = got[1]["text"].as_str().unwrap();
    assert!(
        soon.contains("stops at 15:00 UTC") && soon.contains("/notebook extend exp-1 60"),
        "{soon}"
    );
    // Block Kit, with what the record says and the buttons to keep it running.
    for message in &got {
        nbfleet_core::blocks::check(message).unwrap();
    }
    assert_eq!(
        got[0]["blocks"][1]["type"], "actions",
        "a stopped notice offers Start"
    );
    assert_eq!(
        got[1]["blocks"][1]["elements"][0]["text"],
        "Ready · g5.xlarge · $1.50 so far"
    );
    assert_eq!(
        got[1]["blocks"][2]["elements"][0]["action_id"],
        "nbfleet_extend_60"
    );
}

#[tokio::test]
async fn a_failing_webhook_is_an_error_for_the_caller_to_log() {
    let (url, _) = webhook(500).await;
    let secrets = secrets().await;
    secrets
        .put("/nbfleet/slack/webhook-url", &url, "-")
        .await
        .unwrap();
    let err = SlackWebhook::new(secrets, "/nbfleet/slack/webhook-url")
        .notify(&stopped(), &Facts::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
}

/// What a test's tracing subscriber wrote.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test]
async fn without_the_parameter_notices_go_to_the_log() {
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let notifier = SlackWebhook::new(secrets().await, "/nbfleet/slack/webhook-url");
    notifier.notify(&stopped(), &Facts::default()).await.unwrap();
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("no Slack webhook configured"), "{text}");
    let notice = stopped();
    assert!(
        text.contains(notice.name()) && text.contains(&notice.text()),
        "{text}"
    );
}
