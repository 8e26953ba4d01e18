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
//! The rules both stores share (validation, batch planning, audit chaining)
//! are the `pub(super)` items at the end of this file.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use tokio::sync::Notify;

use super::audit::{chain_hash, trunc_micros, GENESIS};
use super::{AuditFilter, UpsertOutcome};
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::model::{
    limits, normalise_names, Article, ArticleDraft, ArticleId, ArticleVersion, AuditEntry, Change,
    ChangeKind, Status, User,
};

/// Key of the advisory lock that serialises writers (any fixed constant).
const WRITE_LOCK: i64 = 72_3401;
/// NOTIFY channel announcing committed outbox rows (payload: the last seq).
const CHANNEL: &str = "kmt_outbox";
/// How often followers re-check even without a notification.
const POLL: Duration = Duration::from_secs(1);
/// Longest pause between listener reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

const ARTICLE_COLS: &str = "id, slug, title, summary, body, category, tags, audience, \
     status, owner, version, created_at, updated_at, published_at, review_due";
const USER_COLS: &str = "id, username, display_name, roles, created_at";

type Tx = Transaction<'static, Postgres>;

/// The PostgreSQL store: a connection pool plus the change signal.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    notify: Arc<Notify>,
}

impl PgStore {
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
        Ok(PgStore { pool, notify })
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

    /// See [`super::Store::create_article`].
    pub async fn create_article(&self, actor: &Principal, draft: ArticleDraft) -> Result<Article> {
        draft.validate()?;
        let now = now();
        let published = published_at(None, draft.status, now);
        let mut tx = self.begin_write().await?;
        let row = ArticleRow {
            id: 0,
            draft: &draft,
            published_at: published,
        };
        let ids = insert_rows(&mut tx, &[row], &actor.username, now).await;
        let ids = ids.map_err(|e| conflict_or(e, &draft.slug))?;
        let id = ids.get(&draft.slug).copied().ok_or_else(no_id)?;
        write_side_rows(&mut tx, &[id], &actor.username, now).await?;
        let entry = entry(actor, now, "article.create", id, &draft.slug, 1);
        self.finish(tx, vec![entry]).await?;
        Ok(stored(id, draft, &actor.username, 1, now, now, published))
    }

    /// See [`super::Store::update_article`].
    pub async fn update_article(
        &self,
        actor: &Principal,
        id: ArticleId,
        draft: ArticleDraft,
        expected_version: Option<i32>,
    ) -> Result<Article> {
        draft.validate()?;
        let now = now();
        let mut tx = self.begin_write().await?;
        let sql = format!("SELECT {ARTICLE_COLS} FROM articles WHERE id = $1 FOR UPDATE");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await?;
        let old = row.as_ref().map(article_from_row).transpose()?;
        let old = old.ok_or_else(|| Error::NotFound(format!("article {id}")))?;
        check_version(&old, expected_version)?;
        let published = published_at(old.published_at, draft.status, now);
        let row = ArticleRow {
            id,
            draft: &draft,
            published_at: published,
        };
        let updated = update_rows(&mut tx, &[row], now).await;
        updated.map_err(|e| conflict_or(e, &draft.slug))?;
        write_side_rows(&mut tx, &[id], &actor.username, now).await?;
        let version = old.version + 1;
        let entry = entry(actor, now, "article.update", id, &draft.slug, version);
        self.finish(tx, vec![entry]).await?;
        let (owner, created) = (&old.owner, old.created_at);
        Ok(stored(id, draft, owner, version, created, now, published))
    }

    /// See [`super::Store::delete_article`].
    pub async fn delete_article(&self, actor: &Principal, id: ArticleId) -> Result<()> {
        let now = now();
        let mut tx = self.begin_write().await?;
        let delete = sqlx::query_scalar("DELETE FROM articles WHERE id = $1 RETURNING slug");
        let slug: Option<String> = delete.bind(id).fetch_optional(&mut *tx).await?;
        let slug = slug.ok_or_else(|| Error::NotFound(format!("article {id}")))?;
        append_outbox(&mut tx, &[id], ChangeKind::Delete, now).await?;
        let details = json!({ "slug": slug });
        let entry = PendingAudit::new(
            actor,
            now,
            "article.delete",
            format!("article:{id}"),
            details,
        );
        self.finish(tx, vec![entry]).await
    }

