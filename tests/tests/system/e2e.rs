//! End to end over the local stack: the `nbfleet-local` binary (built by the same cargo
//! invocation as this test), its HTTP API, moto, and a real Jupyter run by the local runner.
//! Each test has its own moto account, stack process and directory, so they run in parallel.

use nbfleet_aws::Clients;
use nbfleet_jupyter::Jupyter;
use nbfleet_local::harness::{Api, LocalStack};
use nbfleet_testkit::env::ec2_state;
use nbfleet_testkit::stack::{Options, spawned};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

struct E2e {
    stack: LocalStack,
    api: Api,
    aws: Clients,
}

async fn e2e(watch_interval_ms: u64) -> E2e {
    stack_with(watch_interval_ms, 0, false).await
}

async fn stack_with(watch_interval_ms: u64, sweep_seconds: u64, demo_timeouts: bool) -> E2e {
    let (stack, aws) = spawned(Options {
        watch_interval_ms,
        sweep_seconds,
        demo_timeouts,
        ..Options::new("e2e")
    })
    .await;
    let api = stack.api();
    E2e { stack, api, aws }
}

impl E2e {
    async fn launch(&self, body: Value) -> Value {
        let (status, answer) = self
            .api
            .call(Method::POST, "/notebooks", Some(&body))
            .await
            .unwrap();
        assert_eq!(status, 202, "{answer}");
        answer
    }

    async fn wait(&self, name: &str, states: &[&str]) -> Value {
        match self
            .api
            .wait_for(name, states, Duration::from_secs(180), |_, _| {})
            .await
        {
            Ok(nb) => nb,
            Err(e) => panic!("{e}\nstack log:\n{}", self.stack.log()),
        }
    }

