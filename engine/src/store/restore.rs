//! Whole-knowledge-base restore: writing a backup's records into an empty
//! store with their ids, in one transaction.
//!
//! The backup logic (file format, validation, progress) lives in
//! [`crate::backup`]; this module only writes rows. A restore bypasses the
//! per-change audit and version bookkeeping on purpose: the versions are
//! restored as they were, and the import itself is audited once
//! (`kb.import`). Each restored article gets an `upsert` outbox row, so
//! every follower indexes it: the index needs nothing else after a restore.

use std::collections::BTreeMap;

use super::{PgStore, SqliteStore, Store};
use crate::backup::format::Line;
use crate::error::Result;
use crate::model::Task;

pub(super) use super::postgres::restore::PgRestore;
pub(super) use super::sqlite::restore::SqliteRestore;

/// The tables a backup covers, in the order their counts are reported.
/// A restore needs every one of them empty.
pub(in crate::store) const BACKUP_TABLES: [&str; 8] = [
    "users",
    "groups",
    "user_preferences",
    "category_rules",
    "articles",
    "article_versions",
    "article_drafts",
    "tasks",
];

/// An open restore transaction. Nothing is visible until
/// [`Restore::commit`]; dropping it rolls everything back.
pub enum Restore {
    /// Into PostgreSQL.
    Postgres(PgRestore),
    /// Into SQLite.
    Sqlite(SqliteRestore),
}

impl Store {
    /// Rows per backed-up table ([`BACKUP_TABLES`]).
    pub async fn backup_counts(&self) -> Result<BTreeMap<String, i64>> {
        match self {
            Store::Postgres(s) => s.backup_counts().await,
            Store::Sqlite(s) => s.backup_counts().await,
        }
    }

    /// Tasks with id > `after_id`, by id, at most `limit` (the export's
    /// scan: [`Store::list_tasks`] is capped for the API).
    pub async fn scan_tasks(&self, after_id: i64, limit: i64) -> Result<Vec<Task>> {
        match self {
            Store::Postgres(s) => s.scan_tasks(after_id, limit).await,
            Store::Sqlite(s) => s.scan_tasks(after_id, limit).await,
        }
    }

    /// Ids of deleted articles (their versions remain), > `after_id`,
    /// ascending, at most `limit`.
    pub async fn deleted_article_ids(&self, after_id: i64, limit: i64) -> Result<Vec<i64>> {
        match self {
            Store::Postgres(s) => s.deleted_article_ids(after_id, limit).await,
            Store::Sqlite(s) => s.deleted_article_ids(after_id, limit).await,
        }
    }

    /// Begins a restore: one write transaction holding the writers' lock.
    pub async fn begin_restore(&self) -> Result<Restore> {
        Ok(match self {
            Store::Postgres(s) => Restore::Postgres(PgStore::begin_restore(s).await?),
            Store::Sqlite(s) => Restore::Sqlite(SqliteStore::begin_restore(s).await?),
        })
    }
}

impl Restore {
    /// Writes one record (headers and trailers are ignored).
    pub async fn write(&mut self, line: &Line) -> Result<()> {
        match self {
            Restore::Postgres(r) => r.write(line).await,
            Restore::Sqlite(r) => r.write(line).await,
        }
    }

    /// Fixes id sequences, appends the `kb.import` audit row (`details`)
    /// and commits; followers are woken to index the restored articles.
    pub async fn commit(self, actor: &str, details: serde_json::Value) -> Result<()> {
        match self {
            Restore::Postgres(r) => r.commit(actor, details).await,
            Restore::Sqlite(r) => r.commit(actor, details).await,
        }
    }
}
