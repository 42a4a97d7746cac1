//! `nbfleet open`: reach a notebook's Jupyter and check, with a real TLS handshake, that it
//! presents the certificate nbfleet recorded at bootstrap, before the URL is shown or opened.
//!
//! In ssm mode the way in is a port-forward: `aws ssm start-session` with the
//! session-manager-plugin, kept up (SSM sessions end after about an hour of use or 20 minutes
//! idle) until Ctrl-C. In cidr mode, and on the local stack, the URL is used as it is.

use crate::Out;
use crate::api::{Api, CliError, Exit};
use nbfleet_jupyter::Jupyter;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub async fn open(
    api: &Api,
    out: Out,
    name: &str,
    no_browser: bool,
    port: Option<u16>,
) -> Result<(), CliError> {
    let view = api.call("GET", &format!("/notebooks/{name}"), None).await?;
    let nb = &view["notebook"];
    if nb["state"] != "Ready" {
        return Err(CliError::new(
            Exit::Conflict,
            format!(
                "{name} is {}, not Ready: nbfleet start {name}",
                nb["state"].as_str().unwrap_or("?")
            ),
        ));
    }
    let expected = nb["cert_fingerprint"]
        .as_str()
        .ok_or_else(|| CliError::new(Exit::Failed, format!("{name} has no recorded certificate")))?;
    let url = nb["connect"]["url"]
        .as_str()
        .ok_or_else(|| CliError::new(Exit::Failed, format!("{name} has no address yet")))?
        .to_string();
    let tunnelled = nb["access"]["mode"] == "ssm" && !api.is_local();
    if !tunnelled {
        verify(&url, expected).await?;
        return show(out, name, &url, expected, no_browser);
    }

    let remote = port_of(&url).unwrap_or(8888);
    let local = port.unwrap_or(remote);
    let url = format!("https://localhost:{local}");
    let mut session = tunnel(nb, remote, local).await?;
    verify(&url, expected).await?;
    show(out, name, &url, expected, no_browser)?;
    if !out.quiet {
        eprintln!("port-forward to {name} is up; Ctrl-C ends it");
    }
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                let _ = session.kill().await;
                return Ok(());
            }
            status = session.wait() => {
                if !out.quiet {
                    eprintln!("the port-forward ended ({}); reconnecting", status.map_or_else(|e| e.to_string(), |s| s.to_string()));
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
                session = tunnel(nb, remote, local).await?;
            }
        }
    }
}

fn port_of(url: &str) -> Option<u16> {
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

/// Refuses a server whose certificate is not the recorded one.
async fn verify(url: &str, expected: &str) -> Result<(), CliError> {
    let seen = Jupyter::observe_fingerprint(url)
        .await
        .map_err(|e| CliError::new(Exit::Upstream, e.to_string()))?;
    if !seen.eq_ignore_ascii_case(&expected.replace(':', "")) {
        return Err(CliError::new(
            Exit::Failed,
            format!(
                "{url} presents certificate sha256 {seen}, not the recorded {expected}: refusing (someone may be in the middle)"
            ),
        ));
    }
    Ok(())
}

fn show(out: Out, name: &str, url: &str, fingerprint: &str, no_browser: bool) -> Result<(), CliError> {
    if out.json {
        println!(
            "{}",
            json!({"name": name, "url": url, "fingerprint": fingerprint, "verified": true})
        );
    } else {
        println!("{url}   (certificate sha256 {fingerprint} verified)");
    }
    if !no_browser {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        if which(opener).is_some() {
            let _ = std::process::Command::new(opener).arg(url).spawn();
        }
    }
    Ok(())
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Starts `aws ssm start-session` for a port-forward and waits until the local port answers.
async fn tunnel(nb: &Value, remote: u16, local: u16) -> Result<Child, CliError> {
    if which("aws").is_none() {
        return Err(CliError::new(
            Exit::Failed,
            "the AWS CLI is not installed: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html",
        ));
    }
    if which("session-manager-plugin").is_none() {
        return Err(CliError::new(
            Exit::Failed,
            "the Session Manager plugin is not installed: https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html",
        ));
    }
    let instance = nb["instance_id"]
        .as_str()
        .ok_or_else(|| CliError::new(Exit::Failed, "the notebook has no instance"))?;
    // The stack's own document, which forwards to Jupyter's port only (records from before it
    // name none).
    let document = nb["connect"]["document"]
        .as_str()
        .unwrap_or("AWS-StartPortForwardingSession");
    let mut child = Command::new("aws")
        .args(["ssm", "start-session", "--target", instance])
        .args(["--document-name", document])
        .arg("--parameters")
        .arg(format!("portNumber={remote},localPortNumber={local}"))
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| CliError::new(Exit::Failed, format!("cannot run aws ssm start-session: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(CliError::new(
                Exit::Upstream,
                format!("aws ssm start-session ended: {status}"),
            ));
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", local)).await.is_ok() {
            return Ok(child);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = child.kill().await;
    Err(CliError::new(
        Exit::Upstream,
        format!("the port-forward did not open localhost:{local} within 60 s"),
    ))
}
