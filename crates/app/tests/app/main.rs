//! The use cases (`nbfleet-app`) against moto and the fakes, in one test binary (one link of
//! the SDK): a module per use case.

mod check;
mod cleanup;
mod costs;
mod credential;
mod delete;
mod hooks;
mod identity;
mod launch;
mod launch_faults;
mod lifecycle;
mod modify;
mod reconcile;
mod slack;
mod snapshots;
mod sweep;
