//! `kmt-bench recommend-rank`: ranking quality of "recommended for you" on
//! MovieLens 100K with leave-last-out — each user's last rating (by
//! timestamp) is the test item, everything before it is the history;
//! hit-rate@10 and nDCG@10 over every unseen movie.
//!
//! The movies are articles whose text is their title (u.item), embedded
//! with the real model; the ratings are star ratings. Every source is
//! scored by `engine::recommend::score` — the functions `for_user` calls —
//! on a `Models` built by `Models::new` like the server's, so CF (MF
//! predicted rating and factor-space neighbours), content (the profile
//! vector searched in the article vector index) and the blend are the
//! product's code. The blend's weights were chosen on a validation split
//! (each user's second-to-last rating as the target, history before it);
//! the grid and its winner are printed with the results.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, TimeZone, Utc};
use engine::model::{Article, Interaction, Status};
use engine::recommend::score::{self, Cand, Weights};
use engine::recommend::serve::{ModelInfo, Models};
use engine::recommend::{Dataset, Mf, MfConfig};
use engine::vector::{Allowed, SearchParams, VectorIndex};
use rayon::prelude::*;

use crate::relevance::{vectors, EmbedderChoice};

/// A table row: name, test (hit-rate, nDCG), validation (hit-rate, nDCG).
type TableRow = (String, (f64, f64), Option<(f64, f64)>);

/// Options of a run.
pub struct RankSpec {
    /// The ml-100k folder (u.data, u.item).
    pub data: PathBuf,
    /// Model directory.
    pub model_dir: PathBuf,
    /// Cache of title vectors.
    pub cache: PathBuf,
    /// The command line, for the report.
    pub command: String,
}

/// Candidates per source, as `for_user` asks for (4 × the page of 10).
const POOL: usize = 40;
const TOP: usize = 10;

/// One rating.
#[derive(Clone, Copy)]
struct Rating {
    user: i64,
    item: i64,
    stars: i32,
    at: i64,
}

fn read_ratings(path: &Path) -> Result<Vec<Rating>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        anyhow::ensure!(f.len() >= 4, "short line {line:?}");
        out.push(Rating {
            user: f[0].parse()?,
            item: f[1].parse()?,
            stars: f[2].parse()?,
            at: f[3].parse()?,
        });
    }
    Ok(out)
}

/// Movies as articles: id and title (u.item is Latin-1).
fn read_movies(path: &Path) -> Result<Vec<Article>> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let text: String = bytes.iter().map(|&b| b as char).collect();
    let now = Utc::now();
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('|').collect();
        anyhow::ensure!(f.len() >= 2, "short line {line:?}");
        let id: i64 = f[0].parse()?;
        out.push(Article {
            id,
            slug: format!("movie-{id}"),
            title: f[1].to_string(),
            summary: String::new(),
            body: String::new(),
            category: "movies".into(),
            tags: Vec::new(),
            audience: Default::default(),
            status: Status::Published,
            owner: "bench".into(),
            version: 1,
            created_at: now,
            updated_at: now,
            published_at: Some(now),
            review_due: None,
        });
    }
    Ok(out)
}

fn time(at: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(at, 0).single().unwrap_or_default()
}

/// One evaluation: per user, the history and the target.
struct Fold {
    history: HashMap<i64, Vec<Rating>>,
    target: HashMap<i64, Rating>,
}

/// Per user, ratings by time; `drop` = 1 holds out the last one, 2 the
/// second-to-last (and leaves the last out entirely).
fn fold(ratings: &[Rating], drop: usize) -> Fold {
    let mut by_user: HashMap<i64, Vec<Rating>> = HashMap::new();
    for r in ratings {
        by_user.entry(r.user).or_default().push(*r);
    }
    let mut history = HashMap::new();
    let mut target = HashMap::new();
    for (u, mut v) in by_user {
        v.sort_by_key(|r| (r.at, r.item));
        if v.len() <= drop {
            continue;
        }
        let t = v[v.len() - drop];
        v.truncate(v.len() - drop);
        target.insert(u, t);
        history.insert(u, v);
    }
    Fold { history, target }
}

/// Trains MF on the history like the server does (`MfConfig::default()`)
/// and puts the models together.
fn models(f: &Fold) -> Models {
    let mut data = Dataset::default();
    let mut users_of: HashMap<i64, f32> = HashMap::new();
    let mut users: Vec<&i64> = f.history.keys().collect();
    users.sort();
    for u in users {
        for r in &f.history[u] {
            data.push(r.user, r.item, r.stars as f32, 1.0);
            *users_of.entry(r.item).or_default() += 1.0;
        }
    }
    let (nu, ni) = (data.users.len(), data.items.len());
    let mf = Mf::train(&data.triples, nu, ni, &MfConfig::default());
    let mut popular: Vec<(i64, f32)> = users_of.into_iter().collect();
    popular.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let info = ModelInfo {
        generation: 1,
        trained_at: Utc::now(),
        users: nu,
        articles: ni,
        pairs: data.triples.len(),
    };
    Models::new(info, data, mf, popular, HashMap::new(), HashMap::new())
}

