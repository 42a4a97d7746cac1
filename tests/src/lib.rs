//! End-to-end tests of nbfleet live in `tests/`: they start the `nbfleet-local` binary against
//! moto and drive it over HTTP, as a user would.
