//! A fused forward pass of the BERT encoder behind all-MiniLM-L6-v2.
//!
//! candle's BERT runs each operation as its own tensor op: every op
//! allocates its output, many copy their inputs into a contiguous layout,
//! and a batch must be padded to its longest input. On this model that
//! overhead, not arithmetic, was most of the time (a 9-token query took
//! 12 ms for 0.2 GFLOP; the matrix products were ~30 % of a passage
//! profile). This pass computes the same function over the same weights
//! with:
//!
//! * no padding at all: the inputs' tokens are stacked into one matrix, so
//!   every linear layer is one matrix product over exactly the real tokens,
//!   and attention runs per input on its own tokens;
//! * one set of activation buffers per call, reused by every layer;
//! * bias, GELU, residual and layer norm fused into single passes;
//! * matrix products straight into `gemm` (its AVX-512 kernels where the
//!   CPU has them), attention parallel over (input, head) pairs.
//!
//! Results match candle's to float rounding (a test compares both).

use std::collections::HashMap;

use candle_core::Tensor;
use gemm::{gemm, Parallelism};

use super::f16_weights::{self, HalfMatrix};
use rayon::prelude::*;

/// Layer-norm epsilon of the model's configuration.
const LN_EPS: f32 = 1e-12;

/// One encoder layer's weights; every matrix is stored transposed
/// (`in × out`, row-major), the layout a product `x · Wᵀ` reads directly.
struct Layer {
    /// Query, key and value projections side by side: `h × 3h`.
    qkv: Linear,
    qkv_b: Vec<f32>,
    out: Linear,
    out_b: Vec<f32>,
    ln1_g: Vec<f32>,
    ln1_b: Vec<f32>,
    up: Linear,
    up_b: Vec<f32>,
    down: Linear,
    down_b: Vec<f32>,
    ln2_g: Vec<f32>,
    ln2_b: Vec<f32>,
}

/// A weight matrix (`k × n`, row-major), in f32 and again in f16 for calls
/// of few tokens.
struct Linear {
    w: Vec<f32>,
    /// `None` where the CPU cannot run the f16 kernel.
    half: Option<HalfMatrix>,
    k: usize,
    n: usize,
}

impl Linear {
    fn new(w: Vec<f32>, k: usize, n: usize) -> Linear {
        Linear {
            half: HalfMatrix::new(&w, k, n),
            w,
            k,
            n,
        }
    }
}

/// The encoder: embeddings, layers and shapes.
pub(crate) struct Bert {
    hidden: usize,
    heads: usize,
    inter: usize,
    max_pos: usize,
    word: Vec<f32>,
    pos: Vec<f32>,
    /// Token type 0's embedding (single-segment inputs only).
    type0: Vec<f32>,
    emb_ln_g: Vec<f32>,
    emb_ln_b: Vec<f32>,
    layers: Vec<Layer>,
    /// Calls of at most this many tokens in all read the f16 weights.
    half_rows: usize,
}

type LoadResult<T> = std::result::Result<T, String>;

fn flat(t: &Tensor) -> LoadResult<Vec<f32>> {
    t.flatten_all()
        .and_then(|t| t.to_dtype(candle_core::DType::F32))
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| e.to_string())
}

/// `W` (`out × in`, row-major) as `Wᵀ` (`in × out`, row-major).
fn transposed(t: &Tensor) -> LoadResult<Vec<f32>> {
    let (out, inp) = t.dims2().map_err(|e| e.to_string())?;
    let w = flat(t)?;
    let mut wt = vec![0.0f32; w.len()];
    for o in 0..out {
        for i in 0..inp {
            wt[i * out + o] = w[o * inp + i];
        }
    }
    Ok(wt)
}

