//! `make demo`: nbfleet's main job on this machine. Starts the local stack (moto + the real
//! use cases + a real Jupyter run by the local runner), launches a notebook with a password,
//! checks the certificate fingerprint, logs in over HTTPS, stops it and shows that it no longer
//! answers, starts it and logs in again at its new address, and deletes it (unless `KEEP=1`).
//! Exits non-zero if any step fails.

use nbfleet_jupyter::Jupyter;
use nbfleet_local::harness::{Launch, LocalStack, sibling_binary};
use serde_json::Value;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const NAME: &str = "demo";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\ndemo FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn step(n: u32, text: &str) {
    println!("[{n}/12] {text}");
}

async fn run() -> Result<(), String> {
    let started = Instant::now();
    let keep = std::env::var("KEEP").is_ok_and(|v| v == "1");
    let moto = nbfleet_local::moto::endpoint_from_env();
    let root = std::env::current_dir().map_err(|e| e.to_string())?;
    let dir = root.join(".local");

    step(1, &format!("starting the local stack (moto at {moto})"));
    let stack = LocalStack::spawn(Launch {
        bin: &sibling_binary("nbfleet-local"),
        moto_endpoint: &moto,
        account: nbfleet_local::moto::DEFAULT_ACCOUNT,
        dir: &dir,
        venv: &root.join(".venv"),
        port: std::env::var("NBFLEET_LOCAL_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(9000),
        watch_interval_ms: 250,
        transition_ms: 2000,
        sweep_seconds: 10,
        // Demo-length idle timeouts, so that the idle stop shows within the demo; not with
        // KEEP=1, which leaves the notebook for the user.
        demo_timeouts: !keep,
    })
    .await?;
    println!(
        "      ready at {} (log: {})",
        stack.url,
        dir.join("stack.log").display()
    );
    let api = stack.api();

    let password = format!("demo-{}", hex::encode(rand::random::<[u8; 6]>()));
    let port = stack.url.rsplit(':').next().unwrap_or("9000").to_string();
    let cli = Cli { port: &port };
    let idle: &[&str] = if keep { &[] } else { &["--idle", "2"] };
    // A pre-stop hook, as someone would set one to save their work before every stop.
    let hook = dir.join("pre-stop-hook.sh");
    std::fs::write(&hook, PRE_STOP_HOOK).map_err(|e| e.to_string())?;
    let hook = hook.display().to_string();
    step(
        2,
        &format!(
            "launching notebook {NAME:?} with a password and a pre-stop hook: nbfleet up {NAME} --password-stdin --pre-stop-hook {hook}"
        ),
    );
    cli.run(
        &[&["up", NAME, "--password-stdin", "--pre-stop-hook", &hook], idle].concat(),
        Some(&password),
    )?;
    let nb = cli.json(&["status", NAME])?["notebook"].clone();
    let url = nb["connect"]["url"]
        .as_str()
        .ok_or("no connect URL on the Ready record")?
        .to_string();
    let recorded = nb["cert_fingerprint"]
        .as_str()
        .ok_or("no fingerprint on the record")?
        .to_string();
    println!(
        "      GPU: {}, {}",
        nb["gpu"]["name"],
        nb["jupyter_version"].as_str().unwrap_or("?")
    );

    step(
        3,
        &format!(
            "checking the certificate by a real TLS handshake: nbfleet open {NAME} --no-browser --direct"
        ),
    );
    cli.run(&["open", NAME, "--no-browser", "--direct"], None)?;

    step(
        4,
        &format!(
            "opening it as a browser would, through nbfleet's pinned proxy (no certificate warning): nbfleet open {NAME} --no-browser --port 0"
        ),
    );
    let (proxy_url, mut proxy) = cli.serve_open(NAME).await?;
    println!("      the browser's address: {proxy_url}; logging in with the password (XSRF form flow)");
    let jupyter = Jupyter::via_proxy(&proxy_url).map_err(|e| e.to_string())?;
    jupyter.login(&password).await.map_err(|e| e.to_string())?;
    let (status, body) = jupyter.status(None).await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("GET /api/status after login answered {status}"));
    }
    println!("      logged in through the proxy; /api/status: {body}");
    let _ = proxy.kill().await;
    let jupyter = Jupyter::pinned(&url, &recorded).map_err(|e| e.to_string())?;

    step(5, &format!("stopping it: nbfleet stop {NAME} --wait"));
    cli.run(&["stop", NAME, "--wait"], None)?;
    if jupyter.status(None).await.is_ok() {
        return Err(format!("{url} still answers after the stop"));
    }
    println!(
        "      {url} no longer answers; cost so far: {}",
        stopped_cost(&api).await
    );
    println!("      a bigger GPU while it is stopped:");
    cli.run(&["set", NAME, "--type", "g6.xlarge"], None)?;

    step(6, &format!("starting it again: nbfleet start {NAME} --wait"));
    cli.run(&["start", NAME, "--wait"], None)?;
    let nb = cli.json(&["status", NAME])?["notebook"].clone();
    let new_url = nb["connect"]["url"]
        .as_str()
        .ok_or("no connect URL after the restart")?
        .to_string();
    println!(
        "      new address: {new_url} (was {url}); same certificate: {}; now a {}",
        nb["cert_fingerprint"] == recorded,
        nb["instance_type"].as_str().unwrap_or("?")
    );
    if nb["instance_type"] != "g6.xlarge" {
        return Err(format!(
            "started as {}, not the g6.xlarge set",
            nb["instance_type"]
        ));
    }
    let again = Jupyter::pinned(&new_url, &recorded).map_err(|e| e.to_string())?;
    again.login(&password).await.map_err(|e| e.to_string())?;
    println!("      logged in again over HTTPS");

    step(7, "how to open it");
    println!("      nbfleet --local open {NAME}: your browser opens http://127.0.0.1:8888 with no");
    println!("      certificate warning (nbfleet's proxy checks Jupyter's certificate, {recorded}),");
    println!("      and you log in with the password {password}");

    if !keep {
        step(
            8,
            "editing it through Jupyter (a save every 20 s for 2.5 minutes, as JupyterLab's autosave does): the sweep keeps it running (demo timeouts: 2 minutes idle, 1 minute warning)",
        );
        let editing = Instant::now();
        while editing.elapsed() < Duration::from_secs(150) {
            let saved = again
                .save_file(None, "notes.txt", "more notes\n")
                .await
                .map_err(|e| e.to_string())?;
            if !(200..300).contains(&saved) {
                return Err(format!("saving through the contents API answered {saved}"));
            }
            tokio::time::sleep(Duration::from_secs(20)).await;
        }
        let nb = api.notebook(NAME).await?;
        if nb["state"] != "Ready" || !nb["idle_status"]["warned_stop_at"].is_null() {
            return Err(format!(
                "warned or stopped while being edited: {}",
                nb["idle_status"]
            ));
        }
        println!(
            "      still {} after {:.0} s of edits: {}",
            nb["state"],
            editing.elapsed().as_secs_f64(),
            nb["idle_status"]["reason"].as_str().unwrap_or("?")
        );
        step(
            9,
            "leaving it idle: the sweep warns, then runs its pre-stop hook and stops it",
        );
        let warned = wait_idle(&api, |nb| !nb["idle_status"]["warned_stop_at"].is_null(), 240).await?;
        println!(
            "      warned: {}",
            warned["idle_status"]["reason"].as_str().unwrap_or("?")
        );
        let stopped = wait_idle(&api, |nb| nb["state"] == "Stopped", 240).await?;
        println!(
            "      {}: {}",
            stopped["state"],
            stopped["idle_status"]["reason"].as_str().unwrap_or("?")
        );
        let hook = &stopped["pre_stop_hook"];
        println!(
            "      its pre-stop hook ran first ({}); its output:",
            hook["status"]
        );
        for line in hook["tail"].as_str().unwrap_or("").lines() {
            println!("        | {line}");
        }
        println!("      as `nbfleet status {NAME}` shows it:");
        cli.run(&["status", NAME], None)?;
        println!("      and the Slack messages it would have sent (.local/slack.jsonl):");
        for message in nbfleet_local::slack_outbox::messages_about(&dir.join("slack.jsonl"), NAME)
            .iter()
            .filter(|m| {
                let text = m["text"].as_str().unwrap_or_default();
                text.contains(" stops at ") || text.contains(" was stopped")
            })
        {
            print_slack(message);
        }
    }
    if keep {
        step(10, "KEEP=1: leaving the notebook and the local stack running");
        println!("      stop it all with: make local-stop");
        if let Some(pid) = stack.detach() {
            std::fs::write(dir.join("stack.pid"), pid.to_string()).map_err(|e| e.to_string())?;
        }
    } else {
        step(
            10,
            &format!("deleting it: nbfleet rm {NAME} --wait; then stopping the local stack"),
        );
        cli.run(&["rm", NAME, "--wait"], None)?;
        let done = cli.json(&["status", NAME])?["notebook"].clone();
        println!(
            "      root volume kept as snapshot {}",
            done["snapshot_id"].as_str().unwrap_or("none")
        );
        cli.run(&["snapshots"], None)?;
        step(
            11,
            &format!("restoring it from that snapshot: nbfleet up {NAME} --restore --password-stdin"),
        );
        cli.run(&["up", NAME, "--restore", "--password-stdin"], Some(&password))?;
        let nb = cli.json(&["status", NAME])?["notebook"].clone();
        let back = Jupyter::pinned(
            nb["connect"]["url"]
                .as_str()
                .ok_or("no connect URL after the restore")?,
            nb["cert_fingerprint"]
                .as_str()
                .ok_or("no fingerprint after the restore")?,
        )
        .map_err(|e| e.to_string())?;
        back.login(&password).await.map_err(|e| e.to_string())?;
        let notes = back
            .read_file(None, "notes.txt")
            .await
            .map_err(|e| e.to_string())?
            .ok_or("notes.txt did not come back with the restore")?;
        println!(
            "      notes.txt is back ({} bytes): {:?}",
            notes.len(),
            notes.trim()
        );
        step(
            12,
            &format!("deleting it for good: nbfleet rm {NAME} --no-snapshot --wait"),
        );
        cli.run(&["rm", NAME, "--no-snapshot", "--wait"], None)?;
        drop(stack);
    }
    println!("\ndemo passed in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The demo's pre-stop hook: what someone would run to keep their work before a stop.
const PRE_STOP_HOOK: &str = r#"echo "saving work before the stop"
if [ -f ~/notes.txt ]; then
  cp ~/notes.txt ~/notes.saved.txt && echo "saved notes.txt ($(wc -c < ~/notes.txt) bytes)"
else
  echo "nothing to save yet"
fi
"#;

/// The `nbfleet` command against this local stack, as a person would run it.
struct Cli<'a> {
    port: &'a str,
}

