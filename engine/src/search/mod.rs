//! Full-text search over articles (tantivy).
//!
//! A [`SearchIndex`] holds the current index *generation* behind an
//! atomically swapped handle: queries load the handle once and see one
//! consistent snapshot, and a rebuild publishes a whole new generation
//! without failing a query in flight. Each generation lives in its own
//! directory (`gen-000007/`) and `CURRENT` names the live one.
//!
//! The outbox checkpoint is stored in the tantivy commit payload, so the
//! index content and the sequence it covers are committed atomically: a
//! crash can only lose uncommitted work, which the follower then replays.

mod collect;
mod filter;
mod hybrid;
mod lexical;
mod query;
mod request;
mod schema;
mod sections;
mod suggest;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use serde::{Deserialize, Serialize};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, ReloadPolicy};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::model::ArticleId;
pub use hybrid::{
    HitExplain, Semantic, SemanticInfo, UnionCandidate, CANDIDATES, SIMILARITY_FLOOR,
};
pub use request::{
    FacetField, Filter, Fusion, MatchMode, SearchMode, SearchRequest, Sort, MAX_LIMIT, MAX_OFFSET,
    MAX_QUERY_BYTES, MAX_QUERY_WORDS,
};
pub use schema::{Fields, SCHEMA_VERSION};
pub use suggest::{Suggestion, SuggestionKind, MAX_SUGGEST_LIMIT, MAX_SUGGEST_QUERY_BYTES};
pub use writer::{IndexUpdater, MergeHandle};

/// Most facet values returned per field.
const FACET_VALUES: usize = 50;
/// Characters in a snippet.
const SNIPPET_CHARS: usize = 220;
/// Memory budget of the incremental writer.
const WRITER_BUDGET: usize = 64 * 1024 * 1024;

/// One hit.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Hit {
    /// Article id.
    pub id: ArticleId,
    /// Slug.
    pub slug: String,
    /// Title.
    pub title: String,
    /// HTML: escaped text around the matches, matches in `<mark>`.
    pub snippet: String,
    /// BM25 score (`null` when sorted by something else).
    pub score: Option<f32>,
    /// Category.
    pub category: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Status.
    pub status: String,
    /// Last update.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Score components (with `explain=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<HitExplain>,
}

/// A facet value and how many hits carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FacetCount {
    /// The value.
    pub value: String,
    /// Number of hits (of the whole result set, not the page) with it.
    pub count: u64,
}

/// Per-stage timings in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Timings {
    /// Parsing the query and looking words up in the term dictionary.
    pub parse: f64,
    /// Embedding the query (near 0 when cached; semantic and hybrid).
    #[serde(default)]
    pub embed: f64,
    /// Computing the allowed set and searching the vectors.
    #[serde(default)]
    pub vector: f64,
    /// Matching, scoring, counting and facet counting (one pass).
    pub search: f64,
    /// Ranking facet values.
    pub facets: f64,
    /// Loading hit documents and highlighting snippets.
    pub snippets: f64,
    /// Everything.
    pub total: f64,
}

/// A page of results.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchResults {
    /// The page of hits.
    pub hits: Vec<Hit>,
    /// Number of readable articles matching.
    pub total: u64,
    /// Facet counts over all matching readable articles.
    pub facets: BTreeMap<String, Vec<FacetCount>>,
    /// True when no article matched every word and the results match any word.
    pub relaxed: bool,
    /// Query words that matched through typo tolerance (near spellings).
    pub fuzzy_words: usize,
    /// The rankers that answered.
    pub mode: SearchMode,
    /// A corrected query, when this one found nothing or very little and a
    /// near spelling of its words would find more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did_you_mean: Option<String>,
    /// How the semantic side ran (semantic and hybrid modes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic: Option<SemanticInfo>,
    /// Time the engine spent on the query, in milliseconds.
    pub took_ms: f64,
    /// Stage timings.
    pub timings: Timings,
}

