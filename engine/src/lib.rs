//! KMT's engine: the domain model, the store (Postgres or embedded SQLite),
//! the full-text index and the importers. It never speaks HTTP.

pub mod articles;
pub mod audit_ship;
pub mod auth;
pub mod backup;
pub mod embed;
pub mod error;
pub mod import;
pub mod jobs;
pub mod model;
pub mod notify;
pub mod prompts;
pub mod recommend;
pub mod rules;
pub mod search;
pub mod sessions;
pub mod snapshot;
pub mod store;
#[cfg(any(test, feature = "testutil"))]
pub mod testutil;
pub mod usage;
pub mod users;
pub mod vector;
pub mod workflow;

pub use error::{Error, ErrorKind, Result};
