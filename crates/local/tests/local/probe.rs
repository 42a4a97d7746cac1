//! The idle probe's signals, read on a real Jupyter by the exact script the sweep sends, run by
//! the local runner: edits, CPU outside Jupyter, `nbfleet-busy` holds, GPUs (a fake
//! `nvidia-smi` on the PATH prints recorded and MIG output), and the size of its line.

use crate::instance::{Instance, instance};
use jiff::{SignedDuration, Timestamp};
use nbfleet_core::idle::{Observation, Probe};
use nbfleet_core::{password, report, scripts};
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs the probe; insists it ran, stayed under 2,000 characters, and was seen.
async fn probe(inst: &Instance) -> Observation {
    let out = inst.run(&scripts::probe().unwrap()).await;
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr);
    let line = out.stdout.trim();
    assert!(line.len() < 2000, "{} characters: {line}", line.len());
    match report::parse_probe(&out.stdout) {
        Probe::Seen(obs) => obs,
        unknown => panic!("{unknown:?}\n{line}"),
    }
}

const API: &str = r#"
import json, os, ssl, sys, urllib.request
port, home, token = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=os.path.join(home, ".nbfleet", "cert.pem"))
def call(method, path, body=None):
    req = urllib.request.Request(f"https://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx) as r:
        text = r.read()
        return json.loads(text) if text else None
"#;

fn near_now(t: Option<Timestamp>) -> bool {
    t.is_some_and(|t| (Timestamp::now() - t).abs() < SignedDuration::from_secs(60))
}

#[tokio::test]
async fn a_notebook_saved_through_jupyter_is_an_edit_and_hidden_folders_and_venvs_are_not() {
    let token = password::token(&[21; 24]);
    let inst = instance(r#"{"name":"edited"}"#, Some(token.expose())).await;
    inst.bootstrap().await;
    let save = format!(
        "{API}\ncall('PUT', '/api/contents/exp', {{'type': 'directory'}})\n\
         call('PUT', '/api/contents/exp/train.ipynb', {{'type': 'notebook', 'format': 'json', \
         'content': {{'cells': [], 'metadata': {{}}, 'nbformat': 4, 'nbformat_minor': 5}}}})"
    );
    inst.python(token.expose(), &save, &[]);
    let obs = probe(&inst).await;
    assert_eq!(obs.last_edit_path.as_deref(), Some("exp/train.ipynb"), "{obs:?}");
    assert!(near_now(obs.last_edit), "{obs:?}");
    assert!(!obs.edit_scan_cut);

    // Written later, but in a hidden folder and in a virtual environment: not edits.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let home = inst.sandbox.home();
    std::fs::create_dir_all(home.join(".cache")).unwrap();
    std::fs::write(home.join(".cache/pip.log"), "x").unwrap();
    std::fs::create_dir_all(home.join("myenv/lib")).unwrap();
    std::fs::write(home.join("myenv/pyvenv.cfg"), "home = /usr").unwrap();
    std::fs::write(home.join("myenv/lib/site.py"), "x").unwrap();
    let again = probe(&inst).await;
    assert_eq!(again.last_edit, obs.last_edit, "{again:?}");
}

#[tokio::test]
async fn a_cpu_busy_process_left_running_after_its_terminal_closed_is_work_outside_jupyter() {
    let token = password::token(&[22; 24]);
    let inst = instance(r#"{"name":"cpu-busy"}"#, Some(token.expose())).await;
    inst.bootstrap().await;
    let first = probe(&inst).await;
    assert_eq!(first.cpu_outside_pct, None, "no reading before the first probe");
    let quiet = probe(&inst).await;
    assert!(quiet.cpu_outside_pct.is_some_and(|c| c < 20), "{quiet:?}");

    // `nohup … &` in a Jupyter terminal, then the terminal is closed: the job goes on.
    let terminal = format!(
        r#"{API}
import asyncio
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect
name = call('POST', '/api/terminals')['name']
async def run():
    req = HTTPRequest(f"wss://127.0.0.1:{{port}}/terminals/websocket/{{name}}",
                      headers={{"Authorization": f"token {{token}}"}}, ssl_options=ctx)
    ws = await websocket_connect(req)
    ws.write_message(json.dumps(["stdin", "nohup python3 -c 'while True: pass' nbfleet-cpu-test >/dev/null 2>&1 &\r"]))
    await asyncio.sleep(2)
    ws.close()
asyncio.run(run())
call('DELETE', f'/api/terminals/{{name}}')
"#
    );
    inst.python(token.expose(), &terminal, &[]);
    let busy_loop = || {
        Command::new("pgrep")
            .args(["-f", "nbfleet-cpu-test"])
            .output()
            .unwrap()
            .stdout
    };
    assert!(!busy_loop().is_empty(), "the job died with its terminal");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let busy = probe(&inst).await;
    let _ = Command::new("pkill").args(["-f", "nbfleet-cpu-test"]).status();
    assert!(busy.cpu_outside_pct.is_some_and(|c| c >= 50), "{busy:?}");
    assert_eq!(busy.busy_kernels, 0);
}

#[tokio::test]
async fn nbfleet_busy_holds_while_a_command_runs_and_for_a_while_until_released() {
    let token = password::token(&[23; 24]);
    let inst = instance(r#"{"name":"held"}"#, Some(token.expose())).await;
    inst.bootstrap().await;
    let busy = |args: &[&str]| {
        // As the user would run it in a Jupyter terminal: their HOME, the instance's PATH.
        let path = format!(
            "{}:/usr/bin:/bin",
            inst.sandbox.home().parent().unwrap().join("shims").display()
        );
        Command::new("nbfleet-busy")
            .args(args)
            .env("HOME", inst.sandbox.home())
            .env("PATH", path)
            .spawn()
            .unwrap()
    };
    let mut job = busy(&["--", "sleep", "300"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let held = loop {
        let obs = probe(&inst).await;
        if obs.hold.is_some() || Instant::now() > deadline {
            break obs;
        }
    };
    let hold = held.hold.expect("a hold while the command runs");
    assert_eq!((hold.until, hold.what.as_str()), (None, "sleep 300"));
    job.kill().unwrap();
    job.wait().unwrap();
    assert_eq!(probe(&inst).await.hold, None, "the hold ends with its command");

    assert!(busy(&["--for", "2h"]).wait().unwrap().success());
    let obs = probe(&inst).await;
    let until = obs.hold.and_then(|h| h.until).expect("a hold for 2 hours");
    let in_2h = Timestamp::now() + SignedDuration::from_hours(2);
    assert!((until - in_2h).abs() < SignedDuration::from_mins(1), "{until}");
    assert!(busy(&["--release"]).wait().unwrap().success());
    let released = probe(&inst).await;
    assert_eq!(released.hold, None);
    assert!(
        near_now(released.hold_ended),
        "idle time counts from the release: {released:?}"
    );
    assert_ne!(busy(&["--for", "soon"]).wait().unwrap().code(), Some(0));

    // A hold file that is a link to a file the user cannot read is never followed by the
    // probe, which runs as root: nothing of it reaches the probe's output.
    let holds = inst.sandbox.home().join(".nbfleet/holds");
    std::os::unix::fs::symlink("/etc/shadow", holds.join("sneaky")).unwrap();
    let out = inst.run(&scripts::probe().unwrap()).await;
    assert!(!out.stdout.contains("root:"), "{}", out.stdout);
    assert!(matches!(report::parse_probe(&out.stdout), Probe::Seen(o) if o.hold.is_none()));
}

/// A fake `nvidia-smi` answering the probe's two queries with `gpus` and `apps`, or failing.
fn fake_nvidia_smi(gpus: &str, apps: &str, fail: bool) -> String {
    if fail {
        return "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'\nexit 9\n".into();
    }
    format!(
        "#!/bin/sh\ncase \"$1\" in\n  --query-gpu=*) cat <<'EOF'\n{gpus}EOF\n;;\n  --query-compute-apps=*) cat <<'EOF'\n{apps}EOF\n;;\nesac\n"
    )
}

#[tokio::test]
async fn gpus_are_read_one_by_one_a_mig_gpu_by_its_processes_and_a_failed_read_is_an_error() {
    // No bootstrap: Jupyter is down, and the GPU signal is read all the same.
    let inst = instance(r#"{"name":"gpus"}"#, None).await;
    let h100 = include_str!("../../../core/fixtures/nvidia-h100/query-busy.csv")
        .lines()
        .next()
        .unwrap();
    // The probe's query asks for index, uuid and utilisation: the recorded line's columns 0, 2, 6.
    let cols: Vec<&str> = h100.split(", ").collect();
    let busy = format!("{}, {}, {}\n", cols[0], cols[2], cols[6]);
    inst.sandbox
        .install_command("nvidia-smi", &fake_nvidia_smi(&busy, "", false))
        .unwrap();
    let obs = probe(&inst).await;
    assert!(obs.jupyter_down.is_some());
    assert_eq!(obs.gpu_utilization, vec![Some(100)]);

    let mig = include_str!("../../../core/fixtures/nvidia-mig/query.csv");
    let apps = include_str!("../../../core/fixtures/nvidia-mig/apps.csv");
    inst.sandbox
        .install_command("nvidia-smi", &fake_nvidia_smi(mig, apps, false))
        .unwrap();
    let obs = probe(&inst).await;
    assert_eq!((obs.gpu_utilization, obs.gpu_processes), (vec![None, None], 2));

    inst.sandbox
        .install_command("nvidia-smi", &fake_nvidia_smi("", "", true))
        .unwrap();
    let obs = probe(&inst).await;
    assert!(
        obs.gpu_error
            .as_deref()
            .is_some_and(|e| e.contains("NVIDIA-SMI has failed")),
        "{obs:?}"
    );
}

#[tokio::test]
async fn with_fifty_kernels_and_twenty_thousand_files_the_probe_line_stays_short_and_says_the_scan_was_cut() {
    let token = password::token(&[24; 24]);
    let inst = instance(r#"{"name":"crowded"}"#, Some(token.expose())).await;
    inst.bootstrap().await;
    let data = inst.sandbox.home().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..20_050 {
        std::fs::write(data.join(format!("sample-{i:05}.txt")), b"").unwrap();
    }
    let start = format!(
        "{API}\nfrom concurrent.futures import ThreadPoolExecutor\n\
         list(ThreadPoolExecutor(8).map(lambda _: call('POST', '/api/kernels', {{}}), range(50)))"
    );
    inst.python(token.expose(), &start, &[]);
    let obs = probe(&inst).await;
    assert_eq!(obs.kernels, 50);
    assert!(obs.edit_scan_cut, "{obs:?}");
}
