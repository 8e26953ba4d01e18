//! Article rules and batch planning: validation of drafts and batches,
//! which records are new, changed or unchanged, the JSON row sets the
//! set-based article statements read, and the article a write returns.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::{entry, PendingAudit};
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::model::{Article, ArticleDraft, ArticleId, Status};
use crate::store::audit::trunc_micros;
use crate::store::UpsertOutcome;

/// One article to write: `id` is 0 for a new article.
pub(in crate::store) struct ArticleRow<'a> {
    pub(in crate::store) id: ArticleId,
    pub(in crate::store) draft: &'a ArticleDraft,
    pub(in crate::store) published_at: Option<DateTime<Utc>>,
}

impl<'a> ArticleRow<'a> {
    /// The row writing `draft` as article `id` (0 for a new article).
    pub(in crate::store) fn new(
        id: ArticleId,
        draft: &'a ArticleDraft,
        published_at: Option<DateTime<Utc>>,
    ) -> Self {
        ArticleRow {
            id,
            draft,
            published_at,
        }
    }
}

/// The rows as the JSON array that the set-based article statements read.
/// Times use sqlx's SQLite text format, which Postgres parses too.
pub(in crate::store) fn rows_json(rows: &[ArticleRow<'_>]) -> String {
    let time = |t: Option<DateTime<Utc>>| {
        t.map(|t| trunc_micros(t).to_rfc3339_opts(SecondsFormat::AutoSi, false))
    };
    let row = |r: &ArticleRow<'_>| {
        let d = r.draft;
        json!({
            "id": r.id, "slug": d.slug, "title": d.title, "summary": d.summary,
            "body": d.body, "category": d.category, "tags": d.tags, "audience": d.audience,
            "status": d.status.as_str(), "published_at": time(r.published_at),
            "review_due": time(d.review_due),
        })
    };
    Value::Array(rows.iter().map(row).collect()).to_string()
}

/// What an import batch writes, decided against the stored articles.
pub(in crate::store) struct BatchPlan<'a> {
    /// Drafts with new slugs.
    pub(in crate::store) new: Vec<ArticleRow<'a>>,
    /// Drafts whose content differs from the stored article.
    pub(in crate::store) changed: Vec<ArticleRow<'a>>,
    /// Counts to report.
    pub(in crate::store) outcome: UpsertOutcome,
    /// Written drafts in batch order, with the replaced `(id, version)`.
    order: Vec<(&'a ArticleDraft, Option<(ArticleId, i32)>)>,
}

impl<'a> BatchPlan<'a> {
    /// Sorts `drafts` into new, changed and unchanged.
    pub(in crate::store) fn new(
        drafts: &'a [ArticleDraft],
        stored: Vec<Article>,
        now: DateTime<Utc>,
    ) -> Self {
        let stored: HashMap<_, _> = stored.into_iter().map(|a| (a.slug.clone(), a)).collect();
        let mut plan = BatchPlan {
            new: vec![],
            changed: vec![],
            outcome: UpsertOutcome::default(),
            order: vec![],
        };
        for d in drafts {
            match stored.get(&d.slug) {
                Some(a) if !differs(a, d) => plan.outcome.unchanged += 1,
                Some(a) => {
                    let published_at = published_at(a.published_at, d.status, now);
                    plan.changed.push(ArticleRow::new(a.id, d, published_at));
                    plan.order.push((d, Some((a.id, a.version))));
                }
                None => {
                    let published_at = published_at(None, d.status, now);
                    plan.new.push(ArticleRow::new(0, d, published_at));
                    plan.order.push((d, None));
                }
            }
        }
        plan.outcome.created = plan.new.len();
        plan.outcome.updated = plan.changed.len();
        plan
    }

    /// Ids of the written articles in batch order (so outbox rows follow the
    /// batch) and their audit entries, once new ids are known.
    pub(in crate::store) fn written(
        &self,
        new_ids: &HashMap<String, i64>,
        actor: &Principal,
        now: DateTime<Utc>,
    ) -> (Vec<ArticleId>, Vec<PendingAudit>) {
        let written = self.order.iter().map(|(d, old)| {
            let (id, version) = match old {
                Some((id, v)) => (*id, v + 1),
                None => (new_ids.get(&d.slug).copied().unwrap_or_default(), 1),
            };
            (
                id,
                entry(actor, now, "article.import", id, &d.slug, version),
            )
        });
        written.unzip()
    }
}

/// Validates every draft and rejects a slug that appears twice: both copies
/// would target the same row and the outcome would depend on order.
pub(in crate::store) fn check_batch(drafts: &[ArticleDraft]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(drafts.len());
    for d in drafts {
        d.validate()?;
        if !seen.insert(d.slug.as_str()) {
            let message = format!("{:?} appears more than once in the batch", d.slug);
            return Err(Error::invalid("slug", message));
        }
    }
    Ok(())
}

/// Whether storing `d` over `a` would change its content.
pub(in crate::store) fn differs(a: &Article, d: &ArticleDraft) -> bool {
    a.title != d.title
        || a.summary != d.summary
        || a.body != d.body
        || a.category != d.category
        || a.tags != d.tags
        || a.audience != d.audience
        || a.status != d.status
        || a.review_due != d.review_due.map(trunc_micros)
}

/// The first publication time: kept once set, else now if `status` is live.
pub(in crate::store) fn published_at(
    prev: Option<DateTime<Utc>>,
    status: Status,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    prev.or(status.is_live().then_some(now))
}

/// Fails with `Conflict` unless the article is at the expected version.
pub(in crate::store) fn check_version(a: &Article, expected: Option<i32>) -> Result<()> {
    match expected {
        Some(v) if v != a.version => {
            let (id, at) = (a.id, a.version);
            Err(Error::Conflict(format!(
                "article {id} is at version {at}, not {v}"
            )))
        }
        _ => Ok(()),
    }
}

/// Fails with `Invalid` unless the article is live: only a live article
/// needs a working copy (any other is edited directly).
pub(in crate::store) fn check_live(a: &Article) -> Result<()> {
    if a.status.is_live() {
        return Ok(());
    }
    let message = format!("article {} is {}: edit it directly", a.id, a.status);
    Err(Error::invalid("status", message))
}

/// The stored article just written from `d`, built without a round trip.
pub(in crate::store) fn stored(
    id: ArticleId,
    d: ArticleDraft,
    owner: &str,
    version: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    published_at: Option<DateTime<Utc>>,
) -> Article {
    Article {
        id,
        slug: d.slug,
        title: d.title,
        summary: d.summary,
        body: d.body,
        category: d.category,
        tags: d.tags,
        audience: d.audience,
        status: d.status,
        owner: owner.to_string(),
        version,
        created_at,
        updated_at,
        published_at,
        review_due: d.review_due.map(trunc_micros),
    }
}
