//! The vector index: passage embeddings of articles, searched by cosine
//! similarity under a permission filter.
//!
//! Every passage vector has a *slot*. An HNSW graph (hnsw_rs, dot product on
//! unit vectors) indexes the slots; our own table keeps each slot's vector,
//! article and liveness. Updating an article inserts new slots and
//! tombstones the old ones (HNSW graphs cannot delete); [`VectorIndex::compact`]
//! rebuilds the graph from the live slots when tombstones pile up.
//!
//! Searches are planned by the filter's selectivity, as Qdrant does: the
//! caller passes the set of articles it may see ([`Allowed`], computed by the
//! full-text engine from the same visibility clause lexical search uses).
//! When that set holds few vectors, an exact scan of just those vectors is
//! both faster and exact; when it is broad, a filtered HNSW walk is. Either
//! way the filter applies *inside* the search, so a caller always gets `k`
//! readable hits when `k` exist.
//!
//! hnsw_rs can leave points unreachable after (parallel) insertion. Every
//! build checks self-recall (each vector must find itself) and every insert
//! checks the new point; unreachable slots go on an *orphan* list that each
//! search scans exactly, so no vector is ever lost to the graph.

mod exact;
mod persist;
mod query;
mod repair;
mod walk;

pub use query::{Allowed, ArticleScore, Plan, SearchParams};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwap;
use hnsw_rs::prelude::{DistDot, Hnsw};

use crate::embed::dot;
use crate::model::ArticleId;
use walk::Links;

/// Neighbours per node and layer in the graph (M).
const MAX_CONNECTIONS: usize = 16;
/// Candidate list size while building.
const EF_CONSTRUCTION: usize = 128;
/// Layers of the graph.
const MAX_LAYERS: usize = 16;
/// Default candidate list size while searching. 128 rather than 96: on
/// 100,000 MiniLM vectors with clusters of near-duplicates, `kmt-bench ann`
/// (BENCHMARKS.md) measured recall@10 0.955 at 96 and 0.97 at 128, for a
/// walk about 0.05 ms longer (small next to the rest of a search).
pub const DEFAULT_EF: usize = 128;
/// Slots inserted since the links were copied that trigger a new copy (at
/// least; or 2 % of the live slots): until then each search scans them.
const RECOPY_AFTER: usize = 512;

/// Slot table and graph of one build.
struct Inner {
    dim: usize,
    hnsw: Hnsw<'static, f32, DistDot>,
    table: RwLock<Table>,
    /// Serialises writers (inserting into the graph and copying its links).
    writer: Mutex<()>,
}

#[derive(Default)]
pub(super) struct Table {
    /// Slot-major vectors.
    pub(super) vectors: Vec<f32>,
    /// Article of each slot.
    pub(super) article: Vec<ArticleId>,
    /// Passage number of each slot.
    pub(super) passage: Vec<u32>,
    /// Whether a slot is live (false: tombstone or not yet in the graph).
    pub(super) alive: Vec<bool>,
    /// Live articles: content hash and slots.
    pub(super) articles: HashMap<ArticleId, Entry>,
    /// Live slots the graph cannot reach: scanned exactly by every search.
    pub(super) orphans: Vec<u32>,
    /// Live slots.
    pub(super) live: usize,
    /// The graph's links as searches walk them; slots from
    /// `links.covered` on are newer than the copy and scanned exactly.
    pub(super) links: Links,
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) hash: String,
    pub(super) slots: Vec<u32>,
}

impl Table {
    pub(super) fn vector(&self, dim: usize, slot: u32) -> &[f32] {
        let s = slot as usize * dim;
        &self.vectors[s..s + dim]
    }
}

/// Statistics of the index.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VectorStats {
    /// Articles with vectors.
    pub articles: usize,
    /// Live vectors.
    pub vectors: usize,
    /// Tombstoned vectors still in the graph.
    pub tombstones: usize,
    /// Live vectors the graph cannot reach (scanned exactly).
    pub orphans: usize,
}

/// Passage vectors of articles, searchable by similarity.
#[derive(Clone)]
pub struct VectorIndex {
    inner: Arc<ArcSwap<Inner>>,
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("stats", &self.stats())
            .finish()
    }
}

