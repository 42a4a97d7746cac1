//! The local stack: nbfleet's handlers against moto, with instance scripts executed on this
//! machine. [`stack`] wires it; [`runner`] runs instance scripts; [`commands`] is the local
//! Run Command; [`watcher`] emits EC2 events; [`setup`] prepares moto as the template would.

pub mod commands;
pub mod harness;
pub mod runner;
pub mod setup;
pub mod stack;
pub mod watcher;
