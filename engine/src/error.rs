//! The engine's error type.
//!
//! Variants are split into user errors (the caller can fix the request) and
//! internal errors (a dependency failed). [`Error::kind`] gives the coarse
//! class the API maps to an HTTP status in one table.

/// Everything the engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of the input is invalid; `field` names it, `message` says why.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The offending field, dotted for nested fields (`tags[2]`).
        field: String,
        /// What is wrong with it, phrased for the person who sent it.
        message: String,
    },
    /// Several fields break the category's rules; every fault is listed.
    #[error("{} field(s) break the rules: {}", .0.len(), .0.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    RuleViolations(Vec<FieldFault>),
    /// The request refers to something that does not exist (or that the
    /// caller may not know exists: readers without access see the same).
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the current state (duplicate slug, stale
    /// version).
    #[error("conflict: {0}")]
    Conflict(String),
    /// No or bad credentials.
    #[error("authentication required")]
    Unauthenticated,
    /// The caller is known but lacks the permission named here.
    #[error("permission denied: {0} required")]
    Forbidden(&'static str),
    /// The store (Postgres or SQLite) failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The full-text index failed.
    #[error("index error: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// Opening an index directory failed.
    #[error("index directory error: {0}")]
    IndexDir(#[from] tantivy::directory::error::OpenDirectoryError),
    /// A file could not be read or written.
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    /// Stored JSON could not be decoded (a bug or a corrupted row).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The embedding model failed to load or to run, or the remote
    /// embedding server answered badly.
    #[error("embedding error: {0}")]
    Embedding(String),
    /// The audit bucket (or directory) could not be written or read.
    #[error("audit shipping target error: {0}")]
    ShipTarget(String),
    /// Sending a notification outside the application failed (a webhook
    /// answered badly, the SMTP server refused), or its channel is
    /// misconfigured.
    #[error("delivery error: {0}")]
    Delivery(String),
    /// A line of a backup file is malformed or inconsistent: `file:line:
    /// field: problem`, so the operator can open the file at that line.
    #[error("{file}:{line}: {field}: {problem}")]
    BadRecord {
        /// The backup file.
        file: String,
        /// 1-based line number.
        line: u64,
        /// The offending field (`type` for an unknown record type, `-` for
        /// the line as a whole).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An index snapshot could not be published or restored (a missing or
    /// damaged file, a manifest of another format).
    #[error("snapshot error: {0}")]
    Snapshot(String),
    /// The engine is shutting down or a background task died.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// One field at fault.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldFault {
    /// The field.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Coarse classes of [`Error`], one per HTTP status family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input (422).
    Invalid,
    /// Missing thing (404).
    NotFound,
    /// State conflict (409).
    Conflict,
    /// No credentials (401).
    Unauthenticated,
    /// Not allowed (403).
    Forbidden,
    /// Temporarily unavailable (503).
    Unavailable,
    /// Our fault (500).
    Internal,
}

impl Error {
    /// Shorthand for an [`Error::Invalid`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid { .. } | Error::RuleViolations(_) | Error::BadRecord { .. } => {
                ErrorKind::Invalid
            }
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Unauthenticated => ErrorKind::Unauthenticated,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::Unavailable(_) | Error::ShipTarget(_) => ErrorKind::Unavailable,
            Error::Database(_)
            | Error::Migrate(_)
            | Error::Index(_)
            | Error::IndexDir(_)
            | Error::Io(_)
            | Error::Corrupt(_)
            | Error::Embedding(_)
            | Error::Delivery(_)
            | Error::Snapshot(_) => ErrorKind::Internal,
        }
    }
}

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;
