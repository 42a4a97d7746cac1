//! The read handler: `GET /notebooks` (every record, sorted by name) and
//! `GET /notebooks/{name}` (one record, or 404). Records hold no secret, so any authorised
//! caller may read them.

use lambda_http::{Body, Request, RequestExt, Response};
use nbfleet_core::Result;
use nbfleet_core::ports::Deps;
use nbfleet_core::validate::validate_name;
use serde_json::{Value, json};

/// `GET /notebooks/{name}`.
pub async fn get(deps: &Deps, name: &str) -> Result<(u16, Value)> {
    validate_name(name)?;
    let nb = deps.store.require(name).await?;
    let mut answer = view(deps, &nb);
    let history = deps.store.history(name).await?;
    answer["history"] = json!(history[history.len().saturating_sub(20)..]);
    Ok((200, answer))
}

/// A record as the API shows it: the record itself plus its cost to date.
pub fn view(deps: &Deps, nb: &nbfleet_core::Notebook) -> Value {
    json!({ "notebook": nb, "cost": nb.cost(&deps.cfg.prices, deps.clock.now()) })
}

/// `GET /notebooks`.
pub async fn list(deps: &Deps) -> Result<(u16, Value)> {
    let views: Vec<Value> = deps.store.list().await?.iter().map(|nb| view(deps, nb)).collect();
    Ok((200, json!({ "notebooks": views })))
}

/// The Lambda's answer to an HTTP API request.
pub async fn handle_http(deps: &Deps, req: Request) -> Response<Body> {
    if let Err(e) = nbfleet_http::iam_principal(&req) {
        return nbfleet_http::error(&e);
    }
    let result = match req.path_parameters_ref().and_then(|p| p.first("name")) {
        Some(name) => get(deps, name).await,
        None => list(deps).await,
    };
    nbfleet_http::respond(result)
}
