//! The record-type classifier: a draft's category from its words, by
//! multinomial logistic regression over TF-IDF features.
//!
//! Features are the words of title, summary and body (lowercased runs of
//! letters, digits and `_`, at least two characters — the same cut as
//! scikit-learn's default), weighted `(1 + ln tf) × idf` and L2-normalised;
//! words seen in fewer than [`CategoryConfig::min_df`] training articles are
//! dropped. Training is plain SGD on the softmax loss with L2 weight decay
//! (the decay kept as one running scale factor, so a step touches only the
//! draft's own words), a few epochs over a seeded shuffle: deterministic,
//! and well under a second for thousands of articles.
//!
//! Why a trained classifier rather than the neighbours' vote it replaced
//! for the category: on pgdocs with 20 % held out, the neighbour votes
//! (semantic, hybrid or lexical; 7 or 15 voters) were right on 0.59–0.72 of
//! the held-out articles, this model on 0.83 (BENCHMARKS.md). A vote looks at a handful
//! of neighbours; the classifier weighs each word by how well it separates
//! the categories over every article.
//!
//! Permissions: the model is trained only on live articles every signed-in
//! user can read, so a suggestion cannot reveal what a restricted article
//! says (the tags still come from the caller's readable neighbours).

use std::collections::HashMap;

use crate::recommend::Rng;

/// Training options (defaults chosen on pgdocs' training articles only,
/// with shuffled 5-fold cross-validation).
#[derive(Debug, Clone)]
pub struct CategoryConfig {
    /// Least training articles a word must appear in.
    pub min_df: usize,
    /// Passes over the training articles.
    pub epochs: usize,
    /// Learning rate of the first epoch (divided by `1 + 0.2 × epoch`).
    pub lr: f32,
    /// Inverse regularisation strength (scikit-learn's `C`): the L2 weight
    /// is `1 / (C × articles)`.
    pub c: f32,
    /// Most training articles per category (the first met in id order):
    /// bounds memory and time on very large knowledge bases.
    pub max_per_category: usize,
    /// Seed of the shuffle.
    pub seed: u64,
}

impl Default for CategoryConfig {
    fn default() -> Self {
        CategoryConfig {
            min_df: 2,
            epochs: 20,
            lr: 1.0,
            c: 10.0,
            max_per_category: 2000,
            seed: 7,
        }
    }
}

/// Articles collected for training, one sparse term-count vector each,
/// added one at a time so the caller can stream them from the store.
#[derive(Debug, Default)]
pub struct CategoryCorpus {
    terms: HashMap<String, u32>,
    docs: Vec<(Vec<(u32, u32)>, u32)>,
    categories: Vec<String>,
    per_category: Vec<usize>,
}

impl CategoryCorpus {
    /// Adds one article's text under its category (ignored once the
    /// category holds `max_per_category` articles, or if it has no words).
    pub fn add(&mut self, text: &str, category: &str, cfg: &CategoryConfig) {
        let cat = match self.categories.iter().position(|c| c == category) {
            Some(i) => i,
            None => {
                self.categories.push(category.to_string());
                self.per_category.push(0);
                self.categories.len() - 1
            }
        };
        if self.per_category[cat] >= cfg.max_per_category {
            return;
        }
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for w in words(text) {
            let next = self.terms.len() as u32;
            let id = *self.terms.entry(w).or_insert(next);
            *counts.entry(id).or_default() += 1;
        }
        if counts.is_empty() {
            return;
        }
        let mut v: Vec<(u32, u32)> = counts.into_iter().collect();
        v.sort_unstable();
        self.docs.push((v, cat as u32));
        self.per_category[cat] += 1;
    }

