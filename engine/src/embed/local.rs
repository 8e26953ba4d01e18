//! all-MiniLM-L6-v2 run in-process with candle on the CPU.
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
//! The matrix products run in `gemm`; the workspace enables its AVX-512
//! kernels (`x86-v4`), which are picked at run time only on CPUs that have
//! AVX-512F.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams, TruncationStrategy};

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
/// Most inputs in one forward pass. Inputs of similar length share a batch,
/// so a batch adds little padding; the cap bounds the activations (and the
/// latency of a call that mixes a query with a flood of passages).
const BATCH: usize = 32;
/// Most tokens (batch × padded length) in one forward pass: long passages go
/// in smaller batches so the attention scores (which grow with the square of
/// the length) stay cache-sized.
const BATCH_TOKENS: usize = 4096;

/// all-MiniLM-L6-v2 on the CPU.
///
/// `Send + Sync`: the weights are immutable tensors and the tokenizer is
/// only read, so concurrent [`Embedder::embed`] calls share one model
/// without locking (each call allocates its own activations).
pub struct LocalEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
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

        let device = Device::Cpu;
        let weights = load_weights(&weights_path, &device).map_err(|e| {
            Error::Embedding(format!(
                "cannot read weights {}: {e}",
                weights_path.display()
            ))
        })?;
        let vb = VarBuilder::from_tensors(weights, DType::F32, &device);
        let model = BertModel::load(vb, &config).map_err(|e| {
            Error::Embedding(format!(
                "cannot load model from {}: {e}",
                weights_path.display()
            ))
        })?;
        Ok(LocalEmbedder {
            model,
            tokenizer,
            device,
        })
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

    /// Embeds one batch of tokenized inputs, padded to the longest of them;
    /// the mean-pooled vectors are scaled to unit length when `unit`.
    fn embed_batch(&self, batch: &[&Tokens], unit: bool) -> Result<Vec<Vec<f32>>> {
        let n = batch.len();
        let len = batch.iter().map(|t| t.ids.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![0u32; n * len];
        let mut mask = vec![0u32; n * len];
        for (i, t) in batch.iter().enumerate() {
            ids[i * len..i * len + t.ids.len()].copy_from_slice(&t.ids);
            mask[i * len..i * len + t.ids.len()].fill(1);
        }
        let err = |e: candle_core::Error| Error::Embedding(format!("model failed: {e}"));
        let ids_t = Tensor::from_vec(ids, (n, len), &self.device).map_err(err)?;
        let mask_t = Tensor::from_slice(&mask, (n, len), &self.device).map_err(err)?;
        let types_t = Tensor::zeros((n, len), DType::U32, &self.device).map_err(err)?;
        let hidden = self
            .model
            .forward(&ids_t, &types_t, Some(&mask_t))
            .map_err(err)?;
        // Mean pooling is a few thousand additions: done on the flat buffer
        // rather than as tensor ops, which would allocate four more tensors.
        let hidden: Vec<f32> = hidden.flatten_all().map_err(err)?.to_vec1().map_err(err)?;
        let dim = hidden.len() / (n * len);
        let mut out = Vec::with_capacity(n);
        for (i, t) in batch.iter().enumerate() {
            let mut v = vec![0.0f32; dim];
            let rows = &hidden[i * len * dim..(i * len + t.ids.len()) * dim];
            for row in rows.chunks_exact(dim) {
                v.iter_mut().zip(row).for_each(|(a, x)| *a += x);
            }
            // Scaling by 1/count before normalising changes nothing in
            // direction; it is kept so the vector matches
            // sentence-transformers' before its Normalize layer too.
            let count = t.ids.len().max(1) as f32;
            v.iter_mut().for_each(|a| *a /= count);
            if unit {
                normalize(&mut v);
            }
            out.push(v);
        }
        Ok(out)
    }
}

/// The model's tensors as f32, with every linear layer's weight stored
/// transposed (same shape, column-major data).
///
/// Why: candle computes a linear layer as `x · Wᵀ`. With `W` row-major, the
/// transposed operand reaches gemm in the layout its kernels cannot read
/// directly, so gemm repacks the whole weight matrix on every call. For a
/// ten-token query that repacking (6 layers, 42 MB of weights) cost more
/// than the arithmetic. Stored column-major, `Wᵀ` is a plain row-major
/// matrix and gemm streams it as is. The values are unchanged; only their
/// order in memory differs.
fn load_weights(path: &Path, device: &Device) -> candle_core::Result<HashMap<String, Tensor>> {
    let mut tensors = candle_core::safetensors::load(path, device)?;
    for (name, t) in tensors.iter_mut() {
        let t32 = t.to_dtype(DType::F32)?;
        // Embedding tables are looked up by row, not multiplied: keep them.
        *t = if t32.rank() == 2 && name.ends_with(".weight") && !name.contains("embeddings") {
            t32.t()?.contiguous()?.t()?
        } else {
            t32
        };
    }
    Ok(tensors)
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
        // Longest first, so each batch is padded to nearly its own length and
        // the batch-size cap for long inputs is decided by the longest.
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(tokens[i].ids.len()));

        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        let mut start = 0;
        while start < order.len() {
            let longest = tokens[order[start]].ids.len().max(1);
            let size = (BATCH_TOKENS / longest).clamp(1, BATCH);
            let end = (start + size).min(order.len());
            let batch: Vec<&Tokens> = order[start..end].iter().map(|&i| &tokens[i]).collect();
            let vectors = self.embed_batch(&batch, true)?;
            for (&i, v) in order[start..end].iter().zip(vectors) {
                out[i] = v;
            }
            start = end;
        }
        Ok(out)
    }
}
