//! all-MiniLM-L6-v2 run in-process on the CPU.
//!
//! The model is the sentence-transformers checkpoint (a 6-layer, 384-wide
//! BERT); a sentence's vector is the mean of its token vectors over the
//! attention mask, scaled to unit length, exactly as sentence-transformers
//! computes it. Two things make it fast enough for search on a small machine:
//!
//! * inputs are padded only to the longest input of their batch, never to a
//!   fixed width (the shipped `tokenizer.json` pads everything to 128 tokens,
//!   which made a ten-token query cost as much as a 128-token passage);
//! * a call's inputs are sorted by token count and embedded in batches of
//!   similar length, so a short text never pays for a long neighbour's
//!   padding.
//!
//! The forward pass is our own ([`super::bert`]): candle reads the
//! checkpoint, and the encoder runs fused over the exact tokens of a call
//! (no padding), its matrix products in `gemm`; the workspace enables
//! gemm's AVX-512 kernels (`x86-v4`), picked at run time only on CPUs that
//! have AVX-512F.

use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_transformers::models::bert::{Config, HiddenAct, PositionEmbeddingType};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams, TruncationStrategy};

use super::bert::Bert;
use super::{normalize, Embedder};
use crate::error::{Error, Result};

/// The model's name, stored with every embedding it makes.
pub const MODEL_ID: &str = "all-MiniLM-L6-v2";
/// Vector dimension of all-MiniLM-L6-v2.
pub const DIM: usize = 384;
/// Longest input in tokens (special tokens included); longer inputs are cut.
/// sentence-transformers uses the same window for this model, which was
/// trained on inputs of at most 256 tokens.
pub const MAX_TOKENS: usize = 256;
/// Most tokens in one forward pass (inputs are not padded): bounds the
/// activations, which grow with the tokens (about 10 KB each), and the
/// latency of a call that mixes a query with a flood of passages.
const BATCH_TOKENS: usize = 4096;

/// all-MiniLM-L6-v2 on the CPU.
///
/// `Send + Sync`: the weights are immutable and the tokenizer is only
/// read, so concurrent [`Embedder::embed`] calls share one model without
/// locking (each call allocates its own activations).
pub struct LocalEmbedder {
    model: Bert,
    tokenizer: Tokenizer,
}

