//! The `ann` benchmark's data: the real passages and queries read from the
//! corpora, their MiniLM vectors (cached on disk, resumable), and the
//! derived vectors made from them.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use engine::embed::local::LocalEmbedder;
use engine::embed::{content_hash, passages, Embedder};
use serde::{Deserialize, Serialize};

use super::{EMBED_CHUNK, PGDOCS_SHIFTS, PROGRESS_EVERY};
use crate::corpus::read_jsonl;

#[derive(Deserialize)]
pub(super) struct Query {
    pub(super) text: String,
}

#[derive(Deserialize)]
pub(super) struct MsDoc {
    #[serde(default)]
    pub(super) title: String,
    pub(super) text: String,
}

#[derive(Deserialize)]
pub(super) struct PgDoc {
    pub(super) title: String,
    pub(super) body: String,
}

/// Where the real passages came from.
pub(super) struct Texts {
    pub(super) passages: Vec<String>,
    pub(super) msmarco: usize,
    pub(super) pgdocs: usize,
    pub(super) pgdocs_cuts: usize,
    pub(super) queries: Vec<String>,
    pub(super) msmarco_queries: usize,
}

/// The real passages and the queries.
pub(super) fn texts(corpora: &Path, real: usize, queries: usize) -> Result<Texts> {
    let ms: Vec<MsDoc> = read_jsonl(&corpora.join("msmarco-5k/corpus.jsonl"))?;
    let pg: Vec<PgDoc> = read_jsonl(&corpora.join("pgdocs/corpus.jsonl"))?;
    let msq: Vec<Query> = read_jsonl(&corpora.join("msmarco-5k/queries.jsonl"))?;

    let mut out: Vec<String> = ms
        .iter()
        .flat_map(|d| passages(&d.title, "", &d.text))
        .take(real)
        .collect();
    let msmarco = out.len();
    let mut cuts = 0;
    for shift in PGDOCS_SHIFTS {
        if out.len() >= real {
            break;
        }
        cuts += 1;
        for d in &pg {
            let body: Vec<&str> = d.body.split_whitespace().skip(shift).collect();
            if shift > 0 && body.is_empty() {
                continue;
            }
            out.extend(passages(&d.title, "", &body.join(" ")));
            if out.len() >= real {
                break;
            }
        }
    }
    if out.len() < real {
        bail!(
            "the corpora give only {} passages; ask for fewer with --real",
            out.len()
        );
    }
    out.truncate(real);
    let pgdocs = out.len() - msmarco;

    let mut qs: Vec<String> = msq.into_iter().map(|q| q.text).take(queries).collect();
    let msmarco_queries = qs.len();
    let want_titles = queries - qs.len();
    if want_titles > 0 {
        let mut titles: Vec<&str> = pg.iter().map(|d| d.title.trim()).collect();
        titles.sort_unstable();
        titles.dedup();
        if titles.len() < want_titles {
            bail!("only {} pgdocs titles for queries", titles.len());
        }
        // Evenly spaced over the sorted titles.
        for i in 0..want_titles {
            qs.push(titles[i * titles.len() / want_titles].to_string());
        }
    }
    Ok(Texts {
        passages: out,
        msmarco,
        pgdocs,
        pgdocs_cuts: cuts,
        queries: qs,
        msmarco_queries,
    })
}

/// The model, loaded on first use (a cache hit never loads it).
pub(super) struct Model {
    pub(super) dir: PathBuf,
    pub(super) loaded: Option<LocalEmbedder>,
}

impl Model {
    pub(super) fn get(&mut self) -> Result<&LocalEmbedder> {
        if self.loaded.is_none() {
            let m = LocalEmbedder::load(&self.dir)
                .with_context(|| format!("load the model from {}", self.dir.display()))?;
            self.loaded = Some(m);
        }
        Ok(self.loaded.as_ref().expect("just loaded"))
    }
}

/// Header of a cached vector file.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(super) struct CacheHeader {
    /// Embedding model.
    pub(super) model: String,
    /// Vector dimension.
    pub(super) dim: usize,
    /// Texts (vectors) in the file.
    pub(super) count: usize,
    /// `content_hash` of the texts, in order.
    pub(super) texts: String,
}

