//! Semantic and hybrid search: the query's embedding against passage
//! vectors, fused with the lexical ranking.
//!
//! Permissions apply inside both rankers: the lexical query carries the
//! caller's visibility clause, and the vector search only walks the articles
//! that clause (and the request's filters) allow — the *allowed set*, read
//! from the same tantivy filter. Nothing is filtered afterwards.
//!
//! Hybrid search re-scores the union of both candidate lists instead of
//! fusing two truncated lists: every candidate gets its exact best-passage
//! similarity and, when it matches the words, its exact BM25 score. The
//! population a hybrid query describes (its `total` and facet counts) is
//! every lexical match plus the semantic neighbours above a similarity
//! floor that match no word, so facet counts always describe exactly the
//! set the hits come from.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermSetQuery};
use tantivy::{DocAddress, Searcher, Term};

use super::collect::{FacetCounts, Ids};
use super::lexical::build_hits;
use super::request::{Fusion, SearchMode, SearchRequest};
use super::{query, FacetCount, Generation, Hit, SearchResults, Timings, FACET_VALUES};
use crate::auth::Principal;
use crate::embed::QueryEmbedder;
use crate::error::Result;
use crate::model::ArticleId;
use crate::vector::{Allowed, Plan, SearchParams, VectorIndex};

/// Candidates taken from each ranker (at least; deeper pages take more).
/// The union is re-scored exactly, so a page of ten rarely needs more; the
/// graph walk's cost grows with the candidates asked for.
pub const CANDIDATES: usize = 50;
/// Semantic neighbours less similar than this join a result set only when
/// they also match the words: below it, MiniLM similarities say little.
pub const SIMILARITY_FLOOR: f32 = 0.2;
/// The fusion used when the request names none: BM25 over its maximum and
/// similarity min-max scaled, in the convex combination with the
/// embedder's [`Embedder::hybrid_weight`] (0.8 for MiniLM). Chosen by
/// nDCG@10 on both judged sets (msmarco-5k passages and our questions
/// about the PostgreSQL manual; BENCHMARKS.md): with MiniLM every weight
/// from 0.75 to 0.85 is at least as good as the better single ranker on
/// both, while the adaptive weight and RRF lose to dense retrieval on the
/// manual and lower weights lose on msmarco-5k.
///
/// [`Embedder::hybrid_weight`]: crate::embed::Embedder::hybrid_weight
pub fn default_fusion(sem: &Semantic) -> Fusion {
    Fusion::Convex(sem.embedder.embedder().hybrid_weight())
}
/// RRF's rank constant.
const RRF_K: f32 = 60.0;

/// The semantic side of a search index: the query embedder (with its cache)
/// and the passage vectors.
pub struct Semantic {
    /// Embeds queries, with an LRU cache.
    pub embedder: QueryEmbedder,
    /// Passage vectors of the indexed articles.
    pub vectors: VectorIndex,
    /// Vector search tuning.
    pub params: SearchParams,
}

impl std::fmt::Debug for Semantic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semantic")
            .field("model", &self.embedder.embedder().model_id())
            .field("vectors", &self.vectors)
            .finish()
    }
}

/// Why a hit ranks where it does (`explain=true`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct HitExplain {
    /// BM25 score (absent when no word matches).
    pub lexical: Option<f32>,
    /// Rank among the lexical candidates (1-based).
    pub lexical_rank: Option<usize>,
    /// Cosine similarity of the best passage (absent without vectors).
    pub semantic: Option<f32>,
    /// Rank among the candidates by similarity (1-based).
    pub semantic_rank: Option<usize>,
    /// The best passage (0-based).
    pub passage: Option<u32>,
    /// The fused score the hit is ranked by.
    pub fused: f32,
}

/// How a semantic or hybrid query ran.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SemanticInfo {
    /// The embedding model.
    pub model: String,
    /// The query vector came from the cache.
    pub cached_query: bool,
    /// `exact` or `graph`.
    #[schema(value_type = String)]
    pub plan: String,
    /// Articles the caller may see under the request's filters.
    pub allowed: usize,
    /// The fusion used (hybrid only).
    pub fusion: Option<Fusion>,
}

/// A candidate of a hybrid query's union, before fusion (for relevance
/// tuning: `kmt-bench relevance` fits fusions offline on these).
#[derive(Debug, Clone, serde::Serialize)]
pub struct UnionCandidate {
    /// The article.
    pub id: ArticleId,
    /// BM25 score, when it matches the words.
    pub lexical: Option<f32>,
    /// Best-passage similarity, when it has vectors.
    pub semantic: Option<f32>,
}

