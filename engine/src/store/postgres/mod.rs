//! The PostgreSQL store ([`PgStore`]), the production system of record.
//!
//! Every write transaction first takes a transaction-scoped advisory lock, so
//! writers (and with them outbox seqs and the audit chain) are strictly
//! serialised. Article rows are written by set-based statements that read a
//! JSON array of rows, so a 1,000-article import costs a handful of round
//! trips rather than thousands. Committed outbox rows are announced with
//! `NOTIFY kmt_outbox`; a background listener turns notifications from any
//! process into [`Notify`] wake-ups.
//!
//! The review workflow's writes (working copies, submissions, decisions)
//! follow the same pattern: one locked transaction that reads the article
//! `FOR UPDATE`, writes any new version through the same helpers as
//! [`PgStore::update_article`], and appends its audit row. The review-date job
//! ([`PgStore::mark_overdue`]) is one such transaction over all the
//! overdue articles it changes.
//!
//! Category rules are versioned rows in `category_rules` (the spec as
//! `JSONB`): a save is one locked transaction that reads the category's
//! highest version, inserts the next and appends its audit row.
//!
//! Notifications are rows in `notifications`; an escalation step is sent
//! once, guarded by its `escalations` marker row in the same transaction.
//! Their external deliveries, and those of publications to category
//! webhooks, are rows of the `deliveries` outbox written in the event's
//! transaction (`deliveries.rs`).
//!
//! Usage events, ratings and votes are written in plain transactions
//! without the writers' lock (they are not in the outbox or the audit
//! chain); feedback and reading assignments are audited and take it.
//! Long statements live in `postgres/sql/*.sql`.
//!
//! The rules both stores share (validation, batch planning, audit chaining,
//! what a submission or decision changes) live in the private `common`
//! module (`store/common/`).

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

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use tokio::sync::Notify;

use super::common::{chained_json, signal, PendingAudit};
#[cfg(doc)]
use super::Store;
use crate::error::Result;
use crate::model::Channels;

/// Key of the advisory lock that serialises writers (any fixed constant).
const WRITE_LOCK: i64 = 72_3401;
/// NOTIFY channel announcing committed outbox rows (payload: the last seq).
const CHANNEL: &str = "kmt_outbox";
/// How often followers re-check even without a notification.
const POLL: Duration = Duration::from_secs(1);
/// Longest pause between listener reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

type Tx = Transaction<'static, Postgres>;

/// The PostgreSQL store: a connection pool plus the change signal.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    notify: Arc<Notify>,
    /// The per-user delivery channels notifications enqueue for.
    channels: Channels,
}

impl PgStore {
    /// The connection pool (for store-level helpers such as leadership).
    pub(in crate::store) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Connects to `url` and starts the `kmt_outbox` listener. The listener
    /// is subscribed before this returns, so no write made afterwards is
    /// missed by [`PgStore::change_signal`].
    pub async fn connect(url: &str) -> Result<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        let notify = Arc::new(Notify::new());
        let listener = connect_listener(&pool).await?;
        tokio::spawn(listen(pool.clone(), listener, Arc::downgrade(&notify)));
        Ok(PgStore {
            pool,
            notify,
            channels: Channels::default(),
        })
    }

    /// Closes every connection (the listener stops too). Later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Applies pending migrations from `migrations/postgres`.
    pub async fn migrate(&self) -> Result<()> {
        Ok(sqlx::migrate!("../migrations/postgres")
            .run(&self.pool)
            .await?)
    }

    /// Begins a write transaction holding the writers' lock.
    async fn begin_write(&self) -> Result<Tx> {
        let mut tx = self.pool.begin().await?;
        let lock = sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WRITE_LOCK);
        lock.execute(&mut *tx).await?;
        Ok(tx)
    }

    /// Appends `entries` to the audit chain, commits and wakes this
    /// process's followers at once (the NOTIFY reaches other processes).
    /// Every write that changed something has an entry, so none means a
    /// batch that wrote nothing: nobody is woken.
    async fn finish(&self, mut tx: Tx, entries: Vec<PendingAudit>) -> Result<()> {
        let wrote = !entries.is_empty();
        append_audit(&mut tx, entries).await?;
        tx.commit().await?;
        if wrote {
            signal(&self.notify);
        }
        Ok(())
    }

    /// See [`super::Store::change_signal`]. Fired by this process's writes and
    /// by `NOTIFY`s from any process; the poll interval covers notifications
    /// lost while the listener reconnects.
    pub fn change_signal(&self) -> (Arc<Notify>, Duration) {
        (self.notify.clone(), POLL)
    }
}

/// Relays `kmt_outbox` notifications to `notify` until the pool closes or
/// every handle to `notify` is gone, reconnecting with backoff.
async fn listen(pool: PgPool, listener: PgListener, notify: Weak<Notify>) {
    let mut listener = Some(listener);
    let mut backoff = Duration::from_millis(250);
    loop {
        let mut l = match listener.take() {
            Some(l) => l,
            None => match connect_listener(&pool).await {
                Ok(l) => {
                    backoff = Duration::from_millis(250);
                    // Changes committed while disconnected were not announced.
                    let Some(n) = notify.upgrade() else { return };
                    signal(&n);
                    l
                }
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox listener: reconnect failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        loop {
            match l.try_recv().await {
                // `None`: the connection dropped and was re-established;
                // announcements may have been lost, so wake followers anyway.
                Ok(_) => match notify.upgrade() {
                    Some(n) => signal(&n),
                    None => return,
                },
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox listener: connection lost");
                    break;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn connect_listener(pool: &PgPool) -> sqlx::Result<PgListener> {
    let mut l = PgListener::connect_with(pool).await?;
    l.listen(CHANNEL).await?;
    Ok(l)
}

/// Appends audit rows, chained onto the newest row. Callers hold the
/// writers' lock, so the chain cannot fork.
async fn append_audit(tx: &mut Tx, entries: Vec<PendingAudit>) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let last = sqlx::query_scalar("SELECT hash FROM audit ORDER BY id DESC LIMIT 1");
    let rows = chained_json(last.fetch_optional(&mut **tx).await?, &entries);
    let sql = "INSERT INTO audit (at, actor, action, target, details, prev_hash, hash) \
               SELECT at, actor, action, target, details, prev_hash, hash \
               FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (at timestamptz, actor text, \
                   action text, target text, details jsonb, prev_hash text, hash text)) \
               WITH ORDINALITY AS t(at, actor, action, target, details, prev_hash, hash, ord) \
               ORDER BY ord";
    sqlx::query(sql).bind(rows).execute(&mut **tx).await?;
    Ok(())
}