    /// Articles added.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether no article was added.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

/// A trained classifier.
#[derive(Debug, Clone)]
pub struct CategoryModel {
    vocab: HashMap<String, u32>,
    idf: Vec<f32>,
    categories: Vec<String>,
    /// Row per vocabulary word, one weight per category.
    weights: Vec<f32>,
    bias: Vec<f32>,
    /// Articles it was trained on.
    pub trained_on: usize,
}

impl CategoryModel {
    /// Trains on `corpus`; `None` when it holds fewer than two categories
    /// with articles or no word passes `min_df` (nothing to learn).
    pub fn train(corpus: CategoryCorpus, cfg: &CategoryConfig) -> Option<CategoryModel> {
        let n = corpus.docs.len();
        if corpus.per_category.iter().filter(|&&c| c > 0).count() < 2 {
            return None;
        }
        let mut df = vec![0u32; corpus.terms.len()];
        for (d, _) in &corpus.docs {
            for &(t, _) in d {
                df[t as usize] += 1;
            }
        }
        // Sorted words: the same corpus gives the same vocabulary order, so
        // the same model.
        let mut kept: Vec<(&String, u32)> = corpus
            .terms
            .iter()
            .filter(|(_, &id)| df[id as usize] as usize >= cfg.min_df.max(1))
            .map(|(w, &id)| (w, id))
            .collect();
        if kept.is_empty() {
            return None;
        }
        kept.sort_unstable();
        let mut remap = vec![u32::MAX; corpus.terms.len()];
        let mut vocab = HashMap::with_capacity(kept.len());
        let mut idf = Vec::with_capacity(kept.len());
        for (new, (w, old)) in kept.into_iter().enumerate() {
            remap[old as usize] = new as u32;
            vocab.insert(w.clone(), new as u32);
            idf.push(((1.0 + n as f32) / (1.0 + df[old as usize] as f32)).ln() + 1.0);
        }
        let k = corpus.categories.len();
        let xs: Vec<(Vec<(u32, f32)>, u32)> = corpus
            .docs
            .iter()
            .map(|(d, y)| {
                let v = weigh(
                    d.iter()
                        .filter(|(t, _)| remap[*t as usize] != u32::MAX)
                        .map(|&(t, c)| (remap[t as usize], c)),
                    &idf,
                );
                (v, *y)
            })
            .collect();
        let mut model = CategoryModel {
            weights: vec![0.0; idf.len() * k],
            vocab,
            idf,
            categories: corpus.categories,
            bias: vec![0.0; k],
            trained_on: n,
        };
        model.fit(&xs, cfg);
        Some(model)
    }

    fn fit(&mut self, xs: &[(Vec<(u32, f32)>, u32)], cfg: &CategoryConfig) {
        let k = self.categories.len();
        let lambda = 1.0 / (cfg.c.max(1e-6) * xs.len().max(1) as f32);
        // W = scale × weights: the decay of every weight is one multiply.
        let mut scale = 1.0f32;
        let mut order: Vec<usize> = (0..xs.len()).collect();
        let mut rng = Rng::new(cfg.seed);
        let mut p = vec![0f32; k];
        for epoch in 0..cfg.epochs {
            let lr = cfg.lr / (1.0 + 0.2 * epoch as f32);
            rng.shuffle(&mut order);
            for &i in &order {
                let (x, y) = &xs[i];
                self.probabilities(x, scale, &mut p);
                p[*y as usize] -= 1.0;
                scale *= 1.0 - lr * lambda;
                let step = lr / scale;
                for &(t, v) in x {
                    let row = &mut self.weights[t as usize * k..(t as usize + 1) * k];
                    for (w, g) in row.iter_mut().zip(&p) {
                        *w -= step * v * g;
                    }
                }
                for (b, g) in self.bias.iter_mut().zip(&p) {
                    *b -= lr * g;
                }
                if scale < 1e-3 {
                    self.weights.iter_mut().for_each(|w| *w *= scale);
                    scale = 1.0;
                }
            }
        }
        self.weights.iter_mut().for_each(|w| *w *= scale);
    }

