//! `nbfleet open`: reach a notebook's Jupyter and check, with a real TLS handshake, that it
//! presents the certificate nbfleet recorded at bootstrap, before the URL is shown or opened;
//! then serve it to the browser through a pinned proxy on 127.0.0.1
//! (`nbfleet_jupyter::proxy`), so the browser never meets the self-signed certificate and
//! shows no warning. `--direct` prints Jupyter's own https URL instead, for scripts.
//!
//! In ssm mode the way in is a port-forward: `aws ssm start-session` with the stack's session
//! document and the session-manager-plugin, kept up (SSM sessions end after about an hour of
//! use or 20 minutes idle) until Ctrl-C. In cidr mode, and on the local stack, Jupyter's address
//! is used as it is.

use crate::Out;
use crate::api::{Api, CliError, Exit};
use nbfleet_jupyter::Jupyter;
use nbfleet_jupyter::proxy::PinnedProxy;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How `nbfleet open` was asked to open.
pub struct How {
    pub no_browser: bool,
    pub port: Option<u16>,
    pub direct: bool,
}

pub async fn open(api: &Api, out: Out, name: &str, how: How) -> Result<(), CliError> {
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
    let remote = port_of(&url).unwrap_or(8888);
    let tunnelled = nb["access"]["mode"] == "ssm" && !api.is_local();
    if how.direct {
        let mut session = None;
        let url = match tunnelled {
            true => {
                let local = how.port.unwrap_or(remote);
                session = Some(tunnel(nb, remote, local).await?);
                format!("https://localhost:{local}")
            }
            false => url,
        };
        verify(&url, expected).await?;
        show(out, name, &url, expected, how.no_browser)?;
        return match session {
            Some(session) => {
                keep_up(
                    out,
                    name,
                    nb,
                    session,
                    remote,
                    port_of(&url).unwrap_or(remote),
                    None,
                )
                .await
            }
            None => Ok(()),
        };
    }

    // The pinned proxy: the browser speaks plain HTTP to it on 127.0.0.1, and it speaks TLS
    // to Jupyter (through the tunnel in ssm mode), accepting the recorded certificate only.
    let (upstream, session, via) = match tunnelled {
        true => {
            let via = free_port().await?;
            (
                format!("127.0.0.1:{via}"),
                Some(tunnel(nb, remote, via).await?),
                via,
            )
        }
        false => (host_port(&url)?, None, 0),
    };
    verify(&format!("https://{upstream}"), expected).await?;
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], how.port.unwrap_or(remote)));
    let proxy = PinnedProxy::start(listen, upstream, expected)
        .await
        .map_err(|e| {
            CliError::new(
                Exit::Failed,
                format!("cannot listen on {listen}: {e} (pick another with --port)"),
            )
        })?;
    let browser = format!("http://{}/", proxy.local);
    show(out, name, &browser, expected, how.no_browser)?;
    match session {
        Some(session) => keep_up(out, name, nb, session, remote, via, Some(proxy)).await,
        None => {
            if !out.quiet {
                eprintln!("serving {name} on {browser} until Ctrl-C");
            }
            let _ = tokio::signal::ctrl_c().await;
            drop(proxy);
            Ok(())
        }
    }
}

/// Keeps the port-forward up until Ctrl-C, starting it again when SSM ends it. (The proxy,
/// if any, checks the certificate on every connection, so a tunnel that comes back to
/// something else is refused.)
async fn keep_up(
    out: Out,
    name: &str,
    nb: &Value,
    mut session: Child,
    remote: u16,
    local: u16,
    proxy: Option<PinnedProxy>,
) -> Result<(), CliError> {
    if !out.quiet {
        eprintln!("port-forward to {name} is up; Ctrl-C ends it");
    }
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                let _ = session.kill().await;
                drop(proxy);
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

/// A free local port, for the tunnel behind the proxy.
async fn free_port() -> Result<u16, CliError> {
    let probe = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .and_then(|l| l.local_addr())
        .map_err(|e| CliError::new(Exit::Failed, format!("no free local port: {e}")))?;
    Ok(probe.port())
}

/// `host:port` of an `https://host:port` URL.
fn host_port(url: &str) -> Result<String, CliError> {
    url.strip_prefix("https://")
        .map(|rest| rest.trim_end_matches('/').to_string())
        .filter(|hp| hp.contains(':'))
        .ok_or_else(|| CliError::new(Exit::Failed, format!("cannot tell Jupyter's address from {url}")))
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