    /// Waits (30 s at most) for a message about `name` that says `what` in the local stack's
    /// Slack outbox: what Slack would have been sent.
    async fn slack_says(&self, name: &str, what: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let said = nbfleet_local::slack_outbox::messages_about(&self.stack.dir.join("slack.jsonl"), name);
            if said.iter().any(|m| text_of(m).contains(what)) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no Slack message about {name} saying {what:?}: {said:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn text_of(v: &Value) -> &str {
    v["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_launched_notebook_becomes_ready_and_takes_a_real_https_login() {
    let t = e2e(250).await;
    t.launch(json!({"name": "e2e-login", "password": PASSWORD})).await;
    let nb = t.wait("e2e-login", &["Ready", "Failed"]).await;
    assert_eq!(nb["state"], "Ready", "{nb}");
    let url = nb["connect"]["url"].as_str().unwrap();
    assert!(
        nb["connect"]["tunnel"]
            .as_str()
            .unwrap()
            .contains("AWS-StartPortForwardingSession")
    );
    let fingerprint = nb["cert_fingerprint"].as_str().unwrap();
    assert_eq!(Jupyter::observe_fingerprint(url).await.unwrap(), fingerprint);

    let jupyter = Jupyter::pinned(url, fingerprint).unwrap();
    jupyter.login(PASSWORD).await.unwrap();
    assert_eq!(jupyter.status(None).await.unwrap().0, 200);
    assert_eq!(nb["gpu"]["name"], "none");
}

#[tokio::test]
async fn the_bootstrap_sent_to_moto_carries_no_secret_and_is_the_script_that_ran() {
    let t = e2e(250).await;
    let launched = t.launch(json!({"name": "e2e-bytes"})).await;
    let token = launched["token"].as_str().unwrap().to_string();
    let nb = t.wait("e2e-bytes", &["Ready", "Failed"]).await;
    assert_eq!(nb["state"], "Ready", "{nb}");
    let instance = nb["instance_id"].as_str().unwrap();

    let commands = t.aws.ssm.list_commands().send().await.unwrap();
    let sent: Vec<_> = commands
        .commands()
        .iter()
        .filter(|c| c.comment() == Some("nbfleet bootstrap"))
        .collect();
    assert_eq!(sent.len(), 1, "exactly one bootstrap was sent");
    let cmd = sent[0];
    assert_eq!(cmd.document_name(), Some("AWS-RunShellScript"));
    let text = &cmd.parameters().unwrap()["commands"][0];
    let hash = t
        .aws
        .ssm
        .get_parameter()
        .name("/nbfleet/notebooks/e2e-bytes/secret")
        .with_decryption(true)
        .send()
        .await;
    assert_eq!(hash.unwrap().parameter.unwrap().value.unwrap(), token);
    assert!(
        !format!("{:?}", cmd.parameters()).contains(&token),
        "the token travelled in the command"
    );

    let ran = t
        .stack
        .dir
        .join("instances")
        .join(instance)
        .join("commands")
        .join(cmd.command_id().unwrap())
        .join("_script.sh");
    let ran = std::fs::read(&ran).unwrap_or_else(|e| panic!("{}: {e}", ran.display()));
    assert_eq!(
        hex::encode(Sha256::digest(&ran)),
        hex::encode(Sha256::digest(text.as_bytes()))
    );
}

#[tokio::test]
async fn a_bootstrap_that_cannot_read_its_secret_fails_with_the_reason_and_stops_the_instance() {
    // A slow watcher leaves time to remove the secret between the launch and the bootstrap.
    let t = e2e(1500).await;
    t.launch(json!({"name": "e2e-fail"})).await;
    t.aws
        .ssm
        .delete_parameter()
        .name("/nbfleet/notebooks/e2e-fail/secret")
        .send()
        .await
        .unwrap();
    let nb = t.wait("e2e-fail", &["Failed", "Ready"]).await;
    assert_eq!(nb["state"], "Failed", "{nb}");
    assert_eq!(nb["failure"]["reason"], "the bootstrap failed");
    assert_eq!(nb["failure"]["exit_code"], 1);
    let stderr = nb["failure"]["stderr_tail"].as_str().unwrap();
    assert!(stderr.contains("ParameterNotFound"), "{stderr}");
    let instance = nb["instance_id"].as_str().unwrap();
    assert_eq!(
        ec2_state(&t.aws.ec2, instance).await,
        "stopped",
        "Failed means stopped"
    );
}

#[tokio::test]
async fn an_instance_stopped_in_ec2_becomes_stopped_and_its_jupyter_goes_away() {
    let t = e2e(250).await;
    t.launch(json!({"name": "e2e-stop", "password": PASSWORD})).await;
    let nb = t.wait("e2e-stop", &["Ready", "Failed"]).await;
    assert_eq!(nb["state"], "Ready", "{nb}");
    let port: u16 = nb["connect"]["url"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());

    let instance = nb["instance_id"].as_str().unwrap();
    t.aws
        .ec2
        .stop_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    let nb = t.wait("e2e-stop", &["Stopped"]).await;
    assert!(nb["connect"].is_null(), "a stopped notebook has no way in: {nb}");
    let why = nb["idle_status"]["reason"].as_str().unwrap_or_default();
    assert!(why.starts_with("stopped outside nbfleet"), "{nb}");
    // Its owner is told, with a way back.
    t.slack_says("e2e-stop", "was stopped outside nbfleet").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "Jupyter's port is still open"
    );
}

#[tokio::test]
async fn stop_then_a_new_type_then_start_gives_a_new_address_with_the_same_certificate_and_delete_keeps_a_snapshot_a_restore_brings_back()
 {
    let t = e2e(250).await;
    t.launch(json!({"name": "e2e-cycle", "password": PASSWORD})).await;
    let nb = t.wait("e2e-cycle", &["Ready", "Failed"]).await;
    assert_eq!(nb["state"], "Ready", "{nb}");
    let first_url = nb["connect"]["url"].as_str().unwrap().to_string();
    let fingerprint = nb["cert_fingerprint"].as_str().unwrap().to_string();

    let (status, _) = t
        .api
        .call(Method::POST, "/notebooks/e2e-cycle/stop", None)
        .await
        .unwrap();
    assert_eq!(status, 202);
    let stopped = t.wait("e2e-cycle", &["Stopped"]).await;
    let why = stopped["idle_status"]["reason"].as_str().unwrap_or_default();
    assert!(why.starts_with("stopped by hand by"), "{stopped}");
    assert!(
        Jupyter::pinned(&first_url, &fingerprint)
            .unwrap()
            .status(None)
            .await
            .is_err()
    );
    let (_, body) = t
        .api
        .call(Method::GET, "/notebooks/e2e-cycle", None)
        .await
        .unwrap();
    assert!(body["cost"]["running_hours"].as_f64().unwrap() > 0.0, "{body}");
    assert_eq!(body["cost"]["usd_per_hour"], 1.006);

    // A bigger GPU while it is stopped: the next start runs as it.
    let (status, body) = t
        .api
        .call(
            Method::PATCH,
            "/notebooks/e2e-cycle",
            Some(&json!({"instance_type": "g6.xlarge"})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");

    let (status, _) = t
        .api
        .call(Method::POST, "/notebooks/e2e-cycle/start", None)
        .await
        .unwrap();
    assert_eq!(status, 202);
    let nb = t.wait("e2e-cycle", &["Ready", "Failed"]).await;
    assert_eq!(nb["state"], "Ready", "{nb}");
    let second_url = nb["connect"]["url"].as_str().unwrap();
    assert_ne!(second_url, first_url, "a restart comes back at a new address");
    assert_eq!(nb["cert_fingerprint"], fingerprint.as_str());
    assert_eq!(nb["instance_type"], "g6.xlarge");
    let instance = nb["instance_id"].as_str().unwrap();
    let described = t
        .aws
        .ec2
        .describe_instances()
        .instance_ids(instance)
        .send()
        .await
        .unwrap();
    let ec2_type = described.reservations()[0].instances()[0]
        .instance_type()
        .unwrap();
    assert_eq!(ec2_type.as_str(), "g6.xlarge");
    let jupyter = Jupyter::pinned(second_url, &fingerprint).unwrap();
    jupyter.login(PASSWORD).await.unwrap();
    // Work worth keeping, on the disk the delete snapshots.
    let saved = jupyter
        .save_file(None, "keep.txt", "kept across a restore\n")
        .await
        .unwrap();
    assert!(saved == 200 || saved == 201, "{saved}");

    let (status, _) = t
        .api
        .call(Method::DELETE, "/notebooks/e2e-cycle", None)
        .await
        .unwrap();
    assert_eq!(status, 202);
    let nb = t.wait("e2e-cycle", &["Terminated"]).await;
    let snapshot = nb["snapshot_id"].as_str().expect("a snapshot id on the record");
    let snaps = t
        .aws
        .ec2
        .describe_snapshots()
        .snapshot_ids(snapshot)
        .send()
        .await
        .unwrap();
    assert_eq!(snaps.snapshots().len(), 1, "the snapshot exists in EC2");
    let secret = t
        .aws
        .ssm
        .get_parameter()
        .name("/nbfleet/notebooks/e2e-cycle/secret")
        .send()
        .await;
    assert!(secret.is_err(), "the secret is gone with the notebook");

    // Restored under its own name: the disk comes back with the file, and Jupyter serves it.
    t.launch(json!({"name": "e2e-cycle", "password": PASSWORD, "restore_from": "e2e-cycle"}))
        .await;
    let nb = t.wait("e2e-cycle", &["Ready", "Failed"]).await;
    assert_eq!(nb["state"], "Ready", "{nb}");
    assert_eq!(nb["restored_from"], snapshot);
    assert_eq!(nb["generation"], 2);
    let jupyter = Jupyter::pinned(
        nb["connect"]["url"].as_str().unwrap(),
        nb["cert_fingerprint"].as_str().unwrap(),
    )
    .unwrap();
    jupyter.login(PASSWORD).await.unwrap();
    assert_eq!(
        jupyter.read_file(None, "keep.txt").await.unwrap().as_deref(),
        Some("kept across a restore\n")
    );
}

#[tokio::test]
async fn another_user_may_read_but_not_stop_someone_elses_notebook() {
    let t = e2e(250).await;
    t.launch(json!({"name": "e2e-owned"})).await;
    let mallory = t.stack.api().as_user("mallory");
    let (status, body) = mallory
        .call(Method::POST, "/notebooks/e2e-owned/stop", None)
        .await
        .unwrap();
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "Forbidden");
    assert_eq!(
        mallory
            .call(Method::GET, "/notebooks/e2e-owned", None)
            .await
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        t.api
            .call(Method::POST, "/notebooks/nobody/stop", None)
            .await
            .unwrap()
            .0,
        404
    );
}

#[tokio::test]
async fn an_idle_notebook_is_warned_then_stopped_a_dead_jupyter_is_restarted_then_idle_and_one_without_an_agent_is_not()
 {
    // Demo-length timeouts (1 minute idle, 1 minute warning), a sweep every 2 seconds.
    let t = stack_with(250, 2, true).await;
    for name in ["e2e-idle", "e2e-blind", "e2e-dead"] {
        t.launch(json!({"name": name, "idle_timeout_minutes": 1})).await;
    }
    t.wait("e2e-idle", &["Ready"]).await;
    let blind = t.wait("e2e-blind", &["Ready"]).await;
    let dead = t.wait("e2e-dead", &["Ready"]).await;
    // The blind notebook's SSM agent goes offline: its probes are not even sent from now on.
    let sandbox = |nb: &Value| {
        let runner = nbfleet_local::runner::Runner::new(t.stack.dir.join("instances"), "", "", "");
        runner.sandbox(nb["instance_id"].as_str().unwrap()).unwrap()
    };
    sandbox(&blind).set_agent_offline(true).unwrap();
    // The dead notebook's Jupyter dies while its instance runs: the sweep restarts it, once.
    let dead_box = sandbox(&dead);
    dead_box.stop_jupyter();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = t
            .api
            .call(Method::GET, "/notebooks/e2e-dead", None)
            .await
            .unwrap();
        let restart = body["history"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["action"] == "restart_jupyter")
            .map(|h| h["command_id"].as_str().unwrap().to_string());
        // Restarted, and its health check over (killed while the check still runs, Jupyter would
        // be started again by it): Jupyter answers over HTTPS again.
        let over = restart.is_some_and(|id| {
            t.stack
                .log()
                .lines()
                .any(|l| l.contains("local command finished") && l.contains(&id))
        });
        let answers = match Jupyter::pinned(
            dead["connect"]["url"].as_str().unwrap(),
            dead["cert_fingerprint"].as_str().unwrap(),
        ) {
            Ok(j) => j.status(None).await.is_ok(),
            Err(_) => false,
        };
        if over && answers {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no restart: {body}\n{}",
            t.stack.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The owner is told (what Slack would get: the local stack's outbox).
    t.slack_says("e2e-dead", "Jupyter did not answer").await;
    // It dies again: no second restart within 15 minutes, and with nothing else active it is
    // idle like any other.
    dead_box.stop_jupyter();

    let stopped = t.wait("e2e-idle", &["Stopped"]).await;
    let reason = stopped["idle_status"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("stopped: idle since"), "{reason}");
    let (_, body) = t
        .api
        .call(Method::GET, "/notebooks/e2e-idle", None)
        .await
        .unwrap();
    let actions: Vec<String> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].to_string())
        .collect();
    assert!(
        actions.iter().any(|a| a.contains("Warn")),
        "warned before the stop: {actions:?}"
    );
    assert!(actions.last().unwrap().contains("Stop"), "{actions:?}");
    // What Slack would have shown (the local stack's outbox): the warning with its buttons,
    // then the stop with a Start button, each valid Block Kit.
    let slack = nbfleet_local::slack_outbox::messages_about(&t.stack.dir.join("slack.jsonl"), "e2e-idle");
    let buttons = |m: &Value| -> Vec<String> {
        m["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| b["elements"].as_array().unwrap().clone())
            .map(|e| e["action_id"].as_str().unwrap().to_string())
            .collect()
    };
    for m in &slack {
        nbfleet_core::blocks::check(m).unwrap_or_else(|e| panic!("{e}: {m}"));
    }
    assert!(
        slack
            .iter()
            .any(|m| buttons(m).contains(&"nbfleet_extend_60".to_string())),
        "{slack:?}"
    );
    assert!(
        slack
            .iter()
            .any(|m| text_of(m).contains("was stopped") && buttons(m) == ["nbfleet_start"]),
        "{slack:?}"
    );

    let stopped = t.wait("e2e-dead", &["Stopped"]).await;
    let reason = stopped["idle_status"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("stopped: Jupyter does not answer"), "{reason}");
    assert!(!dead_box.jupyter_running(), "restarted a second time");

    let blind = t.api.notebook("e2e-blind").await.unwrap();
    assert_eq!(
        blind["state"], "Ready",
        "a notebook whose probe cannot run is never stopped for idleness"
    );
    assert_eq!(blind["idle_status"]["verdict"], "Unknown", "{blind}");
    // The streak is written when it begins; while it only grows, at most once an hour.
    assert_eq!(blind["idle_status"]["unknowns"], 1, "{blind}");
}

#[tokio::test]
async fn a_notebook_being_edited_or_held_by_nbfleet_busy_is_kept_running_and_stopped_once_that_ends() {
    // Demo-length timeouts (1 minute idle, 1 minute warning), a sweep every 2 seconds.
    let t = stack_with(250, 2, true).await;
    let edited = t
        .launch(json!({"name": "e2e-edit", "idle_timeout_minutes": 2}))
        .await;
    t.launch(json!({"name": "e2e-hold", "idle_timeout_minutes": 2}))
        .await;
    let nb = t.wait("e2e-edit", &["Ready"]).await;
    let held = t.wait("e2e-hold", &["Ready"]).await;

    // Someone works in e2e-hold's terminal: `nbfleet-busy --for 3m`.
    let runner = nbfleet_local::runner::Runner::new(t.stack.dir.join("instances"), "", "", "");
    let sandbox = runner.sandbox(held["instance_id"].as_str().unwrap()).unwrap();
    let home = sandbox.home();
    let shims = home.parent().unwrap().join("shims");
    let status = std::process::Command::new("nbfleet-busy")
        .args(["--for", "3m"])
        .env("HOME", &home)
        .env("PATH", format!("{}:/usr/bin:/bin", shims.display()))
        .status()
        .unwrap();
    assert!(status.success());

    // Someone edits e2e-edit: a save every 20 s for 150 s, past the timeout and the warning.
    let jupyter = Jupyter::pinned(
        nb["connect"]["url"].as_str().unwrap(),
        nb["cert_fingerprint"].as_str().unwrap(),
    )
    .unwrap();
    let token = edited["token"].as_str().unwrap();
    let editing = std::time::Instant::now();
    while editing.elapsed() < Duration::from_secs(150) {
        let saved = jupyter
            .save_file(Some(token), "notes.txt", "more notes\n")
            .await
            .unwrap();
        assert!(saved == 200 || saved == 201, "{saved}");
        tokio::time::sleep(Duration::from_secs(20)).await;
    }
    let nb = t.api.notebook("e2e-edit").await.unwrap();
    assert_eq!(nb["state"], "Ready", "stopped while being edited: {nb}");
    // (The reason on the record may still be the first round's, "started at …": a verdict
    // that holds is written again only every 30 minutes.)
    assert!(
        nb["idle_status"]["warned_stop_at"].is_null(),
        "warned while being edited: {nb}"
    );
    let held = t.api.notebook("e2e-hold").await.unwrap();
    assert_eq!(held["state"], "Ready", "stopped while held: {held}");
    assert!(
        held["idle_status"]["warned_stop_at"].is_null(),
        "warned while held: {held}"
    );

    // The edits and the hold end: both are warned, then stopped.
    for name in ["e2e-edit", "e2e-hold"] {
        let stopped = t.wait(name, &["Stopped"]).await;
        let why = stopped["idle_status"]["reason"].as_str().unwrap_or_default();
        assert!(why.starts_with("stopped: idle since"), "{name}: {stopped}");
    }
}

#[tokio::test]
async fn hooks_run_as_the_user_a_pre_stop_hook_before_the_stop_and_a_failing_on_start_hook_leaves_it_ready() {
    let t = e2e(250).await;
    let saving = "echo saving; echo saved > ~/pre-stop-ran; echo synced 3 files";
    t.launch(
        json!({"name": "e2e-hooks", "hooks": {"pre_stop": saving, "on_start": "echo installing; exit 3"}}),
    )
    .await;
    t.launch(json!({"name": "e2e-hang", "hooks": {"pre_stop": "echo stuck; sleep 600", "pre_stop_timeout_seconds": 3}}))
        .await;
    t.launch(json!({"name": "e2e-skip", "hooks": {"pre_stop": "echo ran > ~/should-not-exist"}}))
        .await;
    let nb = t.wait("e2e-hooks", &["Ready", "Failed"]).await;
    assert_eq!(nb["state"], "Ready", "{nb}");
    for name in ["e2e-hang", "e2e-skip"] {
        t.wait(name, &["Ready"]).await;
    }

    // The on-start hook fails: reported, and the notebook stays Ready.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let nb = loop {
        let nb = t.api.notebook("e2e-hooks").await.unwrap();
        if nb["on_start_hook"]["status"] == "failed" {
            break nb;
        }
        assert!(std::time::Instant::now() < deadline, "{nb}\n{}", t.stack.log());
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(nb["state"], "Ready");
    assert_eq!(nb["on_start_hook"]["exit_code"], 3, "{nb}");
    t.slack_says("e2e-hooks", "is ready, but its on-start hook").await;
    assert!(
        nb["on_start_hook"]["tail"]
            .as_str()
            .unwrap()
            .contains("installing"),
        "{nb}"
    );

    // A stop runs the pre-stop hook first, in the user's home, and keeps its output.
    for (name, path) in [
        ("e2e-hooks", "stop"),
        ("e2e-hang", "stop"),
        ("e2e-skip", "stop?hook=false"),
    ] {
        let (status, body) = t
            .api
            .call(Method::POST, &format!("/notebooks/{name}/{path}"), None)
            .await
            .unwrap();
        assert_eq!(status, 202, "{body}");
    }
    let stopped = t.wait("e2e-hooks", &["Stopped"]).await;
    assert_eq!(stopped["pre_stop_hook"]["status"], "succeeded", "{stopped}");
    let runner = nbfleet_local::runner::Runner::new(t.stack.dir.join("instances"), "", "", "");
    let home = |nb: &Value| {
        runner
            .sandbox(nb["instance_id"].as_str().unwrap())
            .unwrap()
            .home()
    };
    assert_eq!(
        std::fs::read_to_string(home(&stopped).join("pre-stop-ran")).unwrap(),
        "saved\n"
    );
    let (_, body) = t
        .api
        .call(Method::GET, "/notebooks/e2e-hooks", None)
        .await
        .unwrap();
    let entry = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["action"] == "pre_stop_hook")
        .cloned()
        .unwrap_or_else(|| panic!("{body}"));
    assert!(
        entry["tail"].as_str().unwrap().contains("synced 3 files"),
        "{entry}"
    );

    // A hook that hangs is cut at its time limit, and the instance still stops.
    let hung = t.wait("e2e-hang", &["Stopped"]).await;
    assert_eq!(hung["pre_stop_hook"]["status"], "timed_out", "{hung}");
    // Skipped on request.
    let skipped = t.wait("e2e-skip", &["Stopped"]).await;
    assert!(skipped["pre_stop_hook"].is_null(), "{skipped}");
    assert!(!home(&skipped).join("should-not-exist").exists());
}
