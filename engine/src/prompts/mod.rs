//! Knowledge-development prompts: what to write, what to fix, where a new
//! draft belongs.
//!
//! - **Gaps**: searches that found nothing, or found something nobody
//!   clicked, and explicit requests ("ask for an article on this",
//!   [`request_article`]), grouped by meaning (their query embeddings; by shared words
//!   without a model). Each group is a suggested new article with its
//!   example queries, how often they were asked and the category its
//!   nearest readable articles are in.
//! - **Updates**: live articles past their review date, rated low, voted
//!   unhelpful, given feedback, or whose use is falling — ranked by impact
//!   (uses × how many things are wrong).
//! - **Record types** ([`classify`]): the category and tags a new draft
//!   most likely has — the category from a text classifier trained on the
//!   published articles ([`category_model`]), the tags (and the category
//!   before a classifier exists) by a vote of its nearest readable
//!   published neighbours.
//!
//! Everything goes through the permission-aware search and the read rule,
//! so a prompt never names an article the caller may not read. Queries are
//! stored without identities; a query asked only once is not shown (one
//! person's search is not a knowledge gap, and it might identify them).

use std::collections::HashMap;

use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Permission, Principal};
use crate::error::{Error, Result};
use crate::model::{ArticleId, UsageFilter, UsageWindow};
use crate::search::SearchIndex;
use crate::store::Store;
use crate::usage::analytics::QUERY_SCAN;

pub mod category_model;
mod classify;

pub use category_model::{CategoryConfig, CategoryModel};
pub use classify::{
    classify, classify_with, draft_query, CategorySource, Classification, ClassifyOptions,
    DraftText, Neighbour, Vote,
};
use classify::{nearest, vote};

/// Least searches for a query to appear in a gap.
pub const MIN_ASKED: i64 = 2;
/// Least cosine similarity between a query and a gap's centroid.
const SAME_GAP: f32 = 0.7;
/// Least word overlap (Jaccard) without a model.
const SAME_GAP_WORDS: f32 = 0.5;
/// Example queries shown per gap.
const EXAMPLES: usize = 5;
/// Candidate queries considered (most asked first).
const MAX_CANDIDATES: usize = 2000;

/// One query of a gap.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GapQuery {
    /// The normalised query.
    pub query: String,
    /// Times asked.
    pub searches: i64,
    /// Times it found nothing.
    pub zero_results: i64,
    /// People who explicitly asked for an article on it.
    pub requests: i64,
}

/// A suggested new article: searches that went unanswered, grouped.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Gap {
    /// A working title: the most asked query of the group.
    pub suggested_title: String,
    /// The category of the nearest readable articles, if any.
    pub category: Option<String>,
    /// Searches in the group.
    pub searches: i64,
    /// Searches that found nothing.
    pub zero_results: i64,
    /// People who explicitly asked for an article on one of its queries.
    pub requests: i64,
    /// The most asked queries, most asked first.
    pub queries: Vec<GapQuery>,
}

/// Longest request for an article, in characters.
pub const MAX_REQUEST: usize = 200;

/// "Ask for an article on this": the words a reader searched for.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
pub struct NewArticleRequest {
    /// What the reader searched for (1–200 characters).
    pub query: String,
}

/// A recorded request for an article.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ArticleRequest {
    /// The words asked for, normalised as analytics groups queries.
    pub query: String,
    /// How many people have asked for an article on these words.
    pub requests: i64,
}

/// Records a signed-in reader's explicit request for an article on what
/// they searched for. It makes the query a gap at once (a search asked once
/// is not shown, but a request is meant to be seen; it carries no name).
pub async fn request_article(
    store: &Store,
    p: &Principal,
    req: NewArticleRequest,
) -> Result<ArticleRequest> {
    let user_id = p.user_id.ok_or(Error::Unauthenticated)?;
    let query = crate::usage::normalise_query(&req.query);
    if query.is_empty() || query.chars().count() > MAX_REQUEST {
        return Err(Error::Invalid {
            field: "query".into(),
            message: format!("must be 1-{MAX_REQUEST} characters of text"),
        });
    }
    let requests = store
        .record_article_request(user_id, &query, Utc::now())
        .await?;
    tracing::info!(requests, "article requested");
    Ok(ArticleRequest { query, requests })
}