/// One candidate of the union.
#[derive(Debug, Clone)]
struct Cand {
    id: ArticleId,
    addr: Option<DocAddress>,
    lex: Option<f32>,
    lex_rank: Option<usize>,
    sim: Option<f32>,
    sim_rank: Option<usize>,
    passage: Option<u32>,
    fused: f32,
}

impl Cand {
    /// A semantic neighbour that matches no word (yet).
    fn semantic(n: &crate::vector::ArticleScore) -> Cand {
        Cand {
            id: n.id,
            addr: None,
            lex: None,
            lex_rank: None,
            sim: Some(n.similarity),
            sim_rank: None,
            passage: Some(n.passage),
            fused: 0.0,
        }
    }
}

fn id_terms(gen: &Generation, ids: impl IntoIterator<Item = ArticleId>) -> Box<dyn Query> {
    let f = gen.fields.id;
    Box::new(TermSetQuery::new(
        ids.into_iter().map(|id| Term::from_field_u64(f, id as u64)),
    ))
}

fn and(a: Box<dyn Query>, b: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(vec![(Occur::Must, a), (Occur::Must, b)]))
}

pub(super) fn facets_out(
    fields: &[&'static str],
    counts: Vec<HashMap<String, u64>>,
) -> BTreeMap<String, Vec<FacetCount>> {
    let mut out = BTreeMap::new();
    for (name, counts) in fields.iter().zip(counts) {
        let mut v: Vec<FacetCount> = counts
            .into_iter()
            .map(|(value, count)| FacetCount { value, count })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        v.truncate(FACET_VALUES);
        out.insert(name.to_string(), v);
    }
    out
}

/// Most cached allowed sets per generation before the cache is cleared.
const ALLOWED_ENTRIES: usize = 256;

/// Allowed sets by caller key, with the index state they were computed on:
/// collecting and sorting the ids of every visible article costs a few
/// milliseconds at 10⁵ articles, and few distinct callers (audience terms,
/// owner, reviewer flag) and filter sets exist.
#[derive(Default)]
pub(super) struct AllowedCache {
    sets: std::sync::Mutex<HashMap<String, (IndexState, std::sync::Arc<Allowed>)>>,
}

/// The segments (and their deletes) a cached set was computed on.
type IndexState = Vec<(tantivy::index::SegmentId, Option<u64>)>;

/// The articles the caller may see under the request's filters.
fn allowed(
    gen: &Generation,
    searcher: &Searcher,
    principal: &Principal,
    visible: &dyn Query,
    req: &SearchRequest,
) -> Result<std::sync::Arc<Allowed>> {
    let key = format!("{}|{:?}", query::caller_key(principal), req.filters);
    let state: IndexState = searcher
        .segment_readers()
        .iter()
        .map(|r| (r.segment_id(), r.delete_opstamp()))
        .collect();
    if let Some((s, set)) = gen
        .allowed
        .sets
        .lock()
        .expect("allowed cache lock")
        .get(&key)
    {
        if *s == state {
            return Ok(set.clone());
        }
    }
    let q = query::assemble(&gen.fields, visible, None, &req.filters);
    let ids = searcher.search(&*q, &Ids { scoring: false })?;
    let set = std::sync::Arc::new(Allowed::from_ids(ids.into_iter().map(|x| x.0).collect()));
    let mut sets = gen.allowed.sets.lock().expect("allowed cache lock");
    if sets.len() >= ALLOWED_ENTRIES {
        sets.clear();
    }
    sets.insert(key, (state, set.clone()));
    Ok(set)
}

/// The articles `principal` may read (no filters): the allowed set of
/// every search, cached the same way.
pub(super) fn readable(gen: &Generation, principal: &Principal) -> Result<std::sync::Arc<Allowed>> {
    let searcher = gen.reader.searcher();
    let visible = query::visibility(&gen.fields, principal, &[], &gen.filters);
    allowed(
        gen,
        &searcher,
        principal,
        &*visible,
        &SearchRequest::default(),
    )
}

/// Fuses the union's scores into `fused`.
fn fuse(cands: &mut [Cand], fusion: Fusion) {
    let max_lex = cands.iter().filter_map(|c| c.lex).fold(0.0f32, f32::max);
    let sims: Vec<f32> = cands.iter().filter_map(|c| c.sim).collect();
    let (lo, hi) = sims
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &s| {
            (lo.min(s), hi.max(s))
        });
    let norm_lex = |c: &Cand| match c.lex {
        Some(l) if max_lex > 0.0 => l / max_lex,
        _ => 0.0,
    };
    let norm_sim = |c: &Cand| match c.sim {
        Some(s) if hi > lo => (s - lo) / (hi - lo),
        Some(_) => 1.0,
        None => 0.0,
    };
    let weight = match fusion {
        Fusion::Convex(w) => w,
        Fusion::Adaptive => adaptive_weight(cands),
        Fusion::Rrf => 0.0,
    };
    for c in cands.iter_mut() {
        c.fused = match fusion {
            Fusion::Rrf => {
                c.lex_rank.map_or(0.0, |r| 1.0 / (RRF_K + r as f32))
                    + c.sim_rank.map_or(0.0, |r| 1.0 / (RRF_K + r as f32))
            }
            _ => weight * norm_sim(c) + (1.0 - weight) * norm_lex(c),
        };
    }
}

