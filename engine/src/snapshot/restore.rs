//! Installing the newest usable snapshot as a new index generation.
//!
//! Files are downloaded into a temporary directory beside the index and
//! checked against the manifest's sizes and SHA-256s; only a snapshot that
//! verifies whole is installed: its `index/` becomes `gen-NNNNNN/` (one past
//! any generation present), its `vectors/` replaces `<index>/vectors/`, and
//! `CURRENT` is rewritten (temporary file + rename) last, so a crash leaves
//! the old index or the new one. A snapshot that fails verification, or was
//! written by another format or schema, is skipped with a warning for the
//! next older one. Run it before the index is opened.

use std::path::Path;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{key, list, manifest, Manifest, FORMAT};
use crate::audit_ship::ShipTarget;
use crate::error::{Error, Result};
use crate::search::{gen_dir, write_current, SCHEMA_VERSION};

/// What [`restore_latest`] installed.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Name of the snapshot.
    pub name: String,
    /// Outbox sequence the restored index covers.
    pub seq: i64,
    /// When the snapshot was taken.
    pub created_at: DateTime<Utc>,
    /// The generation it was installed as.
    pub generation: u64,
    /// Snapshots skipped because they failed verification.
    pub skipped: Vec<String>,
}

/// Installs the newest snapshot in `target` that verifies into the index
/// directory `root`. `Ok(None)` when the store holds no usable snapshot
/// (the follower then fills the index from the outbox).
pub async fn restore_latest(target: &ShipTarget, root: &Path) -> Result<Option<Restored>> {
    let mut skipped = Vec::new();
    for snap in list(target).await? {
        let m = match manifest(target, &snap.name).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(snapshot = %snap.name, error = %e, "skipping a snapshot");
                skipped.push(snap.name);
                continue;
            }
        };
        if m.format != FORMAT || m.schema_version != SCHEMA_VERSION {
            tracing::info!(snapshot = %snap.name, format = m.format, schema = m.schema_version, "skipping a snapshot of another format or schema");
            continue;
        }
        match install(target, &snap.name, &m, root).await {
            Ok(generation) => {
                tracing::info!(snapshot = %snap.name, seq = m.seq, generation, "index restored from snapshot");
                return Ok(Some(Restored {
                    name: snap.name,
                    seq: m.seq,
                    created_at: m.created_at,
                    generation,
                    skipped,
                }));
            }
            Err(e) => {
                tracing::warn!(snapshot = %snap.name, error = %e, "snapshot failed verification; trying an older one");
                skipped.push(snap.name);
            }
        }
    }
    Ok(None)
}

/// Downloads and verifies snapshot `name` into a temporary directory under
/// `root`, then installs it. Returns the new generation id.
async fn install(target: &ShipTarget, name: &str, m: &Manifest, root: &Path) -> Result<u64> {
    tokio::fs::create_dir_all(root).await?;
    let tmp = root.join(format!(".restore-{}", std::process::id()));
    let _ = tokio::fs::remove_dir_all(&tmp).await;
    let result = download(target, name, m, &tmp).await;
    let result = match result {
        Ok(()) => {
            let (root, tmp2) = (root.to_path_buf(), tmp.clone());
            tokio::task::spawn_blocking(move || swap_in(&root, &tmp2))
                .await
                .map_err(|e| Error::Snapshot(format!("installing a snapshot: {e}")))?
        }
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_dir_all(&tmp).await;
    result
}

async fn download(target: &ShipTarget, name: &str, m: &Manifest, tmp: &Path) -> Result<()> {
    for f in &m.files {
        if f.path.split('/').any(|p| p.is_empty() || p == "..")
            || !(f.path.starts_with("index/") || f.path.starts_with("vectors/"))
        {
            return Err(Error::Snapshot(format!(
                "{name}: bad file path {:?}",
                f.path
            )));
        }
        let bytes = target
            .get(&key(target, name, &f.path))
            .await?
            .ok_or_else(|| Error::Snapshot(format!("{name}: {} is missing", f.path)))?;
        let sha = hex::encode(Sha256::digest(&bytes));
        if bytes.len() as u64 != f.size || sha != f.sha256 {
            return Err(Error::Snapshot(format!(
                "{name}: {} does not match its sha256 in the manifest",
                f.path
            )));
        }
        let path = tmp.join(&f.path);
        if let Some(d) = path.parent() {
            tokio::fs::create_dir_all(d).await?;
        }
        tokio::fs::write(&path, bytes).await?;
    }
    if !m.files.iter().any(|f| f.path == "index/meta.json") {
        return Err(Error::Snapshot(format!("{name}: no index/meta.json")));
    }
    Ok(())
}

/// Moves the verified files into place; `CURRENT` last.
fn swap_in(root: &Path, tmp: &Path) -> Result<u64> {
    let mut id = std::fs::read_to_string(root.join("CURRENT"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    for e in std::fs::read_dir(root)?.flatten() {
        if let Some(n) = e
            .file_name()
            .to_string_lossy()
            .strip_prefix("gen-")
            .and_then(|n| n.parse::<u64>().ok())
        {
            id = id.max(n);
        }
    }
    let id = id + 1;
    std::fs::rename(tmp.join("index"), gen_dir(root, id))?;
    if tmp.join("vectors").exists() {
        let _ = std::fs::remove_dir_all(root.join("vectors"));
        std::fs::rename(tmp.join("vectors"), root.join("vectors"))?;
    }
    write_current(root, id)?;
    Ok(id)
}
