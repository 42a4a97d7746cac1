//! The launch Lambda: `POST /notebooks`, through the one router.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    nbfleet_lambdas::serve_api().await
}
