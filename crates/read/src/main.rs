//! The read Lambda: `GET /notebooks` and `GET /notebooks/{name}`.

use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = nbfleet_aws::lambda_deps().await?;
    run(service_fn(|req: Request| async {
        Ok::<_, Error>(nbfleet_read::handle_http(&deps, req).await)
    }))
    .await
}
