//! Notification helpers: the notification being sent, recipient
//! deduplication, the list page size and the escalation kind.

use chrono::{DateTime, Utc};

use crate::model::ArticleId;

/// The notification kind an escalation sends.
pub(in crate::store) const ESCALATION_KIND: &str = "escalation";
/// Most notifications one [`crate::store::Store::list_notifications`] call
/// returns.
pub(in crate::store) const NOTIFICATION_LIMIT: i64 = 500;

/// One notification about to be sent to several recipients at once.
pub(in crate::store) struct Outgoing<'a> {
    /// What happened (see [`crate::model::Notification::kind`]).
    pub kind: &'a str,
    /// The article concerned, if any.
    pub article_id: Option<ArticleId>,
    /// The task concerned, if any.
    pub task_id: Option<i64>,
    /// Human-readable text.
    pub text: &'a str,
    /// When it is sent (the store's clock).
    pub at: DateTime<Utc>,
}

/// The recipients without repeats, in first-seen order.
pub(in crate::store) fn dedupe_recipients(recipients: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    recipients
        .iter()
        .filter(|r| seen.insert(r.as_str()))
        .cloned()
        .collect()
}

/// The effective notification page size: `limit` clamped to
/// `1..=NOTIFICATION_LIMIT`.
pub(in crate::store) fn notification_limit(limit: i64) -> i64 {
    limit.clamp(1, NOTIFICATION_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_keeps_first_seen_order() {
        let r = ["b", "a", "b", "c", "a"].map(String::from);
        assert_eq!(dedupe_recipients(&r), ["b", "a", "c"]);
    }

    #[test]
    fn limit_is_clamped() {
        assert_eq!(notification_limit(0), 1);
        assert_eq!(notification_limit(-5), 1);
        assert_eq!(notification_limit(20), 20);
        assert_eq!(notification_limit(10_000), NOTIFICATION_LIMIT);
    }
}
