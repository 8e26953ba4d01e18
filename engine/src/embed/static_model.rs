//! A static embedder distilled from all-MiniLM-L6-v2 (the Model2Vec method).
//!
//! Running the transformer costs ~10 ms per short query on a small, busy
//! machine. A static model replaces it with a table lookup: every word-piece
//! of MiniLM's vocabulary is embedded once, through the real model, and a
//! text's vector is the mean of its tokens' rows. That drops word order and
//! context, so it ranks worse than the model it comes from, but a query
//! costs a tokenizer call and a few hundred additions (tens of µs).
//!
//! Distillation, as Model2Vec (`model2vec.distill`) does it:
//!
//! 1. every vocabulary token except the bracketed specials (`[PAD]`,
//!    `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`, `[unusedN]`) goes through the model
//!    alone, as `[CLS] token [SEP]`, and the hidden states are mean-pooled
//!    over the three positions, as [`LocalEmbedder`] pools a sentence (not
//!    normalised: the PCA below sees the raw vectors);
//! 2. PCA centres the token vectors and keeps the [`PCA_DIMS`] directions of
//!    most variance. Centring matters more than the cut: every single-token
//!    output shares a large common component (the `[CLS]`/`[SEP]` states
//!    are in every mean), which would otherwise dominate every cosine;
//! 3. each row is scaled by the SIF weight `a / (a + p(token))` with
//!    `a` = [`SIF_COEFFICIENT`], where `p` is estimated by Zipf's law from
//!    the token's rank in vocabulary order (`p ∝ 1 / (rank + 2)`), so
//!    frequent tokens ("the", "of", punctuation) count for little in a mean.
//!    BERT's vocabulary is frequency-ordered only roughly: its first ~1000
//!    kept entries are the single-character alphabet (punctuation, digits,
//!    letters, rare scripts), which this rank estimate treats as the most
//!    frequent tokens and weights near zero; from `the` on, the order
//!    follows word frequency. That is what Model2Vec does with a BERT
//!    vocabulary too, and it needs no corpus (so nothing is fitted to the
//!    texts the benchmarks measure).
//!
//! Embedding a text: tokenize with the model's own tokenizer (no special
//! tokens, no truncation), average the rows of its tokens (`[UNK]` and the
//! specials have none), scale to unit length. A text with no usable token
//! gets the projected vector of the empty input (`[CLS] [SEP]`).
//!
//! The ~30,000 forward passes take about a minute, so the distilled table is
//! cached next to the model ([`StaticEmbedder::cache_file`]) on first load
//! and read back afterwards.

use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use tokenizers::{PaddingParams, Tokenizer};

use super::local::{LocalEmbedder, DIM as MODEL_DIM};
use super::{normalize, Embedder};
use crate::error::{Error, Result};

/// Bumped whenever the distillation changes its vectors, so a stale cache
/// file is rebuilt rather than read.
pub const VERSION: u32 = 1;
/// Dimension kept by the PCA: Model2Vec's default, two thirds of the
/// model's 384, so the table and the stored vectors are a third smaller.
/// Not tuned here: msmarco-5k's 43 judged queries are too few to choose by
/// without fitting them.
pub const PCA_DIMS: usize = 256;
/// SIF coefficient `a` of the token weights (Model2Vec's default).
pub const SIF_COEFFICIENT: f64 = 1e-4;
/// The embedder's name, stored with every embedding it makes: names the
/// source model, the distillation version and the PCA dimension.
pub const MODEL_ID: &str = "all-MiniLM-L6-v2-static-v1-pca256";
/// One-token inputs per forward pass while distilling: they are all three
/// tokens long, so a large batch adds no padding and amortises the per-call
/// overhead of candle.
const DISTILL_BATCH: usize = 512;
/// First bytes of the cache file.
const MAGIC: &[u8; 8] = b"KMTSTAT\0";

/// The distilled table and the tokenizer that indexes it.
pub struct StaticEmbedder {
    tokenizer: Tokenizer,
    /// One row of `dim` floats per vocabulary id; zero for ids that have no
    /// vector (specials, `[unusedN]`).
    table: Vec<f32>,
    /// The unit vector of a text without usable tokens.
    empty: Vec<f32>,
    dim: usize,
}

/// What distillation produces and the cache file holds.
struct Distilled {
    rows: usize,
    dim: usize,
    table: Vec<f32>,
    empty: Vec<f32>,
}

