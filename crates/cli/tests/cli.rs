//! The `nbfleet` command against the local stack (`--local`): every command, its `--json`
//! parsed, its exit codes, the certificate check of `open` against a real Jupyter holding
//! another certificate than the recorded one, and `up`'s progress under a pseudo-terminal.

use nbfleet_aws::DynamoStore;
use nbfleet_core::ports::Store;
use nbfleet_local::harness::LocalStack;
use nbfleet_testkit::stack::{Options, spawned};

/// This package's `nbfleet`, built by the same cargo invocation as this test.
const NBFLEET: &str = env!("CARGO_BIN_EXE_nbfleet");
use nbfleet_local::setup;
use serde_json::Value;
use std::process::Output;

struct Cli {
    _stack: LocalStack,
    port: String,
    store: DynamoStore,
}

async fn cli() -> Cli {
    let (stack, aws) = spawned(Options::new("cli-tests")).await;
    let port = stack.url.rsplit(':').next().unwrap().to_string();
    let store = DynamoStore::new(aws.dynamodb, setup::TABLE);
    Cli {
        _stack: stack,
        port,
        store,
    }
}

impl Cli {
    fn run_as(&self, user: &str, args: &[&str]) -> Output {
        std::process::Command::new(NBFLEET)
            .arg("--local")
            .args(args)
            .env("NBFLEET_LOCAL_PORT", &self.port)
            .env("USER", user)
            .output()
            .expect("run nbfleet")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_as("alice", args)
    }

