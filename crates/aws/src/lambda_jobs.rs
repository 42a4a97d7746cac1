//! The Jobs port as an asynchronous self-invocation (`InvocationType::Event`): the function
//! answers first, and a fresh invocation of itself does the slow work. Lambda queues the event
//! and retries it per the function's EventInvokeConfig.

use crate::errors;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use nbfleet_core::Result;
use nbfleet_core::ports::Jobs;

pub struct LambdaJobs {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl LambdaJobs {
    /// Jobs for `function` (the running function's own name, `AWS_LAMBDA_FUNCTION_NAME`).
    pub fn new(client: aws_sdk_lambda::Client, function: impl Into<String>) -> Self {
        LambdaJobs {
            client,
            function: function.into(),
        }
    }
}

#[async_trait::async_trait]
impl Jobs for LambdaJobs {
    async fn submit(&self, job: &serde_json::Value) -> Result<()> {
        self.client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(job.to_string()))
            .send()
            .await
            .map_err(|e| errors::map(e, "hand a job to the function itself"))?;
        Ok(())
    }
}
