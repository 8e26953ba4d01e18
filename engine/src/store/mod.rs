//! The system of record: one [`Store`] with two implementations.
//!
//! [`Store::Postgres`] is the production store; [`Store::Sqlite`] is the
//! embedded default used when no `DATABASE_URL` is given. Both pass the same
//! conformance suite (`engine/tests/it/store.rs`). An enum rather than a trait
//! object: async methods stay plain `async fn`, and dispatch is a `match`.
//!
//! Every write runs in one transaction that also appends the immutable
//! version row, an outbox row and a hash-chained audit row. Writers are
//! serialised (a transaction-scoped advisory lock in Postgres, `BEGIN
//! IMMEDIATE` in SQLite) so that outbox sequence numbers commit in order: a
//! follower that has read sequence `n` will never later see a smaller one.

pub mod audit;
mod common;
mod deliveries;
pub mod leader;
pub mod postgres;
mod restore;
mod shipments;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Principal;
use crate::error::Result;
use crate::model::{
    Article, ArticleDraft, ArticleId, ArticleVersion, AuditEntry, CategoryRule, Change, Decision,
    Group, Notification, Preferences, RuleSpec, Task, User, WorkingCopy,
};

pub use deliveries::DeliveryOutcome;
pub use postgres::PgStore;
pub use restore::Restore;
pub use shipments::{AuditShipStatus, AuditShipment};
pub use sqlite::SqliteStore;

/// Outcome of [`Store::upsert_batch`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertOutcome {
    /// Articles created.
    pub created: usize,
    /// Existing articles (same slug) whose content changed.
    pub updated: usize,
    /// Existing articles whose content was identical (no new version).
    pub unchanged: usize,
}

/// Filter for [`Store::list_audit`]. Conditions that are set all apply.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only rows with id > this.
    pub after_id: i64,
    /// Most rows to return.
    pub limit: i64,
    /// Only rows by this actor (username).
    pub actor: Option<String>,
    /// Only rows with this action (`article.create`).
    pub action: Option<String>,
    /// Only rows about this target (`article:42`, `user:vera`).
    pub target: Option<String>,
    /// Only rows at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only rows before this time.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

/// Filter for [`Store::list_tasks`].
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Tasks assigned to any of these roles ...
    pub roles: Vec<String>,
    /// ... or to this user. With no roles and no user: every task (admins).
    pub username: Option<String>,
    /// Only tasks of this article.
    pub article_id: Option<ArticleId>,
    /// Include done tasks (newest first after the open ones).
    pub include_done: bool,
}

/// The passage vectors of one article under one embedding model.
///
/// Derived data, keyed by (article, model) and tagged with the content hash
/// of the passages they were computed from ([`crate::embed::content_hash`]):
/// a reader compares the hash with the article's current one and re-embeds
/// only on a mismatch, so rebuilds and new replicas never embed unchanged
/// text again. Not audited and not in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEmbedding {
    /// The article.
    pub article_id: ArticleId,
    /// [`crate::embed::Embedder::model_id`] of the model that made them.
    pub model_id: String,
    /// [`crate::embed::content_hash`] of the embedded passages.
    pub content_hash: String,
    /// Floats per vector.
    pub dim: i32,
    /// The vectors, one per passage, as little-endian f32
    /// ([`crate::embed::to_bytes`]); its length is a multiple of `dim * 4`.
    pub vectors: Vec<u8>,
}

/// The system of record.
#[derive(Clone, Debug)]
pub enum Store {
    /// PostgreSQL via sqlx.
    Postgres(PgStore),
    /// Embedded SQLite via sqlx.
    Sqlite(SqliteStore),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Postgres($s) => $e,
            Store::Sqlite($s) => $e,
        }
    };
}

mod usage;