    /// Runs with `--json`, insists on `code`, and parses stdout.
    fn json(&self, code: i32, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert_eq!(out.status.code(), Some(code), "nbfleet {args:?}\n{}", text(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("nbfleet {args:?}: {e}\n{}", text(&out)))
    }
}

fn text(out: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn every_command_works_against_the_local_stack() {
    let c = cli().await;
    let up = c.json(0, &["up", "cli-a", "--idle", "30m"]);
    assert_eq!(up["notebook"]["state"], "Ready", "{up}");
    assert_eq!(up["notebook"]["idle"]["idle_timeout_minutes"], 30);
    assert!(up["token"].as_str().is_some_and(|t| t.len() >= 32), "{up}");

    // In a terminal, the token comes first, as soon as the launch is accepted, before the wait.
    let human = c.run(&["up", "cli-t"]);
    let said = String::from_utf8_lossy(&human.stdout).to_string();
    let token_at = said
        .find("its Jupyter token (shown once; keep it): ")
        .expect(&said);
    let ready_at = said.find("cli-t is Ready").expect(&said);
    assert!(token_at < ready_at, "{said}");
    assert_eq!(said.matches("shown once").count(), 1, "{said}");
    c.json(0, &["rm", "cli-t", "--wait"]);

    let ls = c.json(0, &["ls"]);
    assert_eq!(ls["notebooks"][0]["notebook"]["name"], "cli-a");
    let plain = String::from_utf8(c.run(&["ls"]).stdout).unwrap();
    assert!(
        plain.starts_with("NAME") && plain.contains("cli-a") && plain.contains("Ready"),
        "{plain}"
    );

    let status = c.json(0, &["status", "cli-a"]);
    assert_eq!(status["notebook"]["state"], "Ready");
    let extended = c.json(0, &["extend", "cli-a", "45"]);
    assert!(extended["notebook"]["snoozed_until"].is_string(), "{extended}");

    // The probe on demand: just launched, so active, and the sweep would do nothing.
    let checked = c.json(0, &["check", "cli-a"]);
    assert_eq!(checked["verdict"], "Active", "{checked}");
    assert_eq!(checked["action"], "None", "{checked}");
    let said = String::from_utf8(c.run(&["check", "cli-a"]).stdout).unwrap();
    assert!(
        said.starts_with("cli-a: active - ") && said.contains("the sweep would: nothing"),
        "{said}"
    );
    // The types on offer, the default first; shown cheapest first.
    let types = c.json(0, &["types"]);
    assert_eq!(types[0]["instance_type"], "g5.xlarge", "{types}");
    assert_eq!(types[0]["default"], true);
    assert!(types[2]["usd_per_hour"].as_f64().is_some(), "{types}");
    let table = String::from_utf8(c.run(&["types"]).stdout).unwrap();
    let row = |t: &str| table.find(t).unwrap_or_else(|| panic!("{t} in {table}"));
    assert!(row("g4dn.xlarge") < row("g5.xlarge"), "{table}");
    assert!(table.contains("(the default)"), "{table}");

    let open = c.json(0, &["open", "cli-a", "--no-browser", "--direct"]);
    assert_eq!(open["verified"], true);
    assert_eq!(open["fingerprint"], up["notebook"]["cert_fingerprint"]);

    // A new token: the running Jupyter takes it and refuses the old one, without a restart.
    let changed = c.json(0, &["credential", "cli-a"]);
    assert_eq!(
        changed["notebook"]["credential_change"]["status"], "applied",
        "{changed}"
    );
    let (old, new) = (up["token"].as_str().unwrap(), changed["token"].as_str().unwrap());
    assert_ne!(old, new);
    let jupyter = nbfleet_jupyter::Jupyter::pinned(
        up["notebook"]["connect"]["url"].as_str().unwrap(),
        up["notebook"]["cert_fingerprint"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(jupyter.status(Some(old)).await.unwrap().0, 403);
    assert_eq!(jupyter.status(Some(new)).await.unwrap().0, 200);
    let refused = c.run(&["credential", "cli-a", "--password-stdin"]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "a token notebook takes no password\n{}",
        text(&refused)
    );

    assert_eq!(
        c.json(0, &["stop", "cli-a", "--wait"])["notebook"]["state"],
        "Stopped"
    );
    let again = c.run(&["stop", "cli-a"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("cli-a is already stopped"),
        "{}",
        text(&again)
    );
    assert_eq!(
        c.json(0, &["start", "cli-a", "--wait"])["notebook"]["state"],
        "Ready"
    );
    assert_eq!(
        c.json(0, &["rm", "cli-a", "--wait"])["notebook"]["state"],
        "Terminated"
    );
}

#[tokio::test]
async fn exit_codes_say_what_went_wrong() {
    let c = cli().await;
    let code = |out: Output| out.status.code();
    assert_eq!(code(c.run(&["status", "nobody"])), Some(3), "not found");
    assert_eq!(
        code(c.run(&["up", "Bad_Name", "--no-wait"])),
        Some(2),
        "bad input"
    );
    assert_eq!(code(c.run(&["up"])), Some(2), "a usage error");
    let err = c.json(2, &["up", "x!"]);
    assert_eq!(err["error"]["exit"], 2);
    c.json(0, &["up", "cli-b", "--no-wait"]);
    assert_eq!(
        code(c.run_as("mallory", &["stop", "cli-b"])),
        Some(5),
        "another user's notebook"
    );
    assert_eq!(
        code(c.run(&["extend", "cli-b", "99999"])),
        Some(2),
        "too long an extension"
    );
    c.json(0, &["rm", "cli-b", "--wait"]);
    assert_eq!(
        code(c.run(&["start", "cli-b"])),
        Some(4),
        "conflict: it is terminated"
    );
    assert_eq!(
        code(c.run(&["check", "cli-b"])),
        Some(4),
        "conflict: only a Ready notebook is probed"
    );
    let nowhere = std::process::Command::new(NBFLEET)
        .args(["--local", "ls"])
        .env("NBFLEET_LOCAL_PORT", "1")
        .output()
        .unwrap();
    assert_eq!(nowhere.status.code(), Some(6), "nothing listening");
    let no_api = std::process::Command::new(NBFLEET)
        .arg("ls")
        .env_remove("NBFLEET_API_URL")
        .env("HOME", "/nonexistent")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap();
    assert_eq!(no_api.status.code(), Some(2), "{}", text(&no_api));
    // Signed requests and tokens never travel over plain HTTP to anything but this machine.
    let plain_http = std::process::Command::new(NBFLEET)
        .args([
            "--api-url",
            "http://abc123.execute-api.us-east-1.amazonaws.com",
            "ls",
        ])
        .output()
        .unwrap();
    assert_eq!(plain_http.status.code(), Some(2), "{}", text(&plain_http));
    assert!(text(&plain_http).contains("HTTPS only"), "{}", text(&plain_http));
    assert_eq!(
        code(c.run(&["up", "cli-c", "--idle", "71582789h", "--no-wait"])),
        Some(2),
        "an --idle too large to count in minutes"
    );
}

#[tokio::test]
async fn open_refuses_a_jupyter_whose_certificate_is_not_the_recorded_one() {
    let c = cli().await;
    c.json(0, &["up", "cli-c"]);
    // The record now pins a certificate the real Jupyter does not hold.
    let mut nb = c.store.require("cli-c").await.unwrap();
    let expect = nb.expect();
    nb.cert_fingerprint = Some("ab".repeat(32));
    nb.version += 1;
    c.store.put(&nb, expect).await.unwrap();
    let out = c.run(&["open", "cli-c", "--no-browser"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(out.stdout.is_empty(), "a URL was printed: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refusing"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn open_serves_jupyter_through_a_pinned_loopback_proxy_websockets_included() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let c = cli().await;
    let up = c.json(0, &["up", "cli-p"]);
    let token = up["token"].as_str().unwrap().to_string();
    // `nbfleet open` serves until Ctrl-C: run it, read the URL it prints.
    let mut open = tokio::process::Command::new(NBFLEET)
        .args([
            "--local",
            "--json",
            "open",
            "cli-p",
            "--no-browser",
            "--port",
            "0",
        ])
        .env("NBFLEET_LOCAL_PORT", &c.port)
        .env("USER", "alice")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(open.stdout.take().unwrap());
    let mut first = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut first)
        .await
        .unwrap();
    let shown: Value = serde_json::from_str(&first).unwrap();
    let base = shown["url"].as_str().unwrap().trim_end_matches('/').to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{shown}");
    assert_eq!(shown["verified"], true);

    // Plain HTTP to the loopback, TLS to Jupyter behind it: a real answer, with the token.
    let http = nbfleet_jupyter::web::web_client(std::time::Duration::from_secs(30));
    let auth = format!("token {token}");
    let status = http
        .get(format!("{base}/api/status"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    // A kernel, and a round trip on its WebSocket: 6 * 7 computed and answered.
    let kernel: Value = http
        .post(format!("{base}/api/kernels"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ws_url = format!(
        "{}/api/kernels/{}/channels",
        base.replacen("http://", "ws://", 1),
        kernel["id"].as_str().unwrap()
    );
    let mut request = ws_url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", auth.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let msg_id = "nbfleet-proxy-test";
    let execute = serde_json::json!({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "t", "session": "s", "version": "5.3", "date": "2026-01-01T00:00:00Z"},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": "6 * 7", "silent": false, "store_history": false, "user_expressions": {}, "allow_stdin": false, "stop_on_error": true},
        "buffers": []
    });
    ws.send(Message::text(execute.to_string())).await.unwrap();
    let answer = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(Ok(m)) = ws.next().await {
            let Ok(v) = serde_json::from_str::<Value>(m.to_text().unwrap_or_default()) else {
                continue;
            };
            if v["msg_type"] == "execute_result" && v["parent_header"]["msg_id"] == msg_id {
                return v["content"]["data"]["text/plain"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
            }
        }
        String::new()
    })
    .await
    .expect("the kernel answered within a minute");
    assert_eq!(answer, "42");
    open.kill().await.unwrap();

    // The proxy with a pin the real Jupyter does not match refuses, and says why.
    let jupyter = up["notebook"]["connect"]["url"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    let wrong =
        nbfleet_jupyter::proxy::PinnedProxy::start(([127, 0, 0, 1], 0).into(), jupyter, &"ab".repeat(32))
            .await
            .unwrap();
    let refused = http
        .get(format!("http://{}/api/status", wrong.local))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 502);
    let why = refused.text().await.unwrap();
    assert!(
        why.contains("refused Jupyter") && why.contains("not the recorded"),
        "{why}"
    );
}

#[tokio::test]
async fn up_shows_each_state_as_it_passes_in_a_terminal() {
    let c = cli().await;
    // `script` gives nbfleet a pseudo-terminal, as a person's terminal would.
    let command = format!(
        "NBFLEET_LOCAL_PORT={} USER=alice {} --local up cli-d",
        c.port, NBFLEET
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("run script(1)");
    let seen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{seen}");
    for line in [
        "✓ Launching",
        "✓ Configuring",
        "✓ Ready",
        "cli-d is Ready",
        "its Jupyter token (shown once; keep it):",
    ] {
        assert!(
            seen.contains(line),
            "no {line:?} in what the terminal showed:\n{seen}"
        );
    }
    // The token first, before any progress: a wait cut short never loses it.
    assert!(
        seen.find("its Jupyter token").unwrap() < seen.find("✓ Launching").unwrap(),
        "{seen}"
    );
    assert!(
        seen.contains("cli-d: Configuring ("),
        "no live progress line:\n{seen}"
    );
}