/// Gaps in the knowledge base in a window: those people asked for first,
/// then the most searched.
pub async fn gaps(
    store: &Store,
    index: &SearchIndex,
    p: &Principal,
    window: UsageWindow,
    limit: usize,
) -> Result<Vec<Gap>> {
    let stats = store.query_stats(window, QUERY_SCAN).await?;
    let mut requested: HashMap<String, i64> =
        store.article_requests(window).await?.into_iter().collect();
    let mut cands: Vec<GapQuery> = stats
        .into_iter()
        .filter_map(|s| {
            let requests = requested.remove(&s.query).unwrap_or(0);
            let unanswered = s.searches >= MIN_ASKED && s.clicked_searches == 0;
            (unanswered || requests > 0).then_some(GapQuery {
                query: s.query,
                searches: s.searches,
                zero_results: s.zero_results,
                requests,
            })
        })
        .collect();
    // Requested words whose searches fell outside the scan (or the window).
    cands.extend(requested.into_iter().map(|(query, requests)| GapQuery {
        query,
        searches: 0,
        zero_results: 0,
        requests,
    }));
    cands.sort_by(|a, b| {
        (b.requests, b.searches)
            .cmp(&(a.requests, a.searches))
            .then(a.query.cmp(&b.query))
    });
    cands.truncate(MAX_CANDIDATES);
    let (index2, queries) = (index.clone(), cands.clone());
    let groups = tokio::task::spawn_blocking(move || group(&index2, &queries))
        .await
        .map_err(|e| Error::Unavailable(format!("gap clustering failed: {e}")))??;
    let mut gaps: Vec<Gap> = groups
        .into_iter()
        .map(|members| {
            let mut queries: Vec<GapQuery> = members.iter().map(|&i| cands[i].clone()).collect();
            queries.sort_by(|a, b| {
                (b.requests, b.searches)
                    .cmp(&(a.requests, a.searches))
                    .then(a.query.cmp(&b.query))
            });
            Gap {
                suggested_title: queries[0].query.clone(),
                category: None,
                searches: queries.iter().map(|q| q.searches).sum(),
                zero_results: queries.iter().map(|q| q.zero_results).sum(),
                requests: queries.iter().map(|q| q.requests).sum(),
                queries: queries.into_iter().take(EXAMPLES).collect(),
            }
        })
        .collect();
    gaps.sort_by(|a, b| {
        (b.requests, b.searches)
            .cmp(&(a.requests, a.searches))
            .then(a.suggested_title.cmp(&b.suggested_title))
    });
    gaps.truncate(limit);
    for g in &mut gaps {
        let opts = ClassifyOptions {
            voters: 5,
            ..ClassifyOptions::default()
        };
        let neighbours = nearest(index, p, &g.suggested_title, opts).await?;
        g.category = vote(neighbours.iter().map(|n| (n.category.clone(), n.weight)))
            .into_iter()
            .next()
            .map(|c| c.value);
    }
    Ok(gaps)
}

/// Groups queries (indices into `qs`, most asked first) by meaning, or by
/// shared words without a model: each query joins the first group it is
/// close enough to, else starts one.
fn group(index: &SearchIndex, qs: &[GapQuery]) -> Result<Vec<Vec<usize>>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    if let Some(sem) = index.semantic() {
        let mut centroids: Vec<Vec<f32>> = Vec::new();
        for (i, q) in qs.iter().enumerate() {
            let (v, _) = sem.embedder.query(&q.query)?;
            let best = centroids
                .iter()
                .enumerate()
                .map(|(g, c)| (g, crate::embed::dot(c, &v) / norm(c)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((g, sim)) if sim >= SAME_GAP => {
                    groups[g].push(i);
                    for (c, x) in centroids[g].iter_mut().zip(v.iter()) {
                        *c += x;
                    }
                }
                _ => {
                    groups.push(vec![i]);
                    centroids.push(v.to_vec());
                }
            }
        }
    } else {
        let words: Vec<Vec<&str>> = qs
            .iter()
            .map(|q| {
                let mut w: Vec<&str> = q.query.split_whitespace().collect();
                w.sort_unstable();
                w.dedup();
                w
            })
            .collect();
        for i in 0..qs.len() {
            match groups
                .iter()
                .position(|g| jaccard(&words[g[0]], &words[i]) >= SAME_GAP_WORDS)
            {
                Some(g) => groups[g].push(i),
                None => groups.push(vec![i]),
            }
        }
    }
    Ok(groups)
}

