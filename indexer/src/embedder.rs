//! The embedding worker: keeps the vector index in step with the articles.
//!
//! The follower indexes words immediately and hands the ids it applied to
//! this worker, so lexical search never waits for the model. For each
//! article the worker cuts passages, hashes them and compares the hash with
//! the vector index; on a mismatch it takes the store's embeddings when
//! they carry the same hash (another replica, or an earlier run, already
//! embedded this text) and runs the model only for the rest, storing what
//! it computed. It saves the vector index beside the full-text index now
//! and then and on shutdown, so a restart reloads the graph; the first
//! sync after start compares every article's hash, so nothing changed
//! while the process was down is missed.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::embed::{self, Embedder, QueryEmbedder};
use engine::model::sections::{self, Visibility};
use engine::model::{Article, ArticleId};
use engine::search::{SearchIndex, Semantic};
use engine::store::{Store, StoredEmbedding};
use engine::vector::{SearchParams, VectorIndex};
use tokio::sync::{mpsc, watch};

use crate::error::Result;

/// Articles loaded per page during a full sync.
const SYNC_PAGE: i64 = 64;
/// Passages per model call.
const EMBED_BATCH: usize = 64;
/// Save the vector index after this many changed articles…
const SAVE_AFTER: u64 = 500;
/// …or this long after the last save with changes.
const SAVE_EVERY: Duration = Duration::from_secs(300);
/// Rebuild the graph when this share of its points are tombstones.
const COMPACT_RATIO: f64 = 0.3;
/// Query vectors kept in the LRU cache.
pub const QUERY_CACHE: usize = 4096;

/// Which embedder to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EmbedderKind {
    /// all-MiniLM-L6-v2 in-process; needs `make model`.
    Local,
    /// An OpenAI-compatible `/v1/embeddings` server.
    Remote,
    /// A static embedder distilled from all-MiniLM-L6-v2 (Model2Vec
    /// method): a table lookup per token, ~100× faster per query and less
    /// relevant. Needs `make model`; distilled on first start (about a
    /// minute) and cached in the model directory.
    Static,
    /// No semantic search.
    Off,
}

/// Embedding settings, shared by `kmt serve` and `kmt-indexer`.
#[derive(Debug, Clone, clap::Args)]
pub struct EmbedArgs {
    /// Embedder: local (all-MiniLM-L6-v2 in-process), static (distilled
    /// from it, much faster queries), remote or off.
    #[arg(long, env = "KMT_EMBEDDER", value_enum, default_value_t = EmbedderKind::Local)]
    pub embedder: EmbedderKind,
    /// Directory of the local model (default: the user's cache dir, where
    /// `make model` puts it).
    #[arg(long, env = "KMT_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// Base URL of the remote embedding server.
    #[arg(long, env = "KMT_EMBED_URL")]
    pub embed_url: Option<String>,
    /// Model name sent to the remote server.
    #[arg(long, env = "KMT_EMBED_MODEL", default_value = "all-MiniLM-L6-v2")]
    pub embed_model: String,
    /// API key for the remote server (sent as a bearer token).
    #[arg(long, env = "KMT_EMBED_API_KEY", hide_env_values = true)]
    pub embed_api_key: Option<String>,
    /// Dimension of the remote model's vectors.
    #[arg(long, env = "KMT_EMBED_DIM", default_value_t = 384)]
    pub embed_dim: usize,
    /// Query vectors kept in the LRU cache (0 turns the cache off).
    #[arg(long, env = "KMT_QUERY_CACHE", default_value_t = QUERY_CACHE)]
    pub query_cache: usize,
}

impl Default for EmbedArgs {
    fn default() -> Self {
        EmbedArgs {
            embedder: EmbedderKind::Local,
            model_dir: None,
            embed_url: None,
            embed_model: "all-MiniLM-L6-v2".into(),
            embed_api_key: None,
            embed_dim: 384,
            query_cache: QUERY_CACHE,
        }
    }
}

