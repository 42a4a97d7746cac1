//! The nbfleet HTTP API from the terminal: where it is, how requests are authorised (SigV4 with
//! the standard AWS credential chain; the local stack takes a user name), and what an answer
//! means, as an exit code.

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use serde_json::Value;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// Distinct exit codes, so scripts can tell failures apart (documented in `nbfleet --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: anything not below (a failed notebook, a mismatched certificate, a missing tool).
    Failed = 1,
    /// 2: bad input (a usage error, or the API's 400/413).
    BadInput = 2,
    /// 3: no such notebook (404).
    NotFound = 3,
    /// 4: not possible in the notebook's state, or a lost race (409).
    Conflict = 4,
    /// 5: not authorised (401/403), or no AWS credentials.
    Auth = 5,
    /// 6: AWS or the API is unavailable or throttling (429, 5xx, network).
    Upstream = 6,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// An error to tell the user, with its exit code.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> CliError {
        CliError {
            exit,
            message: message.into(),
        }
    }
}

enum Auth {
    /// The local stack: the caller is named by a header.
    Local { user: String },
    /// A deployed API: SigV4 for `execute-api` in `region`.
    Iam {
        credentials: SharedCredentialsProvider,
        region: String,
    },
}

pub struct Api {
    base: String,
    http: reqwest::Client,
    auth: Auth,
}

/// The API is reached over HTTPS only: the requests carry SigV4 signatures and the answers
/// carry tokens. Plain HTTP is for the local stack (`--local`), on this machine.
pub fn check_api_url(base: &str) -> Result<(), CliError> {
    let url = reqwest::Url::parse(base).ok();
    let loopback = |u: &reqwest::Url| {
        let host = u.host_str().unwrap_or_default();
        let ip = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost" || ip.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    };
    // Parsed, not matched by prefix: `http://127.0.0.1:1@evil.example` is a host of its own.
    let ok = url.as_ref().is_some_and(|u| {
        u.username().is_empty()
            && u.password().is_none()
            && (u.scheme() == "https" || (u.scheme() == "http" && loopback(u)))
    });
    if ok {
        Ok(())
    } else {
        Err(CliError::new(
            Exit::BadInput,
            format!(
                "the API URL {base:?} is not an https:// URL without a user name: nbfleet's API is reached over HTTPS only (plain HTTP only to the local stack on this machine)"
            ),
        ))
    }
}

impl Api {
    /// The local stack at `base` (`http://127.0.0.1:9000`), acting as `user`.
    pub fn local(base: &str, user: &str) -> Api {
        Api {
            base: base.trim_end_matches('/').to_string(),
            http: nbfleet_jupyter::web::web_client(Duration::from_secs(30)),
            auth: Auth::Local { user: user.into() },
        }
    }

    /// A deployed API, with credentials from the standard AWS chain (environment, profile, SSO,
    /// instance role).
    pub async fn deployed(base: &str) -> Result<Api, CliError> {
        check_api_url(base)?;
        let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let credentials = conf.credentials_provider().ok_or_else(|| {
            CliError::new(
                Exit::Auth,
                "no AWS credentials found (aws configure, or AWS_PROFILE)",
            )
        })?;
        let region = crate::sigv4::region_of(base)
            .or_else(|| conf.region().map(|r| r.to_string()))
            .ok_or_else(|| CliError::new(Exit::BadInput, "cannot tell the API's region; set AWS_REGION"))?;
        Ok(Api {
            base: base.trim_end_matches('/').to_string(),
            http: nbfleet_jupyter::web::web_client(Duration::from_secs(30)),
            auth: Auth::Iam { credentials, region },
        })
    }

    pub fn is_local(&self) -> bool {
        matches!(self.auth, Auth::Local { .. })
    }

    /// One request; a non-2xx answer is a [`CliError`] with the API's message and the exit code
    /// its status means.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base);
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("a valid method");
        let mut req = self
            .http
            .request(m, &url)
            .header("content-type", "application/json");
        match &self.auth {
            Auth::Local { user } => req = req.header("x-nbfleet-user", user),
            Auth::Iam { credentials, region } => {
                let creds = credentials
                    .provide_credentials()
                    .await
                    .map_err(|e| CliError::new(Exit::Auth, format!("AWS credentials: {e}")))?;
                let host = url
                    .split("://")
                    .nth(1)
                    .and_then(|r| r.split('/').next())
                    .unwrap_or_default();
                let unsigned = crate::sigv4::Unsigned {
                    method,
                    url: &url,
                    headers: &[("host", host), ("content-type", "application/json")],
                    body: &bytes,
                };
                let headers =
                    crate::sigv4::headers(&creds, region, "execute-api", &unsigned, SystemTime::now())
                        .map_err(|e| CliError::new(Exit::Failed, e))?;
                for (k, v) in headers {
                    req = req.header(k, v);
                }
            }
        }
        let answer = req.body(bytes).send().await.map_err(|e| {
            CliError::new(
                Exit::Upstream,
                format!("cannot reach {}: {}", self.base, e.without_url()),
            )
        })?;
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let message = value["error"]["message"]
            .as_str()
            .or(value["message"].as_str())
            .map_or_else(|| format!("HTTP {status}"), str::to_string);
        let exit = match status {
            400 | 413 => Exit::BadInput,
            401 | 403 => Exit::Auth,
            404 => Exit::NotFound,
            409 => Exit::Conflict,
            429 | 500..=599 => Exit::Upstream,
            _ => Exit::Failed,
        };
        Err(CliError::new(exit, message))
    }
}

#[cfg(test)]
mod tests {
    use super::check_api_url;

    #[test]
    fn plain_http_goes_only_to_this_machine_and_a_user_name_cannot_dress_a_host_up_as_it() {
        for ok in [
            "https://abc123.execute-api.us-east-1.amazonaws.com",
            "http://127.0.0.1:9000",
            "http://localhost:9000/",
            "http://[::1]:9000",
        ] {
            assert!(check_api_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://abc123.execute-api.us-east-1.amazonaws.com",
            "http://127.0.0.1:1@evil.example",
            "http://localhost:9000@evil.example/",
            "https://me:secret@abc123.execute-api.us-east-1.amazonaws.com",
            "http://127.0.0.1.evil.example:9000",
            "ftp://127.0.0.1:9000",
            "not a url",
        ] {
            assert!(check_api_url(bad).is_err(), "{bad}");
        }
    }
}
