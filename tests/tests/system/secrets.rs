//! No secret leaks: one full lifecycle through the local stack (a password notebook and a token
//! notebook: launch, read, stop, start, extend, delete, and Slack commands), capturing every log
//! line, every HTTP answer and every SendCommand's parameters (moto's ListCommands). None may
//! hold the password, its hash, the token (beyond the one launch answer), the Slack signing
//! secret, or a `response_url`.

use nbfleet_core::slack::sign;
use nbfleet_local::harness::http_client;
use nbfleet_local::setup;
use nbfleet_testkit::stack::{Options, spawned};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const PASSWORD: &str = "leak-canary correct horse";
const RESPONSE_URL: &str = "https://hooks.slack.com/commands/TLOCAL/424242/leak-canary-url";

#[tokio::test]
async fn a_whole_lifecycle_leaks_no_secret_into_logs_answers_or_commands() {
    let (stack, aws) = spawned(Options::new("secrets-tests")).await;
    let api = stack.api();
    let mut answers: Vec<String> = Vec::new();
    macro_rules! call {
        ($method:expr, $path:expr, $body:expr) => {{
            let body: Option<Value> = $body;
            let (_, answer) = api.call($method, &$path, body.as_ref()).await.unwrap();
            answers.push(answer.to_string());
            answer
        }};
    }

    let pw = call!(
        Method::POST,
        "/notebooks",
        Some(json!({"name": "pw", "password": PASSWORD}))
    );
    assert!(pw.get("token").is_none());
    let tok = call!(Method::POST, "/notebooks", Some(json!({"name": "tok"})));
    let token = tok["token"].as_str().expect("a token, once").to_string();
    answers.pop(); // the one answer allowed to carry the token
    for name in ["pw", "tok"] {
        api.wait_for(name, &["Ready"], Duration::from_secs(120), |_, _| {})
            .await
            .unwrap();
        call!(Method::GET, format!("/notebooks/{name}"), None);
        call!(
            Method::POST,
            format!("/notebooks/{name}/extend"),
            Some(json!({"minutes": 30}))
        );
        call!(Method::POST, format!("/notebooks/{name}/stop"), None);
        api.wait_for(name, &["Stopped"], Duration::from_secs(60), |_, _| {})
            .await
            .unwrap();
        call!(Method::POST, format!("/notebooks/{name}/start"), None);
        api.wait_for(name, &["Ready"], Duration::from_secs(120), |_, _| {})
            .await
            .unwrap();
    }
    call!(Method::GET, "/notebooks", None);

    // Slack: a quick command, and a slow one whose job answers on response_url (unreachable
    // here, so its failure is logged: the URL must not be).
    for text in ["list", "stop pw"] {
        let ts = jiff::Timestamp::now().as_second().to_string();
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("team_id", setup::SLACK_TEAM)
            .append_pair("user_id", "U1")
            .append_pair("text", text)
            .append_pair("response_url", RESPONSE_URL)
            .finish();
        let answer = http_client()
            .post(format!("{}/slack/commands", stack.url))
            .header("x-slack-request-timestamp", &ts)
            .header(
                "x-slack-signature",
                sign(setup::SLACK_SIGNING_SECRET.as_bytes(), &ts, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        answers.push(answer.text().await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The stored hash, straight from Parameter Store, to look for.
    let cfg = nbfleet_core::config::from_vars(setup::vars()).unwrap();
    let hash = aws
        .ssm
        .get_parameter()
        .name(cfg.secret_parameter("pw"))
        .with_decryption(true)
        .send()
        .await
        .unwrap()
        .parameter
        .and_then(|p| p.value)
        .unwrap();
    assert!(hash.starts_with("argon2:"), "{hash}");

    for name in ["pw", "tok"] {
        call!(Method::DELETE, format!("/notebooks/{name}"), None);
        api.wait_for(name, &["Terminated"], Duration::from_secs(60), |_, _| {})
            .await
            .unwrap();
    }

    let commands = aws.ssm.list_commands().send().await.unwrap();
    let sent: Vec<String> = commands
        .commands()
        .iter()
        .map(|c| format!("{:?} {:?}", c.parameters(), c.comment()))
        .collect();
    assert!(
        sent.len() >= 4,
        "expected bootstraps and health checks, saw {}",
        sent.len()
    );
    let log = stack.log();
    assert!(log.lines().count() > 20, "the stack logged almost nothing");

    let places = [
        ("the log", vec![log]),
        ("an HTTP answer", answers),
        ("a SendCommand", sent),
    ];
    let secrets = [
        ("the password", PASSWORD),
        ("its hash", hash.as_str()),
        ("the token", token.as_str()),
        ("the Slack signing secret", setup::SLACK_SIGNING_SECRET),
        ("the response_url", RESPONSE_URL),
        ("the response_url's path", "leak-canary-url"),
    ];
    for (where_, texts) in &places {
        for text in texts {
            for (what, secret) in secrets {
                assert!(!text.contains(secret), "{what} appears in {where_}");
            }
        }
    }
}