impl Cli<'_> {
    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(sibling_binary("nbfleet"));
        c.arg("--local")
            .args(args)
            .env("NBFLEET_LOCAL_PORT", self.port)
            .env("USER", "local");
        c
    }

    /// Runs it with its output shown, `stdin` piped in if given.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
        use std::io::Write;
        println!("      $ nbfleet {}", args.join(" "));
        let mut child = self
            .command(args)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("run nbfleet: {e}"))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            writeln!(pipe, "{text}").map_err(|e| e.to_string())?;
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| format!("nbfleet {} failed ({status})", args.join(" ")))
    }

    /// Runs it with `--json` and parses what it prints.
    /// Starts `nbfleet open NAME` (which serves until it is killed) and returns the address it
    /// serves the notebook on.
    async fn serve_open(&self, name: &str) -> Result<(String, tokio::process::Child), String> {
        use tokio::io::AsyncBufReadExt;
        println!("      $ nbfleet open {name} --no-browser --port 0");
        let mut child = tokio::process::Command::from(self.command(&[
            "--json",
            "open",
            name,
            "--no-browser",
            "--port",
            "0",
        ]))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("run nbfleet: {e}"))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        tokio::io::BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        let shown: Value =
            serde_json::from_str(&line).map_err(|e| format!("nbfleet open printed {line:?}: {e}"))?;
        let url = shown["url"].as_str().ok_or("nbfleet open printed no URL")?;
        Ok((url.trim_end_matches('/').to_string(), child))
    }

    fn json(&self, args: &[&str]) -> Result<Value, String> {
        let out = self
            .command(&[&["--json"], args].concat())
            .output()
            .map_err(|e| format!("run nbfleet: {e}"))?;
        serde_json::from_slice(&out.stdout).map_err(|e| format!("nbfleet {}: {e}", args.join(" ")))
    }
}

