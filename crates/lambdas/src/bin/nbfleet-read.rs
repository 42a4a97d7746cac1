//! The read Lambda: `GET /notebooks` and `GET /notebooks/{name}`, through the one router.

use lambda_http::{Error, Request, run, service_fn};
use nbfleet_http::{Api, lambda};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let api = Api::new(nbfleet_aws::lambda_deps().await?);
    run(service_fn(|req: Request| async {
        Ok::<_, Error>(lambda::serve(&api, req).await)
    }))
    .await
}