/// One index generation: an index, its reader and analyzers.
struct Generation {
    id: u64,
    index: Index,
    reader: IndexReader,
    fields: Fields,
    analyzer: TextAnalyzer,
    prefix_analyzer: TextAnalyzer,
    dir: Option<PathBuf>,
    filters: Arc<filter::FilterCache>,
    /// Suggestion maps, built on first use (see [`suggest`]).
    suggest: Arc<suggest::SuggestCache>,
    /// Allowed sets of vector searches by caller and filters.
    allowed: hybrid::AllowedCache,
}

impl Generation {
    /// Opens the generation in `dir` (or creates it; `None` = in memory).
    /// `Ok(None)` when the directory holds an index with another schema.
    fn open_or_create(id: u64, dir: Option<PathBuf>) -> Result<Option<Generation>> {
        let (schema, fields) = schema::build_schema();
        let index = match &dir {
            Some(d) => {
                std::fs::create_dir_all(d)?;
                let mmap = tantivy::directory::MmapDirectory::open(d)?;
                if Index::exists(&mmap).map_err(|e| Error::Corrupt(format!("index meta: {e}")))? {
                    let index = Index::open(mmap)?;
                    if index.schema() != schema {
                        return Ok(None);
                    }
                    index
                } else {
                    Index::create(mmap, schema, tantivy::IndexSettings::default())?
                }
            }
            None => Index::create_in_ram(schema),
        };
        schema::register_analyzers(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Some(Generation {
            id,
            index,
            reader,
            fields,
            analyzer: schema::analyzer(),
            prefix_analyzer: schema::prefix_analyzer(),
            dir,
            filters: Arc::default(),
            suggest: Default::default(),
            allowed: Default::default(),
        }))
    }

    /// A generation that must be new: fails if `dir` holds another schema.
    fn create(id: u64, dir: Option<PathBuf>) -> Result<Generation> {
        Generation::open_or_create(id, dir)?
            .ok_or_else(|| Error::Corrupt("a fresh index generation has a foreign schema".into()))
    }

    fn payload(&self) -> Result<Payload> {
        let meta = self.index.load_metas()?;
        Ok(match meta.payload {
            Some(p) => serde_json::from_str(&p)
                .map_err(|e| Error::Corrupt(format!("index payload: {e}")))?,
            None => Payload::default(),
        })
    }
}

/// What each commit records besides documents.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Payload {
    /// Outbox sequence covered.
    seq: i64,
    /// [`SCHEMA_VERSION`] at the time of the commit.
    schema: u32,
}

/// The full-text index of articles.
#[derive(Clone)]
pub struct SearchIndex {
    root: Option<PathBuf>,
    current: Arc<ArcSwap<Generation>>,
    semantic: Arc<ArcSwapOption<Semantic>>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("root", &self.root)
            .field("generation", &self.current.load().id)
            .finish()
    }
}

pub(crate) fn gen_dir(root: &Path, id: u64) -> PathBuf {
    root.join(format!("gen-{id:06}"))
}

