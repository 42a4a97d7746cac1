//! The configure Lambda: EC2 state-change and SSM command status-change events from EventBridge.
//! An error is returned to Lambda, whose async retries and dead-letter queue take it from there.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = nbfleet_aws::lambda_deps().await?;
    run(service_fn(|event: LambdaEvent<Value>| {
        let deps = &deps;
        async move {
            let outcome = nbfleet_configure::handle_event(deps, &event.payload).await?;
            Ok::<_, Error>(serde_json::json!({ "outcome": format!("{outcome:?}") }))
        }
    }))
    .await
}
