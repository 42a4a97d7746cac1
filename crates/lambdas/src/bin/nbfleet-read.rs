//! The read Lambda: `GET /notebooks` and `GET /notebooks/{name}`, through the one router.

fn main() -> Result<(), lambda_http::Error> {
    nbfleet_lambdas::start(nbfleet_lambdas::serve_api())
}
