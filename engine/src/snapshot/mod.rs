//! Index snapshots: a copy of the live index published to a snapshot store
//! (a local directory or an S3 bucket, the same [`ShipTarget`] audit
//! shipping uses), so a new replica boots from it and replays only the
//! outbox rows after it instead of the whole outbox.
//!
//! A snapshot is a set of objects under
//! `<prefix>/snapshots/<seq, 12 digits>-<UTC time>/`: the tantivy files of
//! one commit under `index/`, the saved vector index under `vectors/`, and
//! `manifest.json` ([`Manifest`]: format and schema versions, the outbox
//! sequence of the commit, the embedding model, every file with its SHA-256
//! and size). The manifest is written **last**: a snapshot without one is
//! incomplete (a publisher died mid-way) and ignored. Names sort by
//! sequence, then time, so the newest is the last complete one.
//!
//! The vector index is the last one saved, not one taken at the commit's
//! sequence: vectors are keyed by content hash, and the embedding worker's
//! first sync after a restore compares every article with the store and
//! fixes what differs. The suggestion maps (fst) are built in memory from
//! the index on first use, so there is nothing of theirs to copy.

mod capture;
mod restore;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit_ship::ShipTarget;
use crate::error::{Error, Result};
use crate::search::SearchIndex;

pub use restore::{restore_latest, Restored};

/// Bumped when the snapshot layout changes; other formats are skipped.
pub const FORMAT: u32 = 1;
/// Snapshots kept by default.
pub const DEFAULT_KEEP: usize = 3;
const MANIFEST: &str = "manifest.json";
/// The time in a snapshot's name (UTC, sortable).
const NAME_TIME: &str = "%Y%m%dT%H%M%S%.3fZ";

/// What a snapshot holds; written last, as `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// [`FORMAT`] of the writer.
    pub format: u32,
    /// [`crate::search::SCHEMA_VERSION`] of the index.
    pub schema_version: u32,
    /// Outbox sequence the index covers (its commit payload).
    pub seq: i64,
    /// When the snapshot was taken.
    pub created_at: DateTime<Utc>,
    /// Model of the vector index (`None`: the snapshot has no vectors).
    pub embedding_model: Option<String>,
    /// Every file, relative to the snapshot (`index/…`, `vectors/…`).
    pub files: Vec<ManifestFile>,
}

/// One file of a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestFile {
    /// Path relative to the snapshot, `/`-separated.
    pub path: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

/// A complete snapshot found in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRef {
    /// Its name (`<seq>-<time>`).
    pub name: String,
    /// Outbox sequence, from the name.
    pub seq: i64,
    /// When it was taken, from the name.
    pub created_at: DateTime<Utc>,
}

/// What [`publish`] did.
#[derive(Debug, Clone)]
pub struct Published {
    /// Name of the new snapshot.
    pub name: String,
    /// Its manifest.
    pub manifest: Manifest,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Snapshots deleted to keep the newest N.
    pub pruned: usize,
}

/// The key directory of snapshots in `target`.
fn snapshots_dir(target: &ShipTarget) -> String {
    match target.prefix().trim_matches('/') {
        "" => "snapshots/".to_string(),
        p => format!("{p}/snapshots/"),
    }
}

/// The key of `file` in snapshot `name`.
fn key(target: &ShipTarget, name: &str, file: &str) -> String {
    format!("{}{name}/{file}", snapshots_dir(target))
}

/// The name of a snapshot of `seq` taken at `at`: sorts by sequence, then
/// time.
pub fn snapshot_name(seq: i64, at: DateTime<Utc>) -> String {
    format!("{seq:012}-{}", at.format(NAME_TIME))
}