impl Store {
    /// Opens the store: Postgres when `database_url` is given, else SQLite in
    /// `data_dir/kmt.db` (created if missing). Runs migrations.
    pub async fn open(database_url: Option<&str>, data_dir: &std::path::Path) -> Result<Store> {
        let store = match database_url {
            Some(url) => Store::Postgres(PgStore::connect(url).await?),
            None => Store::Sqlite(SqliteStore::open(&data_dir.join("kmt.db")).await?),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// `"postgres"` or `"sqlite"`, for logs and `/readyz`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Postgres(_) => "postgres",
            Store::Sqlite(_) => "sqlite",
        }
    }

    /// Applies pending migrations (embedded with `sqlx::migrate!`).
    pub async fn migrate(&self) -> Result<()> {
        dispatch!(self, s => s.migrate().await)
    }

    /// Creates an article (version 1). `owner` becomes its owner.
    /// Fails with `Conflict` when the slug is taken.
    pub async fn create_article(&self, actor: &Principal, draft: ArticleDraft) -> Result<Article> {
        dispatch!(self, s => s.create_article(actor, draft).await)
    }

    /// Replaces an article's content with `draft` (a new version).
    /// `expected_version`, when given, must equal the stored version
    /// (`Conflict` otherwise). `NotFound` when the id does not exist.
    pub async fn update_article(
        &self,
        actor: &Principal,
        id: ArticleId,
        draft: ArticleDraft,
        expected_version: Option<i32>,
    ) -> Result<Article> {
        dispatch!(self, s => s.update_article(actor, id, draft, expected_version).await)
    }

    /// Deletes an article (its versions and audit rows stay).
    pub async fn delete_article(&self, actor: &Principal, id: ArticleId) -> Result<()> {
        dispatch!(self, s => s.delete_article(actor, id).await)
    }

    /// Creates or updates articles by slug, all in one transaction: either
    /// every record is written or none is. Unchanged records write nothing.
    pub async fn upsert_batch(
        &self,
        actor: &Principal,
        drafts: Vec<ArticleDraft>,
    ) -> Result<UpsertOutcome> {
        dispatch!(self, s => s.upsert_batch(actor, drafts).await)
    }

    /// One article by id.
    pub async fn get_article(&self, id: ArticleId) -> Result<Option<Article>> {
        dispatch!(self, s => s.get_article(id).await)
    }

    /// One article by slug.
    pub async fn get_article_by_slug(&self, slug: &str) -> Result<Option<Article>> {
        dispatch!(self, s => s.get_article_by_slug(slug).await)
    }

    /// The articles with these ids that exist (any order).
    pub async fn get_articles(&self, ids: &[ArticleId]) -> Result<Vec<Article>> {
        dispatch!(self, s => s.get_articles(ids).await)
    }

    /// Articles with id > `after_id`, in id order, at most `limit` (for full scans).
    pub async fn scan_articles(&self, after_id: ArticleId, limit: i64) -> Result<Vec<Article>> {
        dispatch!(self, s => s.scan_articles(after_id, limit).await)
    }

    /// Number of articles.
    pub async fn count_articles(&self) -> Result<i64> {
        dispatch!(self, s => s.count_articles().await)
    }

    /// Every version of an article, oldest first.
    pub async fn list_versions(&self, id: ArticleId) -> Result<Vec<ArticleVersion>> {
        dispatch!(self, s => s.list_versions(id).await)
    }

    /// Outbox rows with seq > `after`, in seq order, at most `limit`.
    pub async fn changes_after(&self, after: i64, limit: i64) -> Result<Vec<Change>> {
        dispatch!(self, s => s.changes_after(after, limit).await)
    }

    /// The highest outbox seq (0 when empty).
    pub async fn outbox_head(&self) -> Result<i64> {
        dispatch!(self, s => s.outbox_head().await)
    }

    /// Appends a `reindex` outbox row (and an audit row); returns its seq.
    pub async fn request_reindex(&self, actor: &Principal) -> Result<i64> {
        dispatch!(self, s => s.request_reindex(actor).await)
    }

    /// Creates a user. `Conflict` when the username is taken.
    pub async fn create_user(
        &self,
        actor: &Principal,
        username: &str,
        display_name: &str,
        roles: &[String],
    ) -> Result<User> {
        dispatch!(self, s => s.create_user(actor, username, display_name, roles).await)
    }

