//! How results and errors become answers: the status and JSON body of each typed result, the
//! one error mapping, and the Lambda diagnostic for asynchronous functions.

use lambda_http::lambda_runtime::Diagnostic;
use nbfleet_app::credential;
use nbfleet_app::launch::Launched;
use nbfleet_app::lifecycle::Changed;
use nbfleet_app::read::View;
use nbfleet_core::Error;
use nbfleet_core::record::CredentialStatus;
use nbfleet_core::transitions::Effect;
use serde_json::{Value, json};

/// An HTTP answer: a status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn new(status: u16, body: Value) -> Self {
        Answer { status, body }
    }

    /// The body as sent: JSON, or nothing for a `null` body (an acknowledgement).
    pub fn text(&self) -> String {
        match self.body {
            Value::Null => String::new(),
            ref body => body.to_string(),
        }
    }

    /// The answer for a core error. Internal errors are logged with their detail, and only
    /// here; every error is logged once, at the level its status deserves.
    pub fn error(err: &Error) -> Self {
        match err {
            Error::Internal(detail) => tracing::error!(%detail, "internal error"),
            e if e.status() >= 500 => tracing::warn!(error = %e, "request failed"),
            e => tracing::info!(error = %e, "request refused"),
        }
        Answer::new(err.status(), err.body())
    }

    /// The answer for `result`: `ok`'s, or the error's.
    pub fn from<T>(result: nbfleet_core::Result<T>, ok: impl FnOnce(T) -> Answer) -> Self {
        match result {
            Ok(v) => ok(v),
            Err(e) => Answer::error(&e),
        }
    }

    /// 202 with the Launching record and, once, the token.
    pub fn launched(l: Launched) -> Self {
        Answer::new(
            202,
            with_token(json!({ "notebook": l.notebook }), l.token.as_ref()),
        )
    }

    /// A credential change: 202 while the running Jupyter is yet to take it, 200 once stored for
    /// the next start (or settled already); with the new token, once.
    pub fn credential(c: credential::Changed) -> Self {
        let applying = c
            .notebook
            .credential_change
            .as_ref()
            .is_some_and(|ch| ch.status == CredentialStatus::Applying);
        let body = with_token(json!({ "notebook": c.notebook }), c.token.as_ref());
        Answer::new(if applying { 202 } else { 200 }, body)
    }

    /// The request table's status for what was done, with the record as it now stands.
    pub fn changed(c: Changed) -> Self {
        Answer::new(status(c.effect), json!({ "notebook": c.notebook }))
    }

    /// 200 with `body` as it serializes.
    pub fn ok(body: impl serde::Serialize) -> Self {
        Answer::new(200, json!(body))
    }

    pub fn view(v: View) -> Self {
        Answer::new(200, json!(v))
    }

    pub fn views(all: Vec<View>) -> Self {
        Answer::new(200, json!({ "notebooks": all }))
    }

    pub fn orphans(all: Vec<nbfleet_app::read::Orphan>) -> Self {
        Answer::new(200, json!({ "orphans": all }))
    }

    /// A slash command's answer: its reply, ephemeral (Slack shows nothing for other
    /// statuses), or the error's answer (401 for a request that fails verification).
    pub fn slack_reply(result: nbfleet_core::Result<Value>) -> Self {
        Answer::from(result, |message| Answer::new(200, message))
    }
}

/// `body` with `token`, if there is one, and the note that it is shown only this once.
fn with_token(mut body: Value, token: Option<&nbfleet_core::password::Secret>) -> Value {
    if let Some(token) = token {
        body["token"] = json!(token.expose());
        body["token_note"] =
            json!("shown once: nbfleet keeps only the encrypted copy on the instance's secret");
    }
    body
}

/// The status of a request table cell: 202 for a move under way, 200 for done or nothing to do,
/// 409 for a refusal.
pub fn status(effect: Effect) -> u16 {
    match effect {
        Effect::Move(_) => 202,
        Effect::Apply | Effect::NoOp => 200,
        Effect::Refuse => 409,
    }
}

/// What an asynchronous Lambda (events, sweep, Slack jobs) returns for a core error: Lambda
/// retries it and, past its retries, sends it to the dead-letter queue. The type says whether a
/// retry can help (`Retryable.Throttled`) or not (`Permanent.Conflict`), so the log, the alarm
/// and the dead letter tell them apart.
pub fn diagnostic(err: &Error) -> Diagnostic {
    let kind = if err.is_retryable() {
        "Retryable"
    } else {
        "Permanent"
    };
    match err {
        Error::Internal(detail) => tracing::error!(%detail, "internal error"),
        e => tracing::warn!(error = %e, retryable = e.is_retryable(), "failed"),
    }
    Diagnostic {
        error_type: format!("{kind}.{}", err.code()),
        error_message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nbfleet_core::State;

    #[test]
    fn each_effect_answers_with_the_status_of_the_request_table() {
        assert_eq!(status(Effect::Move(State::Stopping)), 202);
        assert_eq!(status(Effect::Apply), 200);
        assert_eq!(status(Effect::NoOp), 200);
        assert_eq!(status(Effect::Refuse), 409);
    }

    #[test]
    fn an_error_answers_with_its_status_and_never_its_internal_detail() {
        let a = Answer::error(&Error::internal("dynamodb said arn:aws:secret-thing"));
        assert_eq!(a.status, 500);
        assert!(!a.body.to_string().contains("secret-thing"), "{}", a.body);
        let a = Answer::error(&Error::bad_request("name", "is required"));
        assert_eq!((a.status, a.body["error"]["field"].as_str()), (400, Some("name")));
    }

    #[test]
    fn a_diagnostic_says_whether_a_retry_can_help() {
        let d = diagnostic(&Error::Throttled("EC2 throttled".into()));
        assert_eq!(d.error_type, "Retryable.Throttled");
        let d = diagnostic(&Error::Conflict("moved".into()));
        assert_eq!(
            (d.error_type.as_str(), d.error_message.as_str()),
            ("Permanent.Conflict", "moved")
        );
        let d = diagnostic(&Error::internal("secret detail"));
        assert_eq!(
            (d.error_type.as_str(), d.error_message.as_str()),
            ("Permanent.Internal", "internal error")
        );
    }
}