impl Bert {
    /// Builds the encoder from the checkpoint's tensors (names as in the
    /// Hugging Face BERT checkpoint, with or without a `bert.` prefix).
    pub(crate) fn from_tensors(
        tensors: &HashMap<String, Tensor>,
        heads: usize,
    ) -> LoadResult<Bert> {
        let get = |name: &str| -> LoadResult<&Tensor> {
            tensors
                .get(name)
                .or_else(|| tensors.get(&format!("bert.{name}")))
                .ok_or_else(|| format!("tensor {name} is missing"))
        };
        let vec = |name: &str| get(name).and_then(flat);
        let word_t = get("embeddings.word_embeddings.weight")?;
        let (_, hidden) = word_t.dims2().map_err(|e| e.to_string())?;
        let pos_t = get("embeddings.position_embeddings.weight")?;
        let max_pos = pos_t.dims2().map_err(|e| e.to_string())?.0;
        let types = vec("embeddings.token_type_embeddings.weight")?;
        let mut layers = Vec::new();
        let mut inter = 0;
        while tensors.contains_key(&format!(
            "encoder.layer.{}.attention.self.query.weight",
            layers.len()
        )) || tensors.contains_key(&format!(
            "bert.encoder.layer.{}.attention.self.query.weight",
            layers.len()
        )) {
            let p = format!("encoder.layer.{}.", layers.len());
            let t = |s: &str| get(&format!("{p}{s}")).and_then(transposed);
            let v = |s: &str| vec(&format!("{p}{s}"));
            let (q, k, vv) = (
                t("attention.self.query.weight")?,
                t("attention.self.key.weight")?,
                t("attention.self.value.weight")?,
            );
            // Rows of Wᵀ are inputs: interleave the three per input row.
            let mut qkv_w = Vec::with_capacity(3 * hidden * hidden);
            for r in 0..hidden {
                for m in [&q, &k, &vv] {
                    qkv_w.extend_from_slice(&m[r * hidden..(r + 1) * hidden]);
                }
            }
            let mut qkv_b = v("attention.self.query.bias")?;
            qkv_b.extend(v("attention.self.key.bias")?);
            qkv_b.extend(v("attention.self.value.bias")?);
            let up_b = v("intermediate.dense.bias")?;
            inter = up_b.len();
            layers.push(Layer {
                qkv: Linear::new(qkv_w, hidden, 3 * hidden),
                qkv_b,
                out: Linear::new(t("attention.output.dense.weight")?, hidden, hidden),
                out_b: v("attention.output.dense.bias")?,
                ln1_g: v("attention.output.LayerNorm.weight")?,
                ln1_b: v("attention.output.LayerNorm.bias")?,
                up: Linear::new(t("intermediate.dense.weight")?, hidden, inter),
                up_b,
                down: Linear::new(t("output.dense.weight")?, inter, hidden),
                down_b: v("output.dense.bias")?,
                ln2_g: v("output.LayerNorm.weight")?,
                ln2_b: v("output.LayerNorm.bias")?,
            });
        }
        if layers.is_empty() || hidden % heads != 0 {
            return Err("no encoder layers, or hidden size not divisible by heads".into());
        }
        Ok(Bert {
            hidden,
            heads,
            inter,
            max_pos,
            word: flat(word_t)?,
            pos: flat(pos_t)?,
            type0: types[..hidden].to_vec(),
            emb_ln_g: vec("embeddings.LayerNorm.weight")?,
            emb_ln_b: vec("embeddings.LayerNorm.bias")?,
            layers,
            half_rows: HALF_ROWS,
        })
    }

    /// Whether short calls read the f16 weights (the default) or always the
    /// f32 ones (to measure the difference).
    pub(crate) fn set_f16_weights(&mut self, on: bool) {
        self.half_rows = if on { HALF_ROWS } else { 0 };
    }

    /// Mean-pooled (not normalised) last hidden states of each input (token
    /// ids with special tokens; at most the model's positions each).
    pub(crate) fn pooled(&self, inputs: &[&[u32]]) -> Vec<Vec<f32>> {
        let h = self.hidden;
        let spans: Vec<(usize, usize)> = inputs
            .iter()
            .scan(0usize, |at, ids| {
                let len = ids.len().min(self.max_pos);
                let s = (*at, len);
                *at += len;
                Some(s)
            })
            .collect();
        let rows: usize = spans.iter().map(|s| s.1).sum();
        if rows == 0 {
            return vec![vec![0.0; h]; inputs.len()];
        }
        let vocab = self.word.len() / h;
        // Embeddings: word + position + type 0, then layer norm.
        let mut x = vec![0.0f32; rows * h];
        for (ids, &(start, len)) in inputs.iter().zip(&spans) {
            for (p, &id) in ids[..len].iter().enumerate() {
                let id = (id as usize).min(vocab - 1);
                let row = &mut x[(start + p) * h..(start + p + 1) * h];
                let w = &self.word[id * h..(id + 1) * h];
                let pe = &self.pos[p * h..(p + 1) * h];
                for j in 0..h {
                    row[j] = w[j] + pe[j] + self.type0[j];
                }
            }
        }
        layer_norm_rows(&mut x, h, &self.emb_ln_g, &self.emb_ln_b);

        let mut qkv = vec![0.0f32; rows * 3 * h];
        let mut ctx = vec![0.0f32; rows * h];
        let mut up = vec![0.0f32; rows * self.inter];
        for layer in &self.layers {
            // Q, K, V of every token in one product.
            self.product(&mut qkv, &x, &layer.qkv, rows, false);
            add_bias_rows(&mut qkv, &layer.qkv_b);
            self.attention(&qkv, &mut ctx, &spans);
            // x ← LN(x + ctx · Woᵀ + b)
            self.product(&mut x, &ctx, &layer.out, rows, true);
            bias_layer_norm_rows(&mut x, h, &layer.out_b, &layer.ln1_g, &layer.ln1_b);
            // x ← LN(x + GELU(x · Wupᵀ + b) · Wdownᵀ + b)
            self.product(&mut up, &x, &layer.up, rows, false);
            bias_gelu_rows(&mut up, &layer.up_b);
            self.product(&mut x, &up, &layer.down, rows, true);
            bias_layer_norm_rows(&mut x, h, &layer.down_b, &layer.ln2_g, &layer.ln2_b);
        }
        spans
            .iter()
            .map(|&(start, len)| {
                let mut v = vec![0.0f32; h];
                for row in x[start * h..(start + len) * h].chunks_exact(h) {
                    v.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                }
                let n = len.max(1) as f32;
                v.iter_mut().for_each(|a| *a /= n);
                v
            })
            .collect()
    }

