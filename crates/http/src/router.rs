//! The one router of nbfleet's HTTP API. The API Lambdas (through [`crate::lambda`]) and the
//! local stack both turn a request into an [`ApiRequest`] and call [`dispatch`]; the only thing
//! the edges do differently is naming the caller: in AWS, the IAM principal API Gateway
//! verified; locally, the `x-nbfleet-user` header.
//!
//! [`ROUTES`] is the API as template.yaml declares it (a template test compares the two).

use crate::answer::Answer;
use lambda_http::http::{HeaderMap, Method};
use nbfleet_app::slack::Signed;
use nbfleet_app::{Deps, check, costs, credential, launch, lifecycle, modify, read, slack, snapshots};
use nbfleet_core::identity::{self, Principal};
use nbfleet_core::ports::Jobs;
use nbfleet_core::validate::{parse_extend, parse_launch};
use nbfleet_core::{Error, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Launch,
    List,
    Get,
    Start,
    Stop,
    Extend,
    Credential,
    Modify,
    Snapshots,
    DeleteSnapshot,
    Costs,
    Types,
    Check,
    Delete,
    Orphans,
    Slack,
    SlackInteractions,
}

/// Every route: method, path template, what it does.
pub const ROUTES: [(Method, &str, Route); 17] = [
    (Method::POST, "/notebooks", Route::Launch),
    (Method::GET, "/notebooks", Route::List),
    (Method::GET, "/notebooks/{name}", Route::Get),
    (Method::POST, "/notebooks/{name}/start", Route::Start),
    (Method::POST, "/notebooks/{name}/stop", Route::Stop),
    (Method::POST, "/notebooks/{name}/extend", Route::Extend),
    (Method::POST, "/notebooks/{name}/credential", Route::Credential),
    (Method::POST, "/notebooks/{name}/check", Route::Check),
    (Method::PATCH, "/notebooks/{name}", Route::Modify),
    (Method::DELETE, "/notebooks/{name}", Route::Delete),
    (Method::GET, "/orphans", Route::Orphans),
    (Method::GET, "/snapshots", Route::Snapshots),
    (Method::GET, "/costs", Route::Costs),
    (Method::GET, "/types", Route::Types),
    (Method::DELETE, "/snapshots/{id}", Route::DeleteSnapshot),
    (Method::POST, "/slack/commands", Route::Slack),
    (Method::POST, "/slack/interactions", Route::SlackInteractions),
];

/// Every route, as `METHOD /path/{name}`.
pub fn routes() -> Vec<String> {
    ROUTES.iter().map(|(m, p, _)| format!("{m} {p}")).collect()
}

/// The route `method` and `path` take, and the parameter in it (`{name}`, `{id}`; empty if
/// none).
pub fn matched(method: &Method, path: &str) -> Option<(Route, String)> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    ROUTES.iter().find_map(|(m, template, route)| {
        let parts: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
        if m != method || parts.len() != segments.len() {
            return None;
        }
        let mut name = String::new();
        for (part, seg) in parts.iter().zip(&segments) {
            match *part {
                p if p.starts_with('{') => name = seg.to_string(),
                p if p == *seg => {}
                _ => return None,
            }
        }
        Some((*route, name))
    })
}

/// What the router serves with: the ports, the routes this function answers, and for the
/// function that serves Slack, the Jobs port Slack hands slow work to and the Slack signing
/// secret, read once when first needed.
pub struct Api {
    pub deps: Deps,
    handlers: Vec<(Route, Handler)>,
    slack: Option<SlackRoute>,
    slack_secret: OnceCell<Vec<u8>>,
}

/// An answer on its way.
type Answering<'a> = Pin<Box<dyn Future<Output = Answer> + Send + 'a>>;

/// How one route is answered: the ports, the request, its verified caller, and the one
/// parameter in its path (`{name}` or `{id}`; empty if none).
pub type Handler = for<'a> fn(&'a Deps, &'a ApiRequest, &'a Principal, &'a str) -> Answering<'a>;

/// `POST /slack/commands`, installed by [`Api::with_jobs`] only: a function that never calls it
/// links none of Slack's request handling (the HTTP functions stay small).
struct SlackRoute {
    jobs: Arc<dyn Jobs>,
    serve: for<'a> fn(&'a Api, &'a ApiRequest, Route, &'a dyn Jobs) -> Answering<'a>,
}

impl Api {
    /// Serves no route yet: add a function's routes with [`Api::serving`].
    pub fn new(deps: Deps) -> Self {
        Api {
            deps,
            handlers: Vec::new(),
            slack: None,
            slack_secret: OnceCell::new(),
        }
    }

    /// Serves `routes` too (one of [`LAUNCH`], [`READ`], [`LIFECYCLE`]).
    pub fn serving(mut self, routes: &[(Route, Handler)]) -> Self {
        self.handlers.extend_from_slice(routes);
        self
    }