impl EmbedArgs {
    /// Loads the configured embedder. `Err(reason)` when semantic search is
    /// off, with a sentence saying why (logged once and shown in `/readyz`).
    pub fn load(&self) -> std::result::Result<Arc<dyn Embedder>, String> {
        match self.embedder {
            EmbedderKind::Off => Err("semantic search is off (KMT_EMBEDDER=off)".into()),
            EmbedderKind::Local => {
                let dir = self
                    .model_dir
                    .clone()
                    .unwrap_or_else(embed::local::LocalEmbedder::default_dir);
                if !dir.join("model.safetensors").exists() {
                    return Err(format!(
                        "semantic search is off: no embedding model in {} (run `make model`)",
                        dir.display()
                    ));
                }
                embed::local::LocalEmbedder::load(&dir)
                    .map(|e| Arc::new(e) as Arc<dyn Embedder>)
                    .map_err(|e| format!("semantic search is off: loading the model failed: {e}"))
            }
            EmbedderKind::Static => {
                let dir = self
                    .model_dir
                    .clone()
                    .unwrap_or_else(embed::local::LocalEmbedder::default_dir);
                let cached = embed::static_model::StaticEmbedder::cache_file(&dir).exists();
                if !cached && !dir.join("model.safetensors").exists() {
                    return Err(format!(
                        "semantic search is off: no embedding model in {} (run `make model`)",
                        dir.display()
                    ));
                }
                if !cached {
                    tracing::info!(dir = %dir.display(),
                        "distilling the static embedder from the model (once; about a minute)");
                }
                let mut last = Instant::now();
                embed::static_model::StaticEmbedder::load_or_distill(&dir, |done, total| {
                    if last.elapsed() >= Duration::from_secs(10) {
                        tracing::info!(done, total, "distilling the static embedder");
                        last = Instant::now();
                    }
                })
                .map(|e| Arc::new(e) as Arc<dyn Embedder>)
                .map_err(|e| {
                    format!("semantic search is off: loading the static embedder failed: {e}")
                })
            }
            EmbedderKind::Remote => {
                let url = self.embed_url.as_deref().ok_or_else(|| {
                    "semantic search is off: KMT_EMBEDDER=remote needs KMT_EMBED_URL".to_string()
                })?;
                embed::remote::RemoteEmbedder::new(
                    url,
                    &self.embed_model,
                    self.embed_api_key.clone(),
                    self.embed_dim,
                )
                .map(|e| Arc::new(e) as Arc<dyn Embedder>)
                .map_err(|e| format!("semantic search is off: {e}"))
            }
        }
    }
}

/// Progress of the embedding worker (for `/readyz` and `/metrics`).
#[derive(Debug, Default)]
pub struct EmbedStatus {
    /// Articles waiting to be embedded.
    pub queue: AtomicU64,
    /// Articles whose passages the model embedded.
    pub embedded: AtomicU64,
    /// Articles whose stored embeddings were reused.
    pub reused: AtomicU64,
    /// Passages the model embedded.
    pub passages: AtomicU64,
    /// The first full sync after start is done.
    pub synced: std::sync::atomic::AtomicBool,
    /// Why semantic search is off (`None` when on).
    pub off_reason: Mutex<Option<String>>,
    /// The last error, if the last step failed.
    pub last_error: Mutex<Option<String>>,
}

/// Sends changed article ids to the worker.
#[derive(Debug, Clone)]
pub struct EmbedQueue {
    tx: mpsc::UnboundedSender<Vec<ArticleId>>,
    status: Arc<EmbedStatus>,
}

impl EmbedQueue {
    /// Queues `ids` for (re-)embedding or removal.
    pub fn push(&self, ids: Vec<ArticleId>) {
        self.status
            .queue
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        let _ = self.tx.send(ids);
    }

    /// Asks for a full sync (after a rebuild).
    pub fn resync(&self) {
        let _ = self.tx.send(Vec::new());
    }
}

