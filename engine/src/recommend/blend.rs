//! The two questions served over HTTP: "people who used this also used"
//! ([`also_used`]) and "recommended for you" ([`for_user`]).
//!
//! `for_user` blends three sources, each scaled to [0, 1] by its best
//! candidate: collaborative (MF predicted rating, weight 0.4), item
//! neighbours of the caller's five most recent well-used articles in MF
//! factor space (0.35), and content (the caller's profile vector — the
//! recency-weighted mean of the embeddings of what they read or rated ≥ 4,
//! half-life 30 days, stars counting double — searched in the article
//! vector index, 0.25). An article's reason is the source that gave it the
//! most. Cold start, or too few candidates: popular articles in the
//! categories people with the caller's roles use most, then popular
//! overall. Candidates are always drawn from the caller's allowed set
//! minus what they have seen, and every article returned passes
//! `Principal::can_read` on its current row; a rejected candidate is
//! skipped and the next one taken, so `limit` readable articles come back
//! whenever that many exist among the candidates.

use std::collections::{HashMap, HashSet};

use chrono::Utc;

use super::implicit::rating_of;
use super::serve::{
    interactions_of, readable_rows, Models, Reason, Recommendation, Recommendations, Recommender,
};
use crate::articles;
use crate::auth::{Permission, Principal};
use crate::error::{Error, Result};
use crate::model::ArticleId;
use crate::search::SearchIndex;
use crate::store::Store;
use crate::vector::Allowed;

/// Most recommendations per answer.
pub const MAX_LIMIT: usize = 100;
const W_CF: f32 = 0.4;
const W_NEIGHBOUR: f32 = 0.35;
const W_CONTENT: f32 = 0.25;
/// Recent articles whose neighbours are considered.
const RECENT: usize = 5;
/// Half-life of the profile vector's weights, in days.
const HALF_LIFE_DAYS: f64 = 30.0;

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

/// A candidate's scores per source.
#[derive(Default)]
struct Cand {
    cf: f32,
    neighbour: f32,
    content: f32,
    because: Vec<ArticleId>,
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
    let pool = limit * 4;
    if let Some(m) = &models {
        collaborative(m, user_id, pool, &ok, &mut cands);
        let recent = mine
            .iter()
            .filter(|i| rating_of(i).rating >= 3.5)
            .take(RECENT);
        for (n, i) in recent.enumerate() {
            let recency = 1.0 / (1.0 + n as f32);
            for (id, sim) in m.neighbours(i.article_id, pool, &ok) {
                let c = cands.entry(id).or_default();
                c.neighbour += sim.max(0.0) * recency;
                c.because.push(i.article_id);
            }
        }
    }
    content(index, &mine, &allowed, &seen, pool, &mut cands);
    let ranked = rank(cands);
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

/// The MF predictions of the caller's best `pool` candidates.
fn collaborative(
    m: &Models,
    user_id: i64,
    pool: usize,
    ok: &dyn Fn(ArticleId) -> bool,
    cands: &mut HashMap<ArticleId, Cand>,
) {
    let Some(u) = m.data.user_of(user_id) else {
        return;
    };
    let mut scored: Vec<(ArticleId, f32)> = (0..m.data.items.len() as u32)
        .filter(|&i| ok(m.data.items[i as usize]))
        .map(|i| (m.data.items[i as usize], m.mf.score(Some(u), Some(i))))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(pool);
    // Scaled to [0, 1] over the rating range the model was trained on.
    let (lo, hi) = m.mf.range;
    let span = (hi - lo).max(f32::MIN_POSITIVE);
    for (id, s) in scored {
        cands.entry(id).or_default().cf = ((s - lo) / span).clamp(0.0, 1.0);
    }
}

/// Content candidates: the profile vector searched among allowed, unseen
/// articles.
fn content(
    index: &SearchIndex,
    mine: &[crate::model::Interaction],
    allowed: &Allowed,
    seen: &HashSet<ArticleId>,
    pool: usize,
    cands: &mut HashMap<ArticleId, Cand>,
) {
    let Some(sem) = index.semantic() else {
        return;
    };
    let now = Utc::now();
    let mut profile: Vec<f32> = Vec::new();
    for i in mine {
        let r = rating_of(i);
        let liked = match i.stars {
            Some(s) => s >= 4,
            None => i.views > 0 && i.helpful != Some(false),
        };
        let Some(v) = liked
            .then(|| sem.vectors.article_vector(i.article_id))
            .flatten()
        else {
            continue;
        };
        let age = (now - i.last_at).num_seconds().max(0) as f64 / 86_400.0;
        let w = (0.5f64.powf(age / HALF_LIFE_DAYS) * if r.explicit { 2.0 } else { 1.0 }) as f32;
        if profile.is_empty() {
            profile = vec![0.0; v.len()];
        }
        for (p, x) in profile.iter_mut().zip(&v) {
            *p += w * x;
        }
    }
    let n = profile.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n == 0.0 {
        return;
    }
    profile.iter_mut().for_each(|x| *x /= n);
    let unseen = Allowed::from_ids(
        allowed
            .ids()
            .iter()
            .copied()
            .filter(|id| !seen.contains(id))
            .collect(),
    );
    let (found, _) = sem.vectors.search(&profile, &unseen, pool, sem.params);
    for a in found {
        cands.entry(a.id).or_default().content = a.similarity.max(0.0);
    }
}

/// Blends the sources and names each article's strongest one.
fn rank(cands: HashMap<ArticleId, Cand>) -> Vec<(ArticleId, f32, Reason)> {
    let max = |f: fn(&Cand) -> f32| {
        cands
            .values()
            .map(f)
            .fold(0.0f32, f32::max)
            .max(f32::MIN_POSITIVE)
    };
    let (mn, mc) = (max(|c| c.neighbour), max(|c| c.content));
    let mut out: Vec<(ArticleId, f32, Reason)> = cands
        .into_iter()
        .map(|(id, c)| {
            let parts = [
                W_CF * c.cf,
                W_NEIGHBOUR * c.neighbour / mn,
                W_CONTENT * c.content / mc,
            ];
            let best = (0..3)
                .max_by(|&a, &b| parts[a].total_cmp(&parts[b]))
                .unwrap_or(0);
            let reason = match best {
                1 => {
                    let mut because = c.because;
                    because.sort_unstable();
                    because.dedup();
                    Reason::AlsoUsed { because }
                }
                2 => Reason::SimilarContent,
                _ => Reason::Collaborative,
            };
            (id, parts.iter().sum(), reason)
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
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
