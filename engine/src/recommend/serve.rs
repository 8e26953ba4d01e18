//! Serving: the [`Recommender`] holds the last trained models behind an
//! `ArcSwap`; training runs on a blocking thread and publishes a new
//! [`Models`] when done, so a request never waits for training — it reads
//! whatever was published last (nothing before the first training ends).
//!
//! Where training runs: in the serving process (`kmt serve`), on a timer
//! and on demand. The models live in memory next to the requests that
//! read them, so no model has to travel between processes; several
//! servers each train their own copy from the same store, and with fixed
//! seeds those copies are the same. `kmt-indexer` does not train.
//!
//! "People who used this also used": the MF item factor vectors go into an
//! HNSW graph (hnsw_rs, cosine). Every candidate is checked inside the
//! walk against the caller's allowed set (the visibility rule of search),
//! and again against the article row (`Principal::can_read`) before it is
//! returned; a rejected candidate is excluded and the search continues, so
//! the answer holds `limit` articles whenever that many readable ones
//! exist. A filtered HNSW walk can miss some allowed points when most are
//! filtered out: when it returns fewer than asked, an exact scan over all
//! item vectors completes it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};
use hnsw_rs::prelude::{DistCosine, Hnsw};
use serde::Serialize;
use utoipa::ToSchema;

use super::implicit::rating_of;
use super::{Dataset, Mf, MfConfig};
use crate::auth::Principal;
use crate::error::Result;
use crate::model::{Article, ArticleId, Interaction, PUBLIC};
use crate::prompts::category_model::{CategoryConfig, CategoryCorpus, CategoryModel};
use crate::store::Store;

/// Default time between two trainings.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);
/// Page size when reading interactions and articles.
const PAGE: i64 = 1000;

/// Why an article was recommended.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// People who used `because` (articles the caller used) also used it.
    AlsoUsed {
        /// The caller's articles it is a neighbour of.
        because: Vec<ArticleId>,
    },
    /// Its text is close to what the caller read and rated well.
    SimilarContent,
    /// Users like the caller rated it well (matrix factorisation).
    Collaborative,
    /// Much used in a category that people with the caller's roles read.
    PopularInCategory {
        /// The category.
        category: String,
    },
    /// Much used overall (no better signal).
    Popular,
}

/// One recommended article.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Recommendation {
    /// Article id.
    pub id: ArticleId,
    /// Slug.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Category.
    pub category: String,
    /// Blended score (higher first; comparable within one answer only).
    pub score: f32,
    /// Why it was chosen.
    pub reason: Reason,
}

/// The model an answer came from.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelInfo {
    /// Increases with every published training.
    pub generation: u64,
    /// When the training read its data.
    pub trained_at: DateTime<Utc>,
    /// Users and articles with usage, and (user, article) pairs.
    pub users: usize,
    /// Articles with usage.
    pub articles: usize,
    /// Pairs trained on.
    pub pairs: usize,
}

/// A list of recommendations.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Recommendations {
    /// Best first.
    pub items: Vec<Recommendation>,
    /// The model used (`null` before the first training).
    pub model: Option<ModelInfo>,
}

/// Everything one training produced.
pub struct Models {
    /// Which training.
    pub info: ModelInfo,
    /// Id maps (users, articles).
    pub data: Dataset,
    /// The factor model.
    pub mf: Mf,
    graph: Hnsw<'static, f32, DistCosine>,
    /// Articles by distinct users who used them, most used first.
    pub popular: Vec<(ArticleId, f32)>,
    /// Category of every used article.
    pub category_of: HashMap<ArticleId, String>,
    /// Per role: categories by their share of the role's usage, largest first.
    pub role_categories: HashMap<String, Vec<(String, f64)>>,
    /// The record-type classifier, trained in the same run (none while
    /// fewer than two categories have articles everyone can read).
    pub category_model: Option<CategoryModel>,
}

impl Models {
    /// Puts a trained model together with its item-factor graph (built
    /// here) and the popularity tables of the fallback.
    pub fn new(
        info: ModelInfo,
        data: Dataset,
        mf: Mf,
        popular: Vec<(ArticleId, f32)>,
        category_of: HashMap<ArticleId, String>,
        role_categories: HashMap<String, Vec<(String, f64)>>,
    ) -> Models {
        let ni = data.items.len();
        let graph = Hnsw::new(16, ni.max(16), 16, 200, DistCosine);
        let rows: Vec<(&[f32], usize)> = (0..ni).map(|i| (mf.item_factors(i as u32), i)).collect();
        graph.parallel_insert_slice(&rows);
        let mut graph = graph;
        graph.set_searching_mode(true);
        Models {
            info,
            data,
            mf,
            graph,
            popular,
            category_of,
            role_categories,
            category_model: None,
        }
    }