/// Every user's candidates from every source.
struct UserCands {
    target: i64,
    seen: HashSet<i64>,
    cands: HashMap<i64, Cand>,
}

fn gather(f: &Fold, m: &Models, vecs: &VectorIndex, allowed: &Allowed) -> Vec<UserCands> {
    let mut users: Vec<i64> = f.target.keys().copied().collect();
    users.sort();
    users
        .par_iter()
        .map(|u| {
            let hist = &f.history[u];
            let now = time(f.target[u].at);
            // Newest first, as `interactions_of` returns them.
            let mine: Vec<Interaction> = hist
                .iter()
                .rev()
                .map(|r| Interaction {
                    user_id: r.user,
                    article_id: r.item,
                    views: 1,
                    clicks: 0,
                    dwell_ms: 0,
                    stars: Some(r.stars),
                    helpful: None,
                    last_at: time(r.at),
                })
                .collect();
            let seen: HashSet<i64> = hist.iter().map(|r| r.item).collect();
            let ok = |id: i64| allowed.contains(id) && !seen.contains(&id);
            let mut cands = HashMap::new();
            score::collaborative(m, *u, POOL, &ok, &mut cands);
            score::neighbours(m, &mine, POOL, &ok, &mut cands);
            score::popular(m, POOL, &ok, &mut cands);
            score::content(
                vecs,
                SearchParams::default(),
                &mine,
                allowed,
                &seen,
                now,
                POOL,
                &mut cands,
            );
            UserCands {
                target: f.target[u].item,
                seen,
                cands,
            }
        })
        .collect()
}

/// Hit-rate@10 and nDCG@10 of the blend with `w`, the list filled with
/// the most popular unseen movies when the sources give fewer than 10
/// (as `for_user` falls back to popular articles).
fn evaluate(users: &[UserCands], popular: &[(i64, f32)], w: Weights) -> (f64, f64) {
    let per: Vec<(f64, f64)> = users
        .par_iter()
        .map(|uc| {
            let kept: HashMap<i64, Cand> = uc
                .cands
                .iter()
                .map(|(id, c)| {
                    let c = Cand {
                        cf: if w.cf > 0.0 { c.cf } else { 0.0 },
                        neighbour: if w.neighbour > 0.0 { c.neighbour } else { 0.0 },
                        content: if w.content > 0.0 { c.content } else { 0.0 },
                        popular: if w.popular > 0.0 { c.popular } else { 0.0 },
                        because: Vec::new(),
                    };
                    (*id, c)
                })
                .filter(|(_, c)| {
                    c.cf > 0.0 || c.neighbour > 0.0 || c.content > 0.0 || c.popular > 0.0
                })
                .collect();
            let ranked = score::rank(kept, w);
            let mut list: Vec<i64> = ranked.iter().map(|r| r.0).take(TOP).collect();
            for (id, _) in popular {
                if list.len() >= TOP {
                    break;
                }
                if !uc.seen.contains(id) && !list.contains(id) {
                    list.push(*id);
                }
            }
            hit(&list, uc.target)
        })
        .collect();
    mean(&per)
}

fn hit(list: &[i64], target: i64) -> (f64, f64) {
    match list.iter().take(TOP).position(|&i| i == target) {
        Some(r) => (1.0, 1.0 / ((r + 2) as f64).log2()),
        None => (0.0, 0.0),
    }
}

fn mean(v: &[(f64, f64)]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    (
        v.iter().map(|x| x.0).sum::<f64>() / n,
        v.iter().map(|x| x.1).sum::<f64>() / n,
    )
}

fn most_popular(users: &[UserCands], popular: &[(i64, f32)]) -> (f64, f64) {
    let per: Vec<(f64, f64)> = users
        .iter()
        .map(|uc| {
            let list: Vec<i64> = popular
                .iter()
                .map(|p| p.0)
                .filter(|i| !uc.seen.contains(i))
                .take(TOP)
                .collect();
            hit(&list, uc.target)
        })
        .collect();
    mean(&per)
}