    /// A user by username.
    pub async fn get_user(&self, username: &str) -> Result<Option<User>> {
        dispatch!(self, s => s.get_user(username).await)
    }

    /// Every user, by username.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        dispatch!(self, s => s.list_users().await)
    }

    /// Replaces a user's roles. `NotFound` when the user does not exist.
    pub async fn set_roles(
        &self,
        actor: &Principal,
        username: &str,
        roles: &[String],
    ) -> Result<User> {
        dispatch!(self, s => s.set_roles(actor, username, roles).await)
    }

    /// Stores a token hash for a user (the caller made the token).
    pub async fn create_token(
        &self,
        actor: &Principal,
        username: &str,
        name: &str,
        token_hash: &str,
    ) -> Result<()> {
        dispatch!(self, s => s.create_token(actor, username, name, token_hash).await)
    }

    /// The principal owning a token hash, if any.
    pub async fn principal_for_token(&self, token_hash: &str) -> Result<Option<Principal>> {
        dispatch!(self, s => s.principal_for_token(token_hash).await)
    }

    /// Audit rows in chain order.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        dispatch!(self, s => s.list_audit(filter).await)
    }

    /// Saves a pending revision of a live (published or needs_update)
    /// article as its working copy (status `draft`, note cleared, author =
    /// actor), replacing any earlier one. Nothing is indexed. `NotFound` for
    /// a missing article; `Invalid` (field `status`) when the article is not
    /// live; `Conflict` when the working copy is in review.
    pub async fn save_working_copy(
        &self,
        actor: &Principal,
        id: ArticleId,
        draft: ArticleDraft,
    ) -> Result<WorkingCopy> {
        dispatch!(self, s => s.save_working_copy(actor, id, draft).await)
    }

    /// The working copy of an article, if any.
    pub async fn get_working_copy(&self, id: ArticleId) -> Result<Option<WorkingCopy>> {
        dispatch!(self, s => s.get_working_copy(id).await)
    }

    /// Submits an article for review in one transaction: its working copy
    /// (must be `draft`) goes `in_review`; or, without a working copy, the
    /// article itself (must be `draft`) goes `in_review` as a new version.
    /// Opens a review task for `approver_role`. `Conflict` when already in
    /// review; `Invalid` when there is nothing to submit.
    pub async fn submit_for_review(
        &self,
        actor: &Principal,
        id: ArticleId,
        approver_role: &str,
        due_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Task> {
        dispatch!(self, s => s.submit_for_review(actor, id, approver_role, due_at).await)
    }

    /// Decides a review in one transaction. Approve: the working copy's
    /// content becomes a new published version (working copy removed), or
    /// an in-review article becomes published. Reject: the working copy (or
    /// article) goes back to `draft`, keeping `note`. Closes the article's
    /// open review tasks with the note. An approval with `next_review_due`
    /// sets the article's review date to it. `Conflict` when nothing is in
    /// review.
    pub async fn decide_review(
        &self,
        actor: &Principal,
        id: ArticleId,
        decision: Decision,
        note: Option<&str>,
        next_review_due: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Article> {
        dispatch!(self, s => s.decide_review(actor, id, decision, note, next_review_due).await)
    }

    /// Tasks matching the filter: open ones first (oldest first), then done.
    pub async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        dispatch!(self, s => s.list_tasks(filter).await)
    }

    /// Saves a new version of the rules of `category` (`*` = the global
    /// default): version = previous + 1 (1 for the first). Audited as
    /// `rule.save` with the spec in the details. The caller validated it.
    pub async fn save_rule(
        &self,
        actor: &Principal,
        category: &str,
        spec: &RuleSpec,
    ) -> Result<CategoryRule> {
        dispatch!(self, s => s.save_rule(actor, category, spec).await)
    }

    /// The latest version of the rules of `category` (no fallback to `*`).
    pub async fn get_rule(&self, category: &str) -> Result<Option<CategoryRule>> {
        dispatch!(self, s => s.get_rule(category).await)
    }

    /// The latest version of every category's rules, by category.
    pub async fn list_rules(&self) -> Result<Vec<CategoryRule>> {
        dispatch!(self, s => s.list_rules().await)
    }

    /// Stored embeddings of `ids` under `model_id` (any content hash; the
    /// caller compares it). Articles without a row are absent.
    pub async fn get_embeddings(
        &self,
        model_id: &str,
        ids: &[ArticleId],
    ) -> Result<Vec<StoredEmbedding>> {
        dispatch!(self, s => s.get_embeddings(model_id, ids).await)
    }

    /// Inserts or replaces the rows' embeddings (one row per (article,
    /// model)), in one transaction. Rows of articles that no longer exist
    /// are skipped, not an error (the article was deleted meanwhile).
    pub async fn put_embeddings(&self, rows: &[StoredEmbedding]) -> Result<()> {
        dispatch!(self, s => s.put_embeddings(rows).await)
    }

    /// Stored embeddings under `model_id` with article id > `after_id`, by id,
    /// at most `limit` (for loading a vector index in pages).
    pub async fn scan_embeddings(
        &self,
        model_id: &str,
        after_id: ArticleId,
        limit: i64,
    ) -> Result<Vec<StoredEmbedding>> {
        dispatch!(self, s => s.scan_embeddings(model_id, after_id, limit).await)
    }

    /// Every version of a category's rules, oldest first.
    pub async fn rule_history(&self, category: &str) -> Result<Vec<CategoryRule>> {
        dispatch!(self, s => s.rule_history(category).await)
    }

    /// Sets (replaces) a user's password hash (PHC string). Audited as
    /// `user.set_password` (never with the hash). `NotFound` for an unknown
    /// user.
    pub async fn set_password(&self, actor: &Principal, username: &str, hash: &str) -> Result<()> {
        dispatch!(self, s => s.set_password(actor, username, hash).await)
    }

    /// The principal and password hash of a user who has a password.
    pub async fn password_hash(&self, username: &str) -> Result<Option<(Principal, String)>> {
        dispatch!(self, s => s.password_hash(username).await)
    }

    /// Stores a new session for `user` (whose `user_id` must be set):
    /// `id_hash` is the SHA-256 hex of the cookie value. Audited as
    /// `session.create` with the user as actor.
    pub async fn create_session(
        &self,
        user: &Principal,
        id_hash: &str,
        csrf_token: &str,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        dispatch!(self, s => s.create_session(user, id_hash, csrf_token, expires_at).await)
    }

    /// The principal and CSRF token of an unexpired session; refreshes its
    /// last-seen time at most once a minute.
    pub async fn session(&self, id_hash: &str) -> Result<Option<(Principal, String)>> {
        dispatch!(self, s => s.session(id_hash).await)
    }

    /// Deletes a session (sign-out); a missing one is not an error. Audited
    /// as `session.delete` when one was deleted.
    pub async fn delete_session(&self, actor: &Principal, id_hash: &str) -> Result<()> {
        dispatch!(self, s => s.delete_session(actor, id_hash).await)
    }

    /// A user's reader preferences (defaults when they chose nothing).
    pub async fn get_preferences(&self, user_id: i64) -> Result<Preferences> {
        dispatch!(self, s => s.get_preferences(user_id).await)
    }

    /// Saves a user's reader preferences (audited as `user.preferences`).
    pub async fn put_preferences(
        &self,
        actor: &Principal,
        user_id: i64,
        prefs: &Preferences,
    ) -> Result<()> {
        dispatch!(self, s => s.put_preferences(actor, user_id, prefs).await)
    }

    /// One task by id.
    pub async fn get_task(&self, id: i64) -> Result<Option<Task>> {
        dispatch!(self, s => s.get_task(id).await)
    }

    /// Opens one task per assignee (a role, or a user) on an article, in
    /// one transaction audited as `task.request`.
    pub async fn open_tasks(
        &self,
        actor: &Principal,
        article_id: ArticleId,
        kind: crate::model::TaskKind,
        assignees: &[(Option<String>, Option<String>)],
        note: Option<&str>,
        due_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Task>> {
        dispatch!(self, s => s.open_tasks(actor, article_id, kind, assignees, note, due_at).await)
    }

    /// Custom groups defined by admins, by name.
    pub async fn list_groups(&self) -> Result<Vec<Group>> {
        dispatch!(self, s => s.list_groups().await)
    }

    /// Defines a custom group (audited as `group.create`); `Conflict` when
    /// it exists.
    pub async fn create_group(
        &self,
        actor: &Principal,
        name: &str,
        description: &str,
    ) -> Result<Group> {
        dispatch!(self, s => s.create_group(actor, name, description).await)
    }

    /// Appends one audit row for an event that changes nothing else (a
    /// failed sign-in, an export).
    pub async fn audit_event(
        &self,
        actor: &str,
        action: &'static str,
        target: &str,
        details: serde_json::Value,
    ) -> Result<()> {
        dispatch!(self, s => s.audit_event(actor, action, target, details).await)
    }

    /// The review-date job, in one write transaction: every `published`
    /// article whose `review_due` is before `now` becomes `needs_update`
    /// (a new version, outbox row, audit row `article.needs_update`) and gets
    /// an open `update` task assigned to its owner (`assignee_user`), due
    /// `task_due`. Articles already `needs_update` are left alone, so running
    /// it again changes nothing. Returns the ids it changed, at most 1,000
    /// per call: call again until it returns fewer.
    pub async fn mark_overdue(
        &self,
        actor: &Principal,
        now: chrono::DateTime<chrono::Utc>,
        task_due: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<ArticleId>> {
        dispatch!(self, s => s.mark_overdue(actor, now, task_due).await)
    }

    /// Sends notifications: one row per recipient (deduplicated), all in
    /// one transaction. No audit row (notifications derive from audited
    /// events).
    pub async fn notify(
        &self,
        recipients: &[String],
        kind: &str,
        article_id: Option<ArticleId>,
        task_id: Option<i64>,
        message: &str,
    ) -> Result<usize> {
        dispatch!(self, s => s.notify(recipients, kind, article_id, task_id, message).await)
    }

    /// Records escalation step `step` of task `task_id` and notifies its
    /// recipients, exactly once: in one transaction, insert the
    /// (task, step) marker — if it already exists, do nothing and return
    /// `false` — then the notifications (kind `escalation`) and an audit row
    /// `task.escalate` (target `task:{id}`, details {"step", "recipients"}).
    pub async fn escalate(
        &self,
        actor: &Principal,
        task_id: i64,
        step: i32,
        recipients: &[String],
        article_id: ArticleId,
        message: &str,
    ) -> Result<bool> {
        dispatch!(self, s => s.escalate(actor, task_id, step, recipients, article_id, message).await)
    }

    /// A user's notifications, newest first, at most `limit` (1..=500).
    pub async fn list_notifications(
        &self,
        username: &str,
        unread_only: bool,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        dispatch!(self, s => s.list_notifications(username, unread_only, limit).await)
    }

    /// Number of a user's unread notifications.
    pub async fn unread_notifications(&self, username: &str) -> Result<i64> {
        dispatch!(self, s => s.unread_notifications(username).await)
    }

    /// Marks a user's notifications read: those with these ids (others'
    /// ids are ignored), or all when `ids` is `None`. Returns how many
    /// changed.
    pub async fn mark_notifications_read(
        &self,
        username: &str,
        ids: Option<&[i64]>,
    ) -> Result<u64> {
        dispatch!(self, s => s.mark_notifications_read(username, ids).await)
    }

    /// A signal fired after each committed write, plus a poll interval that
    /// covers writes made by other processes.
    pub fn change_signal(&self) -> (Arc<tokio::sync::Notify>, Duration) {
        dispatch!(self, s => s.change_signal())
    }
}
