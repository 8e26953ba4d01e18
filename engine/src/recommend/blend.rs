//! The two questions served over HTTP: "people who used this also used"
//! ([`also_used`]) and "recommended for you" ([`for_user`]).
//!
//! `for_user` blends three sources ([`score`], which the ranking benchmark
//! runs as is), each scaled to [0, 1] by its best candidate:
//! collaborative (MF predicted rating), item neighbours of the caller's
//! five most recent well-used articles in MF factor space, and content
//! (the caller's profile vector — the recency-weighted mean of the
//! embeddings of what they read or rated ≥ 4, half-life 30 days, stars
//! counting double — searched in the article vector index), weighted by
//! [`Weights::default`]. An article's reason is the source that gave it the
//! most. Cold start, or too few candidates: popular articles in the
//! categories people with the caller's roles use most, then popular
//! overall. Candidates are always drawn from the caller's allowed set
//! minus what they have seen, and every article returned passes
//! `Principal::can_read` on its current row; a rejected candidate is
//! skipped and the next one taken, so `limit` readable articles come back
//! whenever that many exist among the candidates.

use std::collections::{HashMap, HashSet};

use chrono::Utc;

use super::score::{self, Cand, Weights};
use super::serve::{
    interactions_of, readable_rows, Models, Reason, Recommendation, Recommendations, Recommender,
};
use crate::articles;
use crate::auth::{Permission, Principal};
use crate::error::{Error, Result};
use crate::model::ArticleId;
use crate::search::SearchIndex;
use crate::store::Store;

/// Most recommendations per answer.
pub const MAX_LIMIT: usize = 100;

/// Articles used by the people who used `key`, that `p` may read.
pub async fn also_used(
    store: &Store,
    index: &SearchIndex,
    rec: &Recommender,
    p: &Principal,
    key: &str,
    limit: usize,
) -> Result<Recommendations> {
    p.require(Permission::ArticleRead)?;
    let article = articles::readable(store, p, key).await?;
    let limit = limit.clamp(1, MAX_LIMIT);
    let Some(models) = rec.models() else {
        return Ok(Recommendations {
            items: Vec::new(),
            model: None,
        });
    };
    let allowed = index.readable(p)?;
    let mut excluded: HashSet<ArticleId> = HashSet::from([article.id]);
    let mut items = Vec::new();
    while items.len() < limit {
        let want = limit - items.len();
        let cands = models.neighbours(article.id, want, &|id| {
            allowed.contains(id) && !excluded.contains(&id)
        });
        if cands.is_empty() {
            break;
        }
        let ids: Vec<ArticleId> = cands.iter().map(|c| c.0).collect();
        excluded.extend(&ids);
        let (rows, _) = readable_rows(store, p, &ids).await?;
        let score: HashMap<ArticleId, f32> = cands.into_iter().collect();
        items.extend(rows.into_iter().map(|a| Recommendation {
            score: score[&a.id],
            id: a.id,
            slug: a.slug,
            title: a.title,
            category: a.category,
            reason: Reason::AlsoUsed {
                because: vec![article.id],
            },
        }));
    }
    Ok(Recommendations {
        items,
        model: Some(models.info.clone()),
    })
}

