//! The outbox follower.
//!
//! Reads outbox rows after the index's checkpoint, loads the current state
//! of the articles they name, applies them to the index (replace or delete
//! by id) and commits together with the last sequence applied. Applying a
//! change twice is harmless and the checkpoint only moves with a commit, so
//! a crash at any point replays safely and converges to the store's state.
//! A `reindex` row rebuilds a fresh generation from the store and swaps it in
//! while queries keep being answered from the old one.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::model::{ArticleId, ChangeKind};
use engine::search::{IndexUpdater, SearchIndex};
use engine::store::Store;
use tokio::sync::watch;

use crate::error::Result;

/// Outbox rows read per batch.
pub const DEFAULT_BATCH: i64 = 500;
/// Changes applied after which an idle follower merges segments.
const MERGE_AFTER: u64 = 5_000;
/// Segment count above which that merge happens.
const MAX_SEGMENTS: usize = 2;
/// Outbox length from which an empty index is built by a rebuild.
const BULK_THRESHOLD: i64 = 10_000;
/// Articles read per page during a rebuild.
const REBUILD_PAGE: i64 = 1000;

/// Logs rebuild progress at every tenth of the way (long work shows progress).
fn log_progress(done: u64, total: u64) {
    let step = (total / 10).max(REBUILD_PAGE as u64);
    if done % step < REBUILD_PAGE as u64 || done == total {
        tracing::info!(done, total, "rebuilding the index");
    }
}

/// Upper bounds, in seconds, of the [`BatchDurations`] buckets: fine at the
/// low end because a small incremental batch commits in milliseconds.
pub const BATCH_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How long applied batches took, counted per bucket with atomics so the
/// follower never waits on a metrics scrape (the API renders it as a
/// Prometheus histogram).
#[derive(Debug, Default)]
pub struct BatchDurations {
    /// Per bucket of [`BATCH_BUCKETS`], not cumulative; the extra last slot
    /// counts batches slower than the last bound.
    buckets: [AtomicU64; BATCH_BUCKETS.len() + 1],
    /// Total time, in microseconds (integer, so a plain `fetch_add`).
    sum_micros: AtomicU64,
}

impl BatchDurations {
    /// Records one batch.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BATCH_BUCKETS.partition_point(|b| *b < secs);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Batches per bucket (not cumulative), the last slot being slower than
    /// every bound.
    pub fn counts(&self) -> [u64; BATCH_BUCKETS.len() + 1] {
        std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed))
    }

    /// Total time of every recorded batch, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
    }
}

/// Live state of a follower, shared with `/readyz` and metrics.
#[derive(Debug, Default)]
pub struct FollowerStatus {
    /// True once the index has caught up with the outbox head at least once.
    pub ready: AtomicBool,
    /// Outbox sequence the index covers.
    pub checkpoint: AtomicI64,
    /// Highest outbox sequence seen in the store.
    pub head: AtomicI64,
    /// Batches applied since start.
    pub batches: AtomicU64,
    /// Full rebuilds since start.
    pub rebuilds: AtomicU64,
    /// Durations of the batches counted in `batches`.
    pub batch_durations: BatchDurations,
    /// The last error, cleared by the next successful catch-up.
    pub last_error: Mutex<Option<String>>,
}

impl FollowerStatus {
    /// Outbox rows not yet applied.
    pub fn lag(&self) -> i64 {
        (self.head.load(Ordering::Relaxed) - self.checkpoint.load(Ordering::Relaxed)).max(0)
    }
}

/// Follows the outbox into a [`SearchIndex`].
pub struct Follower {
    store: Store,
    index: SearchIndex,
    updater: Arc<Mutex<IndexUpdater>>,
    batch: i64,
    status: Arc<FollowerStatus>,
    /// Changes applied since the last segment merge.
    since_merge: u64,
    /// A background merge is running.
    merging: Arc<AtomicBool>,
    /// A background merge finished successfully.
    merged: Arc<AtomicBool>,
    /// Where applied ids go for embedding (semantic search on).
    embed: Option<crate::embedder::EmbedQueue>,
}

