//! The HTTP edge of the API Lambdas: who is calling (the IAM principal API Gateway verified),
//! and how an answer or a core error becomes an HTTP response. Handlers stay free of HTTP.
//!
//! Error bodies are `{"error": {"code", "message"}}`. Internal details are logged here, once,
//! and never returned.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use nbfleet_core::{Error, Result};
use serde_json::Value;

/// The caller's IAM principal ARN, from the SigV4-authorised HTTP API request context.
pub fn iam_principal(req: &Request) -> Result<String> {
    let arn = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.iam.as_ref())
            .and_then(|iam| iam.user_arn.clone()),
        _ => None,
    };
    arn.filter(|a| !a.is_empty())
        .ok_or_else(|| Error::Unauthorized("the request carries no IAM identity; sign it with SigV4".into()))
}

/// The request body as bytes (API Gateway may hand it over base64-decoded as binary).
pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => b"",
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    }
}

/// A JSON answer with `status`.
pub fn json(status: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .expect("status and header are valid")
}

/// The answer for `result`: its status and body, or the error's.
pub fn respond(result: Result<(u16, Value)>) -> Response<Body> {
    match result {
        Ok((status, body)) => json(status, &body),
        Err(err) => error(&err),
    }
}

/// The answer for a core error. Internal errors are logged with their detail.
pub fn error(err: &Error) -> Response<Body> {
    match err {
        Error::Internal(detail) => tracing::error!(%detail, "internal error"),
        e if e.status() >= 500 => tracing::warn!(error = %e, "request failed"),
        e => tracing::info!(error = %e, "request refused"),
    }
    json(err.status(), &err.body())
}
