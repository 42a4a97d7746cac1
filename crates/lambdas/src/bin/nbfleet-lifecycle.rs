//! The lifecycle Lambda: start, stop, extend and delete, through the one router.

fn main() -> Result<(), lambda_http::Error> {
    nbfleet_lambdas::start(nbfleet_lambdas::serve_api())
}
