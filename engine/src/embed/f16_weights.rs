//! Matrix products with half-precision weights, for inputs of few tokens.
//!
//! A query of ten tokens multiplies a 10-row matrix by every weight matrix
//! of the model once: the work is reading 42 MB of f32 weights, more than
//! this CPU's 32 MB L3, so every query streams them from memory. Stored as
//! IEEE f16 the weights take 21 MB and stay in the L3 between queries; the
//! kernel widens eight weights at a time (F16C) and accumulates in f32.
//! Only the weights are rounded (relative error ≤ 2⁻¹¹); activations and
//! sums stay f32. Passages (many rows) keep the f32 `gemm` path, whose
//! products reuse each weight across enough rows to be compute-bound.

use rayon::prelude::*;

use super::bert::SendPtr;

/// A `k × n` row-major matrix of f16 weights (`n` a multiple of 16).
pub(crate) struct HalfMatrix {
    bits: Vec<u16>,
    k: usize,
    n: usize,
}

impl HalfMatrix {
    /// Rounds a `k × n` row-major f32 matrix to f16 (nearest, ties even);
    /// `None` when this CPU cannot run the kernel (it needs AVX2, FMA and
    /// F16C) or `n` is not a multiple of 16, so no memory goes to a copy
    /// nothing would read.
    pub(crate) fn new(w: &[f32], k: usize, n: usize) -> Option<HalfMatrix> {
        debug_assert_eq!(w.len(), k * n);
        if !n.is_multiple_of(COLS) || !cpu_has_kernel() {
            return None;
        }
        Some(HalfMatrix {
            bits: w
                .iter()
                .map(|&x| ::half::f16::from_f32(x).to_bits())
                .collect(),
            k,
            n,
        })
    }
}

/// Columns per kernel block: two 8-lane registers.
const COLS: usize = 16;

/// Whether this CPU runs the kernel (AVX2, FMA and F16C).
fn cpu_has_kernel() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `dst (m × n) = [dst +] a (m × k) · w (k × n)`. Column blocks are
/// shared among the rayon threads.
pub(crate) fn matmul(dst: &mut [f32], a: &[f32], w: &HalfMatrix, m: usize, add: bool) {
    assert!(dst.len() >= m * w.n && a.len() >= m * w.k);
    let out = SendPtr(dst.as_mut_ptr());
    let blocks = w.n / COLS;
    let per_task = blocks.div_ceil(rayon::current_num_threads().max(1));
    (0..blocks)
        .into_par_iter()
        .with_min_len(per_task.max(1))
        .for_each(|b| {
            let out = &out;
            // SAFETY: the CPU has the features (a `HalfMatrix` exists only
            // then), the slices hold
            // the matrices (asserted), and each task writes only its own
            // columns `b * COLS..(b + 1) * COLS` of every row.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                kernel::columns(out.0, a, w, m, b * COLS, add)
            }
        });
}

#[cfg(target_arch = "x86_64")]
mod kernel {
    use std::arch::x86_64::*;

    use super::HalfMatrix;

    /// Rows per register block: 6 rows × 2 vectors = 12 accumulators, with
    /// the two widened weight vectors and a broadcast: 15 of 16 registers.
    const ROWS: usize = 6;

    /// Columns `j..j + 16` of every row.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn columns(
        dst: *mut f32,
        a: &[f32],
        w: &HalfMatrix,
        m: usize,
        j: usize,
        add: bool,
    ) {
        let mut i = 0;
        while i < m {
            let r = (m - i).min(ROWS);
            match r {
                6 => block::<6>(dst, a, w, i, j, add),
                5 => block::<5>(dst, a, w, i, j, add),
                4 => block::<4>(dst, a, w, i, j, add),
                3 => block::<3>(dst, a, w, i, j, add),
                2 => block::<2>(dst, a, w, i, j, add),
                _ => block::<1>(dst, a, w, i, j, add),
            }
            i += r;
        }
    }

    /// Rows `i..i + R`, columns `j..j + 16`.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn block<const R: usize>(
        dst: *mut f32,
        a: &[f32],
        w: &HalfMatrix,
        i: usize,
        j: usize,
        add: bool,
    ) {
        let (k, n) = (w.k, w.n);
        let mut lo = [_mm256_setzero_ps(); R];
        let mut hi = [_mm256_setzero_ps(); R];
        let a = a.as_ptr().add(i * k);
        let w = w.bits.as_ptr().add(j);
        for kk in 0..k {
            let p = w.add(kk * n);
            let w0 = _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i));
            let w1 = _mm256_cvtph_ps(_mm_loadu_si128(p.add(8) as *const __m128i));
            for r in 0..R {
                let x = _mm256_set1_ps(*a.add(r * k + kk));
                lo[r] = _mm256_fmadd_ps(x, w0, lo[r]);
                hi[r] = _mm256_fmadd_ps(x, w1, hi[r]);
            }
        }
        for r in 0..R {
            let d = dst.add((i + r) * n + j);
            if add {
                lo[r] = _mm256_add_ps(lo[r], _mm256_loadu_ps(d));
                hi[r] = _mm256_add_ps(hi[r], _mm256_loadu_ps(d.add(8)));
            }
            _mm256_storeu_ps(d, lo[r]);
            _mm256_storeu_ps(d.add(8), hi[r]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_f32_product_of_the_rounded_weights() {
        let (k, n) = (40, 48);
        let w: Vec<f32> = (0..k * n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 97.0)
            .collect();
        let Some(h) = HalfMatrix::new(&w, k, n) else {
            return; // nothing to compare on a CPU without F16C
        };
        let rounded: Vec<f32> = h
            .bits
            .iter()
            .map(|&b| ::half::f16::from_bits(b).to_f32())
            .collect();
        for m in [1usize, 5, 6, 7, 13] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 13 % 29) as f32 - 14.0) / 7.0)
                .collect();
            for add in [false, true] {
                let start: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.01).collect();
                let mut got = start.clone();
                matmul(&mut got, &a, &h, m, add);
                for r in 0..m {
                    for c in 0..n {
                        let mut want = if add { start[r * n + c] } else { 0.0 };
                        for x in 0..k {
                            want += a[r * k + x] * rounded[x * n + c];
                        }
                        let g = got[r * n + c];
                        assert!(
                            (g - want).abs() <= 1e-4 * want.abs().max(1.0),
                            "m {m} r {r} c {c}: {g} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
