//! The lifecycle Lambda: start, stop and delete.

use lambda_http::{Error, Request, run, service_fn};
use nbfleet_aws::Clients;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter("info")
        .without_time()
        .init();
    let cfg = nbfleet_core::config::from_vars(std::env::vars())?;
    let deps = Clients::from_env().await.deps(cfg);
    run(service_fn(|req: Request| async {
        Ok::<_, Error>(nbfleet_lifecycle::handle_http(&deps, req).await)
    }))
    .await
}
