//! A consistent local copy of the live index, taken without stopping the
//! follower.
//!
//! tantivy's files are immutable once written: a commit or a merge writes
//! new segment files, then atomically replaces `meta.json`, then deletes the
//! files no longer referenced. So a copy is consistent when it holds one
//! `meta.json` and every file of the segments it names. We read `meta.json`,
//! hard-link those files into a staging directory (a link keeps a file's
//! content even if tantivy deletes its name a moment later), and read
//! `meta.json` again: unchanged means no segment of ours was removed while
//! we linked; changed means start over. Links cost no copying and need no
//! lock on the index writer.
//!
//! The vector index is saved whole into `<index>/vectors/` by renaming a
//! finished temporary directory into place; we link its files and check
//! that the directory (its inode) is the same before and after.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Attempts before giving up on a moving index.
const ATTEMPTS: usize = 20;

/// What [`capture`] staged.
pub(super) struct Staged {
    /// The staging directory (`index/` and maybe `vectors/` inside).
    pub dir: PathBuf,
    /// Files relative to `dir`, with `/` separators, sorted.
    pub files: Vec<String>,
    /// Outbox sequence of the staged commit.
    pub seq: i64,
    /// Schema version of the staged commit.
    pub schema: u32,
    /// Model of the staged vector index, if one was staged.
    pub model: Option<String>,
}

#[derive(Deserialize)]
struct Meta {
    segments: Vec<SegmentMeta>,
    payload: Option<String>,
}

#[derive(Deserialize)]
struct SegmentMeta {
    segment_id: String,
    deletes: Option<Deletes>,
}

#[derive(Deserialize)]
struct Deletes {
    opstamp: u64,
}

#[derive(Deserialize, Default)]
struct Payload {
    seq: i64,
    schema: u32,
}

#[derive(Deserialize)]
struct VectorMeta {
    model_id: String,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Snapshot(format!("{what}: {e}"))
}

/// Stages a copy of the generation in `gen` and the vectors in
/// `vectors` (when saved) under `staging`.
pub(super) fn capture(gen: &Path, vectors: &Path, staging: &Path) -> Result<Staged> {
    let _ = std::fs::remove_dir_all(staging);
    std::fs::create_dir_all(staging)?;
    let (mut files, seq, schema) = stage_index(gen, &staging.join("index"))?;
    let model = stage_vectors(vectors, &staging.join("vectors"))?;
    if model.is_some() {
        let mut v = list_relative(&staging.join("vectors"))?;
        v.iter_mut().for_each(|f| *f = format!("vectors/{f}"));
        files.extend(v);
    }
    files.sort();
    Ok(Staged {
        dir: staging.to_path_buf(),
        files,
        seq,
        schema,
        model,
    })
}

/// Links one consistent commit of the tantivy index in `gen` into `out`.
fn stage_index(gen: &Path, out: &Path) -> Result<(Vec<String>, i64, u32)> {
    for _ in 0..ATTEMPTS {
        let _ = std::fs::remove_dir_all(out);
        std::fs::create_dir_all(out)?;
        let before = std::fs::read(gen.join("meta.json"))?;
        let meta: Meta = serde_json::from_slice(&before).map_err(|e| corrupt("meta.json", e))?;
        let mut names = Vec::new();
        let mut complete = true;
        for entry in std::fs::read_dir(gen)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if meta.segments.iter().any(|s| belongs(&name, s)) {
                names.push(name);
            }
        }
        for name in &names {
            if let Err(e) = link_or_copy(&gen.join(name), &out.join(name)) {
                if e.kind() == std::io::ErrorKind::NotFound {
                    complete = false;
                    break;
                }
                return Err(e.into());
            }
        }
        let after = std::fs::read(gen.join("meta.json"))?;
        if !complete || after != before {
            continue;
        }
        std::fs::write(out.join("meta.json"), &before)?;
        // tantivy garbage-collects only the files this list names: the
        // restored generation's segments must be on it, or a merge after
        // the restore would leave them behind forever.
        let managed = serde_json::to_vec(&names).map_err(|e| corrupt("managed files", e))?;
        std::fs::write(out.join(".managed.json"), managed)?;
        let payload: Payload = match &meta.payload {
            Some(p) => serde_json::from_str(p).map_err(|e| corrupt("commit payload", e))?,
            None => Payload::default(),
        };
        let mut files: Vec<String> = names.into_iter().map(|n| format!("index/{n}")).collect();
        files.push("index/meta.json".into());
        files.push("index/.managed.json".into());
        return Ok((files, payload.seq, payload.schema));
    }
    Err(Error::Snapshot(format!(
        "the index in {} kept changing; no consistent copy after {ATTEMPTS} attempts",
        gen.display()
    )))
}

/// True when the file `name` is part of segment `s` as `meta.json` names it.
fn belongs(name: &str, s: &SegmentMeta) -> bool {
    let id: String = s.segment_id.chars().filter(|c| *c != '-').collect();
    let Some(rest) = name.strip_prefix(&id).and_then(|r| r.strip_prefix('.')) else {
        return false;
    };
    if rest.ends_with(".del") {
        // Older delete files of the segment are garbage, not part of it.
        return s
            .deletes
            .as_ref()
            .is_some_and(|d| rest == format!("{}.del", d.opstamp));
    }
    rest != "store.temp"
}

/// Links the saved vector index into `out`; `None` when there is none.
fn stage_vectors(dir: &Path, out: &Path) -> Result<Option<String>> {
    use std::os::unix::fs::MetadataExt;
    for _ in 0..ATTEMPTS {
        let _ = std::fs::remove_dir_all(out);
        let Ok(before) = std::fs::metadata(dir) else {
            return Ok(None);
        };
        std::fs::create_dir_all(out)?;
        let mut complete = true;
        match link_dir(dir, out) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => complete = false,
            Err(e) => return Err(e.into()),
        }
        let same = std::fs::metadata(dir).is_ok_and(|m| m.ino() == before.ino());
        if !complete || !same {
            continue;
        }
        let Ok(meta) = std::fs::read(out.join("meta.json")) else {
            // Not a finished save.
            let _ = std::fs::remove_dir_all(out);
            return Ok(None);
        };
        let meta: VectorMeta =
            serde_json::from_slice(&meta).map_err(|e| corrupt("vectors/meta.json", e))?;
        return Ok(Some(meta.model_id));
    }
    Err(Error::Snapshot(format!(
        "the vector index in {} kept changing; no consistent copy after {ATTEMPTS} attempts",
        dir.display()
    )))
}

fn link_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() {
            link_or_copy(&e.path(), &to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// A hard link, or a copy where links are impossible (another file system).
fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(e),
        Err(_) => std::fs::copy(from, to).map(|_| ()),
    }
}

/// Files under `dir`, relative, `/`-separated.
pub(super) fn list_relative(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                pending.push(e.path());
            } else if let Ok(rel) = e.path().strip_prefix(dir) {
                let parts: Vec<_> = rel
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }
    out.sort();
    Ok(out)
}