    /// See [`super::Store::upsert_batch`].
    pub async fn upsert_batch(
        &self,
        actor: &Principal,
        drafts: Vec<ArticleDraft>,
    ) -> Result<UpsertOutcome> {
        check_batch(&drafts)?;
        if drafts.is_empty() {
            return Ok(UpsertOutcome::default());
        }
        let now = now();
        let mut tx = self.begin_write().await?;
        let slugs: Vec<&str> = drafts.iter().map(|d| d.slug.as_str()).collect();
        let sql = format!("SELECT {ARTICLE_COLS} FROM articles WHERE slug = ANY($1)");
        let rows = sqlx::query(&sql).bind(&slugs).fetch_all(&mut *tx).await?;
        let existing = rows
            .iter()
            .map(article_from_row)
            .collect::<Result<Vec<_>>>()?;
        let plan = BatchPlan::new(&drafts, existing, now);
        let conflict = |e| unique_or(e, || "a slug in the batch is already used".into());
        let new_ids = insert_rows(&mut tx, &plan.new, &actor.username, now).await;
        let new_ids = new_ids.map_err(conflict)?;
        update_rows(&mut tx, &plan.changed, now)
            .await
            .map_err(conflict)?;
        let (ids, entries) = plan.written(&new_ids, actor, now);
        write_side_rows(&mut tx, &ids, &actor.username, now).await?;
        self.finish(tx, entries).await?;
        Ok(plan.outcome)
    }

