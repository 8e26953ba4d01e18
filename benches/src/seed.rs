//! `seed-embeddings`: derived passage vectors for a large store, written
//! where the embedding worker looks for them.
//!
//! Embedding 100,000 generated articles with the real model takes hours on a
//! small machine, but search latency does not depend on which vectors the
//! index holds, only on how many and on the work per query. So this command
//! embeds a pool of real passages once (the first `--pool` MS MARCO passages
//! of `msmarco-5k`, with the real all-MiniLM-L6-v2), and gives every passage
//! of every article in the store ([`engine::embed::passages`]) the pool
//! vector picked by a hash of the passage's text, plus Gaussian noise of
//! `--noise` per dimension, scaled back to unit length. The rows go into the
//! store's `embeddings` table under the local model's id with the article's
//! real [`engine::embed::content_hash`], so `kmt serve`'s worker reuses them
//! (as a replica booting on stored embeddings does) and builds the real
//! vector index from them without running the model.
//!
//! The vectors are a pure function of the passage text, the pool and
//! `--seed`. The pool's vectors are cached (`<cache>/pool-<n>.f32`) so that
//! reruns skip the model.
//!
//! `--count-only` instead counts the passages and model tokens of the
//! store's articles (nothing is written): with the time the worker took to
//! embed them, that gives the indexer's real throughput in tokens per second.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use engine::embed::local::{LocalEmbedder, DIM, MODEL_ID};
use engine::embed::{self, Embedder};
use engine::store::{Store, StoredEmbedding};
use serde::Deserialize;

use crate::corpus::SplitMix64;

/// Articles read from the store per page.
const PAGE: i64 = 500;
/// Texts per model call when embedding the pool.
const POOL_BATCH: usize = 64;

/// What to seed.
pub struct SeedSpec {
    /// The data directory of an embedded (SQLite) store.
    pub data: PathBuf,
    /// Model directory.
    pub model_dir: PathBuf,
    /// Folder holding `msmarco-5k/`.
    pub corpora: PathBuf,
    /// Real passages embedded for the pool.
    pub pool: usize,
    /// Standard deviation of the noise added to each dimension.
    pub noise: f32,
    /// Rows per `put_embeddings` transaction.
    pub batch: usize,
    /// Seed of the noise.
    pub seed: u64,
    /// Where the pool's vectors are cached.
    pub cache: PathBuf,
    /// Only count passages and tokens; write nothing.
    pub count_only: bool,
}

#[derive(Deserialize)]
struct Doc {
    #[serde(default)]
    title: String,
    text: String,
}

/// FNV-1a: a stable 64-bit hash of a passage's text.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A standard normal draw (Box–Muller; one of the pair is discarded).
fn gaussian(rng: &mut SplitMix64) -> f32 {
    // 53 random bits in (0, 1]: never 0, so the logarithm is finite.
    let u1 = ((rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64;
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// The derived vector of one passage: its pool vector plus noise, unit length.
fn derive(passage: &str, pool: &[Vec<f32>], noise: f32, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(fnv1a(passage) ^ seed);
    let base = &pool[rng.below(pool.len())];
    let mut v: Vec<f32> = base
        .iter()
        .map(|x| x + noise * gaussian(&mut rng))
        .collect();
    embed::normalize(&mut v);
    v
}

/// The pool: the first `n` msmarco-5k passages embedded by `model`, read
/// from `cache` when an earlier run stored them.
fn pool_vectors(
    model: &LocalEmbedder,
    corpora: &Path,
    n: usize,
    cache: &Path,
) -> Result<Vec<Vec<f32>>> {
    let file = cache.join(format!("pool-{n}.f32"));
    if let Ok(bytes) = std::fs::read(&file) {
        if let Some(v) = embed::from_bytes(&bytes, DIM).filter(|v| v.len() == n) {
            eprintln!("seed: {n} pool vectors from {}", file.display());
            return Ok(v);
        }
    }
    let path = corpora.join("msmarco-5k").join("corpus.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "read {} (set --corpora or KMT_CORPORA to the folder holding msmarco-5k/)",
            path.display()
        )
    })?;
    let mut texts = Vec::with_capacity(n);
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        if texts.len() == n {
            break;
        }
        let d: Doc =
            serde_json::from_str(line).with_context(|| format!("{}:{}", path.display(), i + 1))?;
        texts.push(if d.title.trim().is_empty() {
            d.text
        } else {
            format!("{}. {}", d.title.trim(), d.text)
        });
    }
    if texts.len() < n {
        bail!(
            "{} holds only {} passages, fewer than --pool {n}",
            path.display(),
            texts.len()
        );
    }
    let started = Instant::now();
    let mut out = Vec::with_capacity(n);
    for chunk in texts.chunks(POOL_BATCH) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        out.extend(model.embed(&refs)?);
        eprint!("\rseed: embedded {}/{n} pool passages", out.len());
    }
    eprintln!(" in {:.1} s", started.elapsed().as_secs_f64());
    std::fs::create_dir_all(cache).with_context(|| format!("create {}", cache.display()))?;
    std::fs::write(&file, embed::to_bytes(&out))
        .with_context(|| format!("write {}", file.display()))?;
    Ok(out)
}