impl Follower {
    /// Takes the index writer (fails with `Unavailable` if another process
    /// holds it).
    pub fn new(store: Store, index: SearchIndex, batch: i64) -> Result<Follower> {
        let updater = index.updater()?;
        let status = Arc::new(FollowerStatus::default());
        status
            .checkpoint
            .store(updater.checkpoint()?, Ordering::Relaxed);
        Ok(Follower {
            store,
            index,
            updater: Arc::new(Mutex::new(updater)),
            batch: batch.max(1),
            status,
            since_merge: 0,
            merging: Arc::default(),
            merged: Arc::default(),
            embed: None,
        })
    }

    /// Hands every applied article id to the embedding worker.
    pub fn with_embedding(mut self, queue: crate::embedder::EmbedQueue) -> Follower {
        self.embed = Some(queue);
        self
    }

    /// The shared status handle.
    pub fn status(&self) -> Arc<FollowerStatus> {
        self.status.clone()
    }

    /// The index this follower writes.
    pub fn index(&self) -> &SearchIndex {
        &self.index
    }

    /// Applies outbox rows until the head is reached. Returns rows applied.
    pub async fn catch_up(&mut self) -> Result<u64> {
        let mut applied = 0u64;
        // An empty index far behind (a new replica, a schema change) is
        // filled faster by a parallel rebuild than by replaying the outbox.
        if self.status.checkpoint.load(Ordering::Relaxed) == 0 && self.index.num_docs() == 0 {
            let head = self.store.outbox_head().await?;
            if head >= BULK_THRESHOLD {
                applied += self.rebuild(log_progress).await?;
            }
        }
        loop {
            let cp = self.status.checkpoint.load(Ordering::Relaxed);
            let changes = self.store.changes_after(cp, self.batch).await?;
            let Some(last) = changes.last() else { break };
            self.status.head.fetch_max(last.seq, Ordering::Relaxed);
            // A rebuild request: apply what precedes it, then rebuild (the
            // rebuild covers everything up to the head it reads).
            if let Some(pos) = changes.iter().position(|c| c.kind == ChangeKind::Reindex) {
                if pos > 0 {
                    let seq = changes[pos - 1].seq;
                    let ids = changes[..pos].iter().map(|c| c.article_id).collect();
                    applied += self.apply(ids, seq).await?;
                }
                self.rebuild(log_progress).await?;
                applied += 1;
                continue;
            }
            let ids = changes.iter().map(|c| c.article_id).collect();
            applied += self.apply(ids, last.seq).await?;
        }
        let head = self.store.outbox_head().await?;
        self.status.head.fetch_max(head, Ordering::Relaxed);
        Ok(applied)
    }

    /// Loads the current state of `ids` and writes it to the index, then
    /// commits as covering `seq`.
    async fn apply(&mut self, ids: Vec<ArticleId>, seq: i64) -> Result<u64> {
        let started = Instant::now();
        let mut seen = HashSet::new();
        let ids: Vec<ArticleId> = ids.into_iter().filter(|id| seen.insert(*id)).collect();
        let n = ids.len() as u64;
        let for_embedding = self.embed.as_ref().map(|_| ids.clone());
        let articles: HashMap<ArticleId, _> = self
            .store
            .get_articles(&ids)
            .await?
            .into_iter()
            .map(|a| (a.id, a))
            .collect();
        let updater = self.updater.clone();
        tokio::task::spawn_blocking(move || -> engine::Result<()> {
            let mut u = updater.lock().expect("index updater lock poisoned");
            for id in ids {
                match articles.get(&id) {
                    Some(a) => u.upsert(a)?,
                    None => u.delete(id),
                }
            }
            u.commit(seq)
        })
        .await??;
        if let (Some(q), Some(ids)) = (&self.embed, for_embedding) {
            q.push(ids);
        }
        self.status.checkpoint.store(seq, Ordering::Relaxed);
        self.status.batches.fetch_add(1, Ordering::Relaxed);
        self.status.batch_durations.observe(started.elapsed());
        tracing::debug!(seq, articles = n, "index batch committed");
        Ok(n)
    }