/// Recommendations for the signed-in caller (see the module docs).
pub async fn for_user(
    store: &Store,
    index: &SearchIndex,
    rec: &Recommender,
    p: &Principal,
    limit: usize,
) -> Result<Recommendations> {
    p.require(Permission::ArticleRead)?;
    let Some(user_id) = p.user_id.filter(|_| p.is_signed_in()) else {
        return Err(Error::Unauthenticated);
    };
    let limit = limit.clamp(1, MAX_LIMIT);
    let models = rec.models();
    let mine = interactions_of(store, user_id).await?;
    let seen: HashSet<ArticleId> = mine.iter().map(|i| i.article_id).collect();
    let allowed = index.readable(p)?;
    let ok = |id: ArticleId| allowed.contains(id) && !seen.contains(&id);
    let mut cands: HashMap<ArticleId, Cand> = HashMap::new();
    let weights = Weights::default();
    let pool = limit * 4;
    if let Some(m) = &models {
        score::collaborative(m, user_id, pool, &ok, &mut cands);
        score::neighbours(m, &mine, pool, &ok, &mut cands);
        // The popularity prior re-ranks a reader's personal candidates; a
        // reader with no history gets the role-aware fallback below instead
        // (popular in their roles' categories beats popular overall).
        if weights.popular > 0.0 && !mine.is_empty() {
            score::popular(m, pool, &ok, &mut cands);
        }
    }
    if let Some(sem) = index.semantic() {
        score::content(
            &sem.vectors,
            sem.params,
            &mine,
            &allowed,
            &seen,
            Utc::now(),
            pool,
            &mut cands,
        );
    }
    let ranked = score::rank(cands, weights);
    let mut items = Vec::new();
    let mut taken: HashSet<ArticleId> = HashSet::new();
    take_readable(store, p, &ranked, limit, &mut items, &mut taken).await?;
    if let Some(m) = &models {
        if items.len() < limit {
            let fill = fallback(m, p, &|id| ok(id) && !taken.contains(&id));
            take_readable(store, p, &fill, limit, &mut items, &mut taken).await?;
        }
    }
    Ok(Recommendations {
        items,
        model: models.map(|m| m.info.clone()),
    })
}

/// Appends the readable candidates of `ranked`, in order, until `items`
/// holds `limit`: readability is checked against the store a chunk at a
/// time, so unreadable candidates are skipped, never returned.
async fn take_readable(
    store: &Store,
    p: &Principal,
    ranked: &[(ArticleId, f32, Reason)],
    limit: usize,
    items: &mut Vec<Recommendation>,
    taken: &mut HashSet<ArticleId>,
) -> Result<()> {
    for chunk in ranked.chunks(limit.max(8)) {
        if items.len() >= limit {
            break;
        }
        let ids: Vec<ArticleId> = chunk.iter().map(|c| c.0).collect();
        let (rows, _) = readable_rows(store, p, &ids).await?;
        let by: HashMap<ArticleId, &(ArticleId, f32, Reason)> =
            chunk.iter().map(|c| (c.0, c)).collect();
        for a in rows {
            if items.len() >= limit {
                break;
            }
            let (_, score, reason) = by[&a.id].clone();
            taken.insert(a.id);
            items.push(Recommendation {
                id: a.id,
                slug: a.slug,
                title: a.title,
                category: a.category,
                score,
                reason,
            });
        }
    }
    Ok(())
}

/// Popular articles in the categories of the caller's roles, then popular
/// overall; scores below every blended one.
fn fallback(
    m: &Models,
    p: &Principal,
    ok: &dyn Fn(ArticleId) -> bool,
) -> Vec<(ArticleId, f32, Reason)> {
    let mut cats: HashMap<&str, f64> = HashMap::new();
    for role in &p.roles {
        for (c, n) in m.role_categories.get(role).into_iter().flatten() {
            *cats.entry(c.as_str()).or_default() += n;
        }
    }
    let mut cats: Vec<(&str, f64)> = cats.into_iter().collect();
    cats.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let top = m.popular.first().map_or(1.0, |x| x.1).max(1.0);
    let mut out = Vec::new();
    let mut taken = HashSet::new();
    for (rank, (cat, _)) in cats.iter().enumerate() {
        for &(id, n) in &m.popular {
            if m.category_of.get(&id).map(String::as_str) == Some(cat) && ok(id) && taken.insert(id)
            {
                let score = 0.01 * n / top / (1 + rank) as f32;
                let category = cat.to_string();
                out.push((id, score, Reason::PopularInCategory { category }));
            }
        }
    }
    for &(id, n) in &m.popular {
        if ok(id) && taken.insert(id) {
            out.push((id, 0.001 * n / top, Reason::Popular));
        }
    }
    out
}