fn norm(v: &[f32]) -> f32 {
    v.iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON)
}

/// Jaccard similarity of two sorted, deduplicated word lists.
fn jaccard(a: &[&str], b: &[&str]) -> f32 {
    let common = a.iter().filter(|w| b.binary_search(w).is_ok()).count();
    let union = a.len() + b.len() - common;
    if union == 0 {
        0.0
    } else {
        common as f32 / union as f32
    }
}

/// Why an article needs an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpdateReason {
    /// Its review date passed.
    ReviewOverdue,
    /// Rated below 3 stars on average (3 ratings or more).
    LowRating,
    /// Fewer than half of the helpful votes say helpful.
    Unhelpful,
    /// Readers left feedback.
    Feedback,
    /// Used less than half as often as in the window before (10 uses or
    /// more then).
    FallingUse,
}

/// An article to update, and why.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UpdatePrompt {
    /// Article id.
    pub id: ArticleId,
    /// Slug.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Category.
    pub category: String,
    /// Owner, who is asked to update it.
    pub owner: String,
    /// Ranking: uses in both windows × number of reasons.
    pub impact: f64,
    /// Uses in the window.
    pub uses: i64,
    /// Uses in the window before.
    pub previous_uses: i64,
    /// What is wrong.
    pub reasons: Vec<UpdateReason>,
}

/// Articles that need an update, by impact. Callers with the analytics
/// permission see every article they may read; everyone else their own.
pub async fn updates(
    store: &Store,
    p: &Principal,
    days: i64,
    limit: usize,
) -> Result<Vec<UpdatePrompt>> {
    if !p.is_signed_in() {
        return Err(Error::Unauthenticated);
    }
    let now = Utc::now();
    let days = days.clamp(1, 365);
    let window = |from, to| UsageFilter {
        window: UsageWindow {
            from: Some(from),
            to: Some(to),
        },
        ..Default::default()
    };
    let recent = store
        .article_usage(&window(now - Duration::days(days), now))
        .await?;
    let before: HashMap<ArticleId, i64> = store
        .article_usage(&window(
            now - Duration::days(2 * days),
            now - Duration::days(days),
        ))
        .await?
        .into_iter()
        .map(|r| (r.id, r.uses))
        .collect();
    let everyone = p.has(Permission::AnalyticsRead);
    let mut out: Vec<UpdatePrompt> = recent
        .into_iter()
        .filter(|r| r.status.is_live())
        .filter(|r| p.can_read_parts(&r.audience, r.status, &r.owner))
        .filter(|r| everyone || r.owner == p.username)
        .filter_map(|r| {
            let previous = before.get(&r.id).copied().unwrap_or(0);
            let mut reasons = Vec::new();
            if r.review_due.is_some_and(|d| d < now) {
                reasons.push(UpdateReason::ReviewOverdue);
            }
            if r.ratings >= 3 && r.avg_rating.is_some_and(|a| a < 3.0) {
                reasons.push(UpdateReason::LowRating);
            }
            if r.helpful_pct.is_some_and(|h| h < 50.0) {
                reasons.push(UpdateReason::Unhelpful);
            }
            if r.feedback > 0 {
                reasons.push(UpdateReason::Feedback);
            }
            if previous >= 10 && r.uses * 2 < previous {
                reasons.push(UpdateReason::FallingUse);
            }
            (!reasons.is_empty()).then(|| UpdatePrompt {
                impact: ((r.uses + previous).max(1) as f64) * reasons.len() as f64,
                id: r.id,
                slug: r.slug,
                title: r.title,
                category: r.category,
                owner: r.owner,
                uses: r.uses,
                previous_uses: previous,
                reasons,
            })
        })
        .collect();
    out.sort_by(|a, b| b.impact.total_cmp(&a.impact).then(a.id.cmp(&b.id)));
    out.truncate(limit);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_overlap_groups_rewordings() {
        assert_eq!(jaccard(&["a", "b"], &["a", "b"]), 1.0);
        assert!(jaccard(&["levy", "release"], &["bank", "levy", "release"]) >= SAME_GAP_WORDS);
        assert_eq!(jaccard(&[], &[]), 0.0);
    }
}
