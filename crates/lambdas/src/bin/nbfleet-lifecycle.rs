//! The lifecycle Lambda: start, stop, extend, credential and delete, through the one router.

fn main() -> Result<(), lambda_http::Error> {
    nbfleet_lambdas::start(nbfleet_lambdas::serve_api(nbfleet_http::router::LIFECYCLE))
}