    /// `dst (m × n) = [dst +] a (m × k) · W`, reading the f16 weights for
    /// calls of at most `half_rows` tokens.
    fn product(&self, dst: &mut [f32], a: &[f32], lin: &Linear, m: usize, add: bool) {
        match &lin.half {
            Some(half) if m <= self.half_rows => f16_weights::matmul(dst, a, half, m, add),
            _ => matmul(dst, a, &lin.w, m, lin.k, lin.n, add),
        }
    }

    /// Scaled dot-product attention of each input over its own tokens, per
    /// head, writing each head's context into its columns of `ctx`.
    fn attention(&self, qkv: &[f32], ctx: &mut [f32], spans: &[(usize, usize)]) {
        let h = self.hidden;
        let d = h / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        let stride = 3 * h;
        let ctx_ptr = SendPtr(ctx.as_mut_ptr());
        let work: Vec<(usize, usize, usize)> = spans
            .iter()
            .filter(|s| s.1 > 0)
            .flat_map(|&(start, len)| (0..self.heads).map(move |hd| (start, len, hd)))
            .collect();
        work.par_iter()
            .for_each_init(Vec::new, |scores, &(start, len, hd)| {
                let ctx_ptr = &ctx_ptr;
                scores.resize(len * len, 0.0);
                let q = qkv[start * stride + hd * d..].as_ptr();
                let k = qkv[start * stride + h + hd * d..].as_ptr();
                let v = qkv[start * stride + 2 * h + hd * d..].as_ptr();
                // SAFETY: every pointer addresses `len` rows of `d` columns at
                // the given strides inside its buffer; each task writes only its
                // own input's rows and head's columns of `ctx`.
                unsafe {
                    // scores = scale · Q · Kᵀ
                    gemm(
                        len,
                        len,
                        d,
                        scores.as_mut_ptr(),
                        1,
                        len as isize,
                        false,
                        q,
                        1,
                        stride as isize,
                        k,
                        stride as isize,
                        1,
                        0.0,
                        scale,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
                for row in scores.chunks_exact_mut(len) {
                    softmax(row);
                }
                unsafe {
                    // ctx = P · V
                    gemm(
                        len,
                        d,
                        len,
                        ctx_ptr.0.add(start * h + hd * d),
                        1,
                        h as isize,
                        false,
                        scores.as_ptr(),
                        1,
                        len as isize,
                        v,
                        1,
                        stride as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
            });
    }
}

/// A raw pointer parallel tasks share: the attention heads and the f16
/// products' column blocks, each writing its own disjoint part.
pub(super) struct SendPtr(pub(super) *mut f32);
// SAFETY: every user writes disjoint regions (see `attention` and
// `f16_weights::matmul`).
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

/// Inputs of at most this many tokens in all (a query, a title) read the
/// f16 weights: their products stream the weights once and are bound by
/// memory, not arithmetic (`f16_weights.rs`).
const HALF_ROWS: usize = 32;

/// `dst (m × n) = [dst +] a (m × k) · b (k × n)`, all row-major.
fn matmul(dst: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, add: bool) {
    debug_assert!(dst.len() >= m * n && a.len() >= m * k && b.len() >= k * n);
    let threads = rayon::current_num_threads();
    // Products this small finish before threads would have started.
    let par = if m * n * k < 1 << 18 || threads < 2 {
        Parallelism::None
    } else {
        Parallelism::Rayon(threads)
    };
    // SAFETY: the slices hold the matrices at the strides given.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            add,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

fn add_bias_rows(x: &mut [f32], b: &[f32]) {
    for row in x.chunks_exact_mut(b.len()) {
        row.iter_mut().zip(b).for_each(|(a, c)| *a += c);
    }
}

fn layer_norm(row: &mut [f32], g: &[f32], b: &[f32]) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + LN_EPS).sqrt();
    for ((v, g), b) in row.iter_mut().zip(g).zip(b) {
        *v = (*v - mean) * inv * g + b;
    }
}

fn layer_norm_rows(x: &mut [f32], h: usize, g: &[f32], b: &[f32]) {
    x.par_chunks_mut(h * 64).for_each(|rows| {
        for row in rows.chunks_exact_mut(h) {
            layer_norm(row, g, b);
        }
    });
}

fn bias_layer_norm_rows(x: &mut [f32], h: usize, bias: &[f32], g: &[f32], b: &[f32]) {
    x.par_chunks_mut(h * 64).for_each(|rows| {
        for row in rows.chunks_exact_mut(h) {
            row.iter_mut().zip(bias).for_each(|(a, c)| *a += c);
            layer_norm(row, g, b);
        }
    });
}

/// Calls `$f`'s AVX2 build (`$f` inside [`avx2`]) where the CPU has AVX2,
/// else its baseline build. Same operations in the same order either way
/// (Rust never fuses `a * b + c`); AVX2 only makes the lanes wider.
macro_rules! simd {
    ($f:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { avx2::$f($($arg),*) }
        } else {
            $f($($arg),*)
        }
        #[cfg(not(target_arch = "x86_64"))]
        $f($($arg),*)
    }};
}

fn bias_gelu_rows(x: &mut [f32], bias: &[f32]) {
    let n = bias.len();
    x.par_chunks_mut(n * 16).for_each(|rows| {
        for row in rows.chunks_exact_mut(n) {
            simd!(bias_gelu_row(row, bias));
        }
    });
}

fn softmax(row: &mut [f32]) {
    simd!(softmax_row(row));
}

/// The element-wise passes compiled for AVX2.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn bias_gelu_row(row: &mut [f32], bias: &[f32]) {
        super::bias_gelu_row(row, bias)
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn softmax_row(row: &mut [f32]) {
        super::softmax_row(row)
    }
}

