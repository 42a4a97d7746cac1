//! The HTTP edge of nbfleet, the only place that knows HTTP: one route table and one router
//! ([`router`]) serve the API Lambdas and the local stack alike; one mapping ([`answer`]) turns
//! a use case's typed result or a core error into a status and a JSON body, and a core error
//! into a Lambda diagnostic for the asynchronous functions; [`lambda`] adapts API Gateway's
//! requests to the router.
//!
//! Error bodies are `{"error": {"code", "message"}}`. Internal details are logged here, once,
//! and never returned.

pub mod answer;
pub mod lambda;
pub mod router;

pub use answer::{Answer, diagnostic};
pub use router::{Api, ApiRequest, Caller, Route, dispatch};
