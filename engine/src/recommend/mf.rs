//! Biased matrix factorisation ("SVD" in the Surprise sense): a rating is
//! predicted as `mu + b_u + b_i + p_u · q_i`, trained by stochastic
//! gradient descent with L2 regularisation and early stopping on a held-out
//! slice of the training ratings.
//!
//! Parallelism: stratified SGD (DSGD, Gemulla et al. 2011) over rayon rather
//! than Hogwild. Users and items are cut into `strata` contiguous blocks;
//! an epoch runs `strata` sub-epochs, and in sub-epoch `s` worker `p`
//! updates only the ratings of user block `p` × item block `(p + s) mod
//! strata`. No two workers ever touch the same user or item row, so there
//! are no races and no locks, and — because the number of strata is fixed
//! by the configuration, not by the thread count — the trained model is
//! bit-for-bit the same on any machine for one seed. Hogwild would be as
//! fast but not reproducible.

use rayon::prelude::*;

use super::{Rng, Triple};

/// Training options. The defaults were chosen on a held-out 10% of
/// ml-100k's u1..u5 .base files — never their .test files — with
/// `kmt-bench recommend --tune` (BENCHMARKS.md).
#[derive(Debug, Clone)]
pub struct MfConfig {
    /// Latent factors per user and item.
    pub factors: usize,
    /// Most epochs.
    pub epochs: usize,
    /// Learning rate of the first epoch.
    pub lr: f32,
    /// Multiplier of the learning rate after each epoch.
    pub lr_decay: f32,
    /// L2 weight on the factors.
    pub reg: f32,
    /// L2 weight on the biases.
    pub reg_bias: f32,
    /// Share of the training ratings held out to pick the epoch (0 trains
    /// on everything for `epochs` epochs).
    pub holdout: f64,
    /// Epochs without improvement on the held-out slice before stopping.
    pub patience: usize,
    /// Smallest drop of the held-out RMSE that counts as an improvement
    /// for `patience` (a decaying learning rate otherwise keeps buying
    /// gains too small to matter, one epoch at a time).
    pub min_gain: f64,
    /// Standard deviation of the initial factors.
    pub init_std: f32,
    /// Blocks per side for stratified SGD (fixed: results do not depend on
    /// the thread count).
    pub strata: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for MfConfig {
    fn default() -> Self {
        MfConfig {
            factors: 32,
            epochs: 80,
            lr: 0.1,
            lr_decay: 0.8,
            reg: 0.1,
            reg_bias: 0.01,
            holdout: 0.05,
            patience: 2,
            min_gain: 0.0005,
            init_std: 0.05,
            strata: 4,
            seed: 42,
        }
    }
}

/// A trained model over dense user and item indices.
#[derive(Debug, Clone)]
pub struct Mf {
    /// Global mean.
    pub mu: f32,
    /// Factors per user or item.
    pub k: usize,
    /// Per user: bias then `k` factors.
    pub users: Vec<f32>,
    /// Per item: bias then `k` factors.
    pub items: Vec<f32>,
    /// Epochs actually run (early stopping).
    pub epochs_run: usize,
    /// Lowest and highest rating seen, for clamping.
    pub range: (f32, f32),
}

impl Mf {
    /// Trains on `data` (user and item indices below `n_users`/`n_items`).
    pub fn train(data: &[Triple], n_users: usize, n_items: usize, cfg: &MfConfig) -> Mf {
        let k = cfg.factors;
        let stride = k + 1;
        let mut rng = Rng::new(cfg.seed);
        let (train, valid) = super::split_holdout(data, cfg.holdout, &mut rng);
        let (lo, hi) = data.iter().fold((f32::MAX, f32::MIN), |(lo, hi), t| {
            (lo.min(t.value), hi.max(t.value))
        });
        let wsum: f64 = train.iter().map(|t| t.weight as f64).sum();
        let mu = if wsum > 0.0 {
            (train
                .iter()
                .map(|t| (t.value * t.weight) as f64)
                .sum::<f64>()
                / wsum) as f32
        } else {
            0.0
        };
        let mut init = |n: usize| {
            let mut v = vec![0f32; n * stride];
            for row in v.chunks_mut(stride) {
                for x in &mut row[1..] {
                    *x = rng.normal() * cfg.init_std;
                }
            }
            v
        };
        let mut model = Mf {
            mu,
            k,
            users: init(n_users),
            items: init(n_items),
            epochs_run: 0,
            range: if lo <= hi { (lo, hi) } else { (0.0, 0.0) },
        };
        let p = cfg.strata.max(1);
        let ublock = n_users.div_ceil(p).max(1);
        let iblock = n_items.div_ceil(p).max(1);
        let mut buckets: Vec<Vec<Triple>> = vec![Vec::new(); p * p];
        for t in &train {
            let (bu, bi) = (t.user as usize / ublock, t.item as usize / iblock);
            buckets[bu * p + bi].push(*t);
        }
        let mut lr = cfg.lr;
        let mut best: Option<(f64, Vec<f32>, Vec<f32>, usize)> = None;
        let mut since_best = 0;
        for epoch in 0..cfg.epochs {
            for s in 0..p {
                let mut ublocks: Vec<&mut [f32]> =
                    model.users.chunks_mut(ublock * stride).collect();
                let mut iblocks: Vec<Option<&mut [f32]>> =
                    model.items.chunks_mut(iblock * stride).map(Some).collect();
                // The buckets of this sub-epoch: (bu, (bu + s) mod p).
                let mut mine: Vec<Option<&mut Vec<Triple>>> = buckets
                    .iter_mut()
                    .enumerate()
                    .map(|(b, v)| (b % p == (b / p + s) % p).then_some(v))
                    .collect();
                let work: Vec<Work<'_>> = ublocks
                    .drain(..)
                    .enumerate()
                    .filter_map(|(bu, u)| {
                        let bi = (bu + s) % p;
                        let b = bu * p + bi;
                        let i = iblocks.get_mut(bi)?.take()?;
                        Some((b, u, i, mine.get_mut(b)?.take()?))
                    })
                    .collect();
                let step = Step {
                    mu,
                    lr,
                    reg: cfg.reg,
                    reg_bias: cfg.reg_bias,
                    stride,
                };
                let pass = bucket_pass();
                work.into_par_iter().for_each(|(b, us, is, bucket)| {
                    // A fresh order every epoch, shuffled by the worker
                    // that owns the bucket (seeded by epoch and bucket,
                    // so the thread count does not matter).
                    Rng::new(cfg.seed ^ ((epoch as u64) << 32) ^ b as u64).shuffle(bucket);
                    let u0 = (b / p) * ublock;
                    let i0 = (b % p) * iblock;
                    pass(&step, bucket, u0, i0, us, is);
                });
            }
            lr *= cfg.lr_decay;
            model.epochs_run = epoch + 1;
            if valid.is_empty() {
                continue;
            }
            let r = model.rmse(&valid);
            let previous = best.as_ref().map_or(f64::INFINITY, |b| b.0);
            if r < previous {
                best = Some((r, model.users.clone(), model.items.clone(), epoch + 1));
            }
            if r < previous - cfg.min_gain {
                since_best = 0;
            } else {
                since_best += 1;
                if since_best >= cfg.patience {
                    break;
                }
            }
        }
        if let Some((_, u, i, e)) = best {
            model.users = u;
            model.items = i;
            model.epochs_run = e;
        }
        model
    }

