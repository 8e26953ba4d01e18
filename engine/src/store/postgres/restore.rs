//! The PostgreSQL side of a whole-knowledge-base restore (see
//! [`crate::store::restore`]): rows written with their ids, then the id
//! sequences moved past them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::workflow::task_from_row;
use super::{PgStore, Tx};
use crate::backup::format::Line;
use crate::error::Result;
use crate::model::Task;
use crate::store::common::{event_entry, now, rule_json, TASK_COLS};
use crate::store::restore::BACKUP_TABLES;

/// An open PostgreSQL restore transaction.
pub struct PgRestore {
    store: PgStore,
    tx: Tx,
}

impl PgStore {
    /// See [`crate::store::Store::backup_counts`].
    pub async fn backup_counts(&self) -> Result<BTreeMap<String, i64>> {
        let mut counts = BTreeMap::new();
        for table in BACKUP_TABLES {
            // Table names come from a constant list, never from input.
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&self.pool)
                .await?;
            counts.insert(table.to_string(), n);
        }
        Ok(counts)
    }

    /// See [`crate::store::Store::scan_tasks`].
    pub async fn scan_tasks(&self, after_id: i64, limit: i64) -> Result<Vec<Task>> {
        let sql = format!("SELECT {TASK_COLS} FROM tasks WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(task_from_row).collect()
    }

    /// See [`crate::store::Store::deleted_article_ids`].
    pub async fn deleted_article_ids(&self, after_id: i64, limit: i64) -> Result<Vec<i64>> {
        let sql = "SELECT DISTINCT article_id FROM article_versions v \
                   WHERE article_id > $1 \
                     AND NOT EXISTS (SELECT 1 FROM articles a WHERE a.id = v.article_id) \
                   ORDER BY article_id LIMIT $2";
        let ids = sqlx::query_scalar(sql)
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(ids)
    }

    /// See [`crate::store::Store::begin_restore`].
    pub(in crate::store) async fn begin_restore(&self) -> Result<PgRestore> {
        let tx = self.begin_write().await?;
        Ok(PgRestore {
            store: self.clone(),
            tx,
        })
    }
}