/// What a run did.
#[derive(Debug, Default)]
pub struct SeedReport {
    /// Articles in the store.
    pub articles: u64,
    /// Passages (vectors) over all of them.
    pub passages: u64,
    /// Model tokens of those passages (only with `count_only`).
    pub tokens: u64,
    /// Seconds spent.
    pub seconds: f64,
}

/// Seeds (or counts) the store's embeddings.
pub async fn run(spec: SeedSpec) -> Result<SeedReport> {
    if spec.pool == 0 || spec.batch == 0 {
        bail!("--pool and --batch must be positive");
    }
    if !spec.data.join("kmt.db").is_file() {
        bail!(
            "{} holds no kmt.db (import articles first)",
            spec.data.display()
        );
    }
    let model_dir = spec.model_dir.clone();
    let model = tokio::task::spawn_blocking(move || LocalEmbedder::load(&model_dir))
        .await
        .context("model loading thread")?
        .with_context(|| format!("load the model from {}", spec.model_dir.display()))?;
    if model.model_id() != MODEL_ID || model.dim() != DIM {
        bail!(
            "unexpected model {} of dim {}",
            model.model_id(),
            model.dim()
        );
    }
    let model = std::sync::Arc::new(model);
    let pool = if spec.count_only {
        Vec::new()
    } else {
        let (m, corpora, cache, n) = (
            model.clone(),
            spec.corpora.clone(),
            spec.cache.clone(),
            spec.pool,
        );
        tokio::task::spawn_blocking(move || pool_vectors(&m, &corpora, n, &cache))
            .await
            .context("pool embedding thread")??
    };

    let store = Store::open(None, &spec.data)
        .await
        .with_context(|| format!("open the store in {}", spec.data.display()))?;
    let total = store.count_articles().await?;
    let started = Instant::now();
    let mut report = SeedReport::default();
    let mut rows: Vec<StoredEmbedding> = Vec::with_capacity(spec.batch);
    let mut after = 0;
    loop {
        let page = store.scan_articles(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for a in &page {
            let passages = embed::passages(&a.title, &a.summary, &a.body);
            report.articles += 1;
            report.passages += passages.len() as u64;
            if spec.count_only {
                let refs: Vec<&str> = passages.iter().map(String::as_str).collect();
                report.tokens += model.token_counts(&refs)?.iter().sum::<usize>() as u64;
                continue;
            }
            let vectors: Vec<Vec<f32>> = passages
                .iter()
                .map(|p| derive(p, &pool, spec.noise, spec.seed))
                .collect();
            rows.push(StoredEmbedding {
                article_id: a.id,
                model_id: MODEL_ID.to_string(),
                content_hash: embed::content_hash(&passages),
                dim: DIM as i32,
                vectors: embed::to_bytes(&vectors),
            });
            if rows.len() >= spec.batch {
                store.put_embeddings(&rows).await?;
                rows.clear();
            }
        }
        eprint!(
            "\rseed: {} {}/{total} articles ({} passages, {:.0} s)",
            if spec.count_only { "counted" } else { "seeded" },
            report.articles,
            report.passages,
            started.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().flush();
    }
    if !rows.is_empty() {
        store.put_embeddings(&rows).await?;
    }
    eprintln!();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_vectors_are_unit_stable_and_near_their_pool_vector() {
        let mut a = vec![0.0f32; DIM];
        a[0] = 1.0;
        let mut b = vec![0.0f32; DIM];
        b[1] = 1.0;
        let pool = vec![a, b];
        let v = derive("some passage", &pool, 0.02, 7);
        assert_eq!(v, derive("some passage", &pool, 0.02, 7));
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
        // σ = 0.02 over 384 dimensions: the noise has norm ≈ 0.39, so the
        // cosine with the pool vector is ≈ 0.93.
        let best = pool
            .iter()
            .map(|p| embed::dot(p, &v))
            .fold(f32::MIN, f32::max);
        assert!(best > 0.85 && best < 0.98, "cosine {best}");
    }

    #[test]
    fn gaussian_has_unit_variance() {
        let mut rng = SplitMix64::new(1);
        let n = 20_000;
        let xs: Vec<f32> = (0..n).map(|_| gaussian(&mut rng)).collect();
        let mean = xs.iter().sum::<f32>() / n as f32;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n as f32;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