    /// Serves every API route (the local stack, the tests): every function at once.
    pub fn serving_all(self) -> Self {
        FUNCTIONS
            .iter()
            .fold(self, |api, (_, routes)| api.serving(routes))
    }

    /// Slack's signing secret, read once.
    pub async fn slack_secret(&self) -> Result<&[u8]> {
        self.slack_secret
            .get_or_try_init(|| slack::signing_secret(&self.deps))
            .await
            .map(Vec::as_slice)
    }

    /// Serves `POST /slack/commands` too, handing slow commands to `jobs`.
    pub fn with_jobs(mut self, jobs: Arc<dyn Jobs>) -> Self {
        self.slack = Some(SlackRoute {
            jobs,
            serve: |api, req, route, jobs| Box::pin(slack_request(api, req, route, jobs)),
        });
        self
    }
}

/// The launch function's routes.
pub const LAUNCH: &[(Route, Handler)] = &[(Route::Launch, |deps, req, caller, _| {
    Box::pin(async move {
        match parse_launch(&req.body, &deps.cfg) {
            Ok(spec) => Answer::from(launch::launch(deps, caller, &spec).await, Answer::launched),
            Err(e) => Answer::error(&e),
        }
    })
})];

/// The read function's routes.
pub const READ: &[(Route, Handler)] = &[
    (Route::List, |deps, _, _, _| {
        Box::pin(async move { Answer::from(read::list(deps).await, Answer::views) })
    }),
    (Route::Get, |deps, _, _, name| {
        Box::pin(async move { Answer::from(read::get(deps, name).await, Answer::view) })
    }),
    (Route::Orphans, |deps, _, caller, _| {
        Box::pin(async move { Answer::from(read::orphans(deps, caller).await, Answer::orphans) })
    }),
    (Route::Snapshots, |deps, _, caller, _| {
        Box::pin(async move { Answer::from(snapshots::list(deps, caller).await, Answer::ok) })
    }),
    (Route::Costs, |deps, req, caller, _| {
        Box::pin(async move {
            let query = nbfleet_core::cost::parse_costs_query(req.query.as_deref(), deps.clock.now());
            match query {
                Ok((since, by)) => Answer::from(costs::report(deps, caller, since, by).await, Answer::ok),
                Err(e) => Answer::error(&e),
            }
        })
    }),
    (Route::Types, |deps, _, _, _| {
        Box::pin(async move { Answer::from(Ok(read::offers(deps)), Answer::ok) })
    }),
];

/// The lifecycle function's routes.
pub const LIFECYCLE: &[(Route, Handler)] = &[
    (Route::Check, |deps, _, caller, name| {
        Box::pin(async move { Answer::from(check::check(deps, caller, name, check::WAIT).await, Answer::ok) })
    }),
    (Route::Start, |deps, _, caller, name| {
        Box::pin(async move { Answer::from(lifecycle::start(deps, caller, name).await, Answer::changed) })
    }),
    (Route::Stop, |deps, req, caller, name| {
        Box::pin(async move {
            let stopped = lifecycle::stop(deps, caller, name, req.flag("hook")).await;
            Answer::from(stopped, Answer::changed)
        })
    }),
    (Route::Extend, |deps, req, caller, name| {
        Box::pin(async move {
            match parse_extend(&req.body) {
                Ok(minutes) => Answer::from(
                    lifecycle::extend(deps, caller, name, minutes).await,
                    Answer::changed,
                ),
                Err(e) => Answer::error(&e),
            }
        })
    }),
    (Route::Credential, |deps, req, caller, name| {
        Box::pin(async move {
            Answer::from(
                credential::change(deps, caller, name, &req.body).await,
                Answer::credential,
            )
        })
    }),
    (Route::Modify, |deps, req, caller, name| {
        Box::pin(async move {
            match nbfleet_core::modify::parse(&req.body, &deps.cfg) {
                Ok(changes) => Answer::from(
                    modify::modify(deps, caller, name, &changes).await,
                    Answer::changed,
                ),
                Err(e) => Answer::error(&e),
            }
        })
    }),
    (Route::DeleteSnapshot, |deps, _, caller, id| {
        Box::pin(async move {
            let deleted = snapshots::delete(deps, caller, id).await;
            Answer::from(deleted, |s| Answer::ok(serde_json::json!({ "deleted": s })))
        })
    }),
    (Route::Delete, |deps, req, caller, name| {
        Box::pin(async move {
            let deleted = lifecycle::delete(deps, caller, name, req.flag("snapshot")).await;
            Answer::from(deleted, Answer::changed)
        })
    }),
];

/// Each API function (by its binary's name) and the routes it serves: API Gateway sends it
/// these and no others (template.yaml; a template test compares the two), and it links only
/// their code.
pub const FUNCTIONS: [(&str, &[(Route, Handler)]); 3] = [
    ("nbfleet-launch", LAUNCH),
    ("nbfleet-read", READ),
    ("nbfleet-lifecycle", LIFECYCLE),
];

