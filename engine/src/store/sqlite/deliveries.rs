//! The SQLite store: users' addresses, category webhooks, the Atom
//! feed's articles and the delivery outbox.
//!
//! Deliveries are enqueued inside the transaction of the event they
//! announce (a notification, a published version), so an event commits
//! with its deliveries or not at all; the unique (event, recipient,
//! channel) key makes a repeated enqueue a no-op. Workers claim due rows
//! with a lease in one `UPDATE … RETURNING` under the write lock (SQLite
//! has one writer, so two workers never claim the same row) and record the
//! outcome. Payloads are JSON text.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row as _;

use super::{SqliteStore, Tx};
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::model::{
    Article, CategoryWebhook, Channel, Channels, Contact, Delivery, DeliveryState, Status, User,
};
use crate::store::common::{
    channel_names, notice_rows, now, publication_key, publication_payload, set_contact_entry,
    user_not_found, webhook_entry, NoticeEvent, ARTICLE_COLS, DELIVERY_COLS, FEED_SCAN, USER_COLS,
    WEBHOOK_COLS,
};

impl SqliteStore {
    /// See [`super::Store::with_channels`].
    pub fn with_channels(mut self, channels: Channels) -> SqliteStore {
        self.channels = channels;
        self
    }

    /// See [`super::Store::set_contact`].
    pub async fn set_contact(
        &self,
        actor: &Principal,
        username: &str,
        contact: &Contact,
    ) -> Result<User> {
        let now = now();
        let mut w = self.begin_write().await?;
        let sql = format!(
            "UPDATE users SET email = ?2, webhook_url = ?3 WHERE username = ?1 \
             RETURNING {USER_COLS}"
        );
        let query = sqlx::query(&sql)
            .bind(username)
            .bind(&contact.email)
            .bind(&contact.webhook_url);
        let row = query.fetch_optional(&mut *w.tx).await?;
        let row = row.ok_or_else(|| user_not_found(username))?;
        let user = super::accounts::user_from_row(&row)?;
        let entry = set_contact_entry(actor, now, username, contact);
        self.finish(w, vec![entry]).await?;
        Ok(user)
    }

    /// See [`super::Store::create_webhook`].
    pub async fn create_webhook(
        &self,
        actor: &Principal,
        category: &str,
        url: &str,
        secret: &str,
    ) -> Result<CategoryWebhook> {
        let now = now();
        let mut w = self.begin_write().await?;
        let sql = format!(
            "INSERT INTO category_webhooks (category, url, secret, created_by, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING {WEBHOOK_COLS}"
        );
        let query = sqlx::query(&sql)
            .bind(category)
            .bind(url)
            .bind(secret)
            .bind(&actor.username)
            .bind(now);
        let mut hook = webhook_from_row(&query.fetch_one(&mut *w.tx).await?)?;
        let entry = webhook_entry(actor, now, "webhook.create", hook.id, category, url);
        self.finish(w, vec![entry]).await?;
        hook.secret = Some(secret.to_string());
        Ok(hook)
    }

    /// See [`super::Store::list_webhooks`].
    pub async fn list_webhooks(&self, category: &str) -> Result<Vec<CategoryWebhook>> {
        let sql =
            format!("SELECT {WEBHOOK_COLS} FROM category_webhooks WHERE category = ?1 ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(category)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(webhook_from_row).collect()
    }

    /// See [`super::Store::delete_webhook`].
    pub async fn delete_webhook(&self, actor: &Principal, category: &str, id: i64) -> Result<()> {
        let now = now();
        let mut w = self.begin_write().await?;
        let sql = "DELETE FROM category_webhooks WHERE id = ?1 AND category = ?2 RETURNING url";
        let url: Option<String> = sqlx::query_scalar(sql)
            .bind(id)
            .bind(category)
            .fetch_optional(&mut *w.tx)
            .await?;
        let url = url.ok_or_else(|| Error::NotFound(format!("webhook {id} of {category}")))?;
        let entry = webhook_entry(actor, now, "webhook.delete", id, category, &url);
        self.finish(w, vec![entry]).await
    }

    /// See [`super::Store::webhook_secret`].
    pub async fn webhook_secret(&self, id: i64) -> Result<Option<String>> {
        let sql = "SELECT secret FROM category_webhooks WHERE id = ?1";
        let query = sqlx::query_scalar(sql).bind(id);
        Ok(query.fetch_optional(&self.pool).await?)
    }

    /// See [`super::Store::recently_published`].
    pub async fn recently_published(&self, category: &str) -> Result<Vec<Article>> {
        let sql = format!(
            "SELECT {ARTICLE_COLS} FROM articles WHERE category = ?1 AND status IN (?2, ?3) \
             AND published_at IS NOT NULL ORDER BY published_at DESC, id DESC LIMIT ?4"
        );
        let query = sqlx::query(&sql)
            .bind(category)
            .bind(Status::Published.as_str())
            .bind(Status::NeedsUpdate.as_str())
            .bind(FEED_SCAN);
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(super::articles::article_from_row).collect()
    }

    /// See [`super::Store::claim_deliveries`].
    pub async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let sql = format!(
            "UPDATE deliveries SET claimed_until = ?2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM deliveries \
                 WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?1 \
                   AND (claimed_until IS NULL OR claimed_until <= ?1) \
                 ORDER BY next_attempt_at, id LIMIT ?3) \
             RETURNING {DELIVERY_COLS}"
        );
        let mut w = self.begin_write().await?;
        let query = sqlx::query(&sql).bind(now).bind(lease_until).bind(limit);
        let rows = query.fetch_all(&mut *w.tx).await?;
        self.finish(w, Vec::new()).await?;
        let mut out: Vec<Delivery> = rows.iter().map(delivery_from_row).collect::<Result<_>>()?;
        out.sort_by_key(|d| d.id);
        Ok(out)
    }

