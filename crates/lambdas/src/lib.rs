//! What the six mains share: the API functions (launch, read, lifecycle) are the one router
//! behind API Gateway, each serving (and linking) only its own routes, with the IAM role the
//! template gives it.

use lambda_http::{Error, Request, run, service_fn};
use nbfleet_http::router::Handler;
use nbfleet_http::{Api, Route, lambda};
use std::future::Future;

/// Every main starts here, as `#[tokio::main]` would, with one step before it: while the
/// process has one thread, the SDK's TLS roots are pointed at one CA bundle
/// (`nbfleet_aws::tls::use_one_root_bundle`: about 1.5 ms less at a cold start).
pub fn start(main: impl Future<Output = Result<(), Error>>) -> Result<(), Error> {
    // SAFETY: nothing has started a thread yet; the runtime is built below.
    unsafe { nbfleet_aws::tls::use_one_root_bundle() };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(main)
}

/// Serves API Gateway's requests for `routes` (this function's, `nbfleet_http::router::LAUNCH`
/// and the like) through the one router until Lambda stops the process.
pub async fn serve_api(routes: &[(Route, Handler)]) -> Result<(), Error> {
    let api = Api::new(nbfleet_aws::lambda_deps().await?).serving(routes);
    run(service_fn(|req: Request| async {
        Ok::<_, Error>(lambda::serve(&api, req).await)
    }))
    .await
}