    /// See [`super::Store::get_article`].
    pub async fn get_article(&self, id: ArticleId) -> Result<Option<Article>> {
        let sql = format!("SELECT {ARTICLE_COLS} FROM articles WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(article_from_row).transpose()
    }

    /// See [`super::Store::get_article_by_slug`].
    pub async fn get_article_by_slug(&self, slug: &str) -> Result<Option<Article>> {
        let sql = format!("SELECT {ARTICLE_COLS} FROM articles WHERE slug = $1");
        let row = sqlx::query(&sql)
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(article_from_row).transpose()
    }

    /// See [`super::Store::get_articles`].
    pub async fn get_articles(&self, ids: &[ArticleId]) -> Result<Vec<Article>> {
        let sql = format!("SELECT {ARTICLE_COLS} FROM articles WHERE id = ANY($1)");
        let rows = sqlx::query(&sql).bind(ids).fetch_all(&self.pool).await?;
        rows.iter().map(article_from_row).collect()
    }

    /// See [`super::Store::scan_articles`].
    pub async fn scan_articles(&self, after_id: ArticleId, limit: i64) -> Result<Vec<Article>> {
        let sql = format!("SELECT {ARTICLE_COLS} FROM articles WHERE id > $1 ORDER BY id LIMIT $2");
        let query = sqlx::query(&sql).bind(after_id).bind(limit.max(0));
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(article_from_row).collect()
    }

    /// See [`super::Store::count_articles`].
    pub async fn count_articles(&self) -> Result<i64> {
        let query = sqlx::query_scalar("SELECT count(*) FROM articles");
        Ok(query.fetch_one(&self.pool).await?)
    }

    /// See [`super::Store::list_versions`].
    pub async fn list_versions(&self, id: ArticleId) -> Result<Vec<ArticleVersion>> {
        let sql = "SELECT article_id, version, title, summary, body, category, tags, audience, \
                   status, author, created_at FROM article_versions WHERE article_id = $1 \
                   ORDER BY version";
        let rows = sqlx::query(sql).bind(id).fetch_all(&self.pool).await?;
        let version = |r: &PgRow| -> Result<ArticleVersion> {
            Ok(ArticleVersion {
                article_id: r.try_get("article_id")?,
                version: r.try_get("version")?,
                title: r.try_get("title")?,
                summary: r.try_get("summary")?,
                body: r.try_get("body")?,
                category: r.try_get("category")?,
                tags: r.try_get("tags")?,
                audience: r.try_get("audience")?,
                status: parse_status(r.try_get("status")?)?,
                author: r.try_get("author")?,
                created_at: r.try_get("created_at")?,
            })
        };
        rows.iter().map(version).collect()
    }

    /// See [`super::Store::changes_after`].
    pub async fn changes_after(&self, after: i64, limit: i64) -> Result<Vec<Change>> {
        let sql = "SELECT seq, article_id, kind FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2";
        let query = sqlx::query_as(sql).bind(after).bind(limit.max(0));
        let rows: Vec<(i64, i64, String)> = query.fetch_all(&self.pool).await?;
        rows.into_iter().map(change).collect()
    }

    /// See [`super::Store::outbox_head`].
    pub async fn outbox_head(&self) -> Result<i64> {
        let query = sqlx::query_scalar("SELECT COALESCE(max(seq), 0)::bigint FROM outbox");
        Ok(query.fetch_one(&self.pool).await?)
    }

    /// See [`super::Store::request_reindex`].
    pub async fn request_reindex(&self, actor: &Principal) -> Result<i64> {
        let now = now();
        let mut tx = self.begin_write().await?;
        let seq = append_outbox(&mut tx, &[0], ChangeKind::Reindex, now).await?;
        let details = json!({ "seq": seq });
        let entry = PendingAudit::new(actor, now, "index.reindex", "index".into(), details);
        self.finish(tx, vec![entry]).await?;
        Ok(seq)
    }

    /// See [`super::Store::create_user`].
    pub async fn create_user(
        &self,
        actor: &Principal,
        username: &str,
        display_name: &str,
        roles: &[String],
    ) -> Result<User> {
        validate_username(username)?;
        let roles = normalise_roles(roles)?;
        let now = now();
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "INSERT INTO users (username, display_name, roles, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING {USER_COLS}"
        );
        let query = sqlx::query(&sql)
            .bind(username)
            .bind(display_name)
            .bind(&roles)
            .bind(now);
        let row = query.fetch_one(&mut *tx).await;
        let row =
            row.map_err(|e| unique_or(e, || format!("username {username:?} is already used")))?;
        let user = user_from_row(&row)?;
        let details = json!({ "display_name": display_name, "roles": roles });
        let target = format!("user:{username}");
        let entry = PendingAudit::new(actor, now, "user.create", target, details);
        self.finish(tx, vec![entry]).await?;
        Ok(user)
    }

    /// See [`super::Store::get_user`].
    pub async fn get_user(&self, username: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE username = $1");
        let row = sqlx::query(&sql)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// See [`super::Store::list_users`].
    pub async fn list_users(&self) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users ORDER BY username");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(user_from_row).collect()
    }

    /// See [`super::Store::set_roles`].
    pub async fn set_roles(
        &self,
        actor: &Principal,
        username: &str,
        roles: &[String],
    ) -> Result<User> {
        let roles = normalise_roles(roles)?;
        let now = now();
        let mut tx = self.begin_write().await?;
        let sql = format!("UPDATE users SET roles = $2 WHERE username = $1 RETURNING {USER_COLS}");
        let query = sqlx::query(&sql).bind(username).bind(&roles);
        let row = query.fetch_optional(&mut *tx).await?;
        let row = row.ok_or_else(|| Error::NotFound(format!("user {username}")))?;
        let user = user_from_row(&row)?;
        let (target, details) = (format!("user:{username}"), json!({ "roles": roles }));
        let entry = PendingAudit::new(actor, now, "user.set_roles", target, details);
        self.finish(tx, vec![entry]).await?;
        Ok(user)
    }