/// The worker.
pub struct EmbedWorker {
    store: Store,
    semantic: Arc<Semantic>,
    rx: mpsc::UnboundedReceiver<Vec<ArticleId>>,
    status: Arc<EmbedStatus>,
    save_dir: Option<PathBuf>,
}

/// Sets semantic search up on `index`: loads the embedder (or says why
/// not), loads the saved vector index or starts an empty one, attaches it,
/// and returns the worker with its queue. `None` when semantic search is
/// off; the status then carries the reason.
pub fn setup(
    args: &EmbedArgs,
    store: &Store,
    index: &SearchIndex,
) -> (Option<(EmbedWorker, EmbedQueue)>, Arc<EmbedStatus>) {
    let status = Arc::new(EmbedStatus::default());
    let embedder = match args.load() {
        Ok(e) => e,
        Err(reason) => {
            tracing::warn!(reason = %reason, "semantic search is off; search is lexical only");
            *status.off_reason.lock().expect("status lock") = Some(reason);
            return (None, status);
        }
    };
    let model = embedder.model_id().to_string();
    let dim = embedder.dim();
    let save_dir = index.root().map(|r| r.join("vectors"));
    let vectors = match &save_dir {
        Some(d) => match VectorIndex::load(d, &model, dim) {
            Ok(Some(v)) => {
                tracing::info!(vectors = v.stats().vectors, "vector index loaded");
                v
            }
            Ok(None) => VectorIndex::new(dim),
            Err(e) => {
                tracing::warn!(error = %e, "saved vector index unreadable; rebuilding it");
                VectorIndex::new(dim)
            }
        },
        None => VectorIndex::new(dim),
    };
    tracing::info!(model = %model, dim, "semantic search on");
    let semantic = Arc::new(Semantic {
        embedder: QueryEmbedder::new(embedder, args.query_cache),
        vectors,
        params: SearchParams::default(),
    });
    index.attach_semantic(semantic.clone());
    let (tx, rx) = mpsc::unbounded_channel();
    let queue = EmbedQueue {
        tx,
        status: status.clone(),
    };
    let worker = EmbedWorker {
        store: store.clone(),
        semantic,
        rx,
        status: status.clone(),
        save_dir,
    };
    (Some((worker, queue)), status)
}

/// What one article needs.
struct Job {
    id: ArticleId,
    hash: String,
    passages: Vec<String>,
}

fn job(a: &Article) -> Job {
    // Vectors serve every reader alike, so they hold only what every
    // reader of the article sees: restricted sections are left out.
    let open = Visibility::Unrestricted;
    let passages = embed::passages(
        &a.title,
        &sections::indexable_text(&a.summary, &open),
        &sections::indexable_text(&a.body, &open),
    );
    Job {
        id: a.id,
        hash: embed::content_hash(&passages),
        passages,
    }
}

impl EmbedWorker {
    /// The status handle.
    pub fn status(&self) -> Arc<EmbedStatus> {
        self.status.clone()
    }

