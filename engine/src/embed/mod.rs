//! Text embeddings for semantic search.
//!
//! An [`Embedder`] turns texts into L2-normalised vectors. Two real
//! implementations exist: [`local::LocalEmbedder`] runs
//! sentence-transformers all-MiniLM-L6-v2 in-process (a fused forward
//! pass, [`bert`], over the checkpoint's weights), and
//! [`remote::RemoteEmbedder`] calls an OpenAI-compatible `/v1/embeddings`
//! server. Articles are split into overlapping [`passages`] so that a long
//! article's semantic score is its best passage's rather than a blur of
//! everything it says; the passage texts and the model identify the
//! embeddings in the store ([`content_hash`]), so unchanged text is never
//! embedded twice.

mod bert;
mod f16_weights;
pub mod local;
pub mod remote;
pub mod static_model;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::error::Result;

/// Words per passage. MiniLM's word-piece tokenizer yields about 1.3 tokens
/// per English word, so 150 words is about the 200 tokens a passage should
/// hold (the model was trained on inputs of up to 256 tokens).
pub const PASSAGE_WORDS: usize = 150;
/// Words shared by consecutive passages, so a sentence cut at a passage
/// boundary is still whole in one of them.
pub const PASSAGE_OVERLAP: usize = 30;
/// Most passages embedded per article: the rest of a very long article is
/// still found lexically. Bounds the indexer's work per article.
pub const MAX_PASSAGES: usize = 64;
/// Bumped whenever [`passages`] changes how it cuts text, so stored
/// embeddings of the old cut are not reused.
pub const PASSAGE_SCHEME: u32 = 2;

/// Turns texts into unit-length vectors.
///
/// Implementations are CPU- or network-bound and synchronous: call them from
/// a blocking thread in async code.
pub trait Embedder: Send + Sync {
    /// Identifies the model (and anything that changes its vectors), e.g.
    /// `all-MiniLM-L6-v2`. Stored with every embedding.
    fn model_id(&self) -> &str;
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// Embeds `texts`, one L2-normalised vector of [`Embedder::dim`] floats
    /// per text, in order. Inputs longer than the model's window are
    /// truncated. An empty slice gives an empty result.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
    /// The semantic weight of hybrid search's default fusion with this
    /// model's similarities: how far its ranking is trusted over BM25's.
    /// Measured per embedder on both judged sets (BENCHMARKS.md).
    fn hybrid_weight(&self) -> f32 {
        HYBRID_WEIGHT
    }
}

/// [`Embedder::hybrid_weight`] of all-MiniLM-L6-v2 (also assumed for remote
/// models of its class): from 0.75 to 0.85 its hybrid is at least as good as
/// the better single ranker on msmarco-5k and the PostgreSQL manual
/// questions, 0.8 best on both.
pub const HYBRID_WEIGHT: f32 = 0.8;

/// The texts embedded for one article: the title alone, then windows of
/// [`PASSAGE_WORDS`] words over the summary and body, each prefixed with the
/// title (which tells the model what the window is about).
pub fn passages(title: &str, summary: &str, body: &str) -> Vec<String> {
    let title = title.trim();
    let words: Vec<&str> = summary
        .split_whitespace()
        .chain(body.split_whitespace())
        .collect();
    let mut out = Vec::new();
    if words.is_empty() {
        out.push(title.to_string());
        return out;
    }
    // A title made from the text's first words (as importers of untitled
    // passages do) would only repeat them: leave it out.
    // Compared word by word: the text may space its first words differently
    // (msmarco-5k: 207 of 5,000 passages), and a title cut at a character
    // limit ends in part of a word.
    let cut = title.ends_with('…');
    let stem = title.trim_end_matches('…').trim();
    let title = if !stem.is_empty()
        && (begins_with_words(&words, stem, cut)
            || (!summary.trim().is_empty()
                && begins_with_words(&body.split_whitespace().collect::<Vec<_>>(), stem, cut)))
    {
        ""
    } else {
        title
    };
    let step = PASSAGE_WORDS - PASSAGE_OVERLAP;
    let mut start = 0;
    while start < words.len() && out.len() < MAX_PASSAGES {
        // The last window takes a short tail along rather than leaving it
        // to a passage of mostly overlap.
        let end = if words.len() - start <= PASSAGE_WORDS + PASSAGE_OVERLAP {
            words.len()
        } else {
            start + PASSAGE_WORDS
        };
        let mut s = String::with_capacity(title.len() + 2 + (end - start) * 7);
        if !title.is_empty() {
            s.push_str(title);
            s.push_str(". ");
        }
        s.push_str(&words[start..end].join(" "));
        out.push(s);
        if end == words.len() {
            break;
        }
        start += step;
    }
    out
}

