//! nbfleet's use cases, in one SDK-free layer: each takes typed input and the ports
//! ([`Deps`]), decides through `nbfleet-core`, acts through the ports, and returns a typed
//! result. No AWS SDK, no HTTP, no Slack wire format here: the edges (`nbfleet-http`, the
//! Lambda mains, the local stack) turn requests into calls and results into answers.
//!
//! Each use case reads the clock once, at its start, and passes `now` down.
//!
//! - [`launch`]: `POST /notebooks`
//! - [`lifecycle`]: start, stop, delete, extend
//! - [`modify`]: `PATCH /notebooks/{name}`: settings, disk size, instance type
//! - [`credential`]: a new token or password, taken by the running Jupyter
//! - [`hooks`]: the owner's pre-stop and on-start hooks
//! - [`read`]: one notebook or all, with cost and history; the instance types on offer
//! - [`check`]: the idle probe on demand, and what the sweep would decide
//! - [`costs`]: spend per owner or notebook, day by day, and what automatic stops saved
//! - [`snapshots`]: the disks kept by delete: list, delete, restore from
//! - [`instance_events`]: EC2 state changes and SSM command results
//! - [`cleanup`]: notebooks stopped for long and old snapshots (the sweep, hourly)
//! - [`sweep`]: the scheduled round: [`reconcile`], [`deadlines`], probe, warn, stop, start,
//!   each phase within its [`budget`]
//! - [`slack`]: `/notebook` commands and the jobs they hand over

pub mod budget;
pub mod check;
pub mod cleanup;
pub mod costs;
pub mod credential;
pub mod deadlines;
pub mod hooks;
pub mod instance_events;
pub mod launch;
pub mod lifecycle;
pub mod modify;
pub mod read;
pub mod reconcile;
pub mod slack;
pub mod snapshots;
pub mod sweep;

pub use nbfleet_core::ports::Deps;