/// Every snapshot in `target` with whether it is complete, oldest first.
async fn all_snapshots(target: &ShipTarget) -> Result<Vec<(String, bool, Vec<String>)>> {
    let dir = snapshots_dir(target);
    let mut out: Vec<(String, bool, Vec<String>)> = Vec::new();
    for k in target.list_under(&dir).await? {
        let Some(rest) = k.strip_prefix(&dir) else {
            continue;
        };
        let Some((name, file)) = rest.split_once('/') else {
            continue;
        };
        match out.last_mut() {
            Some(last) if last.0 == name => {}
            _ => out.push((name.to_string(), false, Vec::new())),
        }
        let last = out.last_mut().expect("pushed above");
        last.1 |= file == MANIFEST;
        last.2.push(k.clone());
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The complete snapshots in `target`, newest first.
pub async fn list(target: &ShipTarget) -> Result<Vec<SnapshotRef>> {
    Ok(all_snapshots(target)
        .await?
        .into_iter()
        .rev()
        .filter(|(_, complete, _)| *complete)
        .filter_map(|(name, _, _)| {
            let (seq, at) = name.split_once('-')?;
            let created_at = chrono::NaiveDateTime::parse_from_str(at, NAME_TIME)
                .ok()?
                .and_utc();
            Some(SnapshotRef {
                seq: seq.parse().ok()?,
                name,
                created_at,
            })
        })
        .collect())
}

/// The manifest of snapshot `name`.
pub async fn manifest(target: &ShipTarget, name: &str) -> Result<Manifest> {
    let bytes = target
        .get(&key(target, name, MANIFEST))
        .await?
        .ok_or_else(|| Error::Snapshot(format!("snapshot {name} has no manifest")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Snapshot(format!("snapshot {name}: unreadable manifest: {e}")))
}

/// Publishes a snapshot of `index`'s live generation (and its saved vector
/// index) to `target`, then deletes all but the newest `keep` complete
/// snapshots. Needs an index on disk.
pub async fn publish(index: &SearchIndex, target: &ShipTarget, keep: usize) -> Result<Published> {
    let (Some(root), Some(gen)) = (index.root().map(|r| r.to_path_buf()), index.live_dir()) else {
        return Err(Error::Snapshot("an index in memory has no files".into()));
    };
    // Staged beside the index so hard links stay on one file system. Only
    // the index writer's process publishes, so other staging directories
    // are leftovers of a killed one.
    let staging = root.join(format!(".snapshot-{}", std::process::id()));
    if let Ok(rd) = std::fs::read_dir(&root) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(".snapshot-") && e.path() != staging {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let vectors = root.join("vectors");
    let staging2 = staging.clone();
    let staged = tokio::task::spawn_blocking(move || capture::capture(&gen, &vectors, &staging2))
        .await
        .map_err(|e| Error::Snapshot(format!("staging a snapshot: {e}")))??;
    let result = upload(target, &staged, keep).await;
    let _ = tokio::fs::remove_dir_all(&staging).await;
    result
}

async fn upload(target: &ShipTarget, staged: &capture::Staged, keep: usize) -> Result<Published> {
    let created_at = Utc::now();
    let name = snapshot_name(staged.seq, created_at);
    let mut files = Vec::with_capacity(staged.files.len());
    let mut bytes = 0;
    for f in &staged.files {
        let data = tokio::fs::read(staged.dir.join(f)).await?;
        let size = data.len() as u64;
        bytes += size;
        files.push(ManifestFile {
            path: f.clone(),
            sha256: hex::encode(Sha256::digest(&data)),
            size,
        });
        target.put(&key(target, &name, f), data).await?;
    }
    let manifest = Manifest {
        format: FORMAT,
        schema_version: staged.schema,
        seq: staged.seq,
        created_at,
        embedding_model: staged.model.clone(),
        files,
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::Snapshot(format!("encoding the manifest: {e}")))?;
    // Last: only now is the snapshot complete.
    target.put(&key(target, &name, MANIFEST), json).await?;
    tracing::info!(snapshot = %name, seq = staged.seq, files = manifest.files.len(), bytes, "snapshot published");
    let pruned = prune(target, keep.max(1)).await?;
    Ok(Published {
        name,
        manifest,
        bytes,
        pruned,
    })
}

/// Deletes all but the newest `keep` complete snapshots, and incomplete
/// ones older than the newest complete one (left by a publisher that
/// died; newer incomplete ones may still be being written). Returns the
/// number of snapshots deleted.
pub async fn prune(target: &ShipTarget, keep: usize) -> Result<usize> {
    let all = all_snapshots(target).await?;
    let newest_complete = all.iter().rposition(|(_, complete, _)| *complete);
    let mut complete_seen = 0;
    let mut doomed = Vec::new();
    for (i, (name, complete, keys)) in all.iter().enumerate().rev() {
        if *complete {
            complete_seen += 1;
            if complete_seen > keep {
                doomed.push((name, keys));
            }
        } else if newest_complete.is_some_and(|n| i < n) {
            doomed.push((name, keys));
        }
    }
    for (name, keys) in &doomed {
        // The manifest first: a half-deleted snapshot is then incomplete,
        // never a complete one with missing files.
        let manifest = key(target, name, MANIFEST);
        if keys.contains(&manifest) {
            target.delete(&manifest).await?;
        }
        for k in keys.iter().filter(|k| **k != manifest) {
            target.delete(k).await?;
        }
        tracing::debug!(snapshot = %name, "old snapshot deleted");
    }
    Ok(doomed.len())
}
