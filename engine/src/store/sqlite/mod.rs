//! The embedded SQLite store ([`SqliteStore`]), the default when no
//! `DATABASE_URL` is given.
//!
//! Write transactions start with `BEGIN IMMEDIATE`, which takes SQLite's
//! write lock up front, so writers are serialised even across processes
//! sharing the file, and outbox seqs commit in order. Within this process an
//! async mutex queues writers first, so they wait on a tokio lock instead of
//! sleeping in SQLite's busy handler. Lists are JSON text; timestamps are
//! RFC 3339 text as written by sqlx's chrono support. The review workflow's
//! writes (working copies, submissions, decisions) follow the same pattern
//! and write new versions through the same helpers as
//! [`SqliteStore::update_article`]. Category rules are versioned rows in
//! `category_rules` (the spec as JSON text); a save reads the category's
//! highest version and inserts the next under the same write lock.
//! Notifications, escalation markers and the `deliveries` outbox work as in
//! the Postgres store (a delivery claim is one `UPDATE … RETURNING` under the
//! write lock), and so do usage events, ratings, feedback and reading
//! assignments (long statements in `sqlite/sql/*.sql`). The
//! rules shared with the Postgres store
//! (validation, batch planning, audit chaining, what a submission or
//! decision changes) live in the private `common` module
//! (`store/common/`).

mod accounts;
mod analytics;
mod articles;
mod deliveries;
mod embeddings;
mod notifications;
mod preferences;
mod requests;
pub(in crate::store) mod restore;
mod shipments;
mod usage;
mod workflow;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

use super::common::{chained_json, signal, PendingAudit};
#[cfg(doc)]
use super::Store;
use crate::error::{Error, Result};
use crate::model::Channels;

/// How often followers re-check: other processes may write the same file.
const POLL: Duration = Duration::from_millis(200);

type Tx = Transaction<'static, Sqlite>;

/// A write transaction and this process's writer slot.
struct Write {
    slot: OwnedMutexGuard<()>,
    tx: Tx,
}

/// The SQLite store: a small connection pool over one database file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    notify: Arc<Notify>,
    /// Queues this process's writers (see the module docs).
    writer: Arc<Mutex<()>>,
    /// The per-user delivery channels notifications enqueue for.
    channels: Channels,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and its parent
    /// directory. WAL lets readers run beside the one writer.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before the write is acknowledged,
            // even across a power cut (NORMAL in WAL mode only survives a
            // process crash). Writes are few and imports batch, so the
            // fsync per commit is cheap.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        let (notify, writer) = (Arc::new(Notify::new()), Arc::new(Mutex::new(())));
        Ok(SqliteStore {
            pool,
            notify,
            writer,
            channels: Channels::default(),
        })
    }

    /// Closes every connection. Later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Applies pending migrations from `migrations/sqlite`.
    pub async fn migrate(&self) -> Result<()> {
        Ok(sqlx::migrate!("../migrations/sqlite")
            .run(&self.pool)
            .await?)
    }

    /// Begins a write transaction holding both this process's writer slot
    /// and SQLite's write lock.
    async fn begin_write(&self) -> Result<Write> {
        let slot = self.writer.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Write { slot, tx })
    }

    /// Appends `entries` to the audit chain, commits and wakes followers.
    /// Nobody is woken when nothing was written (see the Postgres store).
    async fn finish(&self, w: Write, entries: Vec<PendingAudit>) -> Result<()> {
        let Write { slot, mut tx } = w;
        let wrote = !entries.is_empty();
        append_audit(&mut tx, entries).await?;
        tx.commit().await?;
        drop(slot);
        if wrote {
            signal(&self.notify);
        }
        Ok(())
    }

    /// See [`super::Store::change_signal`]. Fired after each write committed
    /// by this process; the poll interval covers other processes.
    pub fn change_signal(&self) -> (Arc<Notify>, Duration) {
        (self.notify.clone(), POLL)
    }
}

/// Appends audit rows chained onto the newest one. `BEGIN IMMEDIATE` holds
/// the write lock, so the chain cannot fork.
async fn append_audit(tx: &mut Tx, entries: Vec<PendingAudit>) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let last = sqlx::query_scalar("SELECT hash FROM audit ORDER BY id DESC LIMIT 1");
    let rows = chained_json(last.fetch_optional(&mut **tx).await?, &entries);
    let sql = "INSERT INTO audit (at, actor, action, target, details, prev_hash, hash) \
               SELECT value ->> 'at', value ->> 'actor', value ->> 'action', \
               value ->> 'target', value -> 'details', value ->> 'prev_hash', value ->> 'hash' \
               FROM json_each(?1) ORDER BY key";
    sqlx::query(sql).bind(rows).execute(&mut **tx).await?;
    Ok(())
}

/// Decodes a stored JSON list.
fn list(s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("stored list {s:?}: {e}")))
}