/// The semantic weight of the adaptive fusion: 0.7 when the two rankers
/// agree on their top ten, rising to 1.0 as they disagree. It was the
/// default while msmarco-5k was the only judged set (there the words
/// usually disagree by matching the wrong sense); on the PostgreSQL manual
/// the words carry what the embedding misses exactly when they disagree,
/// and the fixed weight is better on both (BENCHMARKS.md).
fn adaptive_weight(cands: &[Cand]) -> f32 {
    const TOP: usize = 10;
    let top = |key: &dyn Fn(&Cand) -> f32| -> Vec<ArticleId> {
        let mut v: Vec<&Cand> = cands.iter().collect();
        v.sort_by(|a, b| key(b).total_cmp(&key(a)));
        v.into_iter().take(TOP).map(|c| c.id).collect()
    };
    let lex = top(&|c: &Cand| c.lex.unwrap_or(0.0));
    let sem = top(&|c: &Cand| c.sim.unwrap_or(0.0));
    let agree = lex.iter().filter(|id| sem.contains(id)).count() as f32 / TOP as f32;
    0.7 + 0.3 * (1.0 - agree)
}

/// Runs a semantic or hybrid search.
pub(super) fn search(
    gen: &Generation,
    sem: &Semantic,
    principal: &Principal,
    req: &SearchRequest,
    mode: SearchMode,
    union_out: Option<&mut Vec<UnionCandidate>>,
) -> Result<SearchResults> {
    let t0 = Instant::now();
    let searcher = gen.reader.searcher();
    let f = &gen.fields;
    let visible = query::visibility(f, principal, &req.filters, &gen.filters);
    let facet_fields: Vec<&'static str> = req.facets.iter().map(|x| x.as_str()).collect();
    let (qv, cached) = sem.embedder.query(&req.q)?;
    let t_embed = t0.elapsed();
    let allowed = allowed(gen, &searcher, principal, &*visible, req)?;
    let depth = (req.offset + req.limit).max(CANDIDATES);
    let (neighbours, plan) = sem.vectors.search(&qv, &allowed, depth, sem.params);
    let t_vector = t0.elapsed();

    let mut cands: Vec<Cand> = Vec::new();
    let mut lex_total = 0u64;
    let mut lex_facets: Vec<HashMap<String, u64>> = vec![HashMap::new(); facet_fields.len()];
    let mut relaxed = false;
    let mut fuzzy_words = 0;
    let mut highlight: Option<(Box<dyn Query>, Vec<String>)> = None;
    let mut extras: Vec<ArticleId> = Vec::new();

    if mode == SearchMode::Hybrid {
        let lex = super::lexical::lexical_candidates(
            gen,
            &searcher,
            &*visible,
            req,
            depth,
            &facet_fields,
        )?;
        lex_total = lex.total;
        lex_facets = lex.facets;
        relaxed = lex.relaxed;
        fuzzy_words = lex.fuzzy_words;
        let mut seen: HashMap<ArticleId, usize> = HashMap::new();
        for (rank, (score, addr)) in lex.docs.iter().enumerate() {
            let id = super::lexical::article_id(&searcher, *addr);
            seen.insert(id, cands.len());
            cands.push(Cand {
                id,
                addr: Some(*addr),
                lex: *score,
                lex_rank: Some(rank + 1),
                sim: None,
                sim_rank: None,
                passage: None,
                fused: 0.0,
            });
        }
        // Exact similarities of the lexical candidates.
        let lex_ids: Vec<ArticleId> = cands.iter().map(|c| c.id).collect();
        let sims = sem.vectors.similarities(&qv, &lex_ids);
        for c in cands.iter_mut() {
            if let Some(s) = sims.get(&c.id) {
                c.sim = Some(s.similarity);
                c.passage = Some(s.passage);
            }
        }
        // Semantic neighbours not among the lexical candidates: do they
        // match the words further down (then they have a BM25 score and
        // are already counted), or not at all (then they join the
        // population only above the similarity floor)?
        let others: Vec<_> = neighbours
            .iter()
            .filter(|n| !seen.contains_key(&n.id))
            .copied()
            .collect();
        let mut lex_of: HashMap<ArticleId, (f32, DocAddress)> = HashMap::new();
        if let (Some(q), false) = (lex.query, others.is_empty()) {
            let restricted = and(
                q,
                Box::new(BoostQuery::new(
                    id_terms(gen, others.iter().map(|n| n.id)),
                    0.0,
                )),
            );
            for (id, addr, score) in searcher.search(&*restricted, &Ids { scoring: true })? {
                lex_of.insert(id, (score, addr));
            }
        }
        for n in others {
            match lex_of.get(&n.id) {
                Some(&(score, addr)) => cands.push(Cand {
                    id: n.id,
                    addr: Some(addr),
                    lex: Some(score),
                    lex_rank: None,
                    sim: Some(n.similarity),
                    sim_rank: None,
                    passage: Some(n.passage),
                    fused: 0.0,
                }),
                None if n.similarity >= SIMILARITY_FLOOR => {
                    extras.push(n.id);
                    cands.push(Cand::semantic(&n));
                }
                None => {}
            }
        }
        highlight = Some((lex.highlight, lex.stems));
    } else {
        for n in neighbours
            .iter()
            .filter(|n| n.similarity >= SIMILARITY_FLOOR)
        {
            extras.push(n.id);
            cands.push(Cand::semantic(n));
        }
    }

    // Addresses and facet values of the semantic-only population.
    if !extras.is_empty() {
        let q = and(id_terms(gen, extras.iter().copied()), visible.box_clone());
        let fc = FacetCounts {
            fields: facet_fields.clone(),
        };
        let (found, counts) = searcher.search(&*q, &(Ids { scoring: false }, fc))?;
        let addr: HashMap<ArticleId, DocAddress> =
            found.into_iter().map(|(id, a, _)| (id, a)).collect();
        for c in cands.iter_mut().filter(|c| c.addr.is_none()) {
            c.addr = addr.get(&c.id).copied();
        }
        for (i, m) in counts.into_iter().enumerate() {
            for (k, v) in m {
                *lex_facets[i].entry(k).or_default() += v;
            }
        }
    }
    // A candidate without an address left the index meanwhile.
    cands.retain(|c| c.addr.is_some());
    let total = lex_total + extras.len() as u64;

    // Semantic ranks over the union.
    let mut order: Vec<usize> = (0..cands.len())
        .filter(|&i| cands[i].sim.is_some())
        .collect();
    order.sort_by(|&a, &b| {
        cands[b]
            .sim
            .unwrap_or(0.0)
            .total_cmp(&cands[a].sim.unwrap_or(0.0))
    });
    for (r, i) in order.into_iter().enumerate() {
        cands[i].sim_rank = Some(r + 1);
    }
    let fusion = match mode {
        SearchMode::Hybrid => req.fusion.unwrap_or_else(|| default_fusion(sem)),
        _ => Fusion::Convex(1.0),
    };
    fuse(&mut cands, fusion);
    if let Some(out) = union_out {
        out.extend(cands.iter().map(|c| UnionCandidate {
            id: c.id,
            lexical: c.lex,
            semantic: c.sim,
        }));
    }
    cands.sort_by(|a, b| b.fused.total_cmp(&a.fused).then_with(|| a.id.cmp(&b.id)));
    let t_search = t0.elapsed();

    let facets = facets_out(&facet_fields, lex_facets);
    let page: Vec<Cand> = cands.into_iter().skip(req.offset).take(req.limit).collect();
    let docs: Vec<(Option<f32>, DocAddress)> = page
        .iter()
        .map(|c| (Some(c.fused), c.addr.expect("retained")))
        .collect();
    let mut hits: Vec<Hit> = match &highlight {
        Some((h, stems)) => build_hits(&searcher, f, &**h, stems, true, docs)?,
        None => build_hits(&searcher, f, &tantivy::query::EmptyQuery, &[], false, docs)?,
    };
    if req.explain {
        for (h, c) in hits.iter_mut().zip(&page) {
            h.explain = Some(HitExplain {
                lexical: c.lex,
                lexical_rank: c.lex_rank,
                semantic: c.sim,
                semantic_rank: c.sim_rank,
                passage: c.passage,
                fused: c.fused,
            });
        }
    }
    let t_total = t0.elapsed();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    Ok(SearchResults {
        hits,
        total,
        facets,
        relaxed,
        fuzzy_words,
        mode,
        did_you_mean: None,
        semantic: Some(SemanticInfo {
            model: sem.embedder.embedder().model_id().to_string(),
            cached_query: cached,
            plan: match plan {
                Plan::Exact => "exact",
                Plan::Graph => "graph",
            }
            .to_string(),
            allowed: allowed.len(),
            fusion: (mode == SearchMode::Hybrid).then_some(fusion),
        }),
        took_ms: ms(t_total),
        timings: Timings {
            parse: 0.0,
            embed: ms(t_embed),
            vector: ms(t_vector - t_embed),
            search: ms(t_search - t_vector),
            facets: 0.0,
            snippets: ms(t_total - t_search),
            total: ms(t_total),
        },
    })
}