fn new_graph(capacity: usize) -> Hnsw<'static, f32, DistDot> {
    let mut h = Hnsw::new(
        MAX_CONNECTIONS,
        capacity.max(1024),
        MAX_LAYERS,
        EF_CONSTRUCTION,
        DistDot,
    );
    h.set_searching_mode(true);
    h
}

impl VectorIndex {
    /// An empty index of `dim`-dimensional vectors.
    pub fn new(dim: usize) -> VectorIndex {
        VectorIndex {
            inner: Arc::new(ArcSwap::from_pointee(Inner {
                dim,
                hnsw: new_graph(0),
                table: RwLock::default(),
                writer: Mutex::new(()),
            })),
        }
    }

    /// Builds an index from whole articles at once, inserting into the graph
    /// in parallel, then repairs what self-recall finds unreachable.
    pub fn build(dim: usize, articles: Vec<(ArticleId, String, Vec<Vec<f32>>)>) -> VectorIndex {
        let mut table = Table::default();
        let total: usize = articles.iter().map(|a| a.2.len()).sum();
        table.vectors.reserve(total * dim);
        for (id, hash, vecs) in articles {
            push_article(&mut table, dim, id, hash, &vecs, true);
        }
        let hnsw = new_graph(total);
        let items: Vec<(&[f32], usize)> = (0..table.article.len())
            .map(|s| (table.vector(dim, s as u32), s))
            .collect();
        hnsw.parallel_insert_slice(&items);
        drop(items);
        table.links = Links::copy(&hnsw, table.article.len());
        let inner = Inner {
            dim,
            hnsw,
            table: RwLock::new(table),
            writer: Mutex::new(()),
        };
        inner.repair(0, &[]);
        VectorIndex {
            inner: Arc::new(ArcSwap::from_pointee(inner)),
        }
    }

    /// Makes `other`'s content this index's (every clone sees it).
    pub fn replace(&self, other: &VectorIndex) {
        self.inner.store(other.inner.load_full());
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.inner.load().dim
    }

    /// Counts of articles, vectors, tombstones and orphans.
    pub fn stats(&self) -> VectorStats {
        let inner = self.inner.load();
        let t = inner.table.read().expect("vector table lock");
        VectorStats {
            articles: t.articles.len(),
            vectors: t.live,
            tombstones: t.article.len() - t.live,
            orphans: t.orphans.len(),
        }
    }

    /// The content hash stored with an article's vectors.
    pub fn hash_of(&self, id: ArticleId) -> Option<String> {
        let inner = self.inner.load();
        let t = inner.table.read().expect("vector table lock");
        t.articles.get(&id).map(|e| e.hash.clone())
    }

    /// Content hashes of every article with vectors.
    pub fn hashes(&self) -> HashMap<ArticleId, String> {
        let inner = self.inner.load();
        let t = inner.table.read().expect("vector table lock");
        t.articles
            .iter()
            .map(|(id, e)| (*id, e.hash.clone()))
            .collect()
    }

    /// Sets an article's vectors (replacing older ones). Vectors must be
    /// unit length and of [`VectorIndex::dim`] floats.
    pub fn upsert(&self, id: ArticleId, hash: String, vectors: &[Vec<f32>]) {
        let inner = self.inner.load_full();
        let _writer = inner.writer.lock().expect("vector writer lock");
        let dim = inner.dim;
        let vectors: Vec<&Vec<f32>> = vectors.iter().filter(|v| v.len() == dim).collect();
        // Reserve slots (not yet alive), insert into the graph without
        // holding the table lock, then make them live in one step. Until
        // the links are copied again, searches scan the new slots exactly.
        let first = {
            let mut t = inner.table.write().expect("vector table lock");
            let first = t.article.len() as u32;
            for (i, v) in vectors.iter().enumerate() {
                t.vectors.extend_from_slice(v);
                t.article.push(id);
                t.passage.push(i as u32);
                t.alive.push(false);
            }
            first
        };
        let slots: Vec<u32> = (first..first + vectors.len() as u32).collect();
        for (&slot, v) in slots.iter().zip(&vectors) {
            inner.hnsw.insert_slice((v.as_slice(), slot as usize));
        }
        let uncovered = {
            let mut t = inner.table.write().expect("vector table lock");
            kill_article(&mut t, id);
            for &s in &slots {
                t.alive[s as usize] = true;
            }
            t.live += slots.len();
            t.articles.insert(id, Entry { hash, slots });
            (t.article.len() - t.links.covered) > RECOPY_AFTER.max(t.live / 50)
        };
        if uncovered {
            inner.recopy();
        }
    }