    /// Rebuilds the index from the store into a fresh generation and swaps it
    /// in. `progress(done, total)` is called after each page.
    pub async fn rebuild(&mut self, progress: impl Fn(u64, u64)) -> Result<u64> {
        let head = self.store.outbox_head().await?;
        let total = self.store.count_articles().await?.max(0) as u64;
        let index = self.index.clone();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let builder = tokio::task::spawn_blocking(move || index.new_generation(threads)).await??;
        let builder = Arc::new(Mutex::new(builder));
        let mut after = 0;
        let mut done = 0u64;
        loop {
            let page = self.store.scan_articles(after, REBUILD_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            done += page.len() as u64;
            let b = builder.clone();
            tokio::task::spawn_blocking(move || -> engine::Result<()> {
                let mut u = b.lock().expect("index builder lock poisoned");
                page.iter().try_for_each(|a| u.upsert(a))
            })
            .await??;
            progress(done, total.max(done));
        }
        let b = builder.clone();
        let index = self.index.clone();
        tokio::task::spawn_blocking(move || -> engine::Result<()> {
            let mut u = b.lock().expect("index builder lock poisoned");
            u.commit(head)?;
            u.optimize()?;
            index.publish(&u)
        })
        .await??;
        let built = Arc::try_unwrap(builder)
            .ok()
            .expect("builder is no longer shared")
            .into_inner()
            .expect("index builder lock poisoned");
        // The new generation's writer replaces the old one (whose lock the
        // drop releases).
        *self.updater.lock().expect("index updater lock poisoned") = built;
        self.status.checkpoint.store(head, Ordering::Relaxed);
        self.status.rebuilds.fetch_add(1, Ordering::Relaxed);
        if let Some(q) = &self.embed {
            q.resync();
        }
        tracing::info!(
            articles = done,
            seq = head,
            generation = self.index.generation(),
            "index rebuilt"
        );
        Ok(done)
    }

    /// Caught up after many changes (an import): merge the small segments
    /// that incremental commits leave behind, in the background, so queries
    /// touch few segments. Followed writes continue meanwhile.
    fn merge_when_idle(&mut self) {
        let handle = match self
            .updater
            .lock()
            .expect("index updater lock")
            .start_merge(MAX_SEGMENTS)
        {
            Ok(Some(h)) => h,
            Ok(None) => {
                self.since_merge = 0;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not start an index merge");
                return;
            }
        };
        // A merge the merge policy already runs on some of these segments
        // makes ours fail; then `since_merge` stays put and the next idle
        // moment tries again.
        self.merging.store(true, Ordering::Relaxed);
        let merging = self.merging.clone();
        let done = self.merged.clone();
        tokio::task::spawn_blocking(move || {
            match handle.wait() {
                Ok(()) => {
                    done.store(true, Ordering::Relaxed);
                    tracing::info!("index segments merged");
                }
                Err(e) => tracing::debug!(error = %e, "index merge did not complete; will retry"),
            }
            merging.store(false, Ordering::Relaxed);
        });
    }

    /// Follows the outbox until `shutdown` turns true: woken by the store's
    /// change signal, with a polling fallback; errors are logged and retried
    /// with backoff.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let (signal, poll) = self.store.change_signal();
        let mut backoff = Duration::from_millis(100);
        loop {
            // Register interest before reading so a write that lands during
            // the catch-up still wakes the next wait.
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.catch_up().await {
                Ok(n) => {
                    if n > 0 {
                        tracing::debug!(applied = n, "outbox caught up");
                    }
                    if self.merged.swap(false, Ordering::Relaxed) {
                        self.since_merge = 0;
                    }
                    self.since_merge += n;
                    if self.since_merge >= MERGE_AFTER && !self.merging.load(Ordering::Relaxed) {
                        self.merge_when_idle();
                    }
                    if !self.status.ready.swap(true, Ordering::Relaxed) {
                        // First catch-up done: build the suggestion maps in
                        // the background so no request waits for them.
                        let index = self.index.clone();
                        tokio::task::spawn_blocking(move || {
                            if let Err(e) = index.warm_suggestions() {
                                tracing::warn!(error = %e, "warming the suggestion maps failed");
                            }
                        });
                    }
                    *self.status.last_error.lock().expect("status lock") = None;
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    tracing::error!(error = %e, source = ?std::error::Error::source(&e), "index follower failed; retrying");
                    *self.status.last_error.lock().expect("status lock") = Some(e.to_string());
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            }
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => break,
            }
        }
        tracing::info!("index follower stopped");
    }
}
