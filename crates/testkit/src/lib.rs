//! Test support for nbfleet: fakes of the ports that behave like the real adapters, and the
//! contract suites that hold fakes and adapters to the same behaviour.
//!
//! Dev-only: other crates take it as a `[dev-dependencies]` entry. It is never a dependency of
//! a Lambda, so nothing here reaches a deployed binary.

pub mod api;
pub mod memory_store;
pub mod store_contract;

pub use memory_store::MemoryStore;