    /// The unit-length mean of an article's passage vectors (what "related
    /// articles" searches with).
    pub fn article_vector(&self, id: ArticleId) -> Option<Vec<f32>> {
        let inner = self.inner.load();
        let t = inner.table.read().expect("vector table lock");
        let e = t.articles.get(&id)?;
        let mut v = vec![0.0f32; inner.dim];
        for &s in &e.slots {
            for (a, b) in v.iter_mut().zip(t.vector(inner.dim, s)) {
                *a += b;
            }
        }
        crate::embed::normalize(&mut v);
        Some(v)
    }

    /// Removes an article's vectors.
    pub fn remove(&self, id: ArticleId) {
        let inner = self.inner.load();
        let mut t = inner.table.write().expect("vector table lock");
        kill_article(&mut t, id);
    }

    /// Share of tombstones among all slots (0 when empty).
    pub fn garbage_ratio(&self) -> f64 {
        let s = self.stats();
        let all = s.vectors + s.tombstones;
        if all == 0 {
            0.0
        } else {
            s.tombstones as f64 / all as f64
        }
    }

    /// Rebuilds the graph from the live vectors only (dropping tombstones).
    /// Searches continue on the old build meanwhile; the caller must not
    /// write concurrently (the indexer's single embedding worker does both).
    pub fn compact(&self) {
        let old = self.inner.load_full();
        let articles: Vec<(ArticleId, String, Vec<Vec<f32>>)> = {
            let t = old.table.read().expect("vector table lock");
            t.articles
                .iter()
                .map(|(id, e)| {
                    let vecs = e
                        .slots
                        .iter()
                        .map(|&s| t.vector(old.dim, s).to_vec())
                        .collect();
                    (*id, e.hash.clone(), vecs)
                })
                .collect()
        };
        let fresh = VectorIndex::build(old.dim, articles);
        self.inner.store(fresh.inner.load_full());
    }

    /// Exact best-passage similarity of the given articles with `query`
    /// (articles without vectors are absent).
    pub fn similarities(
        &self,
        query: &[f32],
        ids: &[ArticleId],
    ) -> HashMap<ArticleId, ArticleScore> {
        let inner = self.inner.load();
        let t = inner.table.read().expect("vector table lock");
        let mut out = HashMap::with_capacity(ids.len());
        for &id in ids {
            if let Some(e) = t.articles.get(&id) {
                if let Some(best) = best_passage(&t, inner.dim, query, &e.slots) {
                    out.insert(id, best);
                }
            }
        }
        out
    }

    /// The `k` articles of `allowed` most similar to `query` (by their best
    /// passage), best first, and how the search ran.
    pub fn search(
        &self,
        query: &[f32],
        allowed: &Allowed,
        k: usize,
        params: SearchParams,
    ) -> (Vec<ArticleScore>, Plan) {
        let inner = self.inner.load();
        if query.len() != inner.dim || k == 0 || allowed.is_empty() {
            return (Vec::new(), Plan::Exact);
        }
        let t = inner.table.read().expect("vector table lock");
        // Plan by the number of allowed vectors, estimated in O(1) from the
        // mean passages per article (counting exactly costs a hash lookup
        // per allowed article, which at 10⁵ articles was most of a query).
        let per_article = t.live as f64 / t.articles.len().max(1) as f64;
        let allowed_vectors = (allowed.len() as f64 * per_article) as usize;
        let selective = (allowed_vectors as f64) < t.live as f64 * params.exact_fraction;
        if allowed_vectors <= params.exact_below || selective {
            return (exact::exact(&t, inner.dim, query, allowed, k), Plan::Exact);
        }
        let found = graph(&inner, &t, query, allowed, k, params.ef);
        if found.len() < k {
            // Fewer than k: either fewer readable articles exist, or the
            // filter cut the walk short. Exactness beats speed here.
            let readable = allowed
                .ids()
                .iter()
                .filter(|id| t.articles.contains_key(id))
                .count();
            if found.len() < k.min(readable) {
                return (exact::exact(&t, inner.dim, query, allowed, k), Plan::Exact);
            }
        }
        (found, Plan::Graph)
    }