/// Embedded vectors of one text set.
pub(super) struct Embedded {
    /// Text-major vectors.
    pub(super) flat: Vec<f32>,
    pub(super) dim: usize,
    pub(super) model: String,
    /// Embedding time of this run (zero when all came from the cache).
    pub(super) elapsed: Duration,
    /// Texts embedded by this run.
    pub(super) embedded: usize,
}

pub(super) fn read_f32s(path: &Path, floats: usize) -> Result<Vec<f32>> {
    let mut bytes = Vec::with_capacity(floats * 4);
    File::open(path)
        .with_context(|| format!("open {}", path.display()))?
        .take(floats as u64 * 4)
        .read_to_end(&mut bytes)
        .with_context(|| format!("read {}", path.display()))?;
    if bytes.len() != floats * 4 {
        bail!("{} is shorter than its header says", path.display());
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Vectors of `texts`, from `<dir>/<name>.f32` when its header
/// (`<name>.json`) matches, else embedded (resuming `<name>.f32.part`).
pub(super) fn embed_cached(
    dir: &Path,
    name: &str,
    texts: &[String],
    model: &mut Model,
) -> Result<Embedded> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let hash = content_hash(texts);
    let data = dir.join(format!("{name}.f32"));
    let head = dir.join(format!("{name}.json"));
    if let Ok(text) = std::fs::read_to_string(&head) {
        if let Ok(h) = serde_json::from_str::<CacheHeader>(&text) {
            if h.texts == hash && h.count == texts.len() && h.dim > 0 {
                let flat = read_f32s(&data, h.count * h.dim)?;
                eprintln!("{name}: {} vectors from {}", h.count, data.display());
                return Ok(Embedded {
                    flat,
                    dim: h.dim,
                    model: h.model,
                    elapsed: Duration::ZERO,
                    embedded: 0,
                });
            }
        }
        eprintln!("{name}: cache header does not match these texts; embedding again");
    }

    let m = model.get()?;
    let header = CacheHeader {
        model: m.model_id().to_string(),
        dim: m.dim(),
        count: texts.len(),
        texts: hash,
    };
    let dim = header.dim;
    let part = dir.join(format!("{name}.f32.part"));
    let part_head = dir.join(format!("{name}.part.json"));
    // Resume a part file of the same texts, up to its last whole vector.
    let mut done = 0usize;
    let resumable = std::fs::read_to_string(&part_head)
        .ok()
        .and_then(|t| serde_json::from_str::<CacheHeader>(&t).ok())
        .is_some_and(|h| h == header);
    if resumable {
        if let Ok(meta) = std::fs::metadata(&part) {
            done = (meta.len() as usize / (dim * 4)).min(texts.len());
        }
    }
    let mut flat = if done > 0 {
        eprintln!(
            "{name}: resuming after {done} vectors in {}",
            part.display()
        );
        read_f32s(&part, done * dim)?
    } else {
        Vec::new()
    };
    flat.reserve((texts.len() - done) * dim);
    std::fs::write(&part_head, serde_json::to_string_pretty(&header)?)
        .with_context(|| format!("write {}", part_head.display()))?;
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&part)
        .with_context(|| format!("open {}", part.display()))?;
    file.set_len((done * dim * 4) as u64)?;
    let mut w = BufWriter::new(file);
    std::io::Seek::seek(&mut w, std::io::SeekFrom::End(0))?;

    let start = Instant::now();
    let mut last = Instant::now();
    let first = done;
    while done < texts.len() {
        let end = (done + EMBED_CHUNK).min(texts.len());
        let chunk: Vec<&str> = texts[done..end].iter().map(String::as_str).collect();
        let vecs = m.embed(&chunk)?;
        for v in &vecs {
            if v.len() != dim {
                bail!("the model returned a {}-d vector, expected {dim}", v.len());
            }
            for x in v {
                w.write_all(&x.to_le_bytes())?;
            }
            flat.extend_from_slice(v);
        }
        w.flush()?;
        done = end;
        if last.elapsed() >= PROGRESS_EVERY || done == texts.len() {
            last = Instant::now();
            let s = start.elapsed().as_secs_f64();
            let rate = (done - first) as f64 / s;
            eprintln!(
                "{name}: embedded {done}/{} ({rate:.1}/s, {:.0} s left)",
                texts.len(),
                (texts.len() - done) as f64 / rate.max(1e-9)
            );
        }
    }
    drop(w);
    std::fs::rename(&part, &data)
        .with_context(|| format!("rename {} to {}", part.display(), data.display()))?;
    std::fs::write(&head, serde_json::to_string_pretty(&header)?)
        .with_context(|| format!("write {}", head.display()))?;
    let _ = std::fs::remove_file(&part_head);
    Ok(Embedded {
        flat,
        dim,
        model: header.model,
        elapsed: start.elapsed(),
        embedded: texts.len() - first,
    })
}

