//! External notification channels: users' addresses, category webhook
//! subscriptions and the rows of the delivery outbox.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// Which per-user channels a deployment has configured. A notification
/// enqueues a delivery for a channel only when it is on here and the
/// recipient has an address for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Channels {
    /// E-mail over SMTP (`KMT_SMTP_URL` set).
    pub email: bool,
    /// The user's own webhook, e.g. an SMS gateway (`KMT_WEBHOOK_SECRET`
    /// set: unsigned webhooks are never sent).
    pub webhook: bool,
}

/// A delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// E-mail to the user's address.
    Email,
    /// POST to the user's webhook URL, signed with the server-wide secret.
    Webhook,
    /// POST to a category's webhook subscription, signed with its secret.
    CategoryWebhook,
}

impl Channel {
    /// Every channel, for metrics.
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Webhook, Channel::CategoryWebhook];

    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
            Channel::CategoryWebhook => "category_webhook",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Result<Channel> {
        match s {
            "email" => Ok(Channel::Email),
            "webhook" => Ok(Channel::Webhook),
            "category_webhook" => Ok(Channel::CategoryWebhook),
            other => Err(Error::Corrupt(format!(
                "unknown delivery channel {other:?}"
            ))),
        }
    }
}

/// Where a user can be reached outside the application; both optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// E-mail address for notifications.
    #[serde(default)]
    pub email: Option<String>,
    /// A URL that receives notifications as signed JSON POSTs (an SMS
    /// gateway, a chat bridge).
    #[serde(default)]
    pub webhook_url: Option<String>,
}

/// Longest address or URL accepted.
const MAX_ADDRESS: usize = 2048;

impl Contact {
    /// Trims the fields (blank means none) and checks their form.
    pub fn normalised(self) -> Result<Contact> {
        let clean = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let c = Contact {
            email: clean(self.email),
            webhook_url: clean(self.webhook_url),
        };
        if let Some(e) = &c.email {
            let ok = e.len() <= MAX_ADDRESS
                && e.split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
                && !e.chars().any(|ch| ch.is_whitespace() || ch.is_control());
            if !ok {
                return Err(Error::invalid(
                    "email",
                    "expected an address like name@example.org",
                ));
            }
        }
        if let Some(u) = &c.webhook_url {
            check_url("webhook_url", u)?;
        }
        Ok(c)
    }
}

/// Checks that `url` is an absolute http(s) URL.
pub fn check_url(field: &str, url: &str) -> Result<()> {
    let ok = url.len() <= MAX_ADDRESS
        && (url.starts_with("http://") || url.starts_with("https://"))
        && url
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty())
        && !url.chars().any(|ch| ch.is_whitespace() || ch.is_control());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(field, "expected an http:// or https:// URL"))
    }
}

/// A webhook subscribed to a category's publications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CategoryWebhook {
    /// Store-assigned id.
    pub id: i64,
    /// The category whose publications it receives.
    pub category: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Who registered it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The signing secret: only in the response that created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// One row of the delivery outbox, as the worker claimed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Store-assigned id (sent as `X-KMT-Delivery`).
    pub id: i64,
    /// The event it announces, e.g. `escalation:task:7:step:1`.
    pub event_key: String,
    /// A username, or `subscription:{id}` for category webhooks.
    pub recipient: String,
    /// How it is sent.
    pub channel: Channel,
    /// The address or URL.
    pub target: String,
    /// The category webhook subscription (its secret signs the request).
    pub subscription_id: Option<i64>,
    /// The JSON document sent (the e-mail is written from it).
    pub payload: serde_json::Value,
    /// Attempts so far, including the one this claim starts.
    pub attempts: i32,
}

/// Where a delivery stands, for tests and operators.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryState {
    /// The row.
    pub delivery: Delivery,
    /// When it was sent.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When it was given up on.
    pub failed_at: Option<DateTime<Utc>>,
    /// When it is tried next.
    pub next_attempt_at: DateTime<Utc>,
    /// The last failure.
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_is_trimmed_and_checked() {
        let c = Contact {
            email: Some(" a@b.org ".into()),
            webhook_url: Some("  ".into()),
        };
        let c = c.normalised().unwrap();
        assert_eq!(c.email.as_deref(), Some("a@b.org"));
        assert_eq!(c.webhook_url, None);
        let bad = Contact {
            email: Some("nobody".into()),
            webhook_url: None,
        };
        assert!(bad.normalised().is_err());
        let bad = Contact {
            email: None,
            webhook_url: Some("ftp://x".into()),
        };
        assert!(bad.normalised().is_err());
    }

    #[test]
    fn channels_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()).unwrap(), c);
        }
    }
}
