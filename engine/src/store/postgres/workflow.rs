//! The PostgreSQL store: working copies, review submission and decisions,
//! the review-date job, tasks and category rules.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::Row;

use super::articles::{article_from_row, lock_article, write_version};
use super::deliveries::enqueue_publication;
use super::{PgStore, Tx};
use crate::auth::Principal;
use crate::error::Result;
use crate::model::{
    validate_name, Article, ArticleDraft, ArticleId, CategoryRule, Decision, RuleSpec, Status,
    Task, TaskKind, TaskStatus, WorkingCopy,
};
use crate::store::audit::trunc_micros;
use crate::store::common::{
    check_copy_editable, check_live, copy_draft, decision_entry, draft_save_entry,
    filters_assignee, needs_update_entry, now, parse_status, parse_task_kind, parse_task_status,
    plan_decision, plan_submission, rule_json, rule_save_entry, rule_spec_from_value, status_draft,
    stored_copy, stored_rule, submit_entry, Outcome, Submission, ARTICLE_COLS, COPY_COLS,
    OVERDUE_LIMIT, RULE_COLS, TASK_COLS, TASK_LIMIT,
};
use crate::store::TaskFilter;

impl PgStore {
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
        next_review_due: Option<DateTime<Utc>>,
    ) -> Result<Article> {
        let now = now();
        let mut tx = self.begin_write().await?;
        let old = lock_article(&mut tx, id).await?;
        let copy = working_copy(&mut tx, id).await?;
        let article = match plan_decision(&old, copy, decision)? {
            Outcome::PublishCopy(copy) => {
                let mut draft = copy_draft(&old, &copy);
                draft.review_due = next_review_due.or(draft.review_due);
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
                let mut draft = status_draft(&old, status);
                if status == Status::Published {
                    draft.review_due = next_review_due.or(draft.review_due);
                }
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
        if decision == Decision::Approve {
            enqueue_publication(&mut tx, &article, now).await?;
        }
        self.finish(tx, vec![entry]).await?;
        Ok(article)
    }

    /// See [`super::Store::mark_overdue`]. Articles whose `review_due` is
    /// before `cutoff` match; the new versions, tasks and audit rows carry
    /// the store's clock, like every other write. At most 1,000 articles
    /// (`OVERDUE_LIMIT`, lowest ids first) change per call, so one run
    /// stays a bounded transaction: call again until it returns none.
    /// Matched rows are read `FOR UPDATE` under the writers' lock, so no
    /// other write can slip in between the match and the rewrite.
    pub async fn mark_overdue(
        &self,
        actor: &Principal,
        cutoff: DateTime<Utc>,
        task_due: DateTime<Utc>,
    ) -> Result<Vec<ArticleId>> {
        let now = now();
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT {ARTICLE_COLS} FROM articles \
             WHERE status = $1 AND review_due IS NOT NULL AND review_due < $2 \
             ORDER BY id LIMIT $3 FOR UPDATE"
        );
        let query = sqlx::query(&sql)
            .bind(Status::Published.as_str())
            .bind(trunc_micros(cutoff))
            .bind(OVERDUE_LIMIT);
        let rows = query.fetch_all(&mut *tx).await?;
        let overdue: Vec<Article> = rows.iter().map(article_from_row).collect::<Result<_>>()?;
        let mut entries = Vec::with_capacity(overdue.len());
        for old in &overdue {
            let draft = status_draft(old, Status::NeedsUpdate);
            let article = write_version(&mut tx, old, draft, &actor.username, now).await?;
            insert_update_task(&mut tx, &article, actor, now, task_due).await?;
            entries.push(needs_update_entry(actor, now, &article));
        }
        // No match: nothing was written and `finish` wakes nobody.
        self.finish(tx, entries).await?;
        Ok(overdue.iter().map(|a| a.id).collect())
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
}

/// The working copy of an article, read inside a write (the article's row
/// lock covers it).
async fn working_copy(tx: &mut Tx, id: ArticleId) -> Result<Option<WorkingCopy>> {
    let sql = format!("SELECT {COPY_COLS} FROM article_drafts WHERE article_id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut **tx).await?;
    row.as_ref().map(copy_from_row).transpose()
}

/// Opens an `update` task for article `a`, assigned to its owner (no
/// role), due `due_at`.
async fn insert_update_task(
    tx: &mut Tx,
    a: &Article,
    actor: &Principal,
    now: DateTime<Utc>,
    due_at: DateTime<Utc>,
) -> Result<()> {
    let sql = "INSERT INTO tasks (kind, article_id, assignee_role, assignee_user, status, \
               created_by, created_at, due_at) VALUES ($1, $2, NULL, $3, $4, $5, $6, $7)";
    let query = sqlx::query(sql)
        .bind(TaskKind::Update.as_str())
        .bind(a.id)
        .bind(&a.owner)
        .bind(TaskStatus::Open.as_str())
        .bind(&actor.username)
        .bind(now)
        .bind(trunc_micros(due_at));
    query.execute(&mut **tx).await?;
    Ok(())
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

pub(super) fn task_from_row(r: &PgRow) -> Result<Task> {
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