    /// Number of users.
    pub fn n_users(&self) -> usize {
        self.users.len() / (self.k + 1)
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.items.len() / (self.k + 1)
    }

    /// An item's factor vector (without its bias).
    pub fn item_factors(&self, i: u32) -> &[f32] {
        let s = self.k + 1;
        &self.items[i as usize * s + 1..(i as usize + 1) * s]
    }

    /// An item's bias.
    pub fn item_bias(&self, i: u32) -> f32 {
        self.items[i as usize * (self.k + 1)]
    }

    /// Predicted rating, unclamped; unknown users or items fall back to
    /// the biases that are known.
    pub fn score(&self, u: Option<u32>, i: Option<u32>) -> f32 {
        let s = self.k + 1;
        let pu = u
            .filter(|&u| (u as usize) < self.n_users())
            .map(|u| &self.users[u as usize * s..(u as usize + 1) * s]);
        let qi = i
            .filter(|&i| (i as usize) < self.n_items())
            .map(|i| &self.items[i as usize * s..(i as usize + 1) * s]);
        let mut r = self.mu;
        if let Some(p) = pu {
            r += p[0];
        }
        if let Some(q) = qi {
            r += q[0];
        }
        if let (Some(p), Some(q)) = (pu, qi) {
            r += dot(&p[1..], &q[1..]);
        }
        r
    }

    /// Predicted rating clamped to the training range.
    pub fn predict(&self, u: u32, i: u32) -> f32 {
        self.score(Some(u), Some(i))
            .clamp(self.range.0, self.range.1)
    }

