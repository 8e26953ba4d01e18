//! Recommendations: collaborative filtering (biased matrix factorisation,
//! item-KNN with baseline) over explicit and implicit ratings, content
//! similarity over article embeddings, and their permission-checked blend
//! for serving ([`serve`]).
//!
//! The models work on dense indices (`u32` users and items); [`Dataset`]
//! maps store ids to them. Every random choice draws from [`Rng`] with a
//! fixed seed, so a model trained twice on the same data is the same.

pub mod blend;
pub mod implicit;
pub mod knn;
pub mod mf;
pub mod score;
pub mod serve;

use std::collections::HashMap;

pub use knn::{Baseline, ItemKnn, KnnConfig};
pub use mf::{Mf, MfConfig};
pub use serve::{Reason, Recommendation, Recommendations, Recommender};

/// One rating on dense indices, with its training weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Triple {
    /// Dense user index.
    pub user: u32,
    /// Dense item index.
    pub item: u32,
    /// The rating.
    pub value: f32,
    /// Sample weight (1 for explicit ratings).
    pub weight: f32,
}

/// Ratings keyed by external ids, mapped to dense indices.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// External user id per dense index.
    pub users: Vec<i64>,
    /// External item id per dense index.
    pub items: Vec<i64>,
    user_index: HashMap<i64, u32>,
    item_index: HashMap<i64, u32>,
    /// The ratings.
    pub triples: Vec<Triple>,
}

impl Dataset {
    /// Dense index of a user, assigned on first sight.
    pub fn user(&mut self, id: i64) -> u32 {
        let n = self.users.len() as u32;
        *self.user_index.entry(id).or_insert_with(|| {
            self.users.push(id);
            n
        })
    }

    /// Dense index of an item, assigned on first sight.
    pub fn item(&mut self, id: i64) -> u32 {
        let n = self.items.len() as u32;
        *self.item_index.entry(id).or_insert_with(|| {
            self.items.push(id);
            n
        })
    }

    /// The dense index of a known user.
    pub fn user_of(&self, id: i64) -> Option<u32> {
        self.user_index.get(&id).copied()
    }

    /// The dense index of a known item.
    pub fn item_of(&self, id: i64) -> Option<u32> {
        self.item_index.get(&id).copied()
    }

    /// Adds a rating.
    pub fn push(&mut self, user: i64, item: i64, value: f32, weight: f32) {
        let (user, item) = (self.user(user), self.item(item));
        self.triples.push(Triple {
            user,
            item,
            value,
            weight,
        });
    }
}

/// SplitMix64: small, fast and seedable, so results do not depend on the
/// version of `rand`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let a = self.unit().max(f64::MIN_POSITIVE);
        let b = self.unit();
        ((-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()) as f32
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Splits off a random `share` of `data` (train, held out).
pub fn split_holdout(data: &[Triple], share: f64, rng: &mut Rng) -> (Vec<Triple>, Vec<Triple>) {
    if share <= 0.0 {
        return (data.to_vec(), Vec::new());
    }
    let mut train = Vec::with_capacity(data.len());
    let mut held = Vec::new();
    for t in data {
        if rng.unit() < share {
            held.push(*t);
        } else {
            train.push(*t);
        }
    }
    (train, held)
}

/// Root mean squared error of `predict` on `data`.
pub fn rmse(data: &[Triple], predict: impl Fn(u32, u32) -> f32) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let se: f64 = data
        .iter()
        .map(|t| {
            let e = (t.value - predict(t.user, t.item)) as f64;
            e * e
        })
        .sum();
    (se / data.len() as f64).sqrt()
}

/// Mean absolute error of `predict` on `data`.
pub fn mae(data: &[Triple], predict: impl Fn(u32, u32) -> f32) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let ae: f64 = data
        .iter()
        .map(|t| (t.value - predict(t.user, t.item)).abs() as f64)
        .sum();
    ae / data.len() as f64
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Two groups of users and two of items: users love their own group's
    /// items (5) and dislike the other's (1), with noise; 60% of the
    /// pairs are observed, a fifth of those held out for testing.
    pub fn blocks(n_users: u32, n_items: u32, seed: u64) -> (Vec<Triple>, Vec<Triple>) {
        let mut rng = Rng::new(seed);
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for u in 0..n_users {
            for i in 0..n_items {
                if rng.unit() > 0.6 {
                    continue;
                }
                let same = (u < n_users / 2) == (i < n_items / 2);
                let noise = (rng.unit() as f32 - 0.5) * 0.6;
                let value = (if same { 4.7 } else { 1.3 } + noise).clamp(1.0, 5.0);
                let t = Triple {
                    user: u,
                    item: i,
                    value,
                    weight: 1.0,
                };
                if rng.unit() < 0.2 {
                    test.push(t);
                } else {
                    train.push(t);
                }
            }
        }
        (train, test)
    }

    /// RMSE of always predicting the training mean.
    pub fn global_mean_rmse(train: &[Triple], test: &[Triple]) -> f64 {
        let mu = train.iter().map(|t| t.value).sum::<f32>() / train.len() as f32;
        rmse(test, |_, _| mu)
    }
}
