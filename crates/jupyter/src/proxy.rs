//! `nbfleet open`'s loopback proxy: the browser speaks plain HTTP to 127.0.0.1, and the proxy
//! speaks TLS to Jupyter (through the SSM tunnel, or directly in cidr mode), accepting only the
//! certificate nbfleet recorded at bootstrap. The browser never sees Jupyter's self-signed
//! certificate, so there is no warning to click through, and the password or token never crosses
//! a connection that is not pinned.
//!
//! It relays bytes, not requests: WebSockets (kernels, terminals) pass through as they are. Every
//! connection makes its own handshake and is checked on its own, so a tunnel that reconnects to
//! something else is refused at once. A refused connection gets a 502 page that says why.

use crate::{Pin, refused_by_pin};
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

/// A running proxy; it stops when dropped.
pub struct PinnedProxy {
    /// Where the browser goes: `http://{local}/`.
    pub local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PinnedProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PinnedProxy {
    /// Listens on `listen` (port 0: any free port) and relays each connection to `upstream`
    /// (`host:port` of Jupyter's TLS listener) over TLS pinned to `expected_fingerprint`.
    pub async fn start(
        listen: SocketAddr,
        upstream: String,
        expected_fingerprint: &str,
    ) -> std::io::Result<PinnedProxy> {
        let listener = TcpListener::bind(listen).await?;
        let local = listener.local_addr()?;
        let connector = connector(expected_fingerprint).map_err(std::io::Error::other)?;
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let (connector, upstream) = (connector.clone(), upstream.clone());
                tokio::spawn(relay(inbound, connector, upstream));
            }
        });
        Ok(PinnedProxy { local, task })
    }
}

fn connector(expected: &str) -> Result<TlsConnector, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let pin = Arc::new(Pin {
        expected: Some(expected.to_ascii_lowercase().replace(':', "")),
        seen: Default::default(),
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(pin)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn relay(mut inbound: TcpStream, connector: TlsConnector, upstream: String) {
    let host = upstream.rsplit_once(':').map_or(upstream.as_str(), |(h, _)| h);
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
        .unwrap_or_else(|_| ServerName::try_from("localhost").expect("a valid name"));
    let tls = match TcpStream::connect(&upstream).await {
        Ok(tcp) => connector.connect(name, tcp).await,
        Err(e) => Err(e),
    };
    match tls {
        Ok(mut tls) => {
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut tls).await;
        }
        Err(e) => {
            let why = match refused_by_pin(&e) {
                true => {
                    format!("nbfleet refused Jupyter: {e}. Someone may be in the middle; nothing was sent.")
                }
                false => format!("nbfleet could not reach Jupyter at {upstream}: {e}"),
            };
            let page = format!(
                "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{why}",
                why.len()
            );
            let _ = inbound.write_all(page.as_bytes()).await;
            let _ = inbound.shutdown().await;
        }
    }
}
