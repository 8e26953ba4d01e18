//! What a vector search is given and returns: the allowed set (the
//! caller's permission filter as a bit set over article ids), the tuning
//! that decides the plan, the plan chosen, and per-article scores.

use super::DEFAULT_EF;
use crate::model::ArticleId;

/// Articles a search may return: a bit set over article ids.
#[derive(Debug, Clone, Default)]
pub struct Allowed {
    bits: Vec<u64>,
    ids: Vec<ArticleId>,
}

impl Allowed {
    /// The set of `ids` (negative ids are ignored).
    pub fn from_ids(mut ids: Vec<ArticleId>) -> Allowed {
        ids.retain(|&id| id >= 0);
        ids.sort_unstable();
        ids.dedup();
        let max = ids.last().copied().unwrap_or(0) as usize;
        let mut bits = vec![0u64; max / 64 + 1];
        for &id in &ids {
            bits[id as usize / 64] |= 1 << (id as usize % 64);
        }
        Allowed { bits, ids }
    }

    /// Whether `id` is in the set.
    #[inline]
    pub fn contains(&self, id: ArticleId) -> bool {
        id >= 0
            && self
                .bits
                .get(id as usize / 64)
                .is_some_and(|w| w & (1 << (id as usize % 64)) != 0)
    }

    /// Number of articles in the set.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids, ascending.
    pub fn ids(&self) -> &[ArticleId] {
        &self.ids
    }
}

/// How a vector search was run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// Every allowed vector was compared with the query.
    Exact,
    /// A filtered walk of the HNSW graph (plus the orphans, exactly).
    Graph,
}

/// Tuning of vector searches.
#[derive(Debug, Clone, Copy)]
pub struct SearchParams {
    /// HNSW candidate list size.
    pub ef: usize,
    /// Scan exactly when the allowed vectors are at most this many.
    pub exact_below: usize,
    /// …or when they are less than this share of all vectors (a filtered
    /// graph walk slows down as the filter gets selective, whatever the
    /// index size).
    pub exact_fraction: f64,
}

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams {
            ef: DEFAULT_EF,
            // Measured by `kmt-bench ann` (BENCHMARKS.md): an exact scan of
            // 10–13k vectors costs about what a filtered walk of the
            // graph (ef 128, 100k vectors) does.
            exact_below: 12_000,
            exact_fraction: 0.05,
        }
    }
}

/// An article's best passage similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArticleScore {
    /// The article.
    pub id: ArticleId,
    /// Cosine similarity of its best passage with the query.
    pub similarity: f32,
    /// Which passage (0-based).
    pub passage: u32,
}
