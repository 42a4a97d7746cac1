//! The one error type of nbfleet, and how it maps to HTTP. Every edge (HTTP API, Slack, Lambda
//! diagnostics) maps from here, so a given failure answers the same way everywhere.
//!
//! Messages are written for the user. They never carry secrets, SDK internals or stack traces:
//! `Internal` keeps its detail for the log and answers with a fixed sentence.

use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Bad input. `field` names what was wrong, as the request spelled it.
    #[error("{field}: {message}")]
    BadRequest { field: String, message: String },
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request does not fit the notebook's state, or a concurrent change won the race.
    #[error("{0}")]
    Conflict(String),
    /// EC2 has no capacity for the request right now; retry later or pick another type.
    #[error("{0}")]
    Capacity(String),
    /// An account limit (instances, vCPUs) was reached; retrying will not help.
    #[error("{0}")]
    Quota(String),
    /// An AWS API throttled us beyond the bounded retries; the request is safe to retry.
    #[error("{0}")]
    Throttled(String),
    /// The owner spent their monthly budget: launches and starts wait for next month.
    #[error("{0}")]
    BudgetExceeded(String),
    /// A dependency is unavailable; the request is safe to retry.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected answer. The detail goes to the log, never to the caller.
    #[error("internal error")]
    Internal(String),
}

impl Error {
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::BadRequest {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Error::Internal(detail.to_string())
    }

    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest { .. } => 400,
            Error::Unauthorized(_) => 401,
            Error::Forbidden(_) | Error::BudgetExceeded(_) => 403,
            Error::NotFound(_) => 404,
            Error::Conflict(_) => 409,
            Error::PayloadTooLarge { .. } => 413,
            Error::Quota(_) => 429,
            Error::Internal(_) => 500,
            Error::Capacity(_) | Error::Throttled(_) | Error::Unavailable(_) => 503,
        }
    }

    /// A stable, machine-readable code for the `error.code` field.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { .. } => "BadRequest",
            Error::PayloadTooLarge { .. } => "PayloadTooLarge",
            Error::Unauthorized(_) => "Unauthorized",
            Error::Forbidden(_) => "Forbidden",
            // As operators' scripts and the issue that asked for it name it.
            Error::BudgetExceeded(_) => "budget_exceeded",
            Error::NotFound(_) => "NotFound",
            Error::Conflict(_) => "Conflict",
            Error::Capacity(_) => "InsufficientCapacity",
            Error::Quota(_) => "QuotaExceeded",
            Error::Throttled(_) => "Throttled",
            Error::Unavailable(_) => "Unavailable",
            Error::Internal(_) => "Internal",
        }
    }

    /// Whether the same request may succeed if simply tried again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Capacity(_) | Error::Throttled(_) | Error::Unavailable(_)
        )
    }

    /// The answer body: `{"error": {"code", "message"}}` (plus `field` for bad input).
    pub fn body(&self) -> Value {
        let mut err = json!({ "code": self.code(), "message": self.to_string() });
        if let Error::BadRequest { field, .. } = self {
            err["field"] = json!(field);
        }
        json!({ "error": err })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_its_http_status() {
        let cases = [
            (Error::bad_request("name", "x"), 400),
            (Error::PayloadTooLarge { limit: 1 }, 413),
            (Error::Unauthorized("x".into()), 401),
            (Error::Forbidden("x".into()), 403),
            (Error::NotFound("x".into()), 404),
            (Error::Conflict("x".into()), 409),
            (Error::Quota("x".into()), 429),
            (Error::Capacity("x".into()), 503),
            (Error::Throttled("x".into()), 503),
            (Error::Unavailable("x".into()), 503),
            (Error::internal("x"), 500),
        ];
        for (err, status) in cases {
            assert_eq!(err.status(), status, "{err:?}");
        }
    }

    #[test]
    fn an_internal_error_never_shows_its_detail() {
        let err = Error::internal("dynamodb said: arn:aws:secret-thing");
        let body = err.body().to_string();
        assert!(!body.contains("secret-thing"), "{body}");
        assert_eq!(err.body()["error"]["message"], "internal error");
    }

    #[test]
    fn a_bad_request_body_names_the_field() {
        let body = Error::bad_request("instance_type", "not allowed").body();
        assert_eq!(body["error"]["code"], "BadRequest");
        assert_eq!(body["error"]["field"], "instance_type");
        assert_eq!(body["error"]["message"], "instance_type: not allowed");
    }

    #[test]
    fn only_upstream_trouble_is_retryable() {
        let x = || "x".to_string();
        let every = [
            (Error::bad_request("f", "m"), false),
            (Error::PayloadTooLarge { limit: 1 }, false),
            (Error::Unauthorized(x()), false),
            (Error::Forbidden(x()), false),
            (Error::NotFound(x()), false),
            (Error::Conflict(x()), false),
            (Error::Capacity(x()), true),
            (Error::Quota(x()), false),
            (Error::Throttled(x()), true),
            (Error::Unavailable(x()), true),
            (Error::Internal(x()), false),
            (Error::BudgetExceeded(x()), false),
        ];
        for (e, retryable) in every {
            // A new variant must be added here: the match makes the compiler say so.
            match e {
                Error::BadRequest { .. }
                | Error::PayloadTooLarge { .. }
                | Error::Unauthorized(_)
                | Error::Forbidden(_)
                | Error::NotFound(_)
                | Error::Conflict(_)
                | Error::Capacity(_)
                | Error::Quota(_)
                | Error::Throttled(_)
                | Error::Unavailable(_)
                | Error::BudgetExceeded(_)
                | Error::Internal(_) => {}
            }
            assert_eq!(e.is_retryable(), retryable, "{e:?}");
        }
    }
}