impl LocalEmbedder {
    /// Loads the model from `dir`, which holds the sentence-transformers
    /// files `config.json`, `tokenizer.json` and `model.safetensors`
    /// (`make model` fetches them into [`LocalEmbedder::default_dir`]).
    pub fn load(dir: &Path) -> Result<LocalEmbedder> {
        let file = |name: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(Error::Embedding(format!(
                    "model file {} is missing (run `make model` to fetch the model)",
                    p.display()
                )))
            }
        };
        let (config_path, tokenizer_path, weights_path) = (
            file("config.json")?,
            file("tokenizer.json")?,
            file("model.safetensors")?,
        );

        let config_text = std::fs::read_to_string(&config_path)
            .map_err(|e| Error::Embedding(format!("cannot read {}: {e}", config_path.display())))?;
        let config: Config = serde_json::from_str(&config_text).map_err(|e| {
            Error::Embedding(format!("bad model config {}: {e}", config_path.display()))
        })?;
        if !matches!(config.hidden_act, HiddenAct::Gelu)
            || !matches!(
                config.position_embedding_type,
                PositionEmbeddingType::Absolute
            )
        {
            return Err(Error::Embedding(format!(
                "model in {} is not a BERT with erf GELU and absolute positions",
                dir.display()
            )));
        }
        if config.hidden_size != DIM {
            return Err(Error::Embedding(format!(
                "model in {} has dimension {}, expected {DIM} for {MODEL_ID}",
                dir.display(),
                config.hidden_size
            )));
        }

        let mut tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| {
            Error::Embedding(format!(
                "cannot load tokenizer {}: {e}",
                tokenizer_path.display()
            ))
        })?;
        // The shipped tokenizer pads every input to 128 tokens and cuts at
        // 128. Padding is done here per length-sorted batch instead (see
        // `embed`), and the window is the model's 256 tokens.
        tokenizer.with_padding(None::<PaddingParams>);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                ..Default::default()
            }))
            .map_err(|e| Error::Embedding(format!("cannot set tokenizer truncation: {e}")))?;

        let weights = candle_core::safetensors::load(&weights_path, &Device::Cpu).map_err(|e| {
            Error::Embedding(format!(
                "cannot read weights {}: {e}",
                weights_path.display()
            ))
        })?;
        let model = Bert::from_tensors(&weights, config.num_attention_heads).map_err(|e| {
            Error::Embedding(format!(
                "cannot load model from {}: {e}",
                weights_path.display()
            ))
        })?;
        Ok(LocalEmbedder { model, tokenizer })
    }

    /// Whether queries and other short calls (≤ 32 tokens in all) read the
    /// model's weights rounded to f16, which fit the CPU cache where the f32
    /// ones do not: on by default; off makes every call use the f32
    /// weights (the benchmark compares the two).
    pub fn set_f16_weights(&mut self, on: bool) {
        self.model.set_f16_weights(on);
    }

    /// Where `make model` puts the model: `$KMT_MODEL_DIR` if set, else
    /// `$XDG_CACHE_HOME/kmt/models/all-MiniLM-L6-v2` (`$HOME/.cache` when
    /// `XDG_CACHE_HOME` is unset).
    pub fn default_dir() -> PathBuf {
        let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        if let Some(dir) = non_empty("KMT_MODEL_DIR") {
            return PathBuf::from(dir);
        }
        let cache = non_empty("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| non_empty("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from(".cache"));
        cache.join("kmt").join("models").join(MODEL_ID)
    }

    /// Token counts of `texts` after truncation, special tokens included
    /// (what the model's cost is proportional to).
    pub fn token_counts(&self, texts: &[&str]) -> Result<Vec<usize>> {
        Ok(self.tokenize(texts)?.iter().map(|t| t.ids.len()).collect())
    }

    /// Token ids of `texts` as the model sees them (special tokens
    /// included, truncated to the window): for tests and benchmarks that
    /// run another implementation on the same input.
    pub fn token_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        Ok(self.tokenize(texts)?.into_iter().map(|t| t.ids).collect())
    }

    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Tokens>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::Embedding(format!("tokenizer failed: {e}")))?;
        Ok(encodings
            .into_iter()
            .map(|e| Tokens {
                ids: e.get_ids().to_vec(),
            })
            .collect())
    }

    /// Mean-pooled, not normalised, vectors of pre-tokenized inputs
    /// (special tokens included), `batch` inputs per forward pass. For the
    /// static embedder's distillation, which feeds the model one vocabulary
    /// token at a time and needs the raw pooled vectors (their lengths
    /// matter to the PCA that follows).
    pub(crate) fn pooled_token_ids(
        &self,
        inputs: &[Vec<u32>],
        batch: usize,
    ) -> Result<Vec<Vec<f32>>> {
        let tokens: Vec<Tokens> = inputs
            .iter()
            .map(|ids| Tokens { ids: ids.clone() })
            .collect();
        let mut out = Vec::with_capacity(tokens.len());
        for chunk in tokens.chunks(batch.max(1)) {
            let refs: Vec<&Tokens> = chunk.iter().collect();
            out.extend(self.embed_batch(&refs, false)?);
        }
        Ok(out)
    }

    /// Embeds one batch of tokenized inputs (one forward pass); the
    /// mean-pooled vectors are scaled to unit length when `unit`.
    fn embed_batch(&self, batch: &[&Tokens], unit: bool) -> Result<Vec<Vec<f32>>> {
        let ids: Vec<&[u32]> = batch.iter().map(|t| t.ids.as_slice()).collect();
        let mut out = self.model.pooled(&ids);
        if unit {
            out.iter_mut().for_each(|v| normalize(v));
        }
        Ok(out)
    }
}

/// One tokenized input.
struct Tokens {
    ids: Vec<u32>,
}

impl Embedder for LocalEmbedder {
    fn model_id(&self) -> &str {
        MODEL_ID
    }

    fn dim(&self) -> usize {
        DIM
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let tokens = self.tokenize(texts)?;
        let mut out = Vec::with_capacity(texts.len());
        let mut start = 0;
        while start < tokens.len() {
            // As many inputs as fit in BATCH_TOKENS (at least one).
            let mut end = start + 1;
            let mut sum = tokens[start].ids.len();
            while end < tokens.len() && sum + tokens[end].ids.len() <= BATCH_TOKENS {
                sum += tokens[end].ids.len();
                end += 1;
            }
            let batch: Vec<&Tokens> = tokens[start..end].iter().collect();
            out.extend(self.embed_batch(&batch, true)?);
            start = end;
        }
        Ok(out)
    }
}
