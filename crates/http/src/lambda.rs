//! API Gateway (HTTP API, payload 2.0) in and out: a `lambda_http` request or a raw event
//! becomes an [`ApiRequest`] for the one router, and an [`Answer`] becomes the response.
//! The caller is the IAM principal API Gateway verified from the SigV4 signature; a request
//! without one is refused by the router.

use crate::answer::{Answer, diagnostic};
use crate::router::{Api, ApiRequest, Caller, dispatch};
use base64::Engine as _;
use lambda_http::http::{HeaderMap, HeaderName, HeaderValue, Method};
use lambda_http::lambda_runtime::Diagnostic;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use nbfleet_app::slack::{Job, run_job};
use nbfleet_core::ports::Responder;
use nbfleet_core::{Error, Result};
use serde_json::{Value, json};

/// The caller's IAM principal (ARN and unique id), from the SigV4-authorised HTTP API request
/// context.
pub fn iam_principal(req: &Request) -> Option<Caller> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            let iam = ctx.authorizer.as_ref()?.iam.as_ref()?;
            Some(Caller {
                arn: iam.user_arn.clone()?,
                user_id: iam.user_id.clone().unwrap_or_default(),
            })
        }
        _ => None,
    }
}

/// A `lambda_http` request as the router takes it.
pub fn request(req: &Request) -> ApiRequest {
    let body = match req.body() {
        Body::Text(t) => t.as_bytes().to_vec(),
        Body::Binary(b) => b.clone(),
        _ => Vec::new(),
    };
    ApiRequest {
        method: req.method().clone(),
        path: req.uri().path().to_string(),
        query: req.uri().query().map(str::to_string),
        headers: req.headers().clone(),
        body,
        caller: iam_principal(req),
    }
}

/// An answer as a `lambda_http` response.
pub fn response(answer: Answer) -> Response<Body> {
    Response::builder()
        .status(answer.status)
        .header("content-type", "application/json")
        .body(Body::Text(answer.text()))
        .expect("status and header are valid")
}

/// A raw API Gateway event (the Slack function takes raw events, since its own jobs arrive the
/// same way) as the router takes it. Header names are lower-cased by API Gateway, and the body
/// arrives base64-encoded when `isBase64Encoded` says so.
pub fn request_from_event(event: &Value) -> Result<ApiRequest> {
    let http = &event["requestContext"]["http"];
    let method = http["method"]
        .as_str()
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or_else(|| Error::bad_request("requestContext.http.method", "is missing"))?;
    let mut headers = HeaderMap::new();
    for (k, v) in event["headers"].as_object().into_iter().flatten() {
        if let (Ok(k), Some(Ok(v))) = (
            HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()),
            v.as_str().map(HeaderValue::from_str),
        ) {
            headers.insert(k, v);
        }
    }
    let raw = event["body"].as_str().unwrap_or_default();
    let body = if event["isBase64Encoded"].as_bool() == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| Error::bad_request("body", "is not valid base64"))?
    } else {
        raw.as_bytes().to_vec()
    };
    Ok(ApiRequest {
        method,
        path: event["rawPath"].as_str().unwrap_or_default().to_string(),
        query: event["rawQueryString"]
            .as_str()
            .filter(|q| !q.is_empty())
            .map(str::to_string),
        headers,
        body,
        caller: {
            let iam = &event["requestContext"]["authorizer"]["iam"];
            iam["userArn"].as_str().map(|arn| Caller {
                arn: arn.to_string(),
                user_id: iam["userId"].as_str().unwrap_or_default().to_string(),
            })
        },
    })
}

/// An answer as an API Gateway (payload 2.0) response event.
pub fn response_event(answer: &Answer) -> Value {
    json!({
        "statusCode": answer.status,
        "headers": {"content-type": "application/json"},
        "body": answer.text(),
    })
}

/// What the Slack function answers to one raw event: a job it handed itself is run (and
/// answers on its `response_url`); anything else is an API Gateway request for the router.
///
/// A job that fails (or whose answer does not reach Slack) is the function's error, so that it
/// shows in its metrics and alarms; Lambda's retry of it does nothing, since a job is taken once.
pub async fn slack_event(api: &Api, responder: &dyn Responder, payload: &Value) -> Result<Value, Diagnostic> {
    if let Some(job) = Job::from_payload(payload) {
        let done = async { run_job(&api.deps, responder, api.slack_secret().await?, &job?).await }.await;
        return done.map(|()| json!({ "done": true })).map_err(|e| diagnostic(&e));
    }
    let answer = match request_from_event(payload) {
        Ok(req) => dispatch(api, &req).await,
        Err(e) => Answer::error(&e),
    };
    Ok(response_event(&answer))
}

/// An API Lambda's answer to one request, through the one router.
pub async fn serve(api: &Api, req: Request) -> Response<Body> {
    response(dispatch(api, &request(&req)).await)
}
