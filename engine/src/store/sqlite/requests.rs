//! The Sqlite store: tasks opened on request ("send this article to staff
//! for update") and single-task look-ups.

use chrono::{DateTime, Utc};

use super::workflow::task_from_row;
use super::SqliteStore;
use crate::auth::Principal;
use crate::error::Result;
use crate::model::{ArticleId, Task, TaskKind, TaskStatus};
use crate::store::audit::trunc_micros;
use crate::store::common::{event_entry, now, TASK_COLS};

impl SqliteStore {
    /// See [`super::Store::get_task`].
    pub async fn get_task(&self, id: i64) -> Result<Option<Task>> {
        let sql = format!("SELECT {TASK_COLS} FROM tasks WHERE id = ?1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    /// See [`super::Store::open_tasks`].
    pub async fn open_tasks(
        &self,
        actor: &Principal,
        article_id: ArticleId,
        kind: TaskKind,
        assignees: &[(Option<String>, Option<String>)],
        note: Option<&str>,
        due_at: DateTime<Utc>,
    ) -> Result<Vec<Task>> {
        let at = now();
        let mut w = self.begin_write().await?;
        let sql = format!(
            "INSERT INTO tasks (kind, article_id, assignee_role, assignee_user, status, note, \
             created_by, created_at, due_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING {TASK_COLS}"
        );
        let mut tasks = Vec::with_capacity(assignees.len());
        for (role, user) in assignees {
            let row = sqlx::query(&sql)
                .bind(kind.as_str())
                .bind(article_id)
                .bind(role.as_deref())
                .bind(user.as_deref())
                .bind(TaskStatus::Open.as_str())
                .bind(note)
                .bind(&actor.username)
                .bind(at)
                .bind(trunc_micros(due_at))
                .fetch_one(&mut *w.tx)
                .await?;
            tasks.push(task_from_row(&row)?);
        }
        let ids: Vec<i64> = tasks.iter().map(|t| t.id).collect();
        let entry = event_entry(
            &actor.username,
            at,
            "task.request",
            &format!("article:{article_id}"),
            serde_json::json!({ "kind": kind.as_str(), "tasks": ids, "assignees": assignees, "note": note }),
        );
        self.finish(w, vec![entry]).await?;
        Ok(tasks)
    }
}