    /// See [`super::Store::delivery_done`].
    pub async fn delivery_done(
        &self,
        id: i64,
        now: DateTime<Utc>,
        outcome: Result<(), (&str, Option<DateTime<Utc>>)>,
    ) -> Result<()> {
        let query = match outcome {
            Ok(()) => sqlx::query(
                "UPDATE deliveries SET delivered_at = ?2, claimed_until = NULL, last_error = NULL \
                 WHERE id = ?1 AND delivered_at IS NULL",
            )
            .bind(id)
            .bind(now),
            Err((error, Some(retry_at))) => sqlx::query(
                "UPDATE deliveries SET next_attempt_at = ?2, claimed_until = NULL, \
                 last_error = ?3 WHERE id = ?1 AND delivered_at IS NULL",
            )
            .bind(id)
            .bind(retry_at)
            .bind(error),
            Err((error, None)) => sqlx::query(
                "UPDATE deliveries SET failed_at = ?2, claimed_until = NULL, last_error = ?3 \
                 WHERE id = ?1 AND delivered_at IS NULL",
            )
            .bind(id)
            .bind(now)
            .bind(error),
        };
        let mut w = self.begin_write().await?;
        query.execute(&mut *w.tx).await?;
        self.finish(w, Vec::new()).await
    }

    /// See [`super::Store::list_deliveries`].
    pub async fn list_deliveries(&self) -> Result<Vec<DeliveryState>> {
        let sql = format!(
            "SELECT {DELIVERY_COLS}, delivered_at, failed_at, next_attempt_at, last_error \
             FROM deliveries ORDER BY id"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryState {
                    delivery: delivery_from_row(r)?,
                    delivered_at: r.try_get("delivered_at")?,
                    failed_at: r.try_get("failed_at")?,
                    next_attempt_at: r.try_get("next_attempt_at")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect()
    }
}

/// Enqueues the per-user deliveries of notifications just inserted
/// (`(id, recipient)`), one per channel that is on and for which the
/// recipient has an address.
pub(super) async fn enqueue_notices(
    tx: &mut Tx,
    channels: Channels,
    notes: &[(i64, String)],
    ev: &NoticeEvent<'_>,
) -> Result<()> {
    let names = channel_names(channels);
    if notes.is_empty() || names.is_empty() {
        return Ok(());
    }
    let sql = "INSERT INTO deliveries (event_key, recipient, channel, target, payload, \
               next_attempt_at, created_at) \
               SELECT json_extract(x.value, '$.event_key'), u.username, c.value, \
                   CASE c.value WHEN 'email' THEN u.email ELSE u.webhook_url END, \
                   json_extract(x.value, '$.payload'), ?3, ?3 \
               FROM json_each(?1) AS x \
               JOIN users u ON u.username = json_extract(x.value, '$.recipient') \
               CROSS JOIN json_each(?2) AS c \
               WHERE CASE c.value WHEN 'email' THEN u.email ELSE u.webhook_url END IS NOT NULL \
               ON CONFLICT (event_key, recipient, channel) DO NOTHING";
    let query = sqlx::query(sql)
        .bind(notice_rows(notes, ev).to_string())
        .bind(serde_json::json!(names).to_string())
        .bind(ev.at);
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Enqueues one delivery per webhook subscribed to the article's category,
/// when `article` is a newly written published version.
pub(super) async fn enqueue_publication(
    tx: &mut Tx,
    article: &Article,
    now: DateTime<Utc>,
) -> Result<()> {
    if article.status != Status::Published {
        return Ok(());
    }
    let sql = "INSERT INTO deliveries (event_key, recipient, channel, target, subscription_id, \
               payload, next_attempt_at, created_at) \
               SELECT ?1, 'subscription:' || s.id, ?2, s.url, s.id, ?3, ?4, ?4 \
               FROM category_webhooks s WHERE s.category = ?5 \
               ON CONFLICT (event_key, recipient, channel) DO NOTHING";
    let query = sqlx::query(sql)
        .bind(publication_key(article))
        .bind(Channel::CategoryWebhook.as_str())
        .bind(publication_payload(article, now).to_string())
        .bind(now)
        .bind(&article.category);
    query.execute(&mut **tx).await?;
    Ok(())
}

fn webhook_from_row(r: &SqliteRow) -> Result<CategoryWebhook> {
    Ok(CategoryWebhook {
        id: r.try_get("id")?,
        category: r.try_get("category")?,
        url: r.try_get("url")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        secret: None,
    })
}

fn delivery_from_row(r: &SqliteRow) -> Result<Delivery> {
    Ok(Delivery {
        id: r.try_get("id")?,
        event_key: r.try_get("event_key")?,
        recipient: r.try_get("recipient")?,
        channel: Channel::parse(r.try_get("channel")?)?,
        target: r.try_get("target")?,
        subscription_id: r.try_get("subscription_id")?,
        payload: serde_json::from_str(r.try_get("payload")?)
            .map_err(|e| Error::Corrupt(format!("delivery payload: {e}")))?,
        attempts: r.try_get("attempts")?,
    })
}