    /// Softmax of the scores of features `x` into `p`.
    fn probabilities(&self, x: &[(u32, f32)], scale: f32, p: &mut [f32]) {
        let k = self.categories.len();
        p.copy_from_slice(&self.bias);
        for &(t, v) in x {
            let row = &self.weights[t as usize * k..(t as usize + 1) * k];
            for (s, w) in p.iter_mut().zip(row) {
                *s += scale * v * w;
            }
        }
        let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for s in p.iter_mut() {
            *s = (*s - max).exp();
            sum += *s;
        }
        p.iter_mut().for_each(|s| *s /= sum);
    }

    /// Categories with their probability, most likely first; empty when
    /// the text has no word the model knows.
    pub fn predict(&self, text: &str) -> Vec<(String, f32)> {
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for w in words(text) {
            if let Some(&id) = self.vocab.get(&w) {
                *counts.entry(id).or_default() += 1;
            }
        }
        if counts.is_empty() {
            return Vec::new();
        }
        let x = weigh(counts.into_iter(), &self.idf);
        let mut p = vec![0f32; self.categories.len()];
        self.probabilities(&x, 1.0, &mut p);
        let mut out: Vec<(String, f32)> = self.categories.iter().cloned().zip(p).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    /// Categories it can predict.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }
}

/// `(1 + ln tf) × idf`, L2-normalised, sorted by term.
fn weigh(counts: impl Iterator<Item = (u32, u32)>, idf: &[f32]) -> Vec<(u32, f32)> {
    let mut v: Vec<(u32, f32)> = counts
        .map(|(t, c)| (t, (1.0 + (c as f32).ln()) * idf[t as usize]))
        .collect();
    v.sort_unstable_by_key(|e| e.0);
    let norm = v.iter().map(|e| e.1 * e.1).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|e| e.1 /= norm);
    }
    v
}

/// Lowercased runs of letters, digits and `_` of at least two characters.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.chars().nth(1).is_some())
        .map(str::to_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(docs: &[(&str, &str)]) -> CategoryCorpus {
        let mut c = CategoryCorpus::default();
        for (text, cat) in docs {
            c.add(text, cat, &CategoryConfig::default());
        }
        c
    }

    const DOCS: &[(&str, &str)] = &[
        ("levy release bank garnishment", "collections"),
        ("bank levy notice to the debtor", "collections"),
        ("release a levy after payment", "collections"),
        ("hearing officer schedules the appeal hearing", "appeals"),
        ("appeal deadline and hearing notice", "appeals"),
        ("officer decision on the appeal", "appeals"),
    ];

    #[test]
    fn learns_which_words_mark_a_category() {
        let m = CategoryModel::train(corpus(DOCS), &CategoryConfig::default()).unwrap();
        let p = m.predict("a new levy on the bank account");
        assert_eq!(p[0].0, "collections");
        assert!(p[0].1 > 0.5, "{p:?}");
        let total: f32 = p.iter().map(|e| e.1).sum();
        assert!((total - 1.0).abs() < 1e-4);
        assert_eq!(m.predict("appeal hearing")[0].0, "appeals");
        assert!(m.predict("zzz qqq").is_empty(), "no known word, no guess");
    }

    #[test]
    fn training_is_deterministic() {
        let a = CategoryModel::train(corpus(DOCS), &CategoryConfig::default()).unwrap();
        let b = CategoryModel::train(corpus(DOCS), &CategoryConfig::default()).unwrap();
        assert_eq!(a.weights, b.weights);
        assert_eq!(a.predict("levy"), b.predict("levy"));
    }

    #[test]
    fn one_category_or_no_shared_words_trains_nothing() {
        assert!(CategoryModel::train(corpus(&DOCS[..3]), &CategoryConfig::default()).is_none());
        assert!(CategoryModel::train(
            corpus(&[("aa", "x"), ("bb", "y")]),
            &CategoryConfig::default()
        )
        .is_none());
    }

    #[test]
    fn caps_articles_per_category() {
        let cfg = CategoryConfig {
            max_per_category: 2,
            ..CategoryConfig::default()
        };
        let mut c = CategoryCorpus::default();
        for (text, cat) in DOCS {
            c.add(text, cat, &cfg);
        }
        assert_eq!(c.len(), 4);
    }
}
