//! What the six mains share: the API functions (launch, read, lifecycle) are the one router
//! behind API Gateway, and differ only in the routes API Gateway sends them and the IAM role
//! the template gives them.

use lambda_http::{Error, Request, run, service_fn};
use nbfleet_http::{Api, lambda};

/// Serves API Gateway's requests through the one router until Lambda stops the process.
pub async fn serve_api() -> Result<(), Error> {
    let api = Api::new(nbfleet_aws::lambda_deps().await?);
    run(service_fn(|req: Request| async {
        Ok::<_, Error>(lambda::serve(&api, req).await)
    }))
    .await
}