impl SearchIndex {
    /// Opens the index under `root` (creating it if missing). An index
    /// written with another schema version is replaced by an empty one, which
    /// the follower then fills from the store (checkpoint 0).
    pub fn open(root: &Path) -> Result<SearchIndex> {
        std::fs::create_dir_all(root)?;
        let current = std::fs::read_to_string(root.join("CURRENT"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        let id = current.unwrap_or(1);
        let reusable = match Generation::open_or_create(id, Some(gen_dir(root, id)))? {
            Some(g) => {
                let p = g.payload()?;
                (p.seq == 0 || p.schema == SCHEMA_VERSION).then_some(g)
            }
            None => None,
        };
        let gen = match reusable {
            Some(g) => g,
            None => {
                // Written by another version of KMT: start a fresh
                // generation, which the follower fills from the store.
                tracing::warn!(
                    generation = id,
                    "index schema changed; building a fresh index"
                );
                let _ = std::fs::remove_dir_all(gen_dir(root, id + 1));
                Generation::create(id + 1, Some(gen_dir(root, id + 1)))?
            }
        };
        Ok(SearchIndex {
            root: Some(root.to_path_buf()),
            current: Arc::new(ArcSwap::from_pointee(gen)),
            semantic: Arc::default(),
        })
    }

    /// An index held in memory (tests, one-shot tools).
    pub fn in_memory() -> Result<SearchIndex> {
        Ok(SearchIndex {
            root: None,
            current: Arc::new(ArcSwap::from_pointee(Generation::create(1, None)?)),
            semantic: Arc::default(),
        })
    }

    /// Turns semantic and hybrid search on with this embedder and vector
    /// index (shared by every clone of this index).
    pub fn attach_semantic(&self, semantic: Arc<Semantic>) {
        self.semantic.store(Some(semantic));
    }

    /// The semantic side, when a model is loaded.
    pub fn semantic(&self) -> Option<Arc<Semantic>> {
        self.semantic.load_full()
    }

    /// The directory of the index (`None` in memory).
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// The outbox sequence the live generation covers.
    pub fn checkpoint(&self) -> Result<i64> {
        Ok(self.current.load().payload()?.seq)
    }

    /// Directory of the live generation (`None` in memory); snapshots copy
    /// it.
    pub(crate) fn live_dir(&self) -> Option<PathBuf> {
        self.current.load().dir.clone()
    }

    /// Number of documents in the live generation.
    pub fn num_docs(&self) -> u64 {
        self.current.load().reader.searcher().num_docs()
    }

    /// Id of the live generation.
    pub fn generation(&self) -> u64 {
        self.current.load().id
    }

    /// Bytes on disk of the live generation's directory (0 for an index in
    /// memory). Walks the directory, which holds a few dozen segment files,
    /// so it is cheap but does blocking I/O. Files that vanish mid-walk (a
    /// merge or commit removing them) count as 0 rather than failing.
    pub fn size_bytes(&self) -> u64 {
        let gen = self.current.load();
        let Some(dir) = gen.dir.clone() else {
            return 0;
        };
        let mut total = 0;
        let mut pending = vec![dir];
        while let Some(d) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                match e.metadata() {
                    Ok(m) if m.is_dir() => pending.push(e.path()),
                    Ok(m) => total += m.len(),
                    Err(_) => {}
                }
            }
        }
        total
    }

    /// Opens the writer of the live generation. Only one writer may exist
    /// per generation (tantivy holds a lock file); a second process gets
    /// `Error::Unavailable`.
    pub fn updater(&self) -> Result<IndexUpdater> {
        let gen = self.current.load_full();
        let writer = gen
            .index
            .writer_with_num_threads(1, WRITER_BUDGET)
            .map_err(|e| match e {
                tantivy::TantivyError::LockFailure(..) => Error::Unavailable(
                    "another process holds the index writer for this data directory".into(),
                ),
                e => Error::Index(e),
            })?;
        // Only the writer's holder tidies the directory: a reader (another
        // process opening the same index) must never delete a generation
        // the writer is still building.
        if let Some(root) = &self.root {
            write_current(root, gen.id)?;
            remove_other_generations(root, gen.id);
        }
        Ok(IndexUpdater { gen, writer })
    }

    /// Starts a fresh generation beside the live one, for a full rebuild.
    /// Publish it with [`SearchIndex::publish`].
    pub fn new_generation(&self, threads: usize) -> Result<IndexUpdater> {
        let id = self.current.load().id + 1;
        let dir = self.root.as_ref().map(|r| gen_dir(r, id));
        if let Some(d) = &dir {
            // A leftover from a crashed rebuild.
            let _ = std::fs::remove_dir_all(d);
        }
        let gen = Arc::new(Generation::create(id, dir)?);
        let threads = threads.clamp(1, 8);
        let writer = gen
            .index
            .writer_with_num_threads(threads, WRITER_BUDGET * threads)?;
        Ok(IndexUpdater { gen, writer })
    }

    /// Makes a fully built generation live. Queries in flight finish on the
    /// old one; its files are removed once the swap is done.
    pub fn publish(&self, built: &IndexUpdater) -> Result<()> {
        let old = self.current.swap(built.gen.clone());
        if let Some(root) = &self.root {
            write_current(root, built.gen.id)?;
            if let Some(d) = &old.dir {
                if d != built.gen.dir.as_ref().unwrap_or(d) {
                    let _ = std::fs::remove_dir_all(d);
                }
            }
        }
        Ok(())
    }