    /// Articles whose factor vectors are nearest to article `id`'s, passing
    /// `ok`, best first, at most `k` (fewer only when fewer pass).
    pub fn neighbours(
        &self,
        id: ArticleId,
        k: usize,
        ok: &dyn Fn(ArticleId) -> bool,
    ) -> Vec<(ArticleId, f32)> {
        let Some(i) = self.data.item_of(id) else {
            return Vec::new();
        };
        let q = self.mf.item_factors(i);
        let items = &self.data.items;
        let filter = |d: &usize| *d != i as usize && ok(items[*d]);
        let found = self
            .graph
            .search_filter(q, k, (2 * k).max(64), Some(&filter));
        let mut out: Vec<(ArticleId, f32)> = found
            .iter()
            .map(|n| (items[n.d_id], 1.0 - n.distance))
            .collect();
        if out.len() < k {
            // The filtered walk may have missed allowed points: scan.
            let qn = norm(q);
            out = (0..items.len())
                .filter(|&d| filter(&d))
                .map(|d| {
                    let v = self.mf.item_factors(d as u32);
                    let dot: f32 = q.iter().zip(v).map(|(a, b)| a * b).sum();
                    (items[d], dot / (qn * norm(v)).max(f32::MIN_POSITIVE))
                })
                .collect();
            out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            out.truncate(k);
        }
        out
    }
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// The last trained models and the training switch.
#[derive(Default)]
pub struct Recommender {
    current: ArcSwapOption<Models>,
    running: AtomicBool,
    pending: AtomicBool,
    generation: AtomicU64,
    config: MfConfig,
}

impl Recommender {
    /// A recommender with no model yet.
    pub fn new() -> Arc<Recommender> {
        Arc::new(Recommender::default())
    }

    /// The last published models, if any.
    pub fn models(&self) -> Option<Arc<Models>> {
        self.current.load_full()
    }

    /// Generation of the last published model (0: none yet).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Starts a training in the background and returns the generation of
    /// the first model that will include everything stored now. When a
    /// training is already running (it may have read its data before
    /// now), another one follows it.
    pub fn request(self: &Arc<Self>, store: &Store) -> u64 {
        let current = self.generation();
        if self.running.swap(true, Ordering::AcqRel) {
            self.pending.store(true, Ordering::Release);
            return current + 2;
        }
        let (me, store) = (self.clone(), store.clone());
        tokio::spawn(async move {
            loop {
                if let Err(e) = me.train_inner(&store).await {
                    tracing::warn!(error = %e, "recommendation training failed");
                }
                if me.pending.swap(false, Ordering::AcqRel) {
                    continue;
                }
                me.running.store(false, Ordering::Release);
                // A request may have set `pending` between the swap and
                // the store: take it up unless another task already did.
                if me.pending.load(Ordering::Acquire) && !me.running.swap(true, Ordering::AcqRel) {
                    me.pending.store(false, Ordering::Release);
                    continue;
                }
                break;
            }
        });
        current + 1
    }

    async fn train_inner(&self, store: &Store) -> Result<()> {
        let started = std::time::Instant::now();
        let input = read_input(store).await?;
        let generation = self.generation.load(Ordering::Acquire) + 1;
        let cfg = self.config.clone();
        let models = tokio::task::spawn_blocking(move || fit(input, generation, &cfg))
            .await
            .map_err(|e| std::io::Error::other(format!("training thread: {e}")))?;
        tracing::info!(
            generation,
            users = models.info.users,
            articles = models.info.articles,
            pairs = models.info.pairs,
            secs = started.elapsed().as_secs_f64(),
            "recommendation models trained"
        );
        self.current.store(Some(Arc::new(models)));
        self.generation.store(generation, Ordering::Release);
        Ok(())
    }

