//! Usage helpers both stores share: the JSON row sets a batch of events is
//! written from (events, the per-(user, article) totals, the read
//! assignments the views complete), the audit entries of feedback and
//! assignments, and limits.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::PendingAudit;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::model::{ArticleId, Assignee, AssignmentKind, UsageEvent, ViewSource};
use crate::store::audit::trunc_micros;
use crate::usage::normalise_query;

/// Most rows one history, assignment or interaction page returns.
pub(in crate::store) const USAGE_PAGE: i64 = 1000;
/// The `reading_assignments` columns, in the order both stores select them.
pub(in crate::store) const ASSIGNMENT_COLS: &str =
    "id, article_id, username, kind, via_role, assigned_by, assigned_at, done_at";

/// A timestamp as both stores keep it in JSON row sets (and SQLite in
/// columns): RFC 3339, microseconds, `+00:00`.
pub(in crate::store) fn time(t: DateTime<Utc>) -> String {
    trunc_micros(t).to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// A batch of events as the JSON arrays the set-based inserts read.
pub(in crate::store) struct EventRows {
    /// `view_events` rows.
    pub(in crate::store) views: String,
    /// `search_events` rows (the writer decides whether `user_id` is kept).
    pub(in crate::store) searches: String,
    /// `click_events` rows (likewise).
    pub(in crate::store) clicks: String,
    /// Increments of `user_article_usage`, one per (user, article).
    pub(in crate::store) totals: String,
    /// The earliest served view per (user, article): completes open read
    /// assignments made before it.
    pub(in crate::store) reads: String,
}

#[derive(Default)]
struct Total {
    views: i64,
    clicks: i64,
    dwell_ms: i64,
    last_at: Option<DateTime<Utc>>,
}

/// The running total of a signed-in user's events on an article
/// (anonymous events have none).
fn total(
    totals: &mut BTreeMap<(i64, ArticleId), Total>,
    user: Option<i64>,
    article: ArticleId,
    at: DateTime<Utc>,
) -> Option<&mut Total> {
    let t = totals.entry((user?, article)).or_default();
    t.last_at = Some(t.last_at.map_or(at, |l| l.max(at)));
    Some(t)
}

/// Splits `events` into the row sets of [`EventRows`].
pub(in crate::store) fn event_rows(events: &[UsageEvent]) -> EventRows {
    let (mut views, mut searches, mut clicks) = (vec![], vec![], vec![]);
    let mut totals: BTreeMap<(i64, ArticleId), Total> = BTreeMap::new();
    let mut reads: BTreeMap<(i64, ArticleId), DateTime<Utc>> = BTreeMap::new();
    for e in events {
        match e {
            UsageEvent::View(v) => {
                views.push(json!({
                    "at": time(v.at), "user_id": v.user_id, "article_id": v.article_id,
                    "source": v.source.as_str(), "dwell_ms": v.dwell_ms,
                }));
                if let Some(t) = total(&mut totals, v.user_id, v.article_id, v.at) {
                    if v.source == ViewSource::Server {
                        t.views += 1;
                    }
                    t.dwell_ms += v.dwell_ms.unwrap_or(0);
                }
                if let (Some(u), ViewSource::Server) = (v.user_id, v.source) {
                    let r = reads.entry((u, v.article_id)).or_insert(v.at);
                    *r = (*r).min(v.at);
                }
            }
            UsageEvent::Search(s) => searches.push(json!({
                "id": s.id, "at": time(s.at), "user_id": s.user_id, "query": s.query,
                "query_norm": normalise_query(&s.query), "filters": s.filters, "mode": s.mode,
                "result_count": s.result_count, "latency_ms": s.latency_ms,
            })),
            UsageEvent::Click(c) => {
                clicks.push(json!({
                    "at": time(c.at), "search_id": c.search_id, "user_id": c.user_id,
                    "article_id": c.article_id, "position": c.position,
                }));
                if let Some(t) = total(&mut totals, c.user_id, c.article_id, c.at) {
                    t.clicks += 1;
                }
            }
        }
    }
    let totals: Vec<Value> = totals
        .into_iter()
        .map(|((u, a), t)| {
            json!({
                "user_id": u, "article_id": a, "views": t.views, "clicks": t.clicks,
                "dwell_ms": t.dwell_ms, "last_at": t.last_at.map(time),
            })
        })
        .collect();
    let reads: Vec<Value> = reads
        .into_iter()
        .map(|((u, a), at)| json!({"user_id": u, "article_id": a, "at": time(at)}))
        .collect();
    let text = |v: Vec<Value>| Value::Array(v).to_string();
    EventRows {
        views: text(views),
        searches: text(searches),
        clicks: text(clicks),
        totals: text(totals),
        reads: text(reads),
    }
}

/// Assignees as the JSON array the assignment upsert reads.
pub(in crate::store) fn assignees_json(assignees: &[Assignee]) -> String {
    let rows: Vec<Value> = assignees
        .iter()
        .map(|a| json!({"user_id": a.user_id, "username": a.username, "via_role": a.via_role}))
        .collect();
    Value::Array(rows).to_string()
}

/// Parses a stored assignment kind.
pub(in crate::store) fn parse_assignment_kind(s: &str) -> Result<AssignmentKind> {
    AssignmentKind::parse(s)
        .ok_or_else(|| Error::Corrupt(format!("unknown stored assignment kind {s:?}")))
}

/// The audit entry of a feedback comment (the comment itself stays in the
/// `feedback` table; the trail records that it was given and which task it
/// opened).
pub(in crate::store) fn feedback_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    article_id: ArticleId,
    feedback_id: i64,
    task_id: i64,
) -> PendingAudit {
    let details = json!({ "feedback_id": feedback_id, "task_id": task_id });
    PendingAudit::new(
        actor,
        at,
        "article.feedback",
        format!("article:{article_id}"),
        details,
    )
}

/// The audit entry of a reading assignment.
pub(in crate::store) fn assign_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    article_id: ArticleId,
    kind: AssignmentKind,
    assignees: &[Assignee],
) -> PendingAudit {
    let names: Vec<&str> = assignees.iter().map(|a| a.username.as_str()).collect();
    let details = json!({ "kind": kind.as_str(), "assignees": names });
    PendingAudit::new(
        actor,
        at,
        "article.assign",
        format!("article:{article_id}"),
        details,
    )
}

/// The note an update task opened by feedback carries: who said what,
/// cut to a readable length (the whole comment stays in `feedback`).
pub(in crate::store) fn feedback_note(username: &str, comment: &str) -> String {
    const MAX: usize = 500;
    let mut cut: String = comment.chars().take(MAX).collect();
    if cut.len() < comment.len() {
        cut.push('…');
    }
    format!("feedback from {username}: {cut}")
}
