//! The local stack: nbfleet's handlers against moto, with instance scripts executed on this
//! machine by the [`runner`].

pub mod runner;
