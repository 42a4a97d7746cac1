//! The events Lambda: EC2 state-change and SSM command status-change events from EventBridge.
//! An error goes back to Lambda as a diagnostic that says whether a retry can help; Lambda's
//! asynchronous retries and dead-letter queue take it from there.

use lambda_runtime::{Diagnostic, Error, LambdaEvent, run, service_fn};
use nbfleet_app::instance_events;
use nbfleet_core::events::Event;
use serde_json::{Value, json};

fn main() -> Result<(), Error> {
    nbfleet_lambdas::start(async {
        let deps = nbfleet_aws::lambda_deps().await?;
        run(service_fn(|event: LambdaEvent<Value>| {
            let deps = &deps;
            async move {
                let event = Event::parse(&event.payload).map_err(|e| nbfleet_http::diagnostic(&e))?;
                let outcome = instance_events::handle(deps, &event).await;
                let outcome = outcome.map_err(|e| nbfleet_http::diagnostic(&e))?;
                Ok::<_, Diagnostic>(json!({ "outcome": format!("{outcome:?}") }))
            }
        }))
        .await
    })
}
