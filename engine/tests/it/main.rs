//! The engine's integration tests, one binary so the crate links once.
//! Add a `mod` line per area.

mod common;
mod search;
mod store;
