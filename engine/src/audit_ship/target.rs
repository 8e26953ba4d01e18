//! Where shipped batches are stored: [`ShipTarget`] over a local directory
//! ([`DirTarget`], the default) or an S3 bucket ([`super::S3Target`]).
//!
//! An enum like [`crate::store::Store`]: plain async methods, dispatch by
//! `match`. Every target overwrites an existing key on `put`, which is what
//! makes a retried batch harmless.

use std::path::{Path, PathBuf};

use super::{S3Target, TargetConfig};
use crate::error::{Error, Result};

/// A place to keep shipped audit objects.
#[derive(Debug, Clone)]
pub enum ShipTarget {
    /// Files under a local directory.
    Dir(DirTarget),
    /// Objects in an S3 bucket.
    S3(S3Target),
}

impl ShipTarget {
    /// Opens the target `cfg` describes. Nothing is touched until the
    /// first request (a directory is created by the first `put`).
    pub async fn open(cfg: &TargetConfig) -> Result<ShipTarget> {
        Ok(match cfg {
            TargetConfig::Dir(dir) => ShipTarget::Dir(DirTarget::new(dir)),
            TargetConfig::S3(s3) => ShipTarget::S3(S3Target::new(s3)?),
        })
    }

    /// The key prefix objects go under (`""` for a directory).
    pub fn prefix(&self) -> &str {
        match self {
            ShipTarget::Dir(_) => "",
            ShipTarget::S3(s) => s.prefix(),
        }
    }

    /// Stores `bytes` under `key`, replacing what is there.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        match self {
            ShipTarget::Dir(d) => d.put(key, bytes).await,
            ShipTarget::S3(s) => s.put(key, bytes).await,
        }
    }

    /// The object under `key`, or `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self {
            ShipTarget::Dir(d) => d.get(key).await,
            ShipTarget::S3(s) => s.get(key).await,
        }
    }

    /// Every key under `<prefix>/audit/`, sorted.
    pub async fn list(&self) -> Result<Vec<String>> {
        match self {
            ShipTarget::Dir(d) => d.list().await,
            ShipTarget::S3(s) => s.list().await,
        }
    }

    /// Every key under `dir` (a key prefix ending in `/`, e.g.
    /// `prefix/snapshots/`), at any depth, sorted. Snapshots use this.
    pub async fn list_under(&self, dir: &str) -> Result<Vec<String>> {
        match self {
            ShipTarget::Dir(d) => d.list_under(dir).await,
            ShipTarget::S3(s) => s.list_under(dir).await,
        }
    }

    /// Removes the object under `key` (no error when there is none).
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self {
            ShipTarget::Dir(d) => d.delete(key).await,
            ShipTarget::S3(s) => s.delete(key).await,
        }
    }

    /// Where this is, for logs and messages.
    pub fn describe(&self) -> String {
        match self {
            ShipTarget::Dir(d) => format!("directory {}", d.root.display()),
            ShipTarget::S3(s) => s.describe(),
        }
    }
}

/// Objects as files under a directory: `<dir>/audit/<range>.jsonl.gz`.
#[derive(Debug, Clone)]
pub struct DirTarget {
    root: PathBuf,
}

impl DirTarget {
    /// Objects under `root` (created when the first object is written).
    pub fn new(root: &Path) -> DirTarget {
        DirTarget {
            root: root.to_path_buf(),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        // Keys come from `object_key`; refuse anything that could leave the
        // directory anyway.
        if key.split('/').any(|part| part.is_empty() || part == "..") {
            return Err(Error::ShipTarget(format!("bad object key {key:?}")));
        }
        Ok(self.root.join(key))
    }

    /// Writes a temporary file, syncs it, renames it over `key` and syncs
    /// the directory, so a crash leaves the old object or the new one,
    /// never half of one.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
            .await
            .map_err(|e| Error::ShipTarget(format!("writing an audit object: {e}")))?
    }

    /// The file under `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Keys of the objects under `audit/` (temporary files excluded).
    pub async fn list(&self) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut dir = match tokio::fs::read_dir(self.root.join("audit")).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
            Err(e) => return Err(e.into()),
        };
        while let Some(e) = dir.next_entry().await? {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                keys.push(format!("audit/{name}"));
            }
        }
        keys.sort();
        Ok(keys)
    }
}

impl DirTarget {
    /// Keys of the files under `dir`, recursively (temporary files, whose
    /// names start with a dot, excluded).
    pub async fn list_under(&self, dir: &str) -> Result<Vec<String>> {
        let start = self.root.join(dir.trim_end_matches('/'));
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            let mut pending = vec![start];
            while let Some(d) = pending.pop() {
                let rd = match std::fs::read_dir(&d) {
                    Ok(rd) => rd,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                for e in rd {
                    let e = e?;
                    if e.file_name().to_string_lossy().starts_with('.') {
                        continue;
                    }
                    let path = e.path();
                    if e.file_type()?.is_dir() {
                        pending.push(path);
                    } else if let Ok(rel) = path.strip_prefix(&root) {
                        let parts: Vec<_> = rel
                            .iter()
                            .map(|p| p.to_string_lossy().into_owned())
                            .collect();
                        keys.push(parts.join("/"));
                    }
                }
            }
            keys.sort();
            Ok(keys)
        })
        .await
        .map_err(|e| Error::ShipTarget(format!("listing {dir}: {e}")))?
    }

    /// Removes the file under `key`, and its directory once empty.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        // Fails while the directory still holds files, which is fine.
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.root || tokio::fs::remove_dir(d).await.is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .ok_or_else(|| Error::ShipTarget(format!("no directory for {}", path.display())))?;
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
