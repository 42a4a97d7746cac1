//! The bootstrap and health-check scripts, run by the local runner exactly as rendered for
//! production, against a real jupyter_server from the project venv and moto's Parameter Store.

use crate::instance::{Instance, instance};
use nbfleet_core::ports::Secrets;
use nbfleet_core::{password, report, scripts};
use nbfleet_jupyter::{Error as JupyterError, Jupyter};
use nbfleet_local::moto;
use std::process::Command;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn an_argon2_password_logs_in_over_https_and_a_wrong_one_gets_401() {
    let hash = password::hash_argon2(PASSWORD, &[42; 16]);
    let inst = instance(
        r#"{"name":"argon","password":"unused-here"}"#,
        Some(hash.expose()),
    )
    .await;
    let started = Instant::now();
    let report = inst.bootstrap().await;
    eprintln!(
        "bootstrap to first HTTPS answer: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    assert_eq!(report.gpu.name, "none", "this machine has no nvidia-smi");
    assert!(
        report.jupyter_server.starts_with('2'),
        "{}",
        report.jupyter_server
    );

    let jupyter = Jupyter::pinned(&inst.url(), &report.fingerprint).unwrap();
    jupyter.login(PASSWORD).await.unwrap();
    assert_eq!(jupyter.status(None).await.unwrap().0, 200);

    let stranger = Jupyter::pinned(&inst.url(), &report.fingerprint).unwrap();
    assert!(matches!(
        stranger.login("not the password").await,
        Err(JupyterError::LoginRefused(401))
    ));
    assert_eq!(stranger.status(None).await.unwrap().0, 403);
}

#[tokio::test]
async fn a_sha1_hash_from_the_tutorial_logs_in() {
    let hash = password::hash_sha1(PASSWORD, &[1, 2, 3, 4, 5, 6]);
    let body = format!(r#"{{"name":"tutorial","password_hash":"{}"}}"#, hash.expose());
    let inst = instance(&body, Some(hash.expose())).await;
    let report = inst.bootstrap().await;
    let jupyter = Jupyter::pinned(&inst.url(), &report.fingerprint).unwrap();
    jupyter.login(PASSWORD).await.unwrap();
    assert_eq!(jupyter.status(None).await.unwrap().0, 200);
}

#[tokio::test]
async fn a_token_authorises_the_api_and_nothing_else_does() {
    let token = password::token(&[7; 24]);
    let inst = instance(r#"{"name":"tokened"}"#, Some(token.expose())).await;
    let report = inst.bootstrap().await;
    let client = || Jupyter::pinned(&inst.url(), &report.fingerprint).unwrap();
    assert_eq!(client().status(None).await.unwrap().0, 403);
    assert_eq!(client().status(Some("0000")).await.unwrap().0, 403);
    let (status, body) = client().status(Some(token.expose())).await.unwrap();
    assert_eq!(status, 200);
    assert!(body.get("kernels").is_some(), "{body}");
}

#[tokio::test]
async fn the_reported_fingerprint_is_the_one_a_tls_handshake_sees() {
    let token = password::token(&[8; 24]);
    let inst = instance(r#"{"name":"pinned"}"#, Some(token.expose())).await;
    let report = inst.bootstrap().await;
    let seen = Jupyter::observe_fingerprint(&inst.url()).await.unwrap();
    assert_eq!(seen, report.fingerprint);

    let wrong = "0".repeat(64);
    let err = Jupyter::pinned(&inst.url(), &wrong)
        .unwrap()
        .status(Some(token.expose()))
        .await
        .unwrap_err();
    assert!(matches!(err, JupyterError::FingerprintMismatch { .. }), "{err}");
}

#[tokio::test]
async fn running_the_bootstrap_twice_even_at_once_keeps_the_certificate_and_the_login() {
    let hash = password::hash_argon2(PASSWORD, &[9; 16]);
    let inst = instance(
        r#"{"name":"twice","password":"unused-here"}"#,
        Some(hash.expose()),
    )
    .await;
    let first = inst.bootstrap().await;
    let second = inst.bootstrap().await;
    assert_eq!(first.fingerprint, second.fingerprint);
    // Two deliveries of one "running" event: the second run waits for the first's lock.
    let (a, b) = tokio::join!(inst.bootstrap(), inst.bootstrap());
    assert_eq!(
        (&a.fingerprint, &b.fingerprint),
        (&first.fingerprint, &first.fingerprint)
    );
    let jupyter = Jupyter::pinned(&inst.url(), &second.fingerprint).unwrap();
    jupyter.login(PASSWORD).await.unwrap();
}

#[tokio::test]
async fn the_health_check_brings_jupyter_back_after_a_restart_with_the_same_certificate() {
    let token = password::token(&[5; 24]);
    let inst = instance(r#"{"name":"restarted"}"#, Some(token.expose())).await;
    let report = inst.bootstrap().await;

    // A stop and start: Jupyter dies with the instance and the address changes.
    inst.sandbox.stop_jupyter();
    assert!(!inst.sandbox.jupyter_running());
    inst.sandbox.new_port().unwrap();

    let out = inst.health_check().await;
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr);
    let health = report::parse_health(&out.stdout).unwrap();
    assert_eq!(health.fingerprint, report.fingerprint);
    assert_eq!(health.port, inst.sandbox.port().unwrap());
    let jupyter = Jupyter::pinned(&inst.url(), &health.fingerprint).unwrap();
    assert_eq!(jupyter.status(Some(token.expose())).await.unwrap().0, 200);
}

/// Jupyter's REST API as a script would call it with `token`: the HTTP status and the body.
fn api(inst: &Instance, token: &str, method: &str, path: &str) -> (u16, String) {
    let helper = r#"
import os, ssl, sys, urllib.error, urllib.request
port, home, token, method, path = sys.argv[1:]
ctx = ssl.create_default_context(cafile=os.path.join(home, ".nbfleet", "cert.pem"))
req = urllib.request.Request(f"https://127.0.0.1:{port}{path}", method=method,
                             data=b"{}" if method == "POST" else None,
                             headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, "")
"#;
    let out = inst.python(token, helper, &[method, path]);
    let text = out.trim().to_string();
    let (code, body) = text.split_once(' ').unwrap_or((&text, ""));
    (code.parse().unwrap(), body.to_string())
}

#[tokio::test]
async fn a_new_token_is_taken_by_the_running_jupyter_without_a_restart_and_signs_out_the_old_sessions() {
    let old = password::token(&[1; 24]);
    let inst = instance(r#"{"name":"rotated"}"#, Some(old.expose())).await;
    let report = inst.bootstrap().await;
    let (status, kernel) = api(&inst, old.expose(), "POST", "/api/kernels");
    assert_eq!(status, 201, "{kernel}");
    let kernel: serde_json::Value = serde_json::from_str(&kernel).unwrap();
    // A browser session: the token once, the login cookie after.
    let browser = Jupyter::pinned(&inst.url(), &report.fingerprint).unwrap();
    assert_eq!(browser.status(Some(old.expose())).await.unwrap().0, 200);
    assert_eq!(browser.status(None).await.unwrap().0, 200);

    let new = password::token(&[2; 24]);
    inst.secrets
        .put(&inst.cfg.secret_parameter("rotated"), new.expose(), "rotated")
        .await
        .unwrap();
    let out = inst.health_check().await;
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr);
    assert_eq!(
        report::parse_health(&out.stdout).unwrap().fingerprint,
        report.fingerprint
    );

    assert_eq!(
        api(&inst, old.expose(), "GET", "/api/status").0,
        403,
        "the old token still works"
    );
    assert_eq!(
        browser.status(None).await.unwrap().0,
        403,
        "the old session still works"
    );
    let (status, kernels) = api(&inst, new.expose(), "GET", "/api/kernels");
    assert_eq!(status, 200);
    assert!(
        kernels.contains(kernel["id"].as_str().unwrap()),
        "the kernel started before the change is gone: Jupyter restarted ({kernels})"
    );
}

#[tokio::test]
async fn a_new_password_is_taken_by_the_running_jupyter_and_the_old_one_is_refused() {
    let inst = instance(
        r#"{"name":"new-password","password":"unused-here"}"#,
        Some(password::hash_argon2(PASSWORD, &[3; 16]).expose()),
    )
    .await;
    let report = inst.bootstrap().await;
    let jupyter = || Jupyter::pinned(&inst.url(), &report.fingerprint).unwrap();
    jupyter().login(PASSWORD).await.unwrap();

    let newer = "a much better passphrase";
    inst.secrets
        .put(
            &inst.cfg.secret_parameter("new-password"),
            password::hash_argon2(newer, &[4; 16]).expose(),
            "new-password",
        )
        .await
        .unwrap();
    let out = inst.health_check().await;
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr);
    let err = jupyter().login(PASSWORD).await.unwrap_err();
    assert!(matches!(err, JupyterError::LoginRefused(_)), "{err}");
    jupyter().login(newer).await.unwrap();
    // Run again with nothing new: nothing changes.
    let again = inst.health_check().await;
    assert_eq!(again.exit_code, Some(0), "{}", again.stderr);
    jupyter().login(newer).await.unwrap();
}

#[tokio::test]
async fn a_hung_jupyter_is_restarted_by_the_health_check() {
    let token = password::token(&[7; 24]);
    let inst = instance(r#"{"name":"hung"}"#, Some(token.expose())).await;
    let report = inst.bootstrap().await;
    // The server stops answering but stays alive (SIGSTOP to its process group): `systemctl
    // start` alone would leave it so.
    let server = inst.sandbox.jupyter_pid().expect("Jupyter runs");
    let group = format!("-{server}");
    assert!(
        Command::new("kill")
            .args(["-STOP", "--", &group])
            .status()
            .unwrap()
            .success()
    );
    let out = inst.health_check().await;
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr);
    let jupyter = Jupyter::pinned(&inst.url(), &report.fingerprint).unwrap();
    assert_eq!(jupyter.status(Some(token.expose())).await.unwrap().0, 200);
    assert_ne!(inst.sandbox.jupyter_pid(), Some(server), "a new server");
}

#[tokio::test]
async fn the_health_check_fails_clearly_where_the_bootstrap_never_ran() {
    let inst = instance(r#"{"name":"never-booted"}"#, None).await;
    let out = inst.health_check().await;
    assert_ne!(out.exit_code, Some(0));
    assert!(out.stderr.contains("the bootstrap has not run"), "{}", out.stderr);
}

#[tokio::test]
async fn a_missing_secret_parameter_fails_with_a_one_line_reason() {
    let inst = instance(r#"{"name":"no-secret"}"#, None).await;
    let out = inst
        .run(&scripts::bootstrap(&inst.nb, &inst.cfg, moto::REGION).unwrap())
        .await;
    assert_eq!(out.exit_code, Some(1));
    let stderr = out.stderr.trim();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("fetching the secret") && stderr.contains("ParameterNotFound"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&inst.cfg.secret_parameter("no-secret")),
        "{stderr}"
    );
    assert!(!inst.sandbox.jupyter_running());
    // Nothing else was left behind by a failed fetch.
    assert_eq!(
        inst.secrets
            .get(&inst.cfg.secret_parameter("no-secret"))
            .await
            .unwrap(),
        None
    );
}

/// The local addresses (hex, as in /proc/net/tcp*) that listen on `port`.
fn listening_addresses(port: u16) -> Vec<String> {
    let suffix = format!(":{port:04X}");
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // f[1] is local_address:port, f[3] the state (0A = LISTEN).
            if f.len() > 3 && f[3] == "0A" && f[1].ends_with(&suffix) {
                found.push(f[1].trim_end_matches(&suffix).to_string());
            }
        }
    }
    found
}

#[tokio::test]
async fn ssm_mode_binds_loopback_only_and_cidr_mode_binds_every_address() {
    let token = password::token(&[3; 24]);
    let ssm = instance(r#"{"name":"private"}"#, Some(token.expose())).await;
    ssm.bootstrap().await;
    let addrs = listening_addresses(ssm.sandbox.port().unwrap());
    assert_eq!(addrs, ["0100007F"], "ssm mode must listen on 127.0.0.1 only");

    let cidr = instance(
        r#"{"name":"public","access":{"mode":"cidr","cidrs":["203.0.113.0/24"]}}"#,
        Some(token.expose()),
    )
    .await;
    cidr.bootstrap().await;
    let addrs = listening_addresses(cidr.sandbox.port().unwrap());
    assert!(
        addrs.iter().any(|a| a.chars().all(|c| c == '0')),
        "cidr mode must listen on every address (0.0.0.0 or ::), got {addrs:?}"
    );
}

/// Starts a kernel through Jupyter's API and runs a silent `time.sleep` cell in it.
fn start_silent_cell(inst: &Instance, token: &str) {
    let helper = r#"
import json, os, ssl, sys, time, urllib.request
from jupyter_client import BlockingKernelClient
port, home, token = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=os.path.join(home, ".nbfleet", "cert.pem"))
req = urllib.request.Request(f"https://127.0.0.1:{port}/api/kernels", data=b"{}", method="POST",
                             headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
kernel = json.load(urllib.request.urlopen(req, context=ctx))
conn = os.path.join(home, ".local/share/jupyter/runtime", f"kernel-{kernel['id']}.json")
for _ in range(100):
    if os.path.exists(conn):
        break
    time.sleep(0.1)
kc = BlockingKernelClient(connection_file=conn)
kc.load_connection_file()
kc.start_channels()
kc.wait_for_ready(timeout=30)
kc.execute("import time; time.sleep(120)")
time.sleep(2)
"#;
    inst.python(token, helper, &[]);
}

#[tokio::test]
async fn the_probe_sees_a_silent_busy_cell_as_activity_and_a_dead_jupyter_as_down_not_unknown() {
    use nbfleet_core::idle::{self, Probe, Timeline, Verdict};
    let token = password::token(&[4; 24]);
    let inst = instance(r#"{"name":"probed"}"#, Some(token.expose())).await;
    inst.bootstrap().await;
    start_silent_cell(&inst, token.expose());

    let out = inst.run(&scripts::probe().unwrap()).await;
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.trim().len() < 2000,
        "the probe line must stay under 2,000 characters"
    );
    let probe = report::parse_probe(&out.stdout);
    let Probe::Seen(obs) = &probe else {
        panic!("{probe:?}\n{}", out.stdout)
    };
    assert_eq!((obs.kernels, obs.busy_kernels), (1, 1), "{}", out.stdout);

    // Hours later, the cell still sleeps: its last_activity is frozen, but busy is busy.
    let later = Timeline {
        now: jiff::Timestamp::now() + jiff::SignedDuration::from_hours(3),
        running_since: Some(jiff::Timestamp::now()),
        snoozed_until: None,
        warned_stop_at: None,
        last_active_at: None,
    };
    let d = idle::decide(&inst.nb.idle, &probe, &later);
    assert_eq!(d.verdict, Verdict::Active, "{}", d.reason);

    // Reading through the probe did not count as activity.
    let again = report::parse_probe(&inst.run(&scripts::probe().unwrap()).await.stdout);
    let Probe::Seen(again) = again else {
        panic!("second probe failed")
    };
    assert_eq!(
        again.server_activity, obs.server_activity,
        "the probe moved last_activity"
    );

    inst.sandbox.stop_jupyter();
    let dead = report::parse_probe(&inst.run(&scripts::probe().unwrap()).await.stdout);
    let Probe::Seen(down) = &dead else {
        panic!("a probe that ran is not unknown: {dead:?}")
    };
    assert!(down.jupyter_down.is_some(), "{down:?}");
    // With Jupyter down and nothing else active for hours, it is idle like any other.
    let d = idle::decide(&inst.nb.idle, &dead, &later);
    assert_eq!(d.verdict, Verdict::Idle, "{}", d.reason);
    assert!(d.reason.starts_with("Jupyter does not answer"), "{}", d.reason);
}

/// The on-instance idle fallback for real: Jupyter checks for inactivity every 60 s, so this
/// takes one to two minutes.
#[tokio::test]
async fn with_the_fallback_on_an_idle_jupyter_exits_by_itself_and_powers_the_machine_off() {
    let token = password::token(&[6; 24]);
    let mut inst = instance(r#"{"name":"fallback"}"#, Some(token.expose())).await;
    inst.nb.idle.instance_fallback_minutes = 1;
    inst.bootstrap().await;
    let deadline = Instant::now() + Duration::from_secs(240);
    while !inst.sandbox.take_poweroff() {
        assert!(
            Instant::now() < deadline,
            "no poweroff after 240 s; jupyter log: {}",
            inst.sandbox.jupyter_log()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // The service's process ends right after its ExecStopPost.
    for _ in 0..50 {
        if !inst.sandbox.jupyter_running() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!inst.sandbox.jupyter_running());
    assert!(
        inst.sandbox.jupyter_log().contains("shutting down"),
        "{}",
        inst.sandbox.jupyter_log()
    );
}

#[tokio::test]
async fn with_the_fallback_on_a_service_restart_does_not_power_off() {
    let token = password::token(&[7; 24]);
    let mut inst = instance(r#"{"name":"restart-fallback"}"#, Some(token.expose())).await;
    inst.nb.idle.instance_fallback_minutes = 30;
    inst.bootstrap().await;
    // A second run restarts the service: systemd's SIGTERM is not an idle exit.
    inst.bootstrap().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!inst.sandbox.take_poweroff());
    assert!(!inst.sandbox.home().join(".nbfleet/idle-exit").exists());
    assert!(inst.sandbox.jupyter_running());
}