    /// Every (article id, version) in the live generation, sorted by id.
    pub fn documents(&self) -> Result<Vec<(ArticleId, i32)>> {
        let gen = self.current.load();
        let searcher = gen.reader.searcher();
        let mut out = Vec::new();
        for seg in searcher.segment_readers() {
            let ids = seg.fast_fields().u64("id")?;
            let versions = seg.fast_fields().u64("version")?;
            for doc in seg.doc_ids_alive() {
                if let (Some(id), Some(v)) = (ids.first(doc), versions.first(doc)) {
                    out.push((id as ArticleId, v as i32));
                }
            }
        }
        // An article with restricted sections has several documents.
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Runs a search as `principal`. CPU-bound: call it from a blocking
    /// thread in async code.
    pub fn search(&self, principal: &Principal, req: &SearchRequest) -> Result<SearchResults> {
        req.validate()?;
        let semantic = self.semantic.load_full();
        let mode = match (req.mode, &semantic) {
            (Some(SearchMode::Lexical), _) => SearchMode::Lexical,
            (Some(m), None) => {
                return Err(Error::invalid(
                    "mode",
                    format!(
                        "{} search is off: no embedding model is loaded (run `make model`)",
                        m.as_str()
                    ),
                ))
            }
            (Some(m), Some(_)) => m,
            (None, Some(_)) => SearchMode::Hybrid,
            (None, None) => SearchMode::Lexical,
        };
        let gen = self.current.load_full();
        // Browsing (no words) and explicit sorts are lexical whatever the
        // mode: similarity to nothing ranks nothing.
        let has_words = req.q.chars().any(char::is_alphanumeric);
        let mut res = match semantic {
            Some(sem)
                if mode != SearchMode::Lexical && has_words && req.sort == Sort::Relevance =>
            {
                hybrid::search(&gen, &sem, principal, req, mode, None)?
            }
            _ => lexical::lexical(&gen, principal, req)?,
        };
        // Little found, or found only through near spellings: offer the
        // corrected query.
        if has_words && (res.total < 3 || res.fuzzy_words > 0) {
            // A failed correction must not fail the search it decorates.
            res.did_you_mean = self.did_you_mean(principal, &req.q).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "did-you-mean failed");
                None
            });
        }
        Ok(res)
    }
}

impl SearchIndex {
    /// Every article `principal` may read, by the same visibility rule as
    /// search (cached per caller and index state).
    pub fn readable(&self, principal: &Principal) -> Result<Arc<crate::vector::Allowed>> {
        hybrid::readable(&self.current.load(), principal)
    }

    /// Articles related to `id` that `principal` may read: its nearest
    /// neighbours by passage vectors (by its title's words without a
    /// model). `NotFound` when the caller cannot read `id`. CPU-bound.
    pub fn related(&self, principal: &Principal, id: ArticleId, limit: usize) -> Result<Vec<Hit>> {
        let gen = self.current.load_full();
        let sem = self.semantic.load_full();
        hybrid::related(&gen, sem.as_deref(), principal, id, limit)
    }

    /// The candidate union of a hybrid query with both raw scores, before
    /// fusion: what relevance tuning fits fusions on. Needs a model.
    pub fn hybrid_union(
        &self,
        principal: &Principal,
        req: &SearchRequest,
    ) -> Result<Vec<UnionCandidate>> {
        req.validate()?;
        let sem = self
            .semantic
            .load_full()
            .ok_or_else(|| Error::invalid("mode", "no embedding model is loaded"))?;
        let gen = self.current.load_full();
        let mut out = Vec::new();
        hybrid::search(
            &gen,
            &sem,
            principal,
            req,
            SearchMode::Hybrid,
            Some(&mut out),
        )?;
        Ok(out)
    }
}

pub(crate) fn write_current(root: &Path, id: u64) -> Result<()> {
    let tmp = root.join("CURRENT.tmp");
    std::fs::write(&tmp, format!("{id}\n"))?;
    std::fs::rename(&tmp, root.join("CURRENT"))?;
    Ok(())
}

fn remove_other_generations(root: &Path, keep: u64) {
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_prefix("gen-")
            .and_then(|n| n.parse::<u64>().ok())
        {
            if n != keep {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}
