//! Test support for nbfleet, one of each: an environment on a moto account with a clock the
//! test moves ([`env`]), a wrapper with hooks on the ports tests watch or break ([`hooks`]),
//! the Run Command stand-in ([`run_command`]), the stack launcher ([`stack`]; its HTTP API and
//! `wait_for` are `nbfleet_local::harness::Api`), the use cases' answers as the router gives
//! them ([`api`]), and an in-memory `Store` ([`memory_store`]) held to DynamoDB's semantics by
//! one contract suite ([`store_contract`]).
//!
//! Dev-only: other crates take it as a `[dev-dependencies]` entry. It is never a dependency of
//! a Lambda, so nothing here reaches a deployed binary.

pub mod api;
pub mod env;
pub mod hooks;
pub mod memory_store;
pub mod run_command;
pub mod stack;
pub mod store_contract;

pub use env::{Env, OWNER};
pub use memory_store::MemoryStore;
pub use run_command::RunCommand;
