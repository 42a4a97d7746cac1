//! nbfleet's pure core: the notebook record, its state machine and transition table,
//! validation, credentials, configuration, and the ports the adapters implement.
//!
//! Nothing here talks to AWS, reads a file or the clock, or draws random numbers: callers pass
//! time and randomness in. That keeps every decision testable and this crate quick to build.

pub mod blocks;
pub mod config;
pub mod cost;
pub mod error;
pub mod events;
pub mod gpu;
pub mod identity;
pub mod idle;
pub mod modify;
pub mod password;
pub mod ports;
pub mod reconcile;
pub mod record;
pub mod report;
pub mod schedule;
pub mod scripts;
pub mod slack;
pub mod state;
pub mod text;
pub mod transitions;
pub mod validate;

pub use config::Config;
pub use error::{Error, Result};
pub use record::{Expect, Notebook};
pub use state::State;