    /// See [`super::Store::create_token`].
    pub async fn create_token(
        &self,
        actor: &Principal,
        username: &str,
        name: &str,
        token_hash: &str,
    ) -> Result<()> {
        let now = now();
        let mut tx = self.begin_write().await?;
        let query = sqlx::query_scalar("SELECT id FROM users WHERE username = $1").bind(username);
        let user_id: Option<i64> = query.fetch_optional(&mut *tx).await?;
        let user_id = user_id.ok_or_else(|| Error::NotFound(format!("user {username}")))?;
        let sql = "INSERT INTO api_tokens (user_id, name, token_hash, created_at) \
                   VALUES ($1, $2, $3, $4)";
        let query = sqlx::query(sql)
            .bind(user_id)
            .bind(name)
            .bind(token_hash)
            .bind(now);
        let done = query.execute(&mut *tx).await;
        done.map_err(|e| unique_or(e, || "this token is already registered".into()))?;
        // Never the token or its hash: auditors read the trail.
        let (target, details) = (format!("user:{username}"), json!({ "name": name }));
        let entry = PendingAudit::new(actor, now, "token.create", target, details);
        self.finish(tx, vec![entry]).await
    }

    /// See [`super::Store::principal_for_token`].
    pub async fn principal_for_token(&self, token_hash: &str) -> Result<Option<Principal>> {
        // Token id, last use, user id, username, roles.
        type TokenRow = (i64, Option<DateTime<Utc>>, i64, String, Vec<String>);
        let sql = "SELECT t.id, t.last_used_at, u.id, u.username, u.roles \
                   FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1";
        let row: Option<TokenRow> = sqlx::query_as(sql)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        let Some((token_id, last_used, user_id, username, roles)) = row else {
            return Ok(None);
        };
        let now = now();
        if last_use_is_stale(last_used, now) {
            // The WHERE clause repeats the check so concurrent requests write once.
            let sql = "UPDATE api_tokens SET last_used_at = $2 \
                       WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)";
            let cutoff = now - chrono::Duration::minutes(1);
            let query = sqlx::query(sql).bind(token_id).bind(now).bind(cutoff);
            query.execute(&self.pool).await?;
        }
        let user_id = Some(user_id);
        Ok(Some(Principal {
            user_id,
            username,
            roles,
        }))
    }

