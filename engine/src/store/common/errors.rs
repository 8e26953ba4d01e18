//! Error mapping and messages: unique (and foreign-key) violations to
//! conflicts (and not-found), not-found
//! and corrupt-row errors, and parsing of stored enum values.

use crate::error::{Error, Result};
use crate::model::{ArticleId, Status, TaskKind, TaskStatus};

/// Maps a unique violation to `Conflict(msg())`, anything else to a
/// database error.
pub(in crate::store) fn unique_or(e: sqlx::Error, msg: impl FnOnce() -> String) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict(msg()),
        _ => e.into(),
    }
}

/// Maps a unique violation on an article write to the slug conflict.
pub(in crate::store) fn conflict_or(e: sqlx::Error, slug: &str) -> Error {
    unique_or(e, || format!("slug {slug:?} is already used"))
}

/// Maps a unique violation on an import batch's writes to the slug conflict
/// (which slug is not known).
pub(in crate::store) fn batch_conflict_or(e: sqlx::Error) -> Error {
    unique_or(e, || "a slug in the batch is already used".into())
}

/// Maps a unique violation on a user insert to the username conflict.
pub(in crate::store) fn username_conflict_or(e: sqlx::Error, username: &str) -> Error {
    unique_or(e, || format!("username {username:?} is already used"))
}

/// Maps a unique violation on a token insert to the token conflict.
pub(in crate::store) fn token_conflict_or(e: sqlx::Error) -> Error {
    unique_or(e, || "this token is already registered".into())
}

/// Maps a foreign-key violation on a session insert to the user's
/// `NotFound` (the user is gone) and a unique violation to a conflict.
pub(in crate::store) fn session_conflict_or(e: sqlx::Error, username: &str) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => user_not_found(username),
        _ => unique_or(e, || "this session is already registered".into()),
    }
}

/// `NotFound` for an article id.
pub(in crate::store) fn article_not_found(id: ArticleId) -> Error {
    Error::NotFound(format!("article {id}"))
}

/// `NotFound` for a username.
pub(in crate::store) fn user_not_found(username: &str) -> Error {
    Error::NotFound(format!("user {username}"))
}

/// The error for an insert that returned no id (never expected).
pub(in crate::store) fn no_id() -> Error {
    Error::Corrupt("insert returned no id".into())
}

/// Parses a stored status.
pub(in crate::store) fn parse_status(s: &str) -> Result<Status> {
    s.parse()
        .map_err(|_| Error::Corrupt(format!("unknown stored status {s:?}")))
}

/// Parses a stored task kind.
pub(in crate::store) fn parse_task_kind(s: &str) -> Result<TaskKind> {
    [TaskKind::Review, TaskKind::Update]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| Error::Corrupt(format!("unknown stored task kind {s:?}")))
}

/// Parses a stored task status.
pub(in crate::store) fn parse_task_status(s: &str) -> Result<TaskStatus> {
    [TaskStatus::Open, TaskStatus::Done]
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| Error::Corrupt(format!("unknown stored task status {s:?}")))
}
