//! The scoring behind "recommended for you", free of the store and of
//! HTTP so that the benchmark (`kmt-bench recommend-rank`) measures the
//! very code the server runs: candidate gathering per source
//! ([`collaborative`], [`neighbours`], [`content`]), the profile vector
//! ([`profile`]) and the blend ([`rank`]).
//!
//! The blend is a weighted sum of each source's score scaled to [0, 1]
//! by the best candidate of that source, plus a popularity prior (the
//! article's distinct users over the most used article's). On ml-100k the
//! prior carries most of the weight: personal signals re-rank among
//! much-used articles rather than surface rarely used ones, which is what
//! a held-out next use rewards (the MF predicted rating alone favours
//! rarely rated items).
//! The weights ([`Weights::default`]) were chosen on ml-100k with a
//! validation holdout (each user's second-to-last rating; the last one is
//! the test) — see BENCHMARKS.md, *Recommendations: ranking quality*.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::implicit::rating_of;
use super::serve::{Models, Reason};
use crate::model::{ArticleId, Interaction};
use crate::vector::{Allowed, SearchParams, VectorIndex};

/// Recent well-used articles whose neighbours are considered.
pub const RECENT: usize = 5;
/// Half-life of the profile vector's weights, in days.
pub const HALF_LIFE_DAYS: f64 = 30.0;

/// A candidate's scores per source.
#[derive(Debug, Default, Clone)]
pub struct Cand {
    /// MF predicted rating scaled to [0, 1] over the rating range.
    pub cf: f32,
    /// Recency-weighted sum of factor-space similarities to the caller's
    /// recent well-used articles.
    pub neighbour: f32,
    /// Similarity with the caller's profile vector.
    pub content: f32,
    /// Distinct users of the article over those of the most used one.
    pub popular: f32,
    /// The caller's articles it is a neighbour of.
    pub because: Vec<ArticleId>,
}

/// Weights of the blend's sources.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// MF predicted rating.
    pub cf: f32,
    /// Item neighbours in MF factor space.
    pub neighbour: f32,
    /// Profile-vector similarity.
    pub content: f32,
    /// Popularity prior.
    pub popular: f32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            cf: 0.2,
            neighbour: 0.2,
            content: 0.6,
            popular: 2.0,
        }
    }
}

/// MF predictions of the caller's best `pool` candidates passing `ok`.
pub fn collaborative(
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

/// Factor-space neighbours of the caller's [`RECENT`] most recent
/// well-used articles (`mine` newest first), the more recent counting more.
pub fn neighbours(
    m: &Models,
    mine: &[Interaction],
    pool: usize,
    ok: &dyn Fn(ArticleId) -> bool,
    cands: &mut HashMap<ArticleId, Cand>,
) {
    let recent = mine
        .iter()
        .filter(|i| rating_of(i).rating >= 3.5)
        .take(RECENT);
    for (n, i) in recent.enumerate() {
        let recency = 1.0 / (1.0 + n as f32);
        for (id, sim) in m.neighbours(i.article_id, pool, ok) {
            let c = cands.entry(id).or_default();
            c.neighbour += sim.max(0.0) * recency;
            c.because.push(i.article_id);
        }
    }
}

/// The `pool` most used articles passing `ok`, as a popularity prior.
pub fn popular(
    m: &Models,
    pool: usize,
    ok: &dyn Fn(ArticleId) -> bool,
    cands: &mut HashMap<ArticleId, Cand>,
) {
    let top = m.popular.first().map_or(1.0, |x| x.1).max(1.0);
    for &(id, n) in m.popular.iter().filter(|(id, _)| ok(*id)).take(pool) {
        cands.entry(id).or_default().popular = n / top;
    }
}

/// The caller's profile vector: the unit-length, recency-weighted mean of
/// the article vectors of what they read or rated ≥ 4 (half-life
/// [`HALF_LIFE_DAYS`] before `now`, stars counting double). `None`
/// without any such article.
pub fn profile(
    vectors: &VectorIndex,
    mine: &[Interaction],
    now: DateTime<Utc>,
) -> Option<Vec<f32>> {
    let mut profile: Vec<f32> = Vec::new();
    for i in mine {
        let r = rating_of(i);
        let liked = match i.stars {
            Some(s) => s >= 4,
            None => i.views > 0 && i.helpful != Some(false),
        };
        let Some(v) = liked
            .then(|| vectors.article_vector(i.article_id))
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
    if n == 0.0 || !n.is_finite() {
        return None;
    }
    profile.iter_mut().for_each(|x| *x /= n);
    Some(profile)
}

/// Content candidates: the profile vector searched among the allowed
/// articles the caller has not seen.
#[allow(clippy::too_many_arguments)]
pub fn content(
    vectors: &VectorIndex,
    params: SearchParams,
    mine: &[Interaction],
    allowed: &Allowed,
    seen: &HashSet<ArticleId>,
    now: DateTime<Utc>,
    pool: usize,
    cands: &mut HashMap<ArticleId, Cand>,
) {
    let Some(profile) = profile(vectors, mine, now) else {
        return;
    };
    let unseen = Allowed::from_ids(
        allowed
            .ids()
            .iter()
            .copied()
            .filter(|id| !seen.contains(id))
            .collect(),
    );
    let (found, _) = vectors.search(&profile, &unseen, pool, params);
    for a in found {
        cands.entry(a.id).or_default().content = a.similarity.max(0.0);
    }
}

/// Blends the sources with `w` and names each article's strongest one,
/// best first.
pub fn rank(cands: HashMap<ArticleId, Cand>, w: Weights) -> Vec<(ArticleId, f32, Reason)> {
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
                w.cf * c.cf,
                w.neighbour * c.neighbour / mn,
                w.content * c.content / mc,
            ];
            // The prior adds to the score but never names the reason.
            let prior = w.popular * c.popular;
            let best = (0..3)
                .max_by(|&a, &b| parts[a].total_cmp(&parts[b]))
                .unwrap_or(0);
            let reason = match best {
                _ if parts.iter().all(|p| *p <= 0.0) => Reason::Popular,
                1 => {
                    let mut because = c.because;
                    because.sort_unstable();
                    because.dedup();
                    Reason::AlsoUsed { because }
                }
                2 => Reason::SimilarContent,
                _ => Reason::Collaborative,
            };
            (id, parts.iter().sum::<f32>() + prior, reason)
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}
