//! [`Store`] methods of the external notification channels: users'
//! addresses, category webhook subscriptions, the articles of a category's
//! feed and the delivery outbox the worker ([`crate::notify::deliver`])
//! works off. Kept apart from `mod.rs` only for length; the dispatch is the
//! same.

use chrono::{DateTime, Utc};

use super::Store;
use crate::auth::Principal;
use crate::error::Result;
use crate::model::{Article, CategoryWebhook, Channels, Contact, Delivery, DeliveryState, User};

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Postgres($s) => $e,
            Store::Sqlite($s) => $e,
        }
    };
}

/// How a claimed delivery ended: `Ok` when sent, else the error and the
/// time of the next attempt (`None`: give up, mark it failed).
pub type DeliveryOutcome<'a> = std::result::Result<(), (&'a str, Option<DateTime<Utc>>)>;

impl Store {
    /// This store with the per-user channels notifications enqueue
    /// deliveries for (default: none). Set once at start-up, by every
    /// process that writes notifications.
    pub fn with_channels(self, channels: Channels) -> Store {
        match self {
            Store::Postgres(s) => Store::Postgres(s.with_channels(channels)),
            Store::Sqlite(s) => Store::Sqlite(s.with_channels(channels)),
        }
    }

    /// Sets a user's addresses (both replaced; `None` clears). Audited as
    /// `user.set_contact` with which are set, never the addresses.
    /// `NotFound` for an unknown user.
    pub async fn set_contact(
        &self,
        actor: &Principal,
        username: &str,
        contact: &Contact,
    ) -> Result<User> {
        dispatch!(self, s => s.set_contact(actor, username, contact).await)
    }

    /// Registers a webhook for `category`'s publications, signed with
    /// `secret` (returned in the result, and never again). Audited as
    /// `webhook.create`.
    pub async fn create_webhook(
        &self,
        actor: &Principal,
        category: &str,
        url: &str,
        secret: &str,
    ) -> Result<CategoryWebhook> {
        dispatch!(self, s => s.create_webhook(actor, category, url, secret).await)
    }

    /// The webhooks of `category` (without secrets), oldest first.
    pub async fn list_webhooks(&self, category: &str) -> Result<Vec<CategoryWebhook>> {
        dispatch!(self, s => s.list_webhooks(category).await)
    }

    /// Deletes webhook `id` of `category`; its undelivered deliveries fail
    /// when next tried. Audited as `webhook.delete`. `NotFound` when no
    /// such webhook exists in that category.
    pub async fn delete_webhook(&self, actor: &Principal, category: &str, id: i64) -> Result<()> {
        dispatch!(self, s => s.delete_webhook(actor, category, id).await)
    }

    /// The signing secret of webhook `id`, if it still exists.
    pub async fn webhook_secret(&self, id: i64) -> Result<Option<String>> {
        dispatch!(self, s => s.webhook_secret(id).await)
    }

    /// Live (published or needs-update) articles of `category`, most
    /// recently published first, at most 500; the caller filters by
    /// permission.
    pub async fn recently_published(&self, category: &str) -> Result<Vec<Article>> {
        dispatch!(self, s => s.recently_published(category).await)
    }

    /// Claims up to `limit` due deliveries (not sent, not failed, next
    /// attempt at or before `now`, not leased by another worker) until
    /// `lease_until`, counting the attempt. Concurrent callers never
    /// receive the same row while its lease runs.
    pub async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        dispatch!(self, s => s.claim_deliveries(now, lease_until, limit).await)
    }

    /// Records how a claimed delivery ended (see [`DeliveryOutcome`]) and
    /// releases its lease. A delivery already marked sent stays sent.
    pub async fn delivery_done(
        &self,
        id: i64,
        now: DateTime<Utc>,
        outcome: DeliveryOutcome<'_>,
    ) -> Result<()> {
        dispatch!(self, s => s.delivery_done(id, now, outcome).await)
    }

    /// Every delivery with its state, by id (tests and operators).
    pub async fn list_deliveries(&self) -> Result<Vec<DeliveryState>> {
        dispatch!(self, s => s.list_deliveries().await)
    }
}
