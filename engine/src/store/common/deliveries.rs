//! The delivery outbox's rules both stores share: event keys, the JSON
//! documents deliveries carry, the rows a notification enqueues, the lease
//! a claim takes, and the audit entries of contact and webhook changes.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::PendingAudit;
use crate::auth::Principal;
use crate::model::{Article, Channel, Channels, Contact, PUBLIC};

/// The columns of a claimed delivery, in the order both stores return them.
pub(in crate::store) const DELIVERY_COLS: &str =
    "id, event_key, recipient, channel, target, subscription_id, payload, attempts";
/// The `category_webhooks` columns (without the secret) both stores select.
pub(in crate::store) const WEBHOOK_COLS: &str = "id, category, url, created_by, created_at";
/// Most published articles a feed query reads before permission filtering.
pub(in crate::store) const FEED_SCAN: i64 = 500;

/// The event key of escalation step `step` of task `task`: the unique key
/// (event, recipient, channel) then means one delivery per (task, step,
/// recipient, channel), however often the escalation job runs.
pub(in crate::store) fn escalation_key(task: i64, step: i32) -> String {
    format!("escalation:task:{task}:step:{step}")
}

/// The event key of any other in-app notification (one per recipient).
pub(in crate::store) fn notification_key(id: i64) -> String {
    format!("notification:{id}")
}

/// The event key of a published version.
pub(in crate::store) fn publication_key(article: &Article) -> String {
    format!(
        "published:article:{}:version:{}",
        article.id, article.version
    )
}

/// The per-user channels that are on, as stored names.
pub(in crate::store) fn channel_names(channels: Channels) -> Vec<&'static str> {
    let mut v = Vec::new();
    if channels.email {
        v.push(Channel::Email.as_str());
    }
    if channels.webhook {
        v.push(Channel::Webhook.as_str());
    }
    v
}

/// What a user's delivery of one notification says.
pub(in crate::store) struct NoticeEvent<'a> {
    /// The notification kind (`escalation`, `review_requested`, …).
    pub kind: &'a str,
    /// The article concerned, if any.
    pub article_id: Option<i64>,
    /// The task concerned, if any.
    pub task_id: Option<i64>,
    /// The escalation step (0-based), for escalations.
    pub step: Option<i32>,
    /// The notification's text.
    pub text: &'a str,
    /// When it was sent.
    pub at: DateTime<Utc>,
}

/// The JSON rows `{event_key, recipient, payload}` the per-user enqueue
/// statements read, one per inserted notification `(id, recipient)`.
pub(in crate::store) fn notice_rows(notes: &[(i64, String)], ev: &NoticeEvent<'_>) -> Value {
    let rows: Vec<Value> = notes
        .iter()
        .map(|(id, recipient)| {
            let key = match (ev.task_id, ev.step) {
                (Some(t), Some(s)) => escalation_key(t, s),
                _ => notification_key(*id),
            };
            json!({
                "event_key": key,
                "recipient": recipient,
                "payload": {
                    "event": ev.kind,
                    "notification_id": id,
                    "recipient": recipient,
                    "article_id": ev.article_id,
                    "task_id": ev.task_id,
                    "step": ev.step.map(|s| s + 1),
                    "message": ev.text,
                    "created_at": ev.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                }
            })
        })
        .collect();
    Value::Array(rows)
}

/// The document a category webhook receives for a published version.
/// Title and summary only for public articles: a subscriber is an outside
/// system with no reader identity, so it learns that a restricted article
/// changed and fetches it with its own credentials.
pub(in crate::store) fn publication_payload(a: &Article, at: DateTime<Utc>) -> Value {
    let public = a.audience.iter().any(|r| r == PUBLIC);
    let mut v = json!({
        "event": "article.published",
        "article_id": a.id,
        "slug": a.slug,
        "category": a.category,
        "version": a.version,
        "published_at": a.published_at.unwrap_or(at).to_rfc3339_opts(SecondsFormat::Secs, true),
        "public": public,
    });
    if public {
        v["title"] = json!(a.title);
        v["summary"] = json!(a.summary);
    }
    v
}

/// The host of a URL, for audit rows (paths and queries may hold tokens).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Strip credentials written into the URL.
    host.rsplit_once('@').map_or(host, |(_, h)| h)
}

/// The audit entry of a change to a user's addresses: which are set, not
/// the addresses (a webhook URL may carry a gateway's key).
pub(in crate::store) fn set_contact_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    username: &str,
    c: &Contact,
) -> PendingAudit {
    let details = json!({
        "email": c.email.is_some(),
        "webhook_url": c.webhook_url.as_deref().map(host_of),
    });
    PendingAudit::new(
        actor,
        at,
        "user.set_contact",
        format!("user:{username}"),
        details,
    )
}

/// The audit entry of a registered or deleted category webhook.
pub(in crate::store) fn webhook_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    action: &'static str,
    id: i64,
    category: &str,
    url: &str,
) -> PendingAudit {
    let details = json!({ "category": category, "host": host_of(url) });
    PendingAudit::new(actor, at, action, format!("webhook:{id}"), details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_hides_path_query_and_credentials() {
        assert_eq!(host_of("https://u:p@sms.example/send?key=1"), "sms.example");
        assert_eq!(host_of("http://127.0.0.1:9/x"), "127.0.0.1:9");
    }

    #[test]
    fn escalations_are_keyed_by_task_and_step() {
        let ev = NoticeEvent {
            kind: "escalation",
            article_id: Some(1),
            task_id: Some(7),
            step: Some(1),
            text: "t",
            at: Utc::now(),
        };
        let rows = notice_rows(&[(40, "ann".into())], &ev);
        assert_eq!(rows[0]["event_key"], "escalation:task:7:step:1");
        assert_eq!(rows[0]["payload"]["step"], 2);
        let ev = NoticeEvent { step: None, ..ev };
        let rows = notice_rows(&[(40, "ann".into())], &ev);
        assert_eq!(rows[0]["event_key"], "notification:40");
    }
}