impl StaticEmbedder {
    /// Loads the distilled table from `model_dir`'s cache file, or distills
    /// it from the model there (which needs `make model`'s files) and
    /// writes the cache file. `progress(done, total)` is called as the
    /// vocabulary goes through the model (not at all when the cache is
    /// read). A cache file that cannot be written is logged and skipped:
    /// the embedder still works, the next start distills again.
    pub fn load_or_distill(
        model_dir: &Path,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<StaticEmbedder> {
        let tokenizer = load_tokenizer(model_dir)?;
        let vocab = tokenizer.get_vocab_size(true);
        let fingerprint = fingerprint(model_dir);
        let cache = Self::cache_file(model_dir);
        let distilled = match read_cache(&cache, vocab, fingerprint) {
            Some(d) => d,
            None => {
                let d = distill(model_dir, &tokenizer, &mut progress)?;
                if let Err(e) = write_cache(&cache, &d, fingerprint) {
                    tracing::warn!(file = %cache.display(), error = %e,
                        "cannot cache the distilled static model; it will be distilled again next time");
                }
                d
            }
        };
        Ok(StaticEmbedder {
            tokenizer,
            table: distilled.table,
            empty: distilled.empty,
            dim: distilled.dim,
        })
    }

    /// Token counts of `texts`: the tokens looked up, special tokens
    /// excluded (what the embedder's cost is proportional to).
    pub fn token_counts(&self, texts: &[&str]) -> Result<Vec<usize>> {
        Ok(self
            .tokenizer
            .encode_batch(texts.to_vec(), false)
            .map_err(|e| Error::Embedding(format!("tokenizer failed: {e}")))?
            .iter()
            .map(|e| e.get_ids().len())
            .collect())
    }

    /// Where the distilled table of the model in `model_dir` is cached.
    pub fn cache_file(model_dir: &Path) -> PathBuf {
        model_dir.join(format!("static-v{VERSION}-pca{PCA_DIMS}.bin"))
    }

    /// The vector of one tokenized text.
    fn vector(&self, ids: &[u32]) -> Vec<f32> {
        let mut v = vec![0.0f32; self.dim];
        for &id in ids {
            if let Some(row) = self
                .table
                .get(id as usize * self.dim..(id as usize + 1) * self.dim)
            {
                v.iter_mut().zip(row).for_each(|(a, x)| *a += x);
            }
        }
        // The mean's 1/count does not change the direction: the sum is
        // normalised directly.
        normalize(&mut v);
        if v.iter().all(|&x| x == 0.0) {
            return self.empty.clone();
        }
        v
    }
}

impl Embedder for StaticEmbedder {
    fn model_id(&self) -> &str {
        MODEL_ID
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let err = |e| Error::Embedding(format!("tokenizer failed: {e}"));
        match texts {
            [] => Ok(Vec::new()),
            // A query: `encode_batch` would hand one text to the thread pool.
            [text] => {
                let enc = self.tokenizer.encode(*text, false).map_err(err)?;
                Ok(vec![self.vector(enc.get_ids())])
            }
            _ => Ok(self
                .tokenizer
                .encode_batch(texts.to_vec(), false)
                .map_err(err)?
                .iter()
                .map(|e| self.vector(e.get_ids()))
                .collect()),
        }
    }
    /// Its ranking is much weaker than MiniLM's (nDCG@10 0.668 vs 0.798 on
    /// msmarco-5k, 0.373 vs 0.591 on the manual questions): 0.5 beats BM25
    /// on the manual (0.498 vs 0.452) and stays within 0.01 of it on
    /// msmarco-5k (0.742 vs 0.743), where 0.8 loses 0.035.
    fn hybrid_weight(&self) -> f32 {
        0.5
    }
}

/// The model's tokenizer without padding or truncation: a static model has
/// no window, and its cost is linear in the text.
fn load_tokenizer(dir: &Path) -> Result<Tokenizer> {
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Err(Error::Embedding(format!(
            "model file {} is missing (run `make model` to fetch the model)",
            path.display()
        )));
    }
    let mut tokenizer = Tokenizer::from_file(&path)
        .map_err(|e| Error::Embedding(format!("cannot load tokenizer {}: {e}", path.display())))?;
    tokenizer.with_padding(None::<PaddingParams>);
    tokenizer
        .with_truncation(None)
        .map_err(|e| Error::Embedding(format!("cannot turn tokenizer truncation off: {e}")))?;
    Ok(tokenizer)
}

