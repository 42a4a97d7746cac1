//! The read Lambda: `GET /notebooks`, `GET /notebooks/{name}` and `GET /orphans`, through the one router.

fn main() -> Result<(), lambda_http::Error> {
    nbfleet_lambdas::start(nbfleet_lambdas::serve_api(nbfleet_http::router::READ))
}
