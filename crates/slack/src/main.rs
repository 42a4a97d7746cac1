//! The Slack Lambda: `/notebook` requests from API Gateway, and the jobs it queues for itself.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use nbfleet_aws::lambda_jobs::LambdaJobs;
use nbfleet_aws::slack_webhook::ResponseUrl;
use nbfleet_slack::{JOB_KEY, Job, SlackHttp, gateway_response, run_job, signing_secret, slash};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (clients, deps) = nbfleet_aws::lambda_setup().await?;
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME")?;
    let jobs = LambdaJobs::new(clients.lambda.clone(), function);
    let responder = ResponseUrl::default();
    let secret: OnceCell<Vec<u8>> = OnceCell::new();
    run(service_fn(|event: LambdaEvent<Value>| {
        let (deps, jobs, responder, secret) = (&deps, &jobs, &responder, &secret);
        async move {
            if let Some(job) = event.payload.get(JOB_KEY) {
                let job: Job = serde_json::from_value(job.clone())?;
                // Not retried: the work may be done, and a lost answer is only logged.
                if let Err(e) = run_job(deps, responder, &job).await {
                    tracing::warn!(error = %e, "Slack job: failed or its answer did not reach response_url");
                }
                return Ok::<_, Error>(json!({ "done": true }));
            }
            let req = match SlackHttp::from_gateway(&event.payload) {
                Ok(r) => r,
                Err(e) => {
                    return Ok(gateway_response(
                        400,
                        &json!({"error": {"message": e.to_string()}}),
                    ));
                }
            };
            // Read from Parameter Store once per process, when first needed.
            let secret = secret.get_or_try_init(|| signing_secret(deps)).await?;
            let (status, body) = slash(deps, jobs, secret, &req).await;
            Ok(gateway_response(status, &body))
        }
    }))
    .await
}