/// Identifies the weights the cache was distilled from: the length of
/// `model.safetensors` (0 when it is absent, e.g. an image that ships only
/// the tokenizer and the distilled table; the cache is then trusted).
fn fingerprint(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("model.safetensors")).map_or(0, |m| m.len())
}

/// Runs the vocabulary through the model, reduces and weights it.
fn distill(
    dir: &Path,
    tokenizer: &Tokenizer,
    progress: &mut impl FnMut(usize, usize),
) -> Result<Distilled> {
    let model = LocalEmbedder::load(dir)?;
    let rows = tokenizer.get_vocab_size(true);
    let special = |name: &str| {
        tokenizer
            .token_to_id(name)
            .ok_or_else(|| Error::Embedding(format!("the tokenizer has no {name} token")))
    };
    let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
    // Vocabulary order is the rank the SIF weights are estimated from.
    let kept: Vec<u32> = (0..rows as u32)
        .filter(|&id| {
            tokenizer
                .id_to_token(id)
                .is_some_and(|t| !(t.len() > 2 && t.starts_with('[') && t.ends_with(']')))
        })
        .collect();
    if kept.is_empty() {
        return Err(Error::Embedding(
            "the tokenizer has an empty vocabulary".into(),
        ));
    }

    let total = kept.len();
    let mut raw: Vec<f32> = Vec::with_capacity(total * MODEL_DIM);
    for chunk in kept.chunks(DISTILL_BATCH) {
        let inputs: Vec<Vec<u32>> = chunk.iter().map(|&id| vec![cls, id, sep]).collect();
        for v in model.pooled_token_ids(&inputs, DISTILL_BATCH)? {
            raw.extend_from_slice(&v);
        }
        progress(raw.len() / MODEL_DIM, total);
    }
    let empty_raw = model
        .pooled_token_ids(&[vec![cls, sep]], 1)?
        .pop()
        .unwrap_or_default();

    let (reduced, mut empty) = pca(&raw, total, &empty_raw, PCA_DIMS)?;
    let dim = empty.len();
    normalize(&mut empty);

    // Zipf: p(rank) = (1 / (rank + 2)) / Σ 1 / (k + 2).
    let harmonic: f64 = (0..total).map(|r| 1.0 / (r as f64 + 2.0)).sum();
    let mut table = vec![0.0f32; rows * dim];
    for (rank, (&id, row)) in kept.iter().zip(reduced.chunks_exact(dim)).enumerate() {
        let p = 1.0 / (rank as f64 + 2.0) / harmonic;
        let w = (SIF_COEFFICIENT / (SIF_COEFFICIENT + p)) as f32;
        let at = id as usize * dim;
        table[at..at + dim]
            .iter_mut()
            .zip(row)
            .for_each(|(t, x)| *t = x * w);
    }
    Ok(Distilled {
        rows,
        dim,
        table,
        empty,
    })
}

/// Principal component analysis of `n` rows of [`MODEL_DIM`] floats:
/// returns the centred rows projected on the `k` directions of most
/// variance (row-major, `n × k`), and `extra` projected the same way.
///
/// The covariance is a 384 × 384 product done by candle's gemm; its
/// eigenvectors come from the Jacobi method, which at this size takes a
/// few seconds once and needs no linear-algebra dependency.
fn pca(data: &[f32], n: usize, extra: &[f32], k: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    let d = MODEL_DIM;
    let k = k.clamp(1, d);
    let err = |e: candle_core::Error| Error::Embedding(format!("PCA failed: {e}"));
    let dev = Device::Cpu;
    let x = Tensor::from_slice(data, (n, d), &dev).map_err(err)?;
    let mean = x.mean_keepdim(0).map_err(err)?;
    let xc = x.broadcast_sub(&mean).map_err(err)?;
    let cov = xc
        .t()
        .map_err(err)?
        .matmul(&xc)
        .map_err(err)?
        .to_dtype(DType::F64)
        .map_err(err)?;
    let cov: Vec<f64> = cov.flatten_all().map_err(err)?.to_vec1().map_err(err)?;
    let (values, vectors) = jacobi_eigen(cov, d);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    // d × k, column j the j-th principal direction.
    let mut basis = vec![0.0f32; d * k];
    for (j, &c) in order.iter().take(k).enumerate() {
        for r in 0..d {
            basis[r * k + j] = vectors[r * d + c] as f32;
        }
    }
    let basis = Tensor::from_vec(basis, (d, k), &dev).map_err(err)?;
    let reduced: Vec<f32> = xc
        .matmul(&basis)
        .map_err(err)?
        .flatten_all()
        .map_err(err)?
        .to_vec1()
        .map_err(err)?;
    let extra = Tensor::from_slice(extra, (1, d), &dev)
        .map_err(err)?
        .broadcast_sub(&mean)
        .map_err(err)?
        .matmul(&basis)
        .map_err(err)?
        .flatten_all()
        .map_err(err)?
        .to_vec1()
        .map_err(err)?;
    Ok((reduced, extra))
}