/// Vectors of `passages` (the first `passages.len()` of the passage stream)
/// out of the cache of a run with more real passages, finished or not: the
/// stream does not depend on its length, so any longer cache starts with
/// ours. Verified by the longer cache's text hash.
pub(super) fn prefix_of_longer(
    dir: &Path,
    corpora: &Path,
    passages: &[String],
) -> Result<Option<Embedded>> {
    let n = passages.len();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(None);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_prefix("passages-") else {
            continue;
        };
        let (count, data) = if let Some(c) = stem.strip_suffix(".part.json") {
            (c, dir.join(format!("passages-{c}.f32.part")))
        } else if let Some(c) = stem.strip_suffix(".json") {
            (c, dir.join(format!("passages-{c}.f32")))
        } else {
            continue;
        };
        let Ok(count) = count.parse::<usize>() else {
            continue;
        };
        let Some(h) = std::fs::read_to_string(entry.path())
            .ok()
            .and_then(|t| serde_json::from_str::<CacheHeader>(&t).ok())
        else {
            continue;
        };
        let have = std::fs::metadata(&data).map_or(0, |m| m.len() as usize) / (h.dim * 4).max(1);
        if count <= n || h.count != count || h.dim == 0 || have < n {
            continue;
        }
        let longer = texts(corpora, count, 0)?;
        if content_hash(&longer.passages) != h.texts || longer.passages[..n] != *passages {
            continue;
        }
        eprintln!(
            "passages-{n}: the first {n} of {have} vectors cached in {}",
            data.display()
        );
        return Ok(Some(Embedded {
            flat: read_f32s(&data, n * h.dim)?,
            dim: h.dim,
            model: h.model,
            elapsed: Duration::ZERO,
            embedded: 0,
        }));
    }
    Ok(None)
}

/// SplitMix64: a small deterministic generator (no dependency).
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    pub(super) fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n`.
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Two independent standard normal numbers (Box–Muller).
    pub(super) fn gauss2(&mut self) -> (f32, f32) {
        let r = (-2.0 * self.unit().ln()).sqrt();
        let t = std::f64::consts::TAU * self.unit();
        ((r * t.cos()) as f32, (r * t.sin()) as f32)
    }
}

/// Appends `n - real` derived vectors to the `real` ones in `flat`: real
/// vector `i % real` plus Gaussian noise of expected norm `noise`,
/// renormalised. Returns the mean cosine of a derived vector with its base.
pub(super) fn derive(
    flat: &mut Vec<f32>,
    dim: usize,
    real: usize,
    n: usize,
    noise: f32,
    seed: u64,
) -> f64 {
    let mut rng = Rng(seed);
    let sigma = noise / (dim as f32).sqrt();
    let mut cos_sum = 0.0f64;
    flat.reserve((n - real) * dim);
    let mut v = vec![0.0f32; dim];
    for i in real..n {
        let base = (i - real) % real;
        for j in (0..dim).step_by(2) {
            let (a, b) = rng.gauss2();
            v[j] = flat[base * dim + j] + sigma * a;
            if j + 1 < dim {
                v[j + 1] = flat[base * dim + j + 1] + sigma * b;
            }
        }
        engine::embed::normalize(&mut v);
        cos_sum += engine::embed::dot(&v, &flat[base * dim..(base + 1) * dim]) as f64;
        flat.extend_from_slice(&v);
    }
    if n > real {
        cos_sum / (n - real) as f64
    } else {
        1.0
    }
}
