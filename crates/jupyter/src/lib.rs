//! An HTTPS client for a notebook's Jupyter that trusts exactly one certificate: the one whose
//! SHA-256 fingerprint nbfleet recorded at bootstrap. This replaces the tutorial's "click
//! Advanced and proceed": a different certificate is refused, not waved through.
//!
//! Used by the CLI (`nbfleet open`), `make demo` and the end-to-end tests.

pub mod proxy;
pub mod web;

use reqwest::redirect::Policy;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not reach Jupyter at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("Jupyter's certificate has fingerprint {seen}, not the recorded {expected}; refusing to connect")]
    FingerprintMismatch { expected: String, seen: String },
    #[error("login refused (HTTP {0})")]
    LoginRefused(u16),
    #[error("unexpected answer from Jupyter: {0}")]
    Unexpected(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// SHA-256 of a certificate's DER bytes, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// A Jupyter server at `base` (e.g. `https://127.0.0.1:8888`), reached over pinned TLS.
pub struct Jupyter {
    base: String,
    client: reqwest::Client,
    pin: Arc<Pin>,
    /// The `_xsrf` cookie of the session [`login`](Self::login) opened: what a browser echoes
    /// in `X-XSRFToken` on the requests that change something.
    xsrf: Mutex<Option<String>>,
}

impl Jupyter {
    /// A client that accepts only the certificate with this fingerprint.
    pub fn pinned(base: &str, expected_fingerprint: &str) -> Result<Self> {
        Self::build(
            base,
            Some(expected_fingerprint.to_ascii_lowercase().replace(':', "")),
        )
    }

    /// A client for `nbfleet open`'s pinned proxy (`http://127.0.0.1:PORT`): plain HTTP to the
    /// loopback, the proxy pins the certificate behind it.
    pub fn via_proxy(base: &str) -> Result<Self> {
        if !base.starts_with("http://127.0.0.1:") {
            return Err(Error::Unexpected(format!("{base} is not a loopback proxy")));
        }
        Self::build(base, None)
    }

    /// Connects once and returns the fingerprint of the certificate the server presents,
    /// from a real TLS handshake. Trusts nothing: use it to compare, never to pin blindly.
    pub async fn observe_fingerprint(base: &str) -> Result<String> {
        let j = Self::build(base, None)?;
        // Any answer will do: the handshake is what we want.
        j.get("/api/status").await?;
        j.pin
            .seen
            .lock()
            .expect("not poisoned")
            .clone()
            .ok_or_else(|| Error::Unexpected("no certificate seen".into()))
    }

    fn build(base: &str, expected: Option<String>) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let pin = Arc::new(Pin {
            expected,
            seen: Mutex::new(None),
            provider: provider.clone(),
        });
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Unexpected(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(pin.clone())
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .cookie_store(true)
            .redirect(Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| Error::Unexpected(e.to_string()))?;
        Ok(Jupyter {
            base: base.trim_end_matches('/').to_string(),
            client,
            pin,
            xsrf: Mutex::new(None),
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder, path: &str) -> Result<reqwest::Response> {
        req.send().await.map_err(|e| {
            let seen = self.pin.seen.lock().expect("not poisoned").clone();
            match (&self.pin.expected, seen) {
                (Some(expected), Some(seen)) if *expected != seen => Error::FingerprintMismatch {
                    expected: expected.clone(),
                    seen,
                },
                _ => Error::Unreachable {
                    url: format!("{}{path}", self.base),
                    detail: error_chain(&e),
                },
            }
        })
    }

    async fn get(&self, path: &str) -> Result<reqwest::Response> {
        self.send(self.client.get(format!("{}{path}", self.base)), path)
            .await
    }

    /// Logs in with a password through Jupyter's form and XSRF cookie. Ok means Jupyter
    /// answered the POST with a redirect (302), as it does on success.
    pub async fn login(&self, password: &str) -> Result<()> {
        let page = self.get("/login").await?;
        let xsrf = page
            .cookies()
            .find(|c| c.name() == "_xsrf")
            .map(|c| c.value().to_string())
            .ok_or_else(|| Error::Unexpected("GET /login set no _xsrf cookie".into()))?;
        let post = self
            .client
            .post(format!("{}/login", self.base))
            .form(&[("password", password), ("_xsrf", &xsrf)]);
        let status = self.send(post, "/login").await?.status().as_u16();
        if status == 302 {
            *self.xsrf.lock().expect("not poisoned") = Some(xsrf);
            Ok(())
        } else {
            Err(Error::LoginRefused(status))
        }
    }

    /// Saves `content` as the text file `path` (under Jupyter's root) through the contents
    /// API, as JupyterLab's autosave does: with `token`, or with the session of
    /// [`login`](Self::login) (and its XSRF token, as a browser sends it). Answers the HTTP
    /// status.
    pub async fn save_file(&self, token: Option<&str>, path: &str, content: &str) -> Result<u16> {
        let url = format!("{}/api/contents/{}", self.base, path.trim_start_matches('/'));
        let body = serde_json::json!({"type": "file", "format": "text", "content": content});
        let mut req = self.client.put(url).json(&body);
        match token {
            Some(t) => req = req.header("Authorization", format!("token {t}")),
            None => {
                if let Some(xsrf) = self.xsrf.lock().expect("not poisoned").clone() {
                    req = req.header("X-XSRFToken", xsrf);
                }
            }
        }
        Ok(self.send(req, "/api/contents").await?.status().as_u16())
    }

    /// The text file `path` (under Jupyter's root) through the contents API, with `token` or the
    /// session of [`login`](Self::login); `None` when Jupyter has no such file.
    pub async fn read_file(&self, token: Option<&str>, path: &str) -> Result<Option<String>> {
        let url = format!(
            "{}/api/contents/{}?content=1",
            self.base,
            path.trim_start_matches('/')
        );
        let mut req = self.client.get(url);
        if let Some(t) = token {
            req = req.header("Authorization", format!("token {t}"));
        }
        let resp = self.send(req, "/api/contents").await?;
        match resp.status().as_u16() {
            404 => Ok(None),
            200 => {
                let body: Value = resp.json().await.map_err(|e| Error::Unexpected(e.to_string()))?;
                Ok(body["content"].as_str().map(str::to_string))
            }
            other => Err(Error::Unexpected(format!("GET /api/contents answered {other}"))),
        }
    }

    /// `GET /api/status` with the session cookie (after [`login`](Self::login)) or a token.
    /// Answers the HTTP status and, on 200, the JSON body.
    pub async fn status(&self, token: Option<&str>) -> Result<(u16, Value)> {
        let mut req = self.client.get(format!("{}/api/status", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", format!("token {t}"));
        }
        let resp = self.send(req, "/api/status").await?;
        let status = resp.status().as_u16();
        let body = if status == 200 {
            resp.json().await.map_err(|e| Error::Unexpected(e.to_string()))?
        } else {
            Value::Null
        };
        Ok((status, body))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

/// Accepts one certificate by fingerprint (or, observing, records whichever it sees), and still
/// checks the handshake signatures so the peer must hold the certificate's key.
#[derive(Debug)]
struct Pin {
    expected: Option<String>,
    seen: Mutex<Option<String>>,
    provider: Arc<CryptoProvider>,
}

/// Whether a TLS error is the pin refusing a certificate.
fn refused_by_pin(e: &std::io::Error) -> bool {
    e.to_string().contains("is not the recorded")
}

impl ServerCertVerifier for Pin {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let seen = fingerprint(end_entity.as_ref());
        *self.seen.lock().expect("not poisoned") = Some(seen.clone());
        match &self.expected {
            Some(expected) if *expected != seen => Err(rustls::Error::General(format!(
                "certificate fingerprint {seen} is not the recorded {expected}"
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