/// Eigenvalues and eigenvectors (columns of the row-major `n × n` result)
/// of the symmetric matrix `a`, by cyclic Jacobi rotations.
fn jacobi_eigen(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
    for _sweep in 0..60 {
        let off: f64 = (0..n)
            .flat_map(|p| (0..n).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| a[p * n + q] * a[p * n + q])
            .sum();
        if off <= scale * 1e-24 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() <= f64::MIN_POSITIVE {
                    continue;
                }
                // The rotation J that zeroes a[p][q] in Jᵀ·A·J.
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for r in 0..n {
                    let (x, y) = (a[r * n + p], a[r * n + q]);
                    a[r * n + p] = c * x - s * y;
                    a[r * n + q] = s * x + c * y;
                }
                for r in 0..n {
                    let (x, y) = (a[p * n + r], a[q * n + r]);
                    a[p * n + r] = c * x - s * y;
                    a[q * n + r] = s * x + c * y;
                }
                for r in 0..n {
                    let (x, y) = (v[r * n + p], v[r * n + q]);
                    v[r * n + p] = c * x - s * y;
                    v[r * n + q] = s * x + c * y;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

/// The cache file: [`MAGIC`], then little-endian `u32` version, rows and
/// dimension, `u64` fingerprint, the `rows × dim` table and the empty-text
/// vector as `f32`. `None` when absent, stale or damaged.
fn read_cache(path: &Path, rows: usize, fingerprint: u64) -> Option<Distilled> {
    let bytes = std::fs::read(path).ok()?;
    let header = MAGIC.len() + 12 + 8;
    if bytes.len() < header || &bytes[..MAGIC.len()] != MAGIC {
        return None;
    }
    let u32_at =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let (version, file_rows, dim) = (u32_at(8), u32_at(12) as usize, u32_at(16) as usize);
    let mut fp = [0u8; 8];
    fp.copy_from_slice(&bytes[20..28]);
    let file_fp = u64::from_le_bytes(fp);
    if version != VERSION
        || file_rows != rows
        || dim == 0
        || (fingerprint != 0 && file_fp != fingerprint)
        || bytes.len() != header + (rows + 1) * dim * 4
    {
        return None;
    }
    let floats: Vec<f32> = bytes[header..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let (table, empty) = floats.split_at(rows * dim);
    Some(Distilled {
        rows,
        dim,
        table: table.to_vec(),
        empty: empty.to_vec(),
    })
}

/// Writes the cache file whole under a temporary name and renames it, so a
/// crash or a concurrent start never leaves a half-written table behind.
fn write_cache(path: &Path, d: &Distilled, fingerprint: u64) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    out.write_all(MAGIC)?;
    out.write_all(&VERSION.to_le_bytes())?;
    out.write_all(&(d.rows as u32).to_le_bytes())?;
    out.write_all(&(d.dim as u32).to_le_bytes())?;
    out.write_all(&fingerprint.to_le_bytes())?;
    for x in d.table.iter().chain(&d.empty) {
        out.write_all(&x.to_le_bytes())?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_finds_known_eigenpairs() {
        // [[2, 1], [1, 2]]: eigenvalues 3 and 1, vectors (1, 1) and (1, -1).
        let (values, v) = jacobi_eigen(vec![2.0, 1.0, 1.0, 2.0], 2);
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        assert!((sorted[0] - 1.0).abs() < 1e-12 && (sorted[1] - 3.0).abs() < 1e-12);
        let top = if values[0] > values[1] { 0 } else { 1 };
        assert!((v[top].abs() - v[2 + top].abs()).abs() < 1e-12);
        assert!(v[top] * v[2 + top] > 0.0);
    }

    #[test]
    fn model_id_names_the_parameters() {
        assert_eq!(
            MODEL_ID,
            format!("all-MiniLM-L6-v2-static-v{VERSION}-pca{PCA_DIMS}")
        );
    }
}
