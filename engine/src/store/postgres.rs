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
//! [`PgStore::update_article`], and appends its audit row.
//!
//! Category rules are versioned rows in `category_rules` (the spec as
//! `JSONB`): a save is one locked transaction that reads the category's
//! highest version, inserts the next and appends its audit row.
//!
//! The rules both stores share (validation, batch planning, audit chaining,
//! what a submission or decision changes) live in the private `common`
//! module (`store/common.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use tokio::sync::Notify;

use super::audit::trunc_micros;
use super::common::{
    article_not_found, audit_limit, batch_conflict_or, chained_json, change, check_batch,
    check_copy_editable, check_live, check_version, conflict_or, copy_draft, decision_entry,
    delete_entry, draft_save_entry, entry, filters_assignee, last_use_cutoff, last_use_is_stale,
    no_id, normalise_roles, now, parse_status, parse_task_kind, parse_task_status, plan_decision,
    plan_submission, published_at, reindex_entry, rows_json, rule_json, rule_save_entry,
    rule_spec_from_value, set_roles_entry, signal, status_draft, stored, stored_copy, stored_rule,
    submit_entry, token_conflict_or, token_entry, token_principal, user_create_entry,
    user_not_found, username_conflict_or, validate_username, ArticleRow, BatchPlan, Outcome,
    PendingAudit, Submission, ARTICLE_COLS, COPY_COLS, RULE_COLS, TASK_COLS, TASK_LIMIT, USER_COLS,
};
use super::{AuditFilter, TaskFilter, UpsertOutcome};
use crate::auth::Principal;
use crate::error::Result;
use crate::model::{
    validate_name, Article, ArticleDraft, ArticleId, ArticleVersion, AuditEntry, CategoryRule,
    Change, ChangeKind, Decision, RuleSpec, Status, Task, TaskKind, TaskStatus, User, WorkingCopy,
};

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
        let row = ArticleRow::new(0, &draft, published);
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
        let old = lock_article(&mut tx, id).await?;
        check_version(&old, expected_version)?;
        let article = write_version(&mut tx, &old, draft, &actor.username, now).await?;
        let (slug, version) = (&article.slug, article.version);
        let entry = entry(actor, now, "article.update", id, slug, version);
        self.finish(tx, vec![entry]).await?;
        Ok(article)
    }

    /// See [`super::Store::delete_article`].
    pub async fn delete_article(&self, actor: &Principal, id: ArticleId) -> Result<()> {
        let now = now();
        let mut tx = self.begin_write().await?;
        let delete = sqlx::query_scalar("DELETE FROM articles WHERE id = $1 RETURNING slug");
        let slug: Option<String> = delete.bind(id).fetch_optional(&mut *tx).await?;
        let slug = slug.ok_or_else(|| article_not_found(id))?;
        append_outbox(&mut tx, &[id], ChangeKind::Delete, now).await?;
        let entry = delete_entry(actor, now, id, &slug);
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
        let existing: Vec<Article> = rows.iter().map(article_from_row).collect::<Result<_>>()?;
        let plan = BatchPlan::new(&drafts, existing, now);
        let new_ids = insert_rows(&mut tx, &plan.new, &actor.username, now).await;
        let new_ids = new_ids.map_err(batch_conflict_or)?;
        update_rows(&mut tx, &plan.changed, now)
            .await
            .map_err(batch_conflict_or)?;
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
        let entry = reindex_entry(actor, now, seq);
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
        let row = row.map_err(|e| username_conflict_or(e, username))?;
        let user = user_from_row(&row)?;
        let entry = user_create_entry(actor, now, username, display_name, &roles);
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
        let row = row.ok_or_else(|| user_not_found(username))?;
        let user = user_from_row(&row)?;
        let entry = set_roles_entry(actor, now, username, &roles);
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
        let user_id = user_id.ok_or_else(|| user_not_found(username))?;
        let sql = "INSERT INTO api_tokens (user_id, name, token_hash, created_at) \
                   VALUES ($1, $2, $3, $4)";
        let query = sqlx::query(sql)
            .bind(user_id)
            .bind(name)
            .bind(token_hash)
            .bind(now);
        let done = query.execute(&mut *tx).await;
        done.map_err(token_conflict_or)?;
        let entry = token_entry(actor, now, username, name);
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
            let cutoff = last_use_cutoff(now);
            let query = sqlx::query(sql).bind(token_id).bind(now).bind(cutoff);
            query.execute(&self.pool).await?;
        }
        Ok(Some(token_principal(user_id, username, roles)))
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

    /// See [`super::Store::save_working_copy`].
    pub async fn save_working_copy(
        &self,
        actor: &Principal,
        id: ArticleId,
        draft: ArticleDraft,
    ) -> Result<WorkingCopy> {
        draft.validate()?;
        let now = now();
        let mut tx = self.begin_write().await?;
        let article = lock_article(&mut tx, id).await?;
        check_live(&article)?;
        check_copy_editable(id, working_copy(&mut tx, id).await?.as_ref())?;
        let copy = stored_copy(id, draft, &actor.username, now);
        let sql = "INSERT INTO article_drafts (article_id, title, summary, body, category, tags, \
                   audience, review_due, status, author, note, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11) \
                   ON CONFLICT (article_id) DO UPDATE SET title = EXCLUDED.title, \
                   summary = EXCLUDED.summary, body = EXCLUDED.body, \
                   category = EXCLUDED.category, tags = EXCLUDED.tags, \
                   audience = EXCLUDED.audience, review_due = EXCLUDED.review_due, \
                   status = EXCLUDED.status, author = EXCLUDED.author, note = NULL, \
                   updated_at = EXCLUDED.updated_at";
        let query = sqlx::query(sql)
            .bind(id)
            .bind(&copy.title)
            .bind(&copy.summary)
            .bind(&copy.body)
            .bind(&copy.category)
            .bind(&copy.tags)
            .bind(&copy.audience)
            .bind(copy.review_due)
            .bind(copy.status.as_str())
            .bind(&copy.author)
            .bind(now);
        query.execute(&mut *tx).await?;
        // No outbox row: nothing searchable changed until it is approved.
        let entry = draft_save_entry(actor, now, id, &article.slug);
        self.finish(tx, vec![entry]).await?;
        Ok(copy)
    }

    /// See [`super::Store::get_working_copy`].
    pub async fn get_working_copy(&self, id: ArticleId) -> Result<Option<WorkingCopy>> {
        let sql = format!("SELECT {COPY_COLS} FROM article_drafts WHERE article_id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(copy_from_row).transpose()
    }

    /// See [`super::Store::submit_for_review`].
    pub async fn submit_for_review(
        &self,
        actor: &Principal,
        id: ArticleId,
        approver_role: &str,
        due_at: Option<DateTime<Utc>>,
    ) -> Result<Task> {
        validate_name("approver_role", approver_role)?;
        let now = now();
        let mut tx = self.begin_write().await?;
        let article = lock_article(&mut tx, id).await?;
        let copy = working_copy(&mut tx, id).await?;
        match plan_submission(&article, copy.as_ref())? {
            Submission::Copy => {
                let sql = "UPDATE article_drafts SET status = $2 WHERE article_id = $1";
                let query = sqlx::query(sql).bind(id).bind(Status::InReview.as_str());
                query.execute(&mut *tx).await?;
            }
            Submission::Article => {
                let draft = status_draft(&article, Status::InReview);
                write_version(&mut tx, &article, draft, &actor.username, now).await?;
            }
        }
        let sql = format!(
            "INSERT INTO tasks (kind, article_id, assignee_role, status, created_by, created_at, \
             due_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {TASK_COLS}"
        );
        let query = sqlx::query(&sql)
            .bind(TaskKind::Review.as_str())
            .bind(id)
            .bind(approver_role)
            .bind(TaskStatus::Open.as_str())
            .bind(&actor.username)
            .bind(now)
            .bind(due_at.map(trunc_micros));
        let task = task_from_row(&query.fetch_one(&mut *tx).await?)?;
        let entry = submit_entry(actor, now, id, &article.slug, task.id);
        self.finish(tx, vec![entry]).await?;
        Ok(task)
    }

    /// See [`super::Store::decide_review`].
    pub async fn decide_review(
        &self,
        actor: &Principal,
        id: ArticleId,
        decision: Decision,
        note: Option<&str>,
    ) -> Result<Article> {
        let now = now();
        let mut tx = self.begin_write().await?;
        let old = lock_article(&mut tx, id).await?;
        let copy = working_copy(&mut tx, id).await?;
        let article = match plan_decision(&old, copy, decision)? {
            Outcome::PublishCopy(copy) => {
                let draft = copy_draft(&old, &copy);
                // The version is the copy author's work; the reviewer is in
                // the audit row.
                let article = write_version(&mut tx, &old, draft, &copy.author, now).await?;
                let delete = sqlx::query("DELETE FROM article_drafts WHERE article_id = $1");
                delete.bind(id).execute(&mut *tx).await?;
                article
            }
            Outcome::ReturnCopy => {
                let sql = "UPDATE article_drafts SET status = $2, note = $3 WHERE article_id = $1";
                let query = sqlx::query(sql)
                    .bind(id)
                    .bind(Status::Draft.as_str())
                    .bind(note);
                query.execute(&mut *tx).await?;
                old
            }
            Outcome::SetStatus(status) => {
                let draft = status_draft(&old, status);
                write_version(&mut tx, &old, draft, &actor.username, now).await?
            }
        };
        let sql = "UPDATE tasks SET status = $3, note = $4, closed_at = $5, closed_by = $6 \
                   WHERE article_id = $1 AND kind = $2 AND status = $7";
        let query = sqlx::query(sql)
            .bind(id)
            .bind(TaskKind::Review.as_str())
            .bind(TaskStatus::Done.as_str())
            .bind(note)
            .bind(now)
            .bind(&actor.username)
            .bind(TaskStatus::Open.as_str());
        query.execute(&mut *tx).await?;
        let entry = decision_entry(actor, now, decision, &article, note);
        self.finish(tx, vec![entry]).await?;
        Ok(article)
    }

    /// See [`super::Store::list_tasks`].
    pub async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        // Open tasks oldest first (the queue), then done ones newest first.
        let sql = format!(
            "SELECT {TASK_COLS} FROM tasks \
             WHERE ($1 OR status = 'open') \
               AND ($2::bigint IS NULL OR article_id = $2) \
               AND (NOT $3 OR assignee_role = ANY($4) OR assignee_user = $5) \
             ORDER BY status = 'open' DESC, \
                      CASE WHEN status = 'open' THEN created_at END, \
                      CASE WHEN status = 'open' THEN id END, \
                      created_at DESC, id DESC \
             LIMIT $6"
        );
        let query = sqlx::query(&sql)
            .bind(filter.include_done)
            .bind(filter.article_id)
            .bind(filters_assignee(filter))
            .bind(&filter.roles)
            .bind(filter.username.as_deref())
            .bind(TASK_LIMIT);
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(task_from_row).collect()
    }

    /// See [`super::Store::save_rule`].
    pub async fn save_rule(
        &self,
        actor: &Principal,
        category: &str,
        spec: &RuleSpec,
    ) -> Result<CategoryRule> {
        let json = rule_json(spec)?;
        let now = now();
        let mut tx = self.begin_write().await?;
        // The writers' lock makes read-then-insert safe: no other save of
        // this category can slip in between.
        let sql = "SELECT max(version) FROM category_rules WHERE category = $1";
        let last: Option<i32> = sqlx::query_scalar(sql)
            .bind(category)
            .fetch_one(&mut *tx)
            .await?;
        let version = last.unwrap_or_default() + 1;
        let sql = "INSERT INTO category_rules (category, version, spec, updated_by, updated_at) \
                   VALUES ($1, $2, $3, $4, $5)";
        let query = sqlx::query(sql)
            .bind(category)
            .bind(version)
            .bind(&json)
            .bind(&actor.username)
            .bind(now);
        query.execute(&mut *tx).await?;
        let entry = rule_save_entry(actor, now, category, version, &json);
        self.finish(tx, vec![entry]).await?;
        Ok(stored_rule(category, version, spec, &actor.username, now))
    }

    /// See [`super::Store::get_rule`].
    pub async fn get_rule(&self, category: &str) -> Result<Option<CategoryRule>> {
        let sql = format!(
            "SELECT {RULE_COLS} FROM category_rules WHERE category = $1 \
             ORDER BY version DESC LIMIT 1"
        );
        let query = sqlx::query(&sql).bind(category);
        let row = query.fetch_optional(&self.pool).await?;
        row.as_ref().map(rule_from_row).transpose()
    }

    /// See [`super::Store::list_rules`]. Categories sort bytewise (`COLLATE
    /// "C"`), as in SQLite, so `*` comes first on both stores.
    pub async fn list_rules(&self) -> Result<Vec<CategoryRule>> {
        let sql = format!(
            "SELECT DISTINCT ON (category COLLATE \"C\") {RULE_COLS} FROM category_rules \
             ORDER BY category COLLATE \"C\", version DESC"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(rule_from_row).collect()
    }

    /// See [`super::Store::rule_history`].
    pub async fn rule_history(&self, category: &str) -> Result<Vec<CategoryRule>> {
        let sql =
            format!("SELECT {RULE_COLS} FROM category_rules WHERE category = $1 ORDER BY version");
        let query = sqlx::query(&sql).bind(category);
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(rule_from_row).collect()
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

/// Reads an article for a write, locking its row; `NotFound` if missing.
async fn lock_article(tx: &mut Tx, id: ArticleId) -> Result<Article> {
    let sql = format!("SELECT {ARTICLE_COLS} FROM articles WHERE id = $1 FOR UPDATE");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut **tx).await?;
    let old = row.as_ref().map(article_from_row).transpose()?;
    old.ok_or_else(|| article_not_found(id))
}

/// Writes `draft` over `old` as its next version (the version row by
/// `author`, an `upsert` outbox row) and returns the stored article.
async fn write_version(
    tx: &mut Tx,
    old: &Article,
    draft: ArticleDraft,
    author: &str,
    now: DateTime<Utc>,
) -> Result<Article> {
    let published = published_at(old.published_at, draft.status, now);
    let row = ArticleRow::new(old.id, &draft, published);
    let updated = update_rows(tx, &[row], now).await;
    updated.map_err(|e| conflict_or(e, &draft.slug))?;
    write_side_rows(tx, &[old.id], author, now).await?;
    let (id, owner, created) = (old.id, &old.owner, old.created_at);
    let version = old.version + 1;
    Ok(stored(id, draft, owner, version, created, now, published))
}

/// The working copy of an article, read inside a write (the article's row
/// lock covers it).
async fn working_copy(tx: &mut Tx, id: ArticleId) -> Result<Option<WorkingCopy>> {
    let sql = format!("SELECT {COPY_COLS} FROM article_drafts WHERE article_id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut **tx).await?;
    row.as_ref().map(copy_from_row).transpose()
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

fn copy_from_row(r: &PgRow) -> Result<WorkingCopy> {
    Ok(WorkingCopy {
        article_id: r.try_get("article_id")?,
        title: r.try_get("title")?,
        summary: r.try_get("summary")?,
        body: r.try_get("body")?,
        category: r.try_get("category")?,
        tags: r.try_get("tags")?,
        audience: r.try_get("audience")?,
        review_due: r.try_get("review_due")?,
        status: parse_status(r.try_get("status")?)?,
        author: r.try_get("author")?,
        note: r.try_get("note")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn task_from_row(r: &PgRow) -> Result<Task> {
    Ok(Task {
        id: r.try_get("id")?,
        kind: parse_task_kind(r.try_get("kind")?)?,
        article_id: r.try_get("article_id")?,
        assignee_role: r.try_get("assignee_role")?,
        assignee_user: r.try_get("assignee_user")?,
        status: parse_task_status(r.try_get("status")?)?,
        note: r.try_get("note")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        due_at: r.try_get("due_at")?,
        closed_at: r.try_get("closed_at")?,
        closed_by: r.try_get("closed_by")?,
    })
}

fn rule_from_row(r: &PgRow) -> Result<CategoryRule> {
    Ok(CategoryRule {
        category: r.try_get("category")?,
        version: r.try_get("version")?,
        spec: rule_spec_from_value(r.try_get("spec")?)?,
        updated_by: r.try_get("updated_by")?,
        updated_at: r.try_get("updated_at")?,
    })
}
