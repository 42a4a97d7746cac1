//! Drives a local stack from the outside, as a user would: starts the `nbfleet-local` binary,
//! calls its HTTP API, waits for states. Used by `make demo` and the end-to-end tests.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A plain HTTP client. reqwest is built without a default TLS provider (the Jupyter client
/// brings its own pinned configuration), so one is installed here first.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::new()
}

/// A running `nbfleet-local` process; stopped (with its instances' Jupyter) when dropped.
pub struct LocalStack {
    /// `None` once detached.
    child: Option<Child>,
    pub url: String,
    pub dir: PathBuf,
}

/// How to start a local stack.
pub struct Launch<'a> {
    pub bin: &'a Path,
    pub moto_endpoint: &'a str,
    pub account: &'a str,
    pub dir: &'a Path,
    pub venv: &'a Path,
    /// 0 picks a free port.
    pub port: u16,
    /// How often the stack polls moto for EC2 state changes.
    pub watch_interval_ms: u64,
    /// How long an emulated stop or start takes.
    pub transition_ms: u64,
    /// How often the idle sweep runs (0: never).
    pub sweep_seconds: u64,
    /// Demo-length idle timeouts (1-minute minimum and warning).
    pub demo_timeouts: bool,
}

/// The `nbfleet-local` binary next to the running executable (cargo puts every workspace
/// binary in the same target directory; test executables sit one level down, in `deps/`).
pub fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    let here = dir.join(name);
    if here.exists() {
        here
    } else {
        dir.parent().expect("target dir").join(name)
    }
}

impl LocalStack {
    pub async fn spawn(l: Launch<'_>) -> Result<LocalStack, String> {
        std::fs::create_dir_all(l.dir).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(l.dir.join("stack.log")).map_err(|e| e.to_string())?;
        let mut child = Command::new(l.bin)
            .env("MOTO_ENDPOINT", l.moto_endpoint)
            .env("NBFLEET_LOCAL_ACCOUNT", l.account)
            .env("NBFLEET_LOCAL_DIR", l.dir)
            .env("NBFLEET_VENV", l.venv)
            .env("NBFLEET_LOCAL_PORT", l.port.to_string())
            .env("NBFLEET_WATCH_INTERVAL_MS", l.watch_interval_ms.to_string())
            .env("NBFLEET_TRANSITION_MS", l.transition_ms.to_string())
            .env("NBFLEET_SWEEP_SECONDS", l.sweep_seconds.to_string())
            .env(
                "NBFLEET_LOCAL_DEMO_TIMEOUTS",
                if l.demo_timeouts { "1" } else { "0" },
            )
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", l.bin.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .map_err(|_| "the local stack did not get ready within 60 s".to_string())?
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "the local stack exited; see {}",
                    l.dir.join("stack.log").display()
                )
            })?;
        let url = ready
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .ok_or_else(|| format!("unexpected first line from the local stack: {ready}"))?
            .to_string();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(LocalStack {
            child: Some(child),
            url,
            dir: l.dir.to_path_buf(),
        })
    }

    pub fn api(&self) -> Api {
        Api::new(&self.url)
    }

    /// The local stack's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stack.log")).unwrap_or_default()
    }

    /// Leaves the stack running after this handle goes (`KEEP=1`); returns its pid.
    pub fn detach(mut self) -> Option<u32> {
        let child = self.child.take();
        let pid = child.as_ref().and_then(Child::id);
        // The child was spawned with kill_on_drop: forget it so that nothing kills it.
        std::mem::forget(child);
        pid
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        // SIGTERM lets the stack stop its instances' Jupyter servers; then make sure.
        let Some(child) = self.child.as_mut() else { return };
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.start_kill();
        }
    }
}

/// The local stack's HTTP API.
#[derive(Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
    user: Option<String>,
}

impl Api {
    /// The API of a stack serving at `base` (`http://127.0.0.1:<port>`).
    pub fn new(base: &str) -> Api {
        Api {
            base: base.to_string(),
            client: http_client(),
            user: None,
        }
    }

    /// Calls as `user` (the local stand-in for an IAM principal).
    pub fn as_user(mut self, user: &str) -> Api {
        self.user = Some(user.to_string());
        self
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(u) = &self.user {
            req = req.header("x-nbfleet-user", u);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    pub async fn notebook(&self, name: &str) -> Result<Value, String> {
        let (status, body) = self
            .call(reqwest::Method::GET, &format!("/notebooks/{name}"), None)
            .await?;
        if status == 200 {
            Ok(body["notebook"].clone())
        } else {
            Err(format!("GET {name}: {status} {body}"))
        }
    }

    /// Polls `name` until its state is one of `states`, calling `seen` on each new state.
    pub async fn wait_for(
        &self,
        name: &str,
        states: &[&str],
        limit: Duration,
        mut seen: impl FnMut(&str, Duration),
    ) -> Result<Value, String> {
        let start = Instant::now();
        let mut last = String::new();
        loop {
            let nb = self.notebook(name).await?;
            let state = nb["state"].as_str().unwrap_or_default().to_string();
            if state != last {
                seen(&state, start.elapsed());
                last = state.clone();
            }
            if states.contains(&state.as_str()) {
                return Ok(nb);
            }
            if start.elapsed() > limit {
                return Err(format!("{name} is still {state} after {} s", limit.as_secs()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