    /// Trains every `interval` (and once at start) until `shutdown` turns true.
    pub async fn run(
        self: Arc<Self>,
        store: Store,
        interval: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            self.request(&store);
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}

/// What training reads from the store.
struct Input {
    pairs: Vec<Interaction>,
    articles: HashMap<ArticleId, String>,
    roles: HashMap<i64, Vec<String>>,
    /// Texts of the live articles every signed-in user can read, for the
    /// record-type classifier.
    texts: CategoryCorpus,
    at: DateTime<Utc>,
}

async fn read_input(store: &Store) -> Result<Input> {
    let at = Utc::now();
    let mut pairs = Vec::new();
    let mut after = (i64::MIN, ArticleId::MIN);
    loop {
        let page = store.scan_interactions(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = (last.user_id, last.article_id);
        let done = (page.len() as i64) < PAGE;
        pairs.extend(page);
        if done {
            break;
        }
    }
    let mut articles = HashMap::new();
    let mut texts = CategoryCorpus::default();
    let text_cfg = CategoryConfig::default();
    let mut after_id = ArticleId::MIN;
    loop {
        let page: Vec<Article> = store.scan_articles(after_id, PAGE).await?;
        let Some(last) = page.last() else { break };
        after_id = last.id;
        let done = (page.len() as i64) < PAGE;
        for a in &page {
            let everyone = a.audience.is_empty() || a.audience.iter().any(|r| r == PUBLIC);
            if a.status.is_live() && everyone {
                let text = [a.title.as_str(), &a.summary, &a.body].join("\n");
                texts.add(&text, &a.category, &text_cfg);
            }
        }
        articles.extend(page.into_iter().map(|a| (a.id, a.category)));
        if done {
            break;
        }
    }
    let roles = store
        .list_users()
        .await?
        .into_iter()
        .map(|u| (u.id, u.roles))
        .collect();
    Ok(Input {
        pairs,
        articles,
        roles,
        texts,
        at,
    })
}

/// Fits the models (CPU-bound: run on a blocking thread).
fn fit(input: Input, generation: u64, cfg: &MfConfig) -> Models {
    let mut data = Dataset::default();
    let mut users_of: HashMap<ArticleId, f32> = HashMap::new();
    let mut role_cat: HashMap<String, HashMap<String, f64>> = HashMap::new();
    for p in &input.pairs {
        let r = rating_of(p);
        data.push(p.user_id, p.article_id, r.rating, r.weight);
        *users_of.entry(p.article_id).or_default() += 1.0;
        if let (Some(cat), Some(roles)) = (
            input.articles.get(&p.article_id),
            input.roles.get(&p.user_id),
        ) {
            for role in roles {
                *role_cat
                    .entry(role.clone())
                    .or_default()
                    .entry(cat.clone())
                    .or_default() += 1.0;
            }
        }
    }
    let (nu, ni) = (data.users.len(), data.items.len());
    // Few ratings: no held-out slice to spare, and a fixed epoch count.
    let cfg = if data.triples.len() < 2000 {
        MfConfig {
            holdout: 0.0,
            epochs: 200,
            factors: cfg.factors.min(8),
            lr: 0.03,
            lr_decay: 0.97,
            reg: 0.02,
            ..cfg.clone()
        }
    } else {
        cfg.clone()
    };
    let mf = Mf::train(&data.triples, nu, ni, &cfg);
    let mut popular: Vec<(ArticleId, f32)> = users_of
        .into_iter()
        .filter(|(id, _)| input.articles.contains_key(id))
        .collect();
    popular.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let role_categories = role_cat
        .into_iter()
        .map(|(role, cats)| {
            // Shares, not counts: each role weighs the same, whatever
            // its size (the role everyone has does not drown the others).
            let total: f64 = cats.values().sum::<f64>().max(1.0);
            let mut v: Vec<(String, f64)> = cats.into_iter().map(|(c, n)| (c, n / total)).collect();
            v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            (role, v)
        })
        .collect();
    let category_model = CategoryModel::train(input.texts, &CategoryConfig::default());
    let mut models = Models::new(
        ModelInfo {
            generation,
            trained_at: input.at,
            users: nu,
            articles: ni,
            pairs: data.triples.len(),
        },
        data,
        mf,
        popular,
        input.articles,
        role_categories,
    );
    models.category_model = category_model;
    models
}

/// A user's interactions now (not as of the last training), newest first.
pub async fn interactions_of(store: &Store, user_id: i64) -> Result<Vec<Interaction>> {
    let mut out = Vec::new();
    let mut after = (user_id, ArticleId::MIN);
    loop {
        let page = store.scan_interactions(after, PAGE).await?;
        let n = page.len();
        let mine: Vec<Interaction> = page
            .into_iter()
            .take_while(|i| i.user_id == user_id)
            .collect();
        let done = mine.len() < n || (n as i64) < PAGE;
        if let Some(last) = mine.last() {
            after = (last.user_id, last.article_id);
        }
        out.extend(mine);
        if done {
            break;
        }
    }
    out.sort_by_key(|i| std::cmp::Reverse(i.last_at));
    Ok(out)
}

/// Loads `ids` from the store in order and keeps those `p` may read (the
/// second check after the index's allowed set, which may lag the store).
pub async fn readable_rows(
    store: &Store,
    p: &Principal,
    ids: &[ArticleId],
) -> Result<(Vec<Article>, HashSet<ArticleId>)> {
    let rows = store.get_articles(ids).await?;
    let mut by_id: HashMap<ArticleId, Article> = rows.into_iter().map(|a| (a.id, a)).collect();
    let mut ok = Vec::new();
    let mut rejected = HashSet::new();
    for id in ids {
        match by_id.remove(id) {
            Some(a) if p.can_read(&a) => ok.push(a),
            _ => {
                rejected.insert(*id);
            }
        }
    }
    Ok((ok, rejected))
}