/// The weight grid searched on the validation fold.
fn grid() -> Vec<Weights> {
    let steps = [0.0f32, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
    let mut out = Vec::new();
    for &popular in &[0.0f32, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0] {
        for &cf in &steps {
            for &neighbour in &steps {
                let content = 1.0 - cf - neighbour;
                if content < -1e-6 {
                    continue;
                }
                out.push(Weights {
                    cf,
                    neighbour,
                    // Rounded so that the report prints 0.3, not 0.29999995.
                    content: (content.max(0.0) * 10.0).round() / 10.0,
                    popular,
                });
            }
        }
    }
    out
}

/// Runs the benchmark and returns the markdown section.
pub fn run(spec: &RankSpec) -> Result<String> {
    let started = Instant::now();
    let ratings = read_ratings(&spec.data.join("u.data"))?;
    let movies = read_movies(&spec.data.join("u.item"))?;
    let model = EmbedderChoice::Local.load(&spec.model_dir)?;
    let vecs = vectors(&movies, &*model, &spec.cache)?;
    let index = Arc::new(VectorIndex::build(model.dim(), vecs));
    let allowed = Allowed::from_ids(movies.iter().map(|m| m.id).collect());

    let valid = fold(&ratings, 2);
    let vm = models(&valid);
    let vu = gather(&valid, &vm, &index, &allowed);
    let mut tried: Vec<(Weights, (f64, f64))> = grid()
        .into_iter()
        .map(|w| (w, evaluate(&vu, &vm.popular, w)))
        .collect();
    tried.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
    let chosen = tried[0].0;
    eprintln!("validation: best {:?} {:?}", chosen, tried[0].1);

    let test = fold(&ratings, 1);
    let tm = models(&test);
    let tu = gather(&test, &tm, &index, &allowed);
    let product = Weights::default();
    let rows: Vec<TableRow> = vec![
        (
            "most popular".into(),
            most_popular(&tu, &tm.popular),
            Some(most_popular(&vu, &vm.popular)),
        ),
        one(
            "CF: MF predicted rating",
            &tu,
            &vu,
            &tm,
            &vm,
            w(1.0, 0.0, 0.0),
        ),
        one(
            "CF: item neighbours in MF factor space",
            &tu,
            &vu,
            &tm,
            &vm,
            w(0.0, 1.0, 0.0),
        ),
        one(
            "CF (both, the product's CF weights)",
            &tu,
            &vu,
            &tm,
            &vm,
            w(product.cf, product.neighbour, 0.0),
        ),
        one(
            "content: profile vector of titles (MiniLM)",
            &tu,
            &vu,
            &tm,
            &vm,
            w(0.0, 0.0, 1.0),
        ),
        one(
            &format!(
                "blend, product weights ({} / {} / {} + popularity {})",
                product.cf, product.neighbour, product.content, product.popular
            ),
            &tu,
            &vu,
            &tm,
            &vm,
            product,
        ),
        one(
            &format!(
                "blend, best on validation ({} / {} / {} + popularity {})",
                chosen.cf, chosen.neighbour, chosen.content, chosen.popular
            ),
            &tu,
            &vu,
            &tm,
            &vm,
            chosen,
        ),
    ];
    let mut md = String::from("## Recommendations: ranking quality (leave-last-out, ml-100k)\n\n");
    md.push_str(&format!(
        "Command: `{}` (release; whole run {:.1} s). {} users, {} movies; each user's last \
         rating by time is the target, the history before it is what the models train on and \
         what the user has seen; every unseen movie is a candidate. Article text = the movie \
         title (u.item), embedded with all-MiniLM-L6-v2. The sources are scored by \
         `engine::recommend::score` (what `GET /v1/recommendations` runs) with {POOL} \
         candidates per source, on models put together by `Models::new` from \
         `MfConfig::default()`; lists shorter than 10 are filled with the most popular \
         unseen movies, as the server's fallback does. Weights (CF / neighbours / content, \
         summing to 1 in steps of 0.1, plus a popularity prior of weight 0–3 on the share of \
         users of the most used movie) were chosen on a validation fold (target = \
         second-to-last rating, history before it; best nDCG@10); the test fold was not used \
         to choose anything.\n\n",
        spec.command,
        started.elapsed().as_secs_f64(),
        tu.len(),
        movies.len()
    ));
    md.push_str("| model | hit-rate@10 | nDCG@10 | validation hit-rate@10 | validation nDCG@10 |\n|---|---|---|---|---|\n");
    for (name, (h, n), v) in &rows {
        let (vh, vn) = v.unwrap_or((f64::NAN, f64::NAN));
        md.push_str(&format!(
            "| {name} | {h:.4} | {n:.4} | {vh:.4} | {vn:.4} |\n"
        ));
    }
    md.push_str("\nBest five weightings on validation (nDCG@10):\n\n");
    for (w, (h, n)) in tried.iter().take(5) {
        md.push_str(&format!(
            "- CF {} / neighbours {} / content {} + popularity {}: hit-rate {h:.4}, nDCG {n:.4}\n",
            w.cf, w.neighbour, w.content, w.popular
        ));
    }
    Ok(md)
}

fn w(cf: f32, neighbour: f32, content: f32) -> Weights {
    Weights {
        cf,
        neighbour,
        content,
        popular: 0.0,
    }
}

fn one(
    name: &str,
    tu: &[UserCands],
    vu: &[UserCands],
    tm: &Models,
    vm: &Models,
    w: Weights,
) -> TableRow {
    (
        name.to_string(),
        evaluate(tu, &tm.popular, w),
        Some(evaluate(vu, &vm.popular, w)),
    )
}

/// Replaces (or appends) the ranking section of `file`.
pub fn write_section(file: &Path, section: &str) -> Result<()> {
    super::write_marked(file, "recommend-rank", section)
}
