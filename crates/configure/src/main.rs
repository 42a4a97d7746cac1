//! The configure Lambda: EC2 state-change and SSM command status-change events from EventBridge.
//! An error is returned to Lambda, whose async retries and dead-letter queue take it from there.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use nbfleet_aws::Clients;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter("info")
        .without_time()
        .init();
    let cfg = nbfleet_core::config::from_vars(std::env::vars())?;
    let deps = Clients::from_env().await.deps(cfg);
    run(service_fn(|event: LambdaEvent<Value>| {
        let deps = &deps;
        async move {
            let outcome = nbfleet_configure::handle_event(deps, &event.payload).await?;
            Ok::<_, Error>(serde_json::json!({ "outcome": format!("{outcome:?}") }))
        }
    }))
    .await
}
