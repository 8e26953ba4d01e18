//! Scheduled work, driven by an injectable [`Clock`] so tests control time.
//!
//! The review-date job turns published articles whose review date has
//! passed into `needs_update` and gives their owners an update task; the
//! escalation job ([`crate::notify::escalate_overdue`]) walks overdue tasks
//! along their category's escalation path. Both are idempotent, so several
//! processes may run them.

use chrono::{DateTime, Duration, Utc};

use crate::auth::Principal;
use crate::error::Result;
use crate::model::ArticleId;
use crate::store::Store;

/// Days an owner has to update a flagged article.
pub const UPDATE_TASK_DAYS: i64 = 14;

/// The time source of scheduled work.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Runs the review-date job as of `now`; returns the articles it flagged.
pub async fn review_dates(store: &Store, now: DateTime<Utc>) -> Result<Vec<ArticleId>> {
    let mut flagged = Vec::new();
    loop {
        // The store flags at most 1,000 per transaction.
        let batch = store
            .mark_overdue(
                &Principal::system(),
                now,
                now + Duration::days(UPDATE_TASK_DAYS),
            )
            .await?;
        let more = batch.len() >= 1000;
        flagged.extend(batch);
        if !more {
            break;
        }
    }
    if !flagged.is_empty() {
        tracing::info!(
            articles = flagged.len(),
            "articles past their review date need an update"
        );
        crate::notify::update_needed(store, &store.get_articles(&flagged).await?).await;
    }
    Ok(flagged)
}
