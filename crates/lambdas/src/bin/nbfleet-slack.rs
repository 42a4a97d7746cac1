//! The Slack Lambda: `/notebook` requests from API Gateway through the one router, and the slow
//! jobs it hands to itself (an asynchronous self-invocation), which answer on `response_url`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use nbfleet_aws::{lambda_jobs::LambdaJobs, slack_webhook::ResponseUrl};
use nbfleet_http::{Api, lambda};
use serde_json::Value;
use std::sync::Arc;

fn main() -> Result<(), Error> {
    nbfleet_lambdas::start(async {
        let (conf, deps) = nbfleet_aws::lambda_setup().await?;
        let lambda = aws_sdk_lambda::Client::new(&conf);
        let jobs = LambdaJobs::new(lambda, std::env::var("AWS_LAMBDA_FUNCTION_NAME")?);
        let (api, responder) = (Api::new(deps).with_jobs(Arc::new(jobs)), ResponseUrl::default());
        run(service_fn(|event: LambdaEvent<Value>| {
            let (api, responder) = (&api, &responder);
            async move { lambda::slack_event(api, responder, &event.payload).await }
        }))
        .await
    })
}