/// The routes `function` serves, as `METHOD /path/{name}` (empty for a function that is not an
/// API function).
pub fn routes_of(function: &str) -> Vec<String> {
    let Some((_, served)) = FUNCTIONS.iter().find(|(f, _)| *f == function) else {
        return Vec::new();
    };
    ROUTES
        .iter()
        .filter(|(_, _, r)| served.iter().any(|(s, _)| s == r))
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect()
}

/// One request, as both edges hand it over.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// Who is calling, as the edge established it; `None`: nobody verified.
    pub caller: Option<Caller>,
}

/// A caller as the edge established them: in AWS, what API Gateway verified from the SigV4
/// signature (`userArn`, and `userId`, IAM's unique id, `aws:userid`); locally, a user name as
/// both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub arn: String,
    pub user_id: String,
}

impl ApiRequest {
    /// The principal the verified caller acts as (`nbfleet_core::identity::principal`: refused
    /// when there is none, and in person mode when its role session name is one an SDK made up).
    fn principal(&self, cfg: &nbfleet_core::Config) -> Result<Principal> {
        let (arn, user_id) = self
            .caller
            .as_ref()
            .map_or(("", ""), |c| (c.arn.as_str(), c.user_id.as_str()));
        identity::principal(arn, user_id, cfg.owner_mode, &cfg.admins)
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// A query flag that is on unless the query says `{name}=false`: `DELETE …?snapshot=false`
    /// skips the snapshot, `POST …/stop?hook=false` the pre-stop hook.
    fn flag(&self, name: &str) -> bool {
        let off = format!("{name}=false");
        !self
            .query
            .as_deref()
            .unwrap_or_default()
            .split('&')
            .any(|kv| kv == off)
    }
}

/// Answers one request.
pub async fn dispatch(api: &Api, req: &ApiRequest) -> Answer {
    let path = req.path.trim_end_matches('/');
    let Some((route, name)) = matched(&req.method, path) else {
        return Answer::error(&Error::NotFound(format!("no route for {} {path}", req.method)));
    };
    if matches!(route, Route::Slack | Route::SlackInteractions) {
        return match &api.slack {
            Some(slack) => (slack.serve)(api, req, route, slack.jobs.as_ref()).await,
            None => Answer::error(&Error::internal("this function does not serve Slack")),
        };
    }
    // Every API route is for a verified caller; Slack's requests are verified by signature.
    let caller = match req.principal(&api.deps.cfg) {
        Ok(c) => c,
        Err(e) => return Answer::error(&e),
    };
    match api.handlers.iter().find(|(r, _)| *r == route) {
        Some((_, handler)) => handler(&api.deps, req, &caller, &name).await,
        None => Answer::error(&Error::internal(format!(
            "this function does not serve {} {path}",
            req.method
        ))),
    }
}

/// `POST /slack/commands`: a verified request gets an ephemeral reply (Slack shows nothing for
/// other statuses); one that fails verification gets the 401 of the one error mapping.
/// A slash command (answered with an ephemeral reply) or an interaction (acknowledged with
/// an empty 200: what a click did is posted to its `response_url` by the job).
async fn slack_request(api: &Api, req: &ApiRequest, route: Route, jobs: &dyn Jobs) -> Answer {
    let secret = match api.slack_secret().await {
        Ok(s) => s,
        Err(e) => return Answer::error(&e),
    };
    let signed = Signed {
        timestamp: req.header("x-slack-request-timestamp"),
        signature: req.header("x-slack-signature"),
        body: req.body.clone(),
    };
    match route {
        Route::SlackInteractions => {
            Answer::from(slack::interaction(&api.deps, jobs, secret, &signed).await, |()| {
                Answer::new(200, serde_json::Value::Null)
            })
        }
        _ => Answer::slack_reply(slack::slash(&api.deps, jobs, secret, &signed).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_matches_its_own_method_and_path_only() {
        assert_eq!(
            matched(&Method::POST, "/notebooks"),
            Some((Route::Launch, String::new()))
        );
        assert_eq!(
            matched(&Method::POST, "/notebooks/exp-1/stop"),
            Some((Route::Stop, "exp-1".into()))
        );
        assert_eq!(
            matched(&Method::DELETE, "/notebooks/exp-1"),
            Some((Route::Delete, "exp-1".into()))
        );
        assert_eq!(
            matched(&Method::GET, "/orphans"),
            Some((Route::Orphans, String::new()))
        );
        assert_eq!(matched(&Method::PUT, "/notebooks/exp-1"), None);
        assert_eq!(matched(&Method::POST, "/notebooks/exp-1/reboot"), None);
        assert_eq!(routes().len(), ROUTES.len());
    }
}
