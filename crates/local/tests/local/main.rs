//! The local stack and what runs on instances (real Jupyter over HTTPS, the scripts under
//! `sh`, bad input through the local router, concurrent requests), in one test binary.

mod bad_input;
mod bootstrap;
mod concurrency;
mod instance;
mod probe;
mod scripts;
