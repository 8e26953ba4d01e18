//! KMT's indexer: follows the store's outbox and keeps the search index in
//! step with it.
//!
//! The same [`Follower`] runs inside `kmt serve` (each API replica keeps its
//! own index fresh from the outbox, as the embedded default does) and as the
//! `kmt-indexer` binary (the process that, in Postgres deployments, owns the
//! published index and, in later issues, embeddings and snapshots).

pub mod audit_ship;
pub mod embedder;
pub mod error;
pub mod follower;
pub mod jobs;
pub mod snapshot;

pub use error::{Error, Result};
pub use follower::{Follower, FollowerStatus};
