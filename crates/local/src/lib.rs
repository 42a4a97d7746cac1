//! The local stack: nbfleet's use cases, behind the same router as the Lambdas, against moto,
//! with instance scripts executed on this machine. [`stack`] wires it; [`runner`] runs instance
//! scripts; [`commands`] is the local Run Command; [`watcher`] emits EC2 events; [`setup`]
//! prepares moto as the template would, with the names in [`deployment`]; [`moto`] points the SDK clients at moto;
//! [`harness`] drives a running stack from outside (the demo and the end-to-end tests).

pub mod commands;
pub mod deployment;
pub mod harness;
pub mod moto;
pub mod runner;
pub mod setup;
pub mod slack_outbox;
pub mod stack;
pub mod watcher;
