//! `make smoke` (scripts/smoke.sh), run against the local stack as `make smoke LOCAL=1` runs it:
//! it passes end to end through the `nbfleet` CLI alone, refuses a name that is taken, and a
//! run interrupted after Ready (as by Ctrl-C) still deletes its notebook.

use nbfleet_local::harness::{LocalStack, sibling_binary};
use nbfleet_testkit::stack::{Options, spawned};
use nbfleet_tests::root;
use reqwest::Method;
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn smoke(stack: &LocalStack, name: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("scripts/smoke.sh"))
        .env("LOCAL", "1")
        .env("NBFLEET", sibling_binary("nbfleet"))
        .env("NBFLEET_LOCAL_PORT", stack.url.rsplit(':').next().unwrap())
        .env("USER", "alice")
        .env("SMOKE_NAME", name)
        .env("SMOKE_READY_MINUTES", "3")
        .env("SMOKE_STEP_MINUTES", "2")
        .kill_on_drop(true);
    cmd
}

#[test]
fn the_smoke_script_passes_shellcheck() {
    let out = std::process::Command::new("shellcheck")
        .args(["--severity=style"])
        .arg(root().join("scripts/smoke.sh"))
        .output()
        .expect("shellcheck (make tools installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

async fn state(stack: &LocalStack, name: &str) -> String {
    let (_, view) = stack
        .api()
        .call(Method::GET, &format!("/notebooks/{name}"), None)
        .await
        .unwrap();
    view["notebook"]["state"].as_str().unwrap_or("?").to_string()
}

#[tokio::test]
async fn the_smoke_test_passes_against_the_local_stack_and_leaves_nothing_behind() {
    let (stack, _) = spawned(Options::new("smoke")).await;
    let out = smoke(&stack, "smoke-pass").output().await.unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let said = format!("{stdout}\n{stderr}\nstack log:\n{}", stack.log());
    assert!(out.status.success(), "{said}");
    for step in [
        "launching smoke-pass (g4dn.xlarge)", // the cheapest of the default types
        "smoke-pass is Ready",
        "running the idle probe",
        "stopping smoke-pass",
        "starting smoke-pass",
        "deleting smoke-pass (no snapshot)",
    ] {
        assert!(stderr.contains(step), "no {step:?} in:\n{said}");
    }
    for line in [
        "certificate sha256",
        "logged in over HTTPS through the pinned proxy",
        "smoke-pass: active - ",
        "the sweep would: nothing",
        "smoke passed in ",
        "the run cost $",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{said}");
    }
    assert_eq!(state(&stack, "smoke-pass").await, "Terminated");
}

#[tokio::test]
async fn the_smoke_test_refuses_a_name_a_live_notebook_has_and_leaves_it_alone() {
    let (stack, _) = spawned(Options::new("smoke")).await;
    let (status, _) = stack
        .api()
        .call(Method::POST, "/notebooks", Some(&json!({"name": "smoke-taken"})))
        .await
        .unwrap();
    assert_eq!(status, 202);
    let out = smoke(&stack, "smoke-taken").output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("a notebook named smoke-taken exists"), "{stderr}");
    let left = state(&stack, "smoke-taken").await;
    assert!(!["Terminating", "Terminated"].contains(&left.as_str()), "{left}");
}

#[tokio::test]
async fn a_smoke_test_interrupted_after_ready_still_deletes_its_notebook() {
    let (stack, _) = spawned(Options::new("smoke")).await;
    let mut child = smoke(&stack, "smoke-cut")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = String::new();
    let ready = tokio::time::timeout(Duration::from_secs(240), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            said.push_str(&line);
            said.push('\n');
            if line.contains("smoke-cut is Ready") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ready, Ok(true), "{said}\nstack log:\n{}", stack.log());
    // Ctrl-C, as the shell delivers it to the script.
    let pid = child.id().unwrap().to_string();
    let kill = Command::new("kill").args(["-INT", &pid]).status().await.unwrap();
    assert!(kill.success());
    let rest = tokio::time::timeout(Duration::from_secs(180), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            said.push_str(&line);
            said.push('\n');
        }
        child.wait().await.unwrap()
    })
    .await
    .expect("the interrupted script ends");
    assert_eq!(rest.code(), Some(130), "{said}");
    assert!(said.contains("cleaning up: deleting smoke-cut"), "{said}");
    assert_eq!(state(&stack, "smoke-cut").await, "Terminated", "{said}");
}
