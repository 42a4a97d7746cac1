//! The local stack: nbfleet's handlers against moto, with instance scripts executed on this
//! machine by the [`runner`], in a moto account [`setup`] prepares as the template would.

pub mod runner;
pub mod setup;