/// Whether `words` begin with the words of `stem`; when the title was `cut`
/// short, its last word may be part of a word.
fn begins_with_words(words: &[&str], stem: &str, cut: bool) -> bool {
    let stem: Vec<&str> = stem.split_whitespace().collect();
    stem.len() <= words.len()
        && stem.iter().zip(words).enumerate().all(|(i, (s, w))| {
            if cut && i + 1 == stem.len() {
                w.starts_with(s)
            } else {
                s == w
            }
        })
}

/// Identifies passage texts: the sha256 of the passage scheme and the texts.
/// Two articles (or two versions) with the same hash have the same vectors.
pub fn content_hash(passages: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(PASSAGE_SCHEME.to_le_bytes());
    for p in passages {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Scales `v` to unit length (leaves a zero vector alone).
pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Dot product (cosine similarity of unit vectors).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { dot_avx2(a, b) };
    }
    dot_portable(a, b)
}

/// [`dot_portable`] compiled for AVX2: the eight accumulators fill one
/// 256-bit register instead of two 128-bit ones. Same operations in the
/// same order (Rust never fuses `a * b + c`), so the result is identical.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_portable(a, b)
}

#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    // Eight accumulators let the compiler vectorise without reassociating.
    let mut acc = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Vectors as little-endian bytes (the stored form).
pub fn to_bytes(vectors: &[Vec<f32>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(vectors.iter().map(|v| v.len() * 4).sum());
    for v in vectors {
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

/// Stored bytes back into `dim`-sized vectors; `None` if the length does not
/// fit.
pub fn from_bytes(bytes: &[u8], dim: usize) -> Option<Vec<Vec<f32>>> {
    if dim == 0 || !bytes.len().is_multiple_of(dim * 4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(dim * 4)
            .map(|c| {
                c.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect()
            })
            .collect(),
    )
}

/// An embedder with a least-recently-used cache of query vectors: people
/// repeat queries (and as-you-type sends the same prefix twice), and a
/// cached query skips the model entirely.
pub struct QueryEmbedder {
    inner: Arc<dyn Embedder>,
    /// `None` when caching is off (capacity 0).
    cache: Option<Mutex<lru::LruCache<String, Arc<Vec<f32>>>>>,
}

impl QueryEmbedder {
    /// Wraps `inner` with a cache of `capacity` queries (0: no cache).
    pub fn new(inner: Arc<dyn Embedder>, capacity: usize) -> QueryEmbedder {
        QueryEmbedder {
            inner,
            cache: NonZeroUsize::new(capacity).map(|c| Mutex::new(lru::LruCache::new(c))),
        }
    }

    /// The wrapped embedder.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.inner
    }

    /// The vector of a query; `(vector, true)` when it came from the cache.
    pub fn query(&self, q: &str) -> Result<(Arc<Vec<f32>>, bool)> {
        let key = q
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if let Some(v) = self
            .cache
            .as_ref()
            .and_then(|c| c.lock().expect("query cache lock").get(&key).cloned())
        {
            return Ok((v, true));
        }
        let v = Arc::new(self.inner.embed(&[key.as_str()])?.pop().unwrap_or_default());
        if let Some(c) = &self.cache {
            c.lock().expect("query cache lock").put(key, v.clone());
        }
        Ok((v, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passages_overlap_and_carry_the_title() {
        let body: Vec<String> = (0..400).map(|i| format!("w{i}")).collect();
        let p = passages("Title", "", &body.join(" "));
        assert_eq!(p.len(), 3);
        assert!(p.iter().all(|s| s.starts_with("Title. ")));
        assert!(p[0].contains("w0 ") && p[0].contains("w149"));
        assert!(p[1].contains("w120 ") && p[1].contains("w269"));
        assert!(p[2].ends_with("w399"));
        assert_eq!(passages("Only", "", ""), vec!["Only".to_string()]);
        // A title cut from the body's first words is not repeated.
        assert_eq!(
            passages("The quick brown…", "", "The quick brown fox"),
            vec!["The quick brown fox".to_string()]
        );
        // Also when the text spaces its first words differently, or the
        // title was cut inside a word.
        assert_eq!(
            passages("The quick brown…", "", "The  quick\nbrown fox"),
            vec!["The quick brown fox".to_string()]
        );
        assert_eq!(
            passages("The quick bro…", "", "The quick brown fox"),
            vec!["The quick brown fox".to_string()]
        );
        // A title that only shares a prefix with the text is kept.
        assert_eq!(
            passages("The quick", "", "The quickest fox"),
            vec!["The quick. The quickest fox".to_string()]
        );
    }

    #[test]
    fn hash_changes_with_text() {
        let a = content_hash(&passages("T", "s", "body"));
        assert_eq!(a, content_hash(&passages("T", "s", "body")));
        assert_ne!(a, content_hash(&passages("T", "s", "body!")));
    }

    #[test]
    fn bytes_round_trip() {
        let v = vec![vec![1.0, -2.5, 3.25], vec![0.0, 1e-7, f32::MAX]];
        assert_eq!(from_bytes(&to_bytes(&v), 3).unwrap(), v);
        assert!(from_bytes(&[0u8; 5], 3).is_none());
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
    }
}
