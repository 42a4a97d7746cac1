//! nbfleet as a system, in one test binary: end to end over the `nbfleet-local` binary
//! ([`e2e`], [`secrets`]), the use cases under AWS faults ([`faults`]), the code held to
//! template.yaml ([`template`], [`iam`]) and the docs' links ([`docs`]). [`world`] is the moto
//! account they share.

mod docs;
mod e2e;
mod faults;
mod iam;
mod offline_checks;
mod secrets;
mod smoke;
mod template;
mod world;
