//! The read Lambda: `GET /notebooks` and `GET /notebooks/{name}`, through the one router.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    nbfleet_lambdas::serve_api().await
}
