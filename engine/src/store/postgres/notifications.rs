//! The PostgreSQL store: notifications and task escalations.
//!
//! Writes take the writers' lock like every other write. Sending a
//! notification appends no audit row (it derives from an audited event);
//! an escalation appends `task.escalate` and is recorded in `escalations`,
//! so each (task, step) is sent exactly once. Each notification enqueues
//! its external deliveries in the same transaction (`deliveries.rs`).

use sqlx::postgres::PgRow;
use sqlx::Row;

use super::deliveries::enqueue_notices;
use super::{PgStore, Tx};
use crate::auth::Principal;
use crate::error::Result;
use crate::model::{ArticleId, Channels, Notification};
use crate::store::common::{
    dedupe_recipients, notification_limit, now, task_escalate_entry, NoticeEvent, Outgoing,
    ESCALATION_KIND, NOTIFICATION_COLS,
};

impl PgStore {
    /// See [`super::Store::notify`].
    pub async fn notify(
        &self,
        recipients: &[String],
        kind: &str,
        article_id: Option<ArticleId>,
        task_id: Option<i64>,
        message: &str,
    ) -> Result<usize> {
        let recipients = dedupe_recipients(recipients);
        if recipients.is_empty() {
            return Ok(0);
        }
        let msg = Outgoing {
            kind,
            article_id,
            task_id,
            text: message,
            at: now(),
        };
        let mut tx = self.begin_write().await?;
        insert_notifications(&mut tx, self.channels, &recipients, &msg, None).await?;
        // No audit row: notifications derive from audited events.
        self.finish(tx, Vec::new()).await?;
        Ok(recipients.len())
    }

    /// See [`super::Store::escalate`]. The `escalations` marker is inserted
    /// first under the writers' lock; when it already exists nothing else
    /// is written.
    pub async fn escalate(
        &self,
        actor: &Principal,
        task_id: i64,
        step: i32,
        recipients: &[String],
        article_id: ArticleId,
        message: &str,
    ) -> Result<bool> {
        let recipients = dedupe_recipients(recipients);
        let now = now();
        let mut tx = self.begin_write().await?;
        let sql = "INSERT INTO escalations (task_id, step, sent_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (task_id, step) DO NOTHING";
        let query = sqlx::query(sql).bind(task_id).bind(step).bind(now);
        if query.execute(&mut *tx).await?.rows_affected() == 0 {
            // Already sent: no notifications, no audit row.
            tx.rollback().await?;
            return Ok(false);
        }
        let msg = Outgoing {
            kind: ESCALATION_KIND,
            article_id: Some(article_id),
            task_id: Some(task_id),
            text: message,
            at: now,
        };
        insert_notifications(&mut tx, self.channels, &recipients, &msg, Some(step)).await?;
        let entry = task_escalate_entry(actor, now, task_id, step, &recipients);
        self.finish(tx, vec![entry]).await?;
        Ok(true)
    }

    /// See [`super::Store::list_notifications`].
    pub async fn list_notifications(
        &self,
        username: &str,
        unread_only: bool,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        let sql = format!(
            "SELECT {NOTIFICATION_COLS} FROM notifications \
             WHERE recipient = $1 AND (NOT $2 OR read_at IS NULL) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        );
        let query = sqlx::query(&sql)
            .bind(username)
            .bind(unread_only)
            .bind(notification_limit(limit));
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(notification_from_row).collect()
    }

    /// See [`super::Store::unread_notifications`].
    pub async fn unread_notifications(&self, username: &str) -> Result<i64> {
        let sql = "SELECT count(*) FROM notifications WHERE recipient = $1 AND read_at IS NULL";
        let query = sqlx::query_scalar(sql).bind(username);
        Ok(query.fetch_one(&self.pool).await?)
    }

    /// See [`super::Store::mark_notifications_read`]. An empty `ids` list
    /// changes nothing and opens no transaction.
    pub async fn mark_notifications_read(
        &self,
        username: &str,
        ids: Option<&[i64]>,
    ) -> Result<u64> {
        if ids.is_some_and(<[i64]>::is_empty) {
            return Ok(0);
        }
        let now = now();
        let mut tx = self.begin_write().await?;
        let sql = "UPDATE notifications SET read_at = $2 \
                   WHERE recipient = $1 AND read_at IS NULL \
                     AND ($3::bigint[] IS NULL OR id = ANY($3))";
        let query = sqlx::query(sql)
            .bind(username)
            .bind(now)
            .bind(ids.map(<[i64]>::to_vec));
        let changed = query.execute(&mut *tx).await?.rows_affected();
        // No audit row: reading a notification changes nothing audited.
        self.finish(tx, Vec::new()).await?;
        Ok(changed)
    }
}

/// Inserts `msg` once for each of `recipients` (already deduplicated) and,
/// in the same transaction, their deliveries on the external `channels`
/// (`step`: the escalation step, which keys them).
async fn insert_notifications(
    tx: &mut Tx,
    channels: Channels,
    recipients: &[String],
    msg: &Outgoing<'_>,
    step: Option<i32>,
) -> Result<()> {
    if recipients.is_empty() {
        return Ok(());
    }
    let sql = "INSERT INTO notifications (recipient, kind, article_id, task_id, message, \
               created_at) \
               SELECT r, $2, $3, $4, $5, $6 FROM unnest($1::text[]) WITH ORDINALITY AS t(r, ord) \
               ORDER BY ord RETURNING id, recipient";
    let query = sqlx::query_as(sql)
        .bind(recipients)
        .bind(msg.kind)
        .bind(msg.article_id)
        .bind(msg.task_id)
        .bind(msg.text)
        .bind(msg.at);
    let notes: Vec<(i64, String)> = query.fetch_all(&mut **tx).await?;
    let ev = NoticeEvent {
        kind: msg.kind,
        article_id: msg.article_id,
        task_id: msg.task_id,
        step,
        text: msg.text,
        at: msg.at,
    };
    enqueue_notices(tx, channels, &notes, &ev).await
}

fn notification_from_row(r: &PgRow) -> Result<Notification> {
    Ok(Notification {
        id: r.try_get("id")?,
        recipient: r.try_get("recipient")?,
        kind: r.try_get("kind")?,
        article_id: r.try_get("article_id")?,
        task_id: r.try_get("task_id")?,
        message: r.try_get("message")?,
        created_at: r.try_get("created_at")?,
        read_at: r.try_get("read_at")?,
    })
}