/// Articles similar to `id` that `principal` may read (never `id` itself),
/// most similar first. `NotFound` when `id` is not readable by the caller.
pub(super) fn related(
    gen: &Generation,
    sem: Option<&Semantic>,
    principal: &Principal,
    id: ArticleId,
    limit: usize,
) -> Result<Vec<Hit>> {
    let searcher = gen.reader.searcher();
    let f = &gen.fields;
    let visible = query::visibility(f, principal, &[], &gen.filters);
    let own = searcher.search(
        &*and(id_terms(gen, [id]), visible.box_clone()),
        &Ids { scoring: false },
    )?;
    let Some(&(_, own_addr, _)) = own.first() else {
        return Err(crate::error::Error::NotFound(format!("article {id}")));
    };
    let limit = limit.clamp(1, super::MAX_LIMIT);
    let ranked: Vec<(ArticleId, f32)> =
        match sem.and_then(|s| s.vectors.article_vector(id).map(|v| (s, v))) {
            Some((sem, v)) => {
                let req = SearchRequest::default();
                let mut allowed_ids = allowed(gen, &searcher, principal, &*visible, &req)?
                    .ids()
                    .to_vec();
                allowed_ids.retain(|&x| x != id);
                let (found, _) =
                    sem.vectors
                        .search(&v, &Allowed::from_ids(allowed_ids), limit, sem.params);
                found
                    .into_iter()
                    .filter(|a| a.similarity >= SIMILARITY_FLOOR)
                    .map(|a| (a.id, a.similarity))
                    .collect()
            }
            None => {
                // Without vectors: the article's title as an any-word query.
                let doc: tantivy::TantivyDocument = searcher.doc(own_addr)?;
                let title =
                    tantivy::schema::Value::as_str(&doc.get_first(f.title).expect("title stored"))
                        .unwrap_or_default()
                        .to_string();
                let req = SearchRequest {
                    q: title,
                    limit: limit + 1,
                    match_mode: super::MatchMode::Any,
                    ..Default::default()
                };
                let lex = super::lexical::lexical_candidates(
                    gen,
                    &searcher,
                    &*visible,
                    &req,
                    limit + 1,
                    &[],
                )?;
                lex.docs
                    .iter()
                    .map(|(s, a)| (super::lexical::article_id(&searcher, *a), s.unwrap_or(0.0)))
                    .filter(|(x, _)| *x != id)
                    .take(limit)
                    .collect()
            }
        };
    if ranked.is_empty() {
        return Ok(Vec::new());
    }
    let found = searcher.search(
        &*and(
            id_terms(gen, ranked.iter().map(|r| r.0)),
            visible.box_clone(),
        ),
        &Ids { scoring: false },
    )?;
    let addr: HashMap<ArticleId, DocAddress> = found.into_iter().map(|(i, a, _)| (i, a)).collect();
    let docs: Vec<(Option<f32>, DocAddress)> = ranked
        .iter()
        .filter_map(|(i, s)| addr.get(i).map(|a| (Some(*s), *a)))
        .collect();
    build_hits(&searcher, f, &tantivy::query::EmptyQuery, &[], false, docs)
}