/// Polls the demo notebook until `done` holds, for at most `secs` seconds.
/// A Slack message as it reads in Slack: its sections and context lines, its buttons.
fn print_slack(message: &serde_json::Value) {
    for block in message["blocks"].as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("section") => {
                for line in block["text"]["text"].as_str().unwrap_or_default().lines() {
                    println!("        │ {line}");
                }
            }
            Some("context") => println!(
                "        │ ({})",
                block["elements"][0]["text"].as_str().unwrap_or_default()
            ),
            Some("actions") => {
                let labels: Vec<String> = block["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|b| format!("[ {} ]", b["text"]["text"].as_str().unwrap_or("?")))
                    .collect();
                println!("        │ {}", labels.join(" "));
            }
            _ => {}
        }
    }
    println!("        └─");
}

async fn wait_idle(
    api: &nbfleet_local::harness::Api,
    done: impl Fn(&serde_json::Value) -> bool,
    secs: u64,
) -> Result<serde_json::Value, String> {
    let start = Instant::now();
    loop {
        let nb = api.notebook(NAME).await?;
        if done(&nb) {
            return Ok(nb);
        }
        if start.elapsed() > Duration::from_secs(secs) {
            return Err(format!(
                "the idle sweep did not act within {secs} s: {}",
                nb["idle_status"]
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn stopped_cost(api: &nbfleet_local::harness::Api) -> String {
    match api
        .call(reqwest::Method::GET, &format!("/notebooks/{NAME}"), None)
        .await
    {
        Ok((200, body)) => {
            let c = &body["cost"];
            format!(
                "{} h at ${}/h = ${} ({})",
                c["running_hours"], c["usd_per_hour"], c["cost_usd"], c["price_source"]
            )
        }
        _ => "unknown".into(),
    }
}