impl PgRestore {
    /// See [`crate::store::Restore::write`].
    pub async fn write(&mut self, line: &Line) -> Result<()> {
        let tx = &mut *self.tx;
        match line {
            Line::Header(_) | Line::Trailer(_) => {}
            Line::User(u) => {
                let sql = "INSERT INTO users (id, username, display_name, roles, created_at, \
                           email, webhook_url, password_hash) \
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
                sqlx::query(sql)
                    .bind(u.id)
                    .bind(&u.username)
                    .bind(&u.display_name)
                    .bind(&u.roles)
                    .bind(u.created_at)
                    .bind(&u.email)
                    .bind(&u.webhook_url)
                    .bind(&u.password_hash)
                    .execute(tx)
                    .await?;
            }
            Line::Group(g) => {
                let sql = "INSERT INTO groups (name, description, created_by, created_at) \
                           VALUES ($1, $2, $3, $4)";
                sqlx::query(sql)
                    .bind(&g.name)
                    .bind(&g.description)
                    .bind(&g.created_by)
                    .bind(g.created_at)
                    .execute(tx)
                    .await?;
            }
            Line::Preferences(p) => {
                let sql = "INSERT INTO user_preferences (user_id, level, updated_at) \
                           VALUES ($1, $2, $3)";
                sqlx::query(sql)
                    .bind(p.user_id)
                    .bind(p.level.map(|l| l.as_str()))
                    .bind(now())
                    .execute(tx)
                    .await?;
            }
            Line::Rule(r) => {
                let sql = "INSERT INTO category_rules (category, version, spec, updated_by, \
                           updated_at) VALUES ($1, $2, $3, $4, $5)";
                sqlx::query(sql)
                    .bind(&r.category)
                    .bind(r.version)
                    .bind(rule_json(&r.spec)?)
                    .bind(&r.updated_by)
                    .bind(r.updated_at)
                    .execute(tx)
                    .await?;
            }
            Line::Article(a) => {
                let sql = "INSERT INTO articles (id, slug, title, summary, body, category, tags, \
                           audience, status, owner, version, created_at, updated_at, \
                           published_at, review_due) \
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
                sqlx::query(sql)
                    .bind(a.id)
                    .bind(&a.slug)
                    .bind(&a.title)
                    .bind(&a.summary)
                    .bind(&a.body)
                    .bind(&a.category)
                    .bind(&a.tags)
                    .bind(&a.audience)
                    .bind(a.status.as_str())
                    .bind(&a.owner)
                    .bind(a.version)
                    .bind(a.created_at)
                    .bind(a.updated_at)
                    .bind(a.published_at)
                    .bind(a.review_due)
                    .execute(&mut *tx)
                    .await?;
                let sql = "INSERT INTO outbox (article_id, kind, created_at) \
                           VALUES ($1, 'upsert', $2)";
                sqlx::query(sql).bind(a.id).bind(now()).execute(tx).await?;
            }
            Line::Version(v) | Line::DeletedVersion(v) => {
                let sql = "INSERT INTO article_versions (article_id, version, title, summary, \
                           body, category, tags, audience, status, author, created_at) \
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
                sqlx::query(sql)
                    .bind(v.article_id)
                    .bind(v.version)
                    .bind(&v.title)
                    .bind(&v.summary)
                    .bind(&v.body)
                    .bind(&v.category)
                    .bind(&v.tags)
                    .bind(&v.audience)
                    .bind(v.status.as_str())
                    .bind(&v.author)
                    .bind(v.created_at)
                    .execute(tx)
                    .await?;
            }
            Line::Draft(d) => {
                let sql = "INSERT INTO article_drafts (article_id, title, summary, body, \
                           category, tags, audience, review_due, status, author, note, \
                           updated_at) \
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
                sqlx::query(sql)
                    .bind(d.article_id)
                    .bind(&d.title)
                    .bind(&d.summary)
                    .bind(&d.body)
                    .bind(&d.category)
                    .bind(&d.tags)
                    .bind(&d.audience)
                    .bind(d.review_due)
                    .bind(d.status.as_str())
                    .bind(&d.author)
                    .bind(&d.note)
                    .bind(d.updated_at)
                    .execute(tx)
                    .await?;
            }
            Line::Task(t) => {
                let sql = "INSERT INTO tasks (id, kind, article_id, assignee_role, \
                           assignee_user, status, note, created_by, created_at, due_at, \
                           closed_at, closed_by) \
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
                sqlx::query(sql)
                    .bind(t.id)
                    .bind(t.kind.as_str())
                    .bind(t.article_id)
                    .bind(&t.assignee_role)
                    .bind(&t.assignee_user)
                    .bind(t.status.as_str())
                    .bind(&t.note)
                    .bind(&t.created_by)
                    .bind(t.created_at)
                    .bind(t.due_at)
                    .bind(t.closed_at)
                    .bind(&t.closed_by)
                    .execute(tx)
                    .await?;
            }
        }
        Ok(())
    }

    /// See [`crate::store::Restore::commit`].
    pub async fn commit(mut self, actor: &str, details: Value) -> Result<()> {
        // Ids were written explicitly, so the sequences never moved: set
        // each past the largest id (or back to 1 for an empty table).
        // Deleted articles' ids live on in their versions and must never
        // be handed out again.
        let highest = [
            (
                "articles",
                "GREATEST((SELECT max(id) FROM articles), \
                          (SELECT max(article_id) FROM article_versions))",
            ),
            ("users", "(SELECT max(id) FROM users)"),
            ("tasks", "(SELECT max(id) FROM tasks)"),
        ];
        for (table, max) in highest {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 COALESCE({max}, 1), {max} IS NOT NULL)"
            );
            sqlx::query(&sql).execute(&mut *self.tx).await?;
        }
        let entry = event_entry(actor, now(), "kb.import", "kb", details);
        self.store.finish(self.tx, vec![entry]).await
    }
}