    /// Brings every article's vectors up to date (the first sync after a
    /// start, and after rebuilds). Returns articles (re-)embedded or reused.
    pub async fn sync_all(&mut self) -> Result<u64> {
        let started = Instant::now();
        let vectors = &self.semantic.vectors;
        let known = vectors.hashes();
        let fresh_build = known.is_empty();
        let mut seen: HashSet<ArticleId> = HashSet::new();
        let mut built: Vec<(ArticleId, String, Vec<Vec<f32>>)> = Vec::new();
        let mut after = 0;
        let mut changed = 0u64;
        let mut last_log = Instant::now();
        let total = self.store.count_articles().await?.max(0) as u64;
        loop {
            let page = self.store.scan_articles(after, SYNC_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            if last_log.elapsed() >= Duration::from_secs(5) {
                // Long work shows progress: a first sync of a large store
                // embeds for minutes.
                tracing::info!(
                    scanned = seen.len(),
                    total,
                    changed,
                    passages = self.status.passages.load(Ordering::Relaxed),
                    "syncing vectors with the store"
                );
                last_log = Instant::now();
            }
            let jobs: Vec<Job> = page
                .iter()
                .map(job)
                .filter(|j| {
                    seen.insert(j.id);
                    known.get(&j.id) != Some(&j.hash)
                })
                .collect();
            if jobs.is_empty() {
                continue;
            }
            changed += jobs.len() as u64;
            let done = self.vectors_for(jobs).await?;
            if fresh_build {
                built.extend(done);
            } else {
                for (id, hash, v) in done {
                    let vx = self.semantic.vectors.clone();
                    tokio::task::spawn_blocking(move || vx.upsert(id, hash, &v)).await?;
                }
            }
        }
        if fresh_build && !built.is_empty() {
            let dim = vectors.dim();
            let n = built.len();
            let fresh = tokio::task::spawn_blocking(move || VectorIndex::build(dim, built)).await?;
            vectors.replace(&fresh);
            tracing::info!(articles = n, "vector index built");
        }
        for id in known.keys().filter(|id| !seen.contains(id)) {
            vectors.remove(*id);
        }
        self.status.synced.store(true, Ordering::Relaxed);
        tracing::info!(
            changed,
            ms = started.elapsed().as_millis() as u64,
            "vector index in step with the store"
        );
        Ok(changed)
    }

    /// Applies a batch of changed ids.
    async fn apply(&mut self, ids: Vec<ArticleId>) -> Result<u64> {
        let articles = self.store.get_articles(&ids).await?;
        let present: HashSet<ArticleId> = articles.iter().map(|a| a.id).collect();
        for id in ids.iter().filter(|id| !present.contains(id)) {
            self.semantic.vectors.remove(*id);
        }
        let jobs: Vec<Job> = articles
            .iter()
            .map(job)
            .filter(|j| self.semantic.vectors.hash_of(j.id).as_ref() != Some(&j.hash))
            .collect();
        let n = jobs.len() as u64;
        if !jobs.is_empty() {
            let done = self.vectors_for(jobs).await?;
            let vx = self.semantic.vectors.clone();
            tokio::task::spawn_blocking(move || {
                for (id, hash, v) in done {
                    vx.upsert(id, hash, &v);
                }
            })
            .await?;
        }
        Ok(n)
    }

    /// Vectors of `jobs`: stored ones with the same hash, the rest embedded
    /// (and stored).
    async fn vectors_for(&self, jobs: Vec<Job>) -> Result<Vec<(ArticleId, String, Vec<Vec<f32>>)>> {
        let embedder = self.semantic.embedder.embedder().clone();
        let model = embedder.model_id().to_string();
        let dim = embedder.dim();
        let ids: Vec<ArticleId> = jobs.iter().map(|j| j.id).collect();
        let stored: HashMap<ArticleId, StoredEmbedding> = self
            .store
            .get_embeddings(&model, &ids)
            .await?
            .into_iter()
            .map(|e| (e.article_id, e))
            .collect();
        let mut out = Vec::with_capacity(jobs.len());
        let mut todo = Vec::new();
        for j in jobs {
            let reuse = stored
                .get(&j.id)
                .filter(|e| e.content_hash == j.hash && e.dim as usize == dim)
                .and_then(|e| embed::from_bytes(&e.vectors, dim))
                .filter(|v| v.len() == j.passages.len());
            match reuse {
                Some(v) => {
                    self.status.reused.fetch_add(1, Ordering::Relaxed);
                    out.push((j.id, j.hash, v));
                }
                None => todo.push(j),
            }
        }
        if !todo.is_empty() {
            let texts: Vec<Vec<String>> = todo.iter().map(|j| j.passages.clone()).collect();
            let e = embedder.clone();
            let computed =
                tokio::task::spawn_blocking(move || -> engine::Result<Vec<Vec<Vec<f32>>>> {
                    // One model call over many articles' passages (the model
                    // batches by length), split back per article.
                    let flat: Vec<&str> = texts.iter().flatten().map(String::as_str).collect();
                    let mut vecs = Vec::with_capacity(flat.len());
                    for chunk in flat.chunks(EMBED_BATCH * 4) {
                        vecs.extend(e.embed(chunk)?);
                    }
                    let mut it = vecs.into_iter();
                    Ok(texts
                        .iter()
                        .map(|t| it.by_ref().take(t.len()).collect())
                        .collect())
                })
                .await??;
            let mut rows = Vec::with_capacity(todo.len());
            for (j, v) in todo.into_iter().zip(computed) {
                self.status
                    .passages
                    .fetch_add(v.len() as u64, Ordering::Relaxed);
                self.status.embedded.fetch_add(1, Ordering::Relaxed);
                rows.push(StoredEmbedding {
                    article_id: j.id,
                    model_id: model.clone(),
                    content_hash: j.hash.clone(),
                    dim: dim as i32,
                    vectors: embed::to_bytes(&v),
                });
                out.push((j.id, j.hash, v));
            }
            self.store.put_embeddings(&rows).await?;
        }
        Ok(out)
    }

    /// Saves the vector index beside the full-text index now (the worker
    /// also does so periodically and on shutdown).
    pub fn save_index(&self) {
        self.save();
    }

    fn save(&self) {
        let Some(dir) = &self.save_dir else { return };
        let model = self.semantic.embedder.embedder().model_id().to_string();
        match self.semantic.vectors.save(dir, &model) {
            Ok(()) => tracing::debug!("vector index saved"),
            Err(e) => tracing::warn!(error = %e, "saving the vector index failed"),
        }
    }

    /// Runs until `shutdown` turns true: a full sync, then queued batches;
    /// errors are logged and retried with backoff.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(200);
        let mut need_sync = true;
        let mut unsaved = 0u64;
        let mut last_save = Instant::now();
        loop {
            if need_sync {
                match self.sync_all().await {
                    Ok(n) => {
                        need_sync = false;
                        unsaved += n;
                        backoff = Duration::from_millis(200);
                        *self.status.last_error.lock().expect("status lock") = None;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "vector sync failed; retrying");
                        *self.status.last_error.lock().expect("status lock") = Some(e.to_string());
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = shutdown.changed() => break,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        continue;
                    }
                }
            }
            if unsaved > 0 && (unsaved >= SAVE_AFTER || last_save.elapsed() >= SAVE_EVERY) {
                if self.semantic.vectors.garbage_ratio() > COMPACT_RATIO {
                    let v = self.semantic.vectors.clone();
                    let _ = tokio::task::spawn_blocking(move || v.compact()).await;
                }
                self.save();
                unsaved = 0;
                last_save = Instant::now();
            }
            let batch = tokio::select! {
                b = self.rx.recv() => b,
                _ = tokio::time::sleep(SAVE_EVERY) => continue,
                _ = shutdown.changed() => break,
            };
            let Some(first) = batch else { break };
            // Drain what else is queued into one batch.
            let mut ids = first;
            let mut resync = ids.is_empty();
            while let Ok(more) = self.rx.try_recv() {
                resync |= more.is_empty();
                ids.extend(more);
            }
            let queued = ids.len() as u64;
            if resync {
                need_sync = true;
            }
            let mut uniq = HashSet::new();
            ids.retain(|id| uniq.insert(*id));
            if !ids.is_empty() {
                match self.apply(ids.clone()).await {
                    Ok(n) => {
                        unsaved += n;
                        *self.status.last_error.lock().expect("status lock") = None;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "embedding batch failed; resyncing");
                        *self.status.last_error.lock().expect("status lock") = Some(e.to_string());
                        need_sync = true;
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = shutdown.changed() => break,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
            self.status.queue.fetch_sub(
                queued.min(self.status.queue.load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
        }
        if unsaved > 0 {
            self.save();
        }
        tracing::info!("embedding worker stopped");
    }
}
