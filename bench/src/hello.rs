//! The physical limit for the cold-start rows of `make bench`: a Rust Lambda with
//! lambda_runtime, tokio and serde_json and nothing else, built the same way as nbfleet's
//! functions (cargo lambda, release). What it takes to start is what no Rust function can beat;
//! each handler's cold start is reported as a ratio to it.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