    /// The exact answer (for benchmarks and tests comparing with the graph).
    pub fn search_exact(&self, query: &[f32], allowed: &Allowed, k: usize) -> Vec<ArticleScore> {
        let inner = self.inner.load();
        let t = inner.table.read().expect("vector table lock");
        exact::exact(&t, inner.dim, query, allowed, k)
    }
}

fn push_article(
    t: &mut Table,
    dim: usize,
    id: ArticleId,
    hash: String,
    vecs: &[Vec<f32>],
    alive: bool,
) {
    let mut slots = Vec::with_capacity(vecs.len());
    for (i, v) in vecs.iter().enumerate() {
        if v.len() != dim {
            continue;
        }
        slots.push(t.article.len() as u32);
        t.vectors.extend_from_slice(v);
        t.article.push(id);
        t.passage.push(i as u32);
        t.alive.push(alive);
    }
    if alive {
        t.live += slots.len();
    }
    kill_article(t, id);
    t.articles.insert(id, Entry { hash, slots });
}

fn kill_article(t: &mut Table, id: ArticleId) {
    if let Some(old) = t.articles.remove(&id) {
        for s in &old.slots {
            if std::mem::replace(&mut t.alive[*s as usize], false) {
                t.live -= 1;
            }
        }
        if !t.orphans.is_empty() {
            let alive = &t.alive;
            t.orphans.retain(|s| alive[*s as usize]);
        }
    }
}

pub(super) fn best_passage(
    t: &Table,
    dim: usize,
    query: &[f32],
    slots: &[u32],
) -> Option<ArticleScore> {
    let mut best: Option<ArticleScore> = None;
    for &s in slots {
        let sim = dot(query, t.vector(dim, s));
        if best.is_none_or(|b| sim > b.similarity) {
            best = Some(ArticleScore {
                id: t.article[s as usize],
                similarity: sim,
                passage: t.passage[s as usize],
            });
        }
    }
    best
}

/// Keeps the `k` best article scores.
pub(super) fn top_k(mut scores: Vec<ArticleScore>, k: usize) -> Vec<ArticleScore> {
    let by_sim = |a: &ArticleScore, b: &ArticleScore| {
        b.similarity
            .total_cmp(&a.similarity)
            .then_with(|| a.id.cmp(&b.id))
    };
    if scores.len() > k {
        scores.select_nth_unstable_by(k - 1, by_sim);
        scores.truncate(k);
    }
    scores.sort_unstable_by(by_sim);
    scores
}

fn graph(
    inner: &Inner,
    t: &Table,
    query: &[f32],
    allowed: &Allowed,
    k: usize,
    ef: usize,
) -> Vec<ArticleScore> {
    let keep = |slot: u32| t.alive[slot as usize] && allowed.contains(t.article[slot as usize]);
    // Several passages of one article may come back: ask for more slots
    // than articles, then keep each article's best.
    let want = (k * 3).max(k + 8);
    let found = t
        .links
        .walk(&t.vectors, inner.dim, query, want, ef.max(want), &keep);
    let mut best: HashMap<ArticleId, ArticleScore> = HashMap::with_capacity(found.len());
    let mut consider = |slot: u32, sim: f32| {
        let id = t.article[slot as usize];
        let e = best.entry(id).or_insert(ArticleScore {
            id,
            similarity: f32::NEG_INFINITY,
            passage: 0,
        });
        if sim > e.similarity {
            e.similarity = sim;
            e.passage = t.passage[slot as usize];
        }
    };
    for &(sim, slot) in &found {
        consider(slot, sim);
    }
    // What the graph cannot reach, and what is newer than its copy.
    let newer = t.links.covered as u32..t.article.len() as u32;
    for slot in t.orphans.iter().copied().chain(newer) {
        if keep(slot) {
            consider(slot, dot(query, t.vector(inner.dim, slot)));
        }
    }
    top_k(best.into_values().collect(), k)
}

#[cfg(test)]
mod tests;