#[inline(always)]
fn bias_gelu_row(row: &mut [f32], bias: &[f32]) {
    for (v, c) in row.iter_mut().zip(bias) {
        *v = gelu(*v + c);
    }
}

#[inline(always)]
fn softmax_row(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    // exp in its own loop so it vectorises; the sum is a cheap pass.
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let sum: f32 = row.iter().sum();
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

/// GELU as BERT defines it, `x · Φ(x)` with the exact normal CDF (erf).
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf by Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7), built
/// from arithmetic the compiler vectorises.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

/// e^x for the ranges softmax and GELU use (relative error ~1e-7; 0 below
/// -87), from arithmetic the compiler vectorises.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round x·log2(e) to the nearest integer with the 1.5·2²³ trick.
    const SHIFT: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + SHIFT) - SHIFT;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    p * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_are_accurate() {
        for i in -2000..=2000 {
            let x = i as f32 / 100.0;
            let e = (x as f64).exp();
            assert!(((exp(x) as f64 - e) / e).abs() < 1e-6, "exp({x})");
        }
        for i in -600..=600 {
            let x = i as f64 / 100.0;
            let got = erf(x as f32) as f64;
            if x.abs() <= 3.0 {
                assert!((got - series_erf(x)).abs() < 5e-7, "erf({x})");
            } else {
                // erfc(3) ≈ 2.2e-5: beyond 3, erf is ±1 within that.
                assert!((got - x.signum()).abs() < 2.3e-5, "erf({x})");
            }
        }
    }

    /// erf by its Maclaurin series (exact to ~1e-13 for |x| ≤ 3).
    fn series_erf(x: f64) -> f64 {
        let mut sum = 0.0;
        let mut term = x;
        let mut n = 0.0;
        while term.abs() > 1e-17 || n < 5.0 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x * x / n;
        }
        2.0 / std::f64::consts::PI.sqrt() * sum
    }
}
