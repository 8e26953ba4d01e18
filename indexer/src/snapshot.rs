//! Index snapshots ([`engine::snapshot`]) in the running processes: their
//! settings, restoring an empty index at start, the publisher (in
//! `kmt-indexer` while it leads, in `kmt serve` on the embedded store) and
//! the status `/readyz` and `/metrics` report.

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::audit_ship::{S3Config, ShipTarget, TargetConfig};
use engine::search::SearchIndex;
use tokio::sync::watch;

use crate::audit_ship::AuditTargetArgs;
use crate::FollowerStatus;

/// Where snapshots go and how often. Off unless a directory or a bucket is
/// named.
#[derive(Debug, Clone, clap::Args)]
pub struct SnapshotArgs {
    /// Directory of the snapshot store (unset, and no bucket: snapshots
    /// are off).
    #[arg(long, env = "KMT_SNAPSHOT_DIR")]
    pub snapshot_dir: Option<std::path::PathBuf>,
    /// S3 bucket of the snapshot store (instead of the directory); endpoint,
    /// region and credentials are audit shipping's.
    #[arg(long, env = "KMT_SNAPSHOT_S3_BUCKET")]
    pub snapshot_s3_bucket: Option<String>,
    /// Key prefix of snapshots in the bucket.
    #[arg(long, env = "KMT_SNAPSHOT_S3_PREFIX", default_value = "")]
    pub snapshot_s3_prefix: String,
    /// Seconds between snapshots (published only when the index moved since
    /// the last one, and also after every full rebuild); 0 turns publishing
    /// off in this process (restoring still works).
    #[arg(long, env = "KMT_SNAPSHOT_INTERVAL_SECS", default_value_t = 600.0)]
    pub snapshot_interval_secs: f64,
    /// Complete snapshots kept in the store (older ones are deleted).
    #[arg(long, env = "KMT_SNAPSHOT_KEEP", default_value_t = engine::snapshot::DEFAULT_KEEP)]
    pub snapshot_keep: usize,
}

/// Snapshot settings of a process.
#[derive(Debug, Clone)]
pub struct SnapshotConfig {
    /// The snapshot store.
    pub target: TargetConfig,
    /// Time between snapshots (`None`: this process does not publish).
    pub interval: Option<Duration>,
    /// Complete snapshots kept.
    pub keep: usize,
}

impl SnapshotArgs {
    /// The settings, or `None` when no snapshot store is named. The S3
    /// endpoint and credentials come from the audit target's settings.
    pub fn config(&self, s3: &AuditTargetArgs) -> Option<SnapshotConfig> {
        let target = match (&self.snapshot_s3_bucket, &self.snapshot_dir) {
            (Some(bucket), _) => TargetConfig::S3(S3Config {
                bucket: bucket.clone(),
                prefix: self.snapshot_s3_prefix.clone(),
                endpoint: s3.audit_s3_endpoint.clone(),
                region: s3.audit_s3_region.clone(),
                access_key_id: s3.aws_access_key_id.clone(),
                secret_access_key: s3.aws_secret_access_key.clone(),
                session_token: s3.aws_session_token.clone(),
                object_lock: None,
            }),
            (None, Some(dir)) => TargetConfig::Dir(dir.clone()),
            (None, None) => return None,
        };
        let secs = self.snapshot_interval_secs;
        Some(SnapshotConfig {
            target,
            interval: (secs > 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0 * 365.0))),
            keep: self.snapshot_keep.max(1),
        })
    }
}

/// What this process knows of snapshots, for `/readyz` and `/metrics`.
/// Sequences are -1 and times 0 while unknown.
#[derive(Debug)]
pub struct SnapshotStatus {
    /// Sequence of the snapshot this process's index was restored from.
    pub restored_seq: AtomicI64,
    /// Name of that snapshot.
    pub restored_from: Mutex<Option<String>>,
    /// Sequence of the newest snapshot known (published here, restored, or
    /// seen in the store).
    pub newest_seq: AtomicI64,
    /// When the newest known snapshot was taken, Unix milliseconds.
    pub newest_at_ms: AtomicI64,
    /// Snapshots this process published.
    pub published: AtomicU64,
    /// The last publishing error, cleared by the next success.
    pub last_error: Mutex<Option<String>>,
}

impl Default for SnapshotStatus {
    fn default() -> Self {
        SnapshotStatus {
            restored_seq: AtomicI64::new(-1),
            restored_from: Mutex::default(),
            newest_seq: AtomicI64::new(-1),
            newest_at_ms: AtomicI64::new(0),
            published: AtomicU64::new(0),
            last_error: Mutex::default(),
        }
    }
}

impl SnapshotStatus {
    /// Records a snapshot taken at `at` covering `seq`, if newer than the
    /// one known.
    pub fn saw(&self, seq: i64, at: chrono::DateTime<chrono::Utc>) {
        let ms = at.timestamp_millis();
        if ms > self.newest_at_ms.load(Ordering::Relaxed) {
            self.newest_at_ms.store(ms, Ordering::Relaxed);
            self.newest_seq.store(seq, Ordering::Relaxed);
        }
    }