    /// See [`super::Store::list_audit`].
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let sql = "SELECT id, at, actor, action, target, details, prev_hash, hash FROM audit \
                   WHERE id > $1 ORDER BY id LIMIT $2";
        let query = sqlx::query(sql)
            .bind(filter.after_id)
            .bind(audit_limit(filter.limit));
        let rows = query.fetch_all(&self.pool).await?;
        let entry = |r: &PgRow| -> Result<AuditEntry> {
            Ok(AuditEntry {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                details: r.try_get("details")?,
                prev_hash: r.try_get("prev_hash")?,
                hash: r.try_get("hash")?,
            })
        };
        rows.iter().map(entry).collect()
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

/// Inserts new articles (version 1) owned by `owner`; returns id by slug.
async fn insert_rows(
    tx: &mut Tx,
    rows: &[ArticleRow<'_>],
    owner: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<HashMap<String, i64>> {
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let query = sqlx::query_as(include_str!("sql/pg_insert_articles.sql"));
    let query = query.bind(rows_json(rows)).bind(owner).bind(now);
    let ids: Vec<(i64, String)> = query.fetch_all(&mut **tx).await?;
    Ok(ids.into_iter().map(|(id, slug)| (slug, id)).collect())
}

/// Replaces the content of existing articles, bumping their versions.
async fn update_rows(tx: &mut Tx, rows: &[ArticleRow<'_>], now: DateTime<Utc>) -> sqlx::Result<()> {
    if !rows.is_empty() {
        let query = sqlx::query(include_str!("sql/pg_update_articles.sql"));
        query
            .bind(rows_json(rows))
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Snapshots the written articles into `article_versions` and appends their
/// `upsert` outbox rows.
async fn write_side_rows(tx: &mut Tx, ids: &[i64], author: &str, now: DateTime<Utc>) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = "INSERT INTO article_versions (article_id, version, title, summary, body, \
               category, tags, audience, status, author, created_at) \
               SELECT id, version, title, summary, body, category, tags, audience, status, $2, \
               updated_at FROM articles WHERE id = ANY($1)";
    sqlx::query(sql)
        .bind(ids)
        .bind(author)
        .execute(&mut **tx)
        .await?;
    append_outbox(tx, ids, ChangeKind::Upsert, now).await?;
    Ok(())
}

/// Appends one outbox row per id (in order) and queues the NOTIFY, which
/// Postgres delivers on commit. Returns the last seq.
async fn append_outbox(
    tx: &mut Tx,
    ids: &[i64],
    kind: ChangeKind,
    now: DateTime<Utc>,
) -> Result<i64> {
    let sql = "WITH o AS (INSERT INTO outbox (article_id, kind, created_at) \
               SELECT t.id, $2, $3 FROM UNNEST($1::bigint[]) WITH ORDINALITY AS t(id, ord) \
               ORDER BY t.ord RETURNING seq) \
               SELECT max(seq) FROM o";
    let query = sqlx::query_scalar(sql)
        .bind(ids)
        .bind(kind.as_str())
        .bind(now);
    let seq: Option<i64> = query.fetch_one(&mut **tx).await?;
    let seq = seq.unwrap_or_default();
    let notify = sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(seq.to_string());
    notify.execute(&mut **tx).await?;
    Ok(seq)
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

fn article_from_row(r: &PgRow) -> Result<Article> {
    Ok(Article {
        id: r.try_get("id")?,
        slug: r.try_get("slug")?,
        title: r.try_get("title")?,
        summary: r.try_get("summary")?,
        body: r.try_get("body")?,
        category: r.try_get("category")?,
        tags: r.try_get("tags")?,
        audience: r.try_get("audience")?,
        status: parse_status(r.try_get("status")?)?,
        owner: r.try_get("owner")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        published_at: r.try_get("published_at")?,
        review_due: r.try_get("review_due")?,
    })
}

fn user_from_row(r: &PgRow) -> Result<User> {
    let (id, username, display_name, roles, created_at): (i64, String, String, Vec<String>, _) =
        sqlx::FromRow::from_row(r)?;
    Ok(User {
        id,
        username,
        display_name,
        roles,
        created_at,
    })
}

// ---- rules shared with the SQLite store ----

/// The current time at the precision both stores keep.
pub(super) fn now() -> DateTime<Utc> {
    trunc_micros(Utc::now())
}

/// Wakes every current waiter and leaves a permit for the next one, so a
/// follower between two waits does not miss the change.
pub(super) fn signal(n: &Notify) {
    n.notify_waiters();
    n.notify_one();
}

/// An outbox row read as a tuple.
pub(super) fn change((seq, article_id, kind): (i64, i64, String)) -> Result<Change> {
    let kind = ChangeKind::parse(&kind)?;
    Ok(Change {
        seq,
        article_id,
        kind,
    })
}

/// An audit row before it is chained.
pub(super) struct PendingAudit {
    at: DateTime<Utc>,
    actor: String,
    action: &'static str,
    target: String,
    details: Value,
}

impl PendingAudit {
    /// An entry by `actor` at `at`.
    pub(super) fn new(
        actor: &Principal,
        at: DateTime<Utc>,
        action: &'static str,
        target: String,
        details: Value,
    ) -> Self {
        let actor = actor.username.clone();
        PendingAudit {
            at,
            actor,
            action,
            target,
            details,
        }
    }
}

/// The audit entry of an article write.
pub(super) fn entry(
    actor: &Principal,
    at: DateTime<Utc>,
    action: &'static str,
    id: ArticleId,
    slug: &str,
    version: i32,
) -> PendingAudit {
    let details = json!({ "slug": slug, "version": version });
    PendingAudit::new(actor, at, action, format!("article:{id}"), details)
}

/// The entries chained onto `prev` (the newest stored hash, if any), as the
/// JSON array of rows that the set-based audit inserts read. Times use
/// sqlx's SQLite text format, which Postgres parses too.
pub(super) fn chained_json(prev: Option<String>, entries: &[PendingAudit]) -> String {
    let mut prev = prev.unwrap_or_else(|| GENESIS.to_string());
    let link = |e: &PendingAudit| {
        let hash = chain_hash(&prev, e.at, &e.actor, e.action, &e.target, &e.details);
        json!({
            "at": trunc_micros(e.at).to_rfc3339_opts(SecondsFormat::AutoSi, false),
            "actor": e.actor, "action": e.action, "target": e.target, "details": e.details,
            "prev_hash": std::mem::replace(&mut prev, hash.clone()), "hash": hash,
        })
    };
    Value::Array(entries.iter().map(link).collect()).to_string()
}

/// One article to write: `id` is 0 for a new article.
pub(super) struct ArticleRow<'a> {
    pub(super) id: ArticleId,
    pub(super) draft: &'a ArticleDraft,
    pub(super) published_at: Option<DateTime<Utc>>,
}

/// The rows as the JSON array that the set-based article statements read.
/// Times use sqlx's SQLite text format, which Postgres parses too.
pub(super) fn rows_json(rows: &[ArticleRow<'_>]) -> String {
    let time = |t: Option<DateTime<Utc>>| {
        t.map(|t| trunc_micros(t).to_rfc3339_opts(SecondsFormat::AutoSi, false))
    };
    let row = |r: &ArticleRow<'_>| {
        let d = r.draft;
        json!({
            "id": r.id, "slug": d.slug, "title": d.title, "summary": d.summary,
            "body": d.body, "category": d.category, "tags": d.tags, "audience": d.audience,
            "status": d.status.as_str(), "published_at": time(r.published_at),
            "review_due": time(d.review_due),
        })
    };
    Value::Array(rows.iter().map(row).collect()).to_string()
}

/// What an import batch writes, decided against the stored articles.
pub(super) struct BatchPlan<'a> {
    /// Drafts with new slugs.
    pub(super) new: Vec<ArticleRow<'a>>,
    /// Drafts whose content differs from the stored article.
    pub(super) changed: Vec<ArticleRow<'a>>,
    /// Counts to report.
    pub(super) outcome: UpsertOutcome,
    /// Written drafts in batch order, with the replaced `(id, version)`.
    order: Vec<(&'a ArticleDraft, Option<(ArticleId, i32)>)>,
}

impl<'a> BatchPlan<'a> {
    /// Sorts `drafts` into new, changed and unchanged.
    pub(super) fn new(
        drafts: &'a [ArticleDraft],
        stored: Vec<Article>,
        now: DateTime<Utc>,
    ) -> Self {
        let stored: HashMap<_, _> = stored.into_iter().map(|a| (a.slug.clone(), a)).collect();
        let mut plan = BatchPlan {
            new: vec![],
            changed: vec![],
            outcome: UpsertOutcome::default(),
            order: vec![],
        };
        for d in drafts {
            match stored.get(&d.slug) {
                Some(a) if !differs(a, d) => plan.outcome.unchanged += 1,
                Some(a) => {
                    let published_at = published_at(a.published_at, d.status, now);
                    plan.changed.push(ArticleRow {
                        id: a.id,
                        draft: d,
                        published_at,
                    });
                    plan.order.push((d, Some((a.id, a.version))));
                }
                None => {
                    let published_at = published_at(None, d.status, now);
                    plan.new.push(ArticleRow {
                        id: 0,
                        draft: d,
                        published_at,
                    });
                    plan.order.push((d, None));
                }
            }
        }
        plan.outcome.created = plan.new.len();
        plan.outcome.updated = plan.changed.len();
        plan
    }

    /// Ids of the written articles in batch order (so outbox rows follow the
    /// batch) and their audit entries, once new ids are known.
    pub(super) fn written(
        &self,
        new_ids: &HashMap<String, i64>,
        actor: &Principal,
        now: DateTime<Utc>,
    ) -> (Vec<ArticleId>, Vec<PendingAudit>) {
        let written = self.order.iter().map(|(d, old)| {
            let (id, version) = match old {
                Some((id, v)) => (*id, v + 1),
                None => (new_ids.get(&d.slug).copied().unwrap_or_default(), 1),
            };
            (
                id,
                entry(actor, now, "article.import", id, &d.slug, version),
            )
        });
        written.unzip()
    }
}

/// Checks a username: 1–64 characters of `a-z 0-9 . _ -`.
pub(super) fn validate_username(u: &str) -> Result<()> {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
    if u.is_empty() || u.len() > 64 || !u.chars().all(ok) {
        let message = format!("{u:?} must be 1-64 characters of a-z, 0-9, '.', '_' or '-'");
        return Err(Error::invalid("username", message));
    }
    Ok(())
}

/// Normalises a role list with the same rules as audiences.
pub(super) fn normalise_roles(roles: &[String]) -> Result<Vec<String>> {
    normalise_names("roles", roles.to_vec(), limits::AUDIENCE)
}

/// Validates every draft and rejects a slug that appears twice: both copies
/// would target the same row and the outcome would depend on order.
pub(super) fn check_batch(drafts: &[ArticleDraft]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(drafts.len());
    for d in drafts {
        d.validate()?;
        if !seen.insert(d.slug.as_str()) {
            let message = format!("{:?} appears more than once in the batch", d.slug);
            return Err(Error::invalid("slug", message));
        }
    }
    Ok(())
}

/// Whether storing `d` over `a` would change its content.
pub(super) fn differs(a: &Article, d: &ArticleDraft) -> bool {
    a.title != d.title
        || a.summary != d.summary
        || a.body != d.body
        || a.category != d.category
        || a.tags != d.tags
        || a.audience != d.audience
        || a.status != d.status
        || a.review_due != d.review_due.map(trunc_micros)
}

/// The first publication time: kept once set, else now if `status` is live.
pub(super) fn published_at(
    prev: Option<DateTime<Utc>>,
    status: Status,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    prev.or(status.is_live().then_some(now))
}

/// Fails with `Conflict` unless the article is at the expected version.
pub(super) fn check_version(a: &Article, expected: Option<i32>) -> Result<()> {
    match expected {
        Some(v) if v != a.version => {
            let (id, at) = (a.id, a.version);
            Err(Error::Conflict(format!(
                "article {id} is at version {at}, not {v}"
            )))
        }
        _ => Ok(()),
    }
}

/// Whether a token's last use is worth recording (at most once a minute).
pub(super) fn last_use_is_stale(last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last.is_none_or(|t| t < now - chrono::Duration::minutes(1))
}

/// The effective audit page size: `limit <= 0` means 1000.
pub(super) fn audit_limit(limit: i64) -> i64 {
    if limit <= 0 {
        1000
    } else {
        limit
    }
}

/// Maps a unique violation to `Conflict(msg())`, anything else to a
/// database error.
pub(super) fn unique_or(e: sqlx::Error, msg: impl FnOnce() -> String) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict(msg()),
        _ => e.into(),
    }
}

/// Maps a unique violation on an article write to the slug conflict.
pub(super) fn conflict_or(e: sqlx::Error, slug: &str) -> Error {
    unique_or(e, || format!("slug {slug:?} is already used"))
}

/// The error for an insert that returned no id (never expected).
pub(super) fn no_id() -> Error {
    Error::Corrupt("insert returned no id".into())
}

/// Parses a stored status.
pub(super) fn parse_status(s: &str) -> Result<Status> {
    s.parse()
        .map_err(|_| Error::Corrupt(format!("unknown stored status {s:?}")))
}

/// The stored article just written from `d`, built without a round trip.
pub(super) fn stored(
    id: ArticleId,
    d: ArticleDraft,
    owner: &str,
    version: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    published_at: Option<DateTime<Utc>>,
) -> Article {
    Article {
        id,
        slug: d.slug,
        title: d.title,
        summary: d.summary,
        body: d.body,
        category: d.category,
        tags: d.tags,
        audience: d.audience,
        status: d.status,
        owner: owner.to_string(),
        version,
        created_at,
        updated_at,
        published_at,
        review_due: d.review_due.map(trunc_micros),
    }
}
