//! The indexer's error type.

/// Everything the indexer can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine (store or index) failed.
    #[error(transparent)]
    Engine(#[from] engine::Error),
    /// A blocking index task panicked or was cancelled.
    #[error("index task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Result alias for the indexer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
