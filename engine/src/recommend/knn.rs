//! Item-based k-nearest neighbours with a baseline (Koren 2010, the model
//! Surprise calls `KNNBaseline`): a rating is predicted as the baseline
//! `b_ui = mu + b_u + b_i` plus the similarity-weighted mean of the user's
//! residuals `r_uj - b_uj` on the `k` items most similar to `i` that the
//! user rated. The similarity is the shrunk Pearson-baseline correlation:
//! the cosine of the two items' baseline residuals over their common
//! users, times `(n - 1) / (n - 1 + shrinkage)` so that pairs with few
//! common users count less.
//!
//! The biases are fitted by alternating least squares (a few passes,
//! closed form per bias), which is deterministic. Each item keeps only its
//! `keep` most similar items (a sparse list, so memory grows with items,
//! not items squared).

use std::collections::HashMap;

use rayon::prelude::*;

use super::Triple;

/// Options.
#[derive(Debug, Clone)]
pub struct KnnConfig {
    /// Neighbours used in a prediction.
    pub k: usize,
    /// Neighbours kept per item.
    pub keep: usize,
    /// Shrinkage of the similarity towards 0 for few common users.
    pub shrinkage: f32,
    /// ALS passes for the baseline.
    pub baseline_epochs: usize,
    /// Regularisation of the item biases.
    pub reg_item: f32,
    /// Regularisation of the user biases.
    pub reg_user: f32,
}

impl Default for KnnConfig {
    fn default() -> Self {
        KnnConfig {
            k: 40,
            keep: 400,
            shrinkage: 100.0,
            baseline_epochs: 10,
            reg_item: 10.0,
            reg_user: 15.0,
        }
    }
}

/// Global mean plus user and item biases.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// Global mean.
    pub mu: f32,
    /// Per user.
    pub bu: Vec<f32>,
    /// Per item.
    pub bi: Vec<f32>,
    /// Lowest and highest rating seen.
    pub range: (f32, f32),
}

impl Baseline {
    /// Fits the biases by alternating least squares.
    pub fn fit(data: &[Triple], n_users: usize, n_items: usize, cfg: &KnnConfig) -> Baseline {
        let n = data.len().max(1) as f32;
        let mu = data.iter().map(|t| t.value).sum::<f32>() / n;
        let (lo, hi) = data.iter().fold((f32::MAX, f32::MIN), |(lo, hi), t| {
            (lo.min(t.value), hi.max(t.value))
        });
        let mut bu = vec![0f32; n_users];
        let mut bi = vec![0f32; n_items];
        for _ in 0..cfg.baseline_epochs {
            let mut sum = vec![0f32; n_items];
            let mut cnt = vec![0f32; n_items];
            for t in data {
                sum[t.item as usize] += t.value - mu - bu[t.user as usize];
                cnt[t.item as usize] += 1.0;
            }
            for i in 0..n_items {
                bi[i] = sum[i] / (cfg.reg_item + cnt[i]);
            }
            let mut sum = vec![0f32; n_users];
            let mut cnt = vec![0f32; n_users];
            for t in data {
                sum[t.user as usize] += t.value - mu - bi[t.item as usize];
                cnt[t.user as usize] += 1.0;
            }
            for u in 0..n_users {
                bu[u] = sum[u] / (cfg.reg_user + cnt[u]);
            }
        }
        Baseline {
            mu,
            bu,
            bi,
            range: if lo <= hi { (lo, hi) } else { (0.0, 0.0) },
        }
    }

    /// The baseline estimate of user `u` on item `i`.
    pub fn estimate(&self, u: u32, i: u32) -> f32 {
        self.mu
            + self.bu.get(u as usize).copied().unwrap_or(0.0)
            + self.bi.get(i as usize).copied().unwrap_or(0.0)
    }

    /// Clamped prediction.
    pub fn predict(&self, u: u32, i: u32) -> f32 {
        self.estimate(u, i).clamp(self.range.0, self.range.1)
    }
}