    /// Seconds since the newest known snapshot was taken.
    pub fn age_seconds(&self) -> Option<f64> {
        let ms = self.newest_at_ms.load(Ordering::Relaxed);
        (ms > 0).then(|| (chrono::Utc::now().timestamp_millis() - ms).max(0) as f64 / 1000.0)
    }

    /// The sequence the index was restored from, if it was.
    pub fn restored_seq(&self) -> Option<i64> {
        Some(self.restored_seq.load(Ordering::Relaxed)).filter(|s| *s >= 0)
    }
}

/// When the index in `dir` is empty (a new replica), installs the newest
/// usable snapshot from `cfg`'s store so the follower replays only what
/// came after it. Failures are logged: the follower then fills the index
/// from the outbox as before. Call before the index is opened for use.
pub async fn restore_if_empty(cfg: &SnapshotConfig, dir: &Path, status: &SnapshotStatus) {
    let empty = match SearchIndex::open(dir) {
        Ok(ix) => ix.num_docs() == 0 && ix.checkpoint().unwrap_or(0) == 0,
        Err(e) => {
            tracing::warn!(error = %e, "could not inspect the index; not restoring a snapshot");
            return;
        }
    };
    if !empty {
        return;
    }
    let target = match ShipTarget::open(&cfg.target).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "snapshot store unusable; filling the index from the outbox");
            return;
        }
    };
    match engine::snapshot::restore_latest(&target, dir).await {
        Ok(Some(r)) => {
            tracing::info!(snapshot = %r.name, seq = r.seq, store = %target.describe(), "restored the index from a snapshot; catching up from its sequence");
            status.restored_seq.store(r.seq, Ordering::Relaxed);
            *status.restored_from.lock().expect("snapshot status lock") = Some(r.name);
            status.saw(r.seq, r.created_at);
        }
        Ok(None) => {
            tracing::info!(store = %target.describe(), "no snapshot to restore; filling the index from the outbox")
        }
        Err(e) => {
            tracing::warn!(error = %e, "restoring a snapshot failed; filling the index from the outbox")
        }
    }
}

/// Publishes snapshots of `index` until `shutdown`: every `cfg.interval`
/// when the index moved since the last one, and after every full rebuild;
/// never before the follower first caught up. A failure is logged and
/// retried an interval later. Returns at once when `cfg.interval` is
/// `None`.
pub async fn run_publisher(
    index: SearchIndex,
    cfg: SnapshotConfig,
    follower: Arc<FollowerStatus>,
    status: Arc<SnapshotStatus>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(every) = cfg.interval else { return };
    let target = match ShipTarget::open(&cfg.target).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "snapshot store unusable; not publishing snapshots");
            *status.last_error.lock().expect("snapshot status lock") = Some(e.to_string());
            return;
        }
    };
    tracing::info!(store = %target.describe(), interval = ?cfg.interval, keep = cfg.keep, "publishing index snapshots");
    let mut last_seq = -1;
    let mut last_at: Option<Instant> = None;
    let mut rebuilds = follower.rebuilds.load(Ordering::Relaxed);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => break,
        }
        if !follower.ready.load(Ordering::Relaxed) {
            continue;
        }
        let seq = follower.checkpoint.load(Ordering::Relaxed);
        let rebuilt = follower.rebuilds.load(Ordering::Relaxed) != rebuilds;
        let due = last_at.is_none_or(|t| t.elapsed() >= every);
        if seq <= 0 || !(rebuilt || (due && seq != last_seq)) {
            continue;
        }
        match engine::snapshot::publish(&index, &target, cfg.keep).await {
            Ok(p) => {
                rebuilds = follower.rebuilds.load(Ordering::Relaxed);
                last_seq = p.manifest.seq;
                last_at = Some(Instant::now());
                status.published.fetch_add(1, Ordering::Relaxed);
                status.saw(p.manifest.seq, p.manifest.created_at);
                *status.last_error.lock().expect("snapshot status lock") = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "publishing a snapshot failed; retrying later");
                *status.last_error.lock().expect("snapshot status lock") = Some(e.to_string());
                // Wait a full interval before the next try.
                rebuilds = follower.rebuilds.load(Ordering::Relaxed);
                last_at = Some(Instant::now());
            }
        }
    }
}

/// Keeps `status` told of the newest snapshot in the store (replicas that
/// do not publish report its age), checking every `every`.
pub async fn watch_store(
    cfg: SnapshotConfig,
    status: Arc<SnapshotStatus>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(target) = ShipTarget::open(&cfg.target).await else {
        return;
    };
    loop {
        match engine::snapshot::list(&target).await {
            Ok(list) => {
                if let Some(newest) = list.first() {
                    status.saw(newest.seq, newest.created_at);
                }
            }
            Err(e) => tracing::debug!(error = %e, "listing snapshots failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => break,
        }
    }
}