    /// Root mean squared error on `data`.
    pub fn rmse(&self, data: &[Triple]) -> f64 {
        super::rmse(data, |u, i| self.predict(u, i))
    }
}

/// One worker's share of a sub-epoch: bucket number, its user block, its
/// item block and its ratings.
type Work<'a> = (usize, &'a mut [f32], &'a mut [f32], &'a mut Vec<Triple>);

/// The constants of one SGD pass.
#[derive(Clone, Copy)]
struct Step {
    mu: f32,
    lr: f32,
    reg: f32,
    reg_bias: f32,
    stride: usize,
}

/// One worker's SGD pass over a bucket: `us` and `is` are its user and
/// item blocks, starting at rows `u0` and `i0`.
type BucketPass = fn(&Step, &[Triple], usize, usize, &mut [f32], &mut [f32]);

/// The bucket pass compiled for the best instruction set this CPU has.
/// The AVX2 build runs the same additions and multiplications in the same
/// order, only eight lanes wide (no fused multiply-add, which would round
/// differently), so the model stays bit-for-bit the same on any machine.
fn bucket_pass() -> BucketPass {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            return |step, ts, u0, i0, us, is| {
                // SAFETY: the CPU supports AVX2 (checked just above).
                unsafe { bucket_pass_avx2(step, ts, u0, i0, us, is) }
            };
        }
    }
    bucket_pass_generic
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn bucket_pass_avx2(
    step: &Step,
    ts: &[Triple],
    u0: usize,
    i0: usize,
    us: &mut [f32],
    is: &mut [f32],
) {
    bucket_pass_generic(step, ts, u0, i0, us, is)
}

#[inline(always)]
fn bucket_pass_generic(
    step: &Step,
    ts: &[Triple],
    u0: usize,
    i0: usize,
    us: &mut [f32],
    is: &mut [f32],
) {
    let Step {
        mu,
        lr,
        reg,
        reg_bias,
        stride,
    } = *step;
    for t in ts {
        let ur = (t.user as usize - u0) * stride;
        let ir = (t.item as usize - i0) * stride;
        let (pb, pf) = us[ur..ur + stride].split_at_mut(1);
        let (qb, qf) = is[ir..ir + stride].split_at_mut(1);
        let e = (t.value - (mu + pb[0] + qb[0] + dot(pf, qf))) * t.weight;
        pb[0] += lr * (e - reg_bias * pb[0]);
        qb[0] += lr * (e - reg_bias * qb[0]);
        // Zipped iterators: no bounds checks, so the update vectorises.
        for (a, b) in pf.iter_mut().zip(qf.iter_mut()) {
            let (x, y) = (*a, *b);
            *a += lr * (e * y - reg * x);
            *b += lr * (e * x - reg * y);
        }
    }
}

/// Dot product over eight independent sums, so the compiler can keep
/// them in vector registers (a single running `f32` sum must be added in
/// order and does not vectorise).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::tests::{blocks, global_mean_rmse};

    #[test]
    fn mf_recovers_block_structure_and_beats_the_mean() {
        let (train, test) = blocks(60, 40, 7);
        let cfg = MfConfig {
            factors: 4,
            epochs: 200,
            lr: 0.02,
            // Slow decay: the default's 0.8 per epoch is tuned for
            // ml-100k-sized data and would stop learning here too early.
            lr_decay: 0.99,
            // Small data: the factors take a while to break symmetry,
            // so no minimum gain while the held-out RMSE plateaus.
            min_gain: 0.0,
            patience: 5,
            ..MfConfig::default()
        };
        let m = Mf::train(&train, 60, 40, &cfg);
        let rmse = m.rmse(&test);
        let base = global_mean_rmse(&train, &test);
        assert!(rmse < base * 0.6, "mf {rmse} vs mean {base}");
        // Users of group 0 like items of group 0 and dislike group 1.
        assert!(m.predict(0, 0) > 4.0 && m.predict(0, 39) < 2.0);
    }

    #[test]
    fn mf_is_deterministic() {
        let (train, _) = blocks(30, 20, 3);
        let cfg = MfConfig {
            factors: 3,
            epochs: 10,
            ..MfConfig::default()
        };
        let a = Mf::train(&train, 30, 20, &cfg);
        let b = Mf::train(&train, 30, 20, &cfg);
        assert_eq!(a.users, b.users);
        assert_eq!(a.items, b.items);
    }
}