/// A trained item-KNN-baseline model.
#[derive(Debug, Clone)]
pub struct ItemKnn {
    /// The baseline.
    pub baseline: Baseline,
    /// Per item: its most similar items, most similar first.
    pub neighbours: Vec<Vec<(u32, f32)>>,
    /// Per user: the items rated and the residual `r - b`.
    by_user: Vec<HashMap<u32, f32>>,
    k: usize,
}

impl ItemKnn {
    /// Fits the baseline and the item similarities.
    pub fn train(data: &[Triple], n_users: usize, n_items: usize, cfg: &KnnConfig) -> ItemKnn {
        let baseline = Baseline::fit(data, n_users, n_items, cfg);
        let mut by_user: Vec<HashMap<u32, f32>> = vec![HashMap::new(); n_users];
        let mut by_item: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n_items];
        for t in data {
            let res = t.value - baseline.estimate(t.user, t.item);
            by_user[t.user as usize].insert(t.item, res);
        }
        for (u, items) in by_user.iter().enumerate() {
            for (&i, &r) in items {
                by_item[i as usize].push((u as u32, r));
            }
        }
        let neighbours = (0..n_items)
            .into_par_iter()
            .map(|i| {
                // prod, sq_i, sq_j, common — for every j sharing a user.
                let mut acc: HashMap<u32, (f32, f32, f32, u32)> = HashMap::new();
                for &(u, ri) in &by_item[i] {
                    for (&j, &rj) in &by_user[u as usize] {
                        if j as usize == i {
                            continue;
                        }
                        let e = acc.entry(j).or_default();
                        e.0 += ri * rj;
                        e.1 += ri * ri;
                        e.2 += rj * rj;
                        e.3 += 1;
                    }
                }
                let mut sims: Vec<(u32, f32)> = acc
                    .into_iter()
                    .filter(|(_, a)| a.1 > 0.0 && a.2 > 0.0)
                    .map(|(j, (p, a, b, n))| {
                        let pearson = p / (a * b).sqrt();
                        let shrink = (n as f32 - 1.0) / (n as f32 - 1.0 + cfg.shrinkage);
                        (j, pearson * shrink)
                    })
                    .filter(|s| s.1 > 0.0)
                    .collect();
                sims.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                sims.truncate(cfg.keep);
                sims
            })
            .collect();
        ItemKnn {
            baseline,
            neighbours,
            by_user,
            k: cfg.k,
        }
    }

    /// Predicted rating of `u` for `i`, clamped.
    pub fn predict(&self, u: u32, i: u32) -> f32 {
        let b = self.baseline.estimate(u, i);
        let (Some(rated), Some(nbrs)) = (
            self.by_user.get(u as usize),
            self.neighbours.get(i as usize),
        ) else {
            return b.clamp(self.baseline.range.0, self.baseline.range.1);
        };
        let (mut num, mut den, mut used) = (0f32, 0f32, 0);
        for &(j, s) in nbrs {
            if used == self.k {
                break;
            }
            if let Some(&r) = rated.get(&j) {
                num += s * r;
                den += s;
                used += 1;
            }
        }
        let est = if den > 0.0 { b + num / den } else { b };
        est.clamp(self.baseline.range.0, self.baseline.range.1)
    }

    /// Root mean squared error on `data`.
    pub fn rmse(&self, data: &[Triple]) -> f64 {
        super::rmse(data, |u, i| self.predict(u, i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::tests::{blocks, global_mean_rmse};

    #[test]
    fn knn_beats_the_mean_and_the_baseline_on_block_structure() {
        let (train, test) = blocks(60, 40, 11);
        let cfg = KnnConfig {
            shrinkage: 10.0,
            ..KnnConfig::default()
        };
        let m = ItemKnn::train(&train, 60, 40, &cfg);
        let knn = m.rmse(&test);
        let base = super::super::rmse(&test, |u, i| m.baseline.predict(u, i));
        let mean = global_mean_rmse(&train, &test);
        assert!(knn < base, "knn {knn} base {base} mean {mean}");
        assert!(knn < mean * 0.6, "knn {knn} mean {mean}");
        // Item 0's nearest neighbours are in its own group (items 0..20).
        assert!(m.neighbours[0].iter().take(5).all(|&(j, _)| j < 20));
    }
}
