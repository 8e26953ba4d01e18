//! Saving and loading a vector index, so a restart reloads the graph instead
//! of rebuilding it (a rebuild of 100k vectors takes tens of seconds).
//!
//! Layout of the directory: `meta.json` (model, dimension, articles with
//! their hashes and slots, orphans), `slots.bin` (per slot: article id,
//! passage, liveness), `vectors.bin` (little-endian f32, slot-major) and
//! hnsw_rs's own dump `graph.hnsw.graph` / `graph.hnsw.data`. A save goes to
//! a temporary directory renamed into place, so a crash leaves the previous
//! save whole. What changed after the save is replayed by the indexer, which
//! compares content hashes with the store.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;
use hnsw_rs::api::AnnT;
use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::DistDot;
use serde::{Deserialize, Serialize};

use super::{Entry, Inner, Table, VectorIndex};
use crate::error::{Error, Result};
use crate::model::ArticleId;

/// Bumped when the layout changes; other versions are not loaded.
const FORMAT: u32 = 1;
const GRAPH: &str = "graph";

#[derive(Serialize, Deserialize)]
struct Meta {
    format: u32,
    model_id: String,
    dim: usize,
    articles: Vec<(ArticleId, String, Vec<u32>)>,
    orphans: Vec<u32>,
    slots: usize,
    /// Layer-0 links added by repairs (`from`, `to`); absent in saves made
    /// before repairs added links.
    #[serde(default)]
    added_links: Vec<(u32, u32)>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("vector index {what}: {e}"))
}

impl VectorIndex {
    /// Writes the index to `dir` (replacing what is there).
    pub fn save(&self, dir: &Path, model_id: &str) -> Result<()> {
        let inner = self.inner.load_full();
        let tmp = dir.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        {
            let t = inner.table.read().expect("vector table lock");
            let meta = Meta {
                format: FORMAT,
                model_id: model_id.to_string(),
                dim: inner.dim,
                articles: t
                    .articles
                    .iter()
                    .map(|(id, e)| (*id, e.hash.clone(), e.slots.clone()))
                    .collect(),
                orphans: t.orphans.clone(),
                slots: t.article.len(),
                added_links: t.links.added.clone(),
            };
            let f = std::fs::File::create(tmp.join("meta.json"))?;
            serde_json::to_writer(BufWriter::new(f), &meta).map_err(|e| corrupt("meta", e))?;
            let mut w = BufWriter::new(std::fs::File::create(tmp.join("slots.bin"))?);
            for s in 0..t.article.len() {
                w.write_all(&t.article[s].to_le_bytes())?;
                w.write_all(&t.passage[s].to_le_bytes())?;
                w.write_all(&[t.alive[s] as u8])?;
            }
            w.flush()?;
            let mut w = BufWriter::new(std::fs::File::create(tmp.join("vectors.bin"))?);
            for x in &t.vectors {
                w.write_all(&x.to_le_bytes())?;
            }
            w.flush()?;
            // The graph is dumped under the read lock too, so it holds no
            // slot the table does not.
            if t.article.is_empty() {
                // hnsw_rs cannot dump an empty graph; loading builds one.
            } else {
                inner
                    .hnsw
                    .file_dump(&tmp, GRAPH)
                    .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
            }
        }
        let _ = std::fs::remove_dir_all(dir);
        std::fs::rename(&tmp, dir)?;
        Ok(())
    }

    /// Loads an index saved by [`VectorIndex::save`]. `Ok(None)` when there
    /// is none, or it was made by another model or format (the caller then
    /// builds a fresh one).
    pub fn load(dir: &Path, model_id: &str, dim: usize) -> Result<Option<VectorIndex>> {
        let meta_path = dir.join("meta.json");
        if !meta_path.exists() {
            return Ok(None);
        }
        let meta: Meta = serde_json::from_reader(BufReader::new(std::fs::File::open(&meta_path)?))
            .map_err(|e| corrupt("meta", e))?;
        if meta.format != FORMAT || meta.model_id != model_id || meta.dim != dim {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        std::fs::File::open(dir.join("slots.bin"))?.read_to_end(&mut bytes)?;
        const SLOT: usize = 8 + 4 + 1;
        if bytes.len() != meta.slots * SLOT {
            return Err(corrupt("slots", "length does not match meta.json"));
        }
        let mut t = Table::default();
        for c in bytes.chunks_exact(SLOT) {
            t.article
                .push(i64::from_le_bytes(c[0..8].try_into().expect("8 bytes")));
            t.passage
                .push(u32::from_le_bytes(c[8..12].try_into().expect("4 bytes")));
            t.alive.push(c[12] != 0);
        }
        t.live = t.alive.iter().filter(|a| **a).count();
        let mut bytes = Vec::new();
        std::fs::File::open(dir.join("vectors.bin"))?.read_to_end(&mut bytes)?;
        if bytes.len() != meta.slots * dim * 4 {
            return Err(corrupt("vectors", "length does not match meta.json"));
        }
        t.vectors = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        t.articles = meta
            .articles
            .into_iter()
            .map(|(id, hash, slots)| (id, Entry { hash, slots }))
            .collect::<HashMap<_, _>>();
        t.orphans = meta.orphans;
        let hnsw = if meta.slots == 0 {
            super::new_graph(0)
        } else {
            // The loaded graph borrows its loader for its lifetime; loads
            // happen once per process start, so the loader (a few paths and
            // options, the data itself is copied) is leaked on purpose.
            let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, GRAPH)));
            let mut h = io
                .load_hnsw::<f32, DistDot>()
                .map_err(|e| corrupt("graph", e))?;
            h.set_searching_mode(true);
            if h.get_nb_point() != meta.slots {
                return Err(corrupt("graph", "point count does not match meta.json"));
            }
            h
        };
        t.links = super::walk::Links::copy(&hnsw, meta.slots);
        t.links.add_links(&meta.added_links);
        Ok(Some(VectorIndex {
            inner: Arc::new(ArcSwap::from_pointee(Inner {
                dim,
                hnsw,
                table: RwLock::new(t),
                writer: std::sync::Mutex::new(()),
            })),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Allowed, SearchParams};
    use super::*;

    #[test]
    fn save_and_load_round_trip() {
        let dim = 8;
        let mk = |i: u64| {
            let mut v: Vec<f32> = (0..dim)
                .map(|j| ((i * 31 + j as u64) % 17) as f32 - 8.0)
                .collect();
            crate::embed::normalize(&mut v);
            v
        };
        let arts = (1..=200i64)
            .map(|id| (id, format!("h{id}"), vec![mk(id as u64)]))
            .collect();
        let idx = VectorIndex::build(dim, arts);
        idx.remove(3);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vectors");
        idx.save(&path, "m").unwrap();
        assert!(VectorIndex::load(&path, "other", dim).unwrap().is_none());
        let back = VectorIndex::load(&path, "m", dim).unwrap().unwrap();
        assert_eq!(back.stats().articles, 199);
        assert_eq!(back.hash_of(5).as_deref(), Some("h5"));
        let q = mk(5);
        let all = Allowed::from_ids((1..=200).collect());
        let p = SearchParams {
            ef: 64,
            exact_below: 0,
            exact_fraction: 0.0,
        };
        assert_eq!(idx.search(&q, &all, 5, p).0, back.search(&q, &all, 5, p).0);
        // Still writable after loading.
        back.upsert(500, "x".into(), &[mk(500)]);
        assert_eq!(back.stats().articles, 200);
    }
}
