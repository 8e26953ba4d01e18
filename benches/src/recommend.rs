//! `kmt-bench recommend`: KMT's collaborative-filtering models on
//! MovieLens 100K's five standard splits (u1..u5 .base/.test), side by
//! side in one run: RMSE, MAE, training time and top-10 ranking quality
//! (precision@10 and nDCG@10 on the held-out items rated 4 or more,
//! ranking every item the user did not rate in training).

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use engine::recommend::{self, Baseline, Dataset, ItemKnn, KnnConfig, Mf, MfConfig, Triple};

/// What one model scored on one split.
#[derive(Default, Clone)]
struct Score {
    rmse: f64,
    mae: f64,
    fit_s: f64,
    p10: f64,
    ndcg10: f64,
}

/// Reads one split file (`user item rating timestamp`, tab-separated).
fn read(ds: &mut Dataset, path: &Path) -> Result<Vec<Triple>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let mut f = line.split('\t');
        let mut next = || f.next().context("short line");
        let (u, i, r): (i64, i64, f32) = (next()?.parse()?, next()?.parse()?, next()?.parse()?);
        out.push(Triple {
            user: ds.user(u),
            item: ds.item(i),
            value: r,
            weight: 1.0,
        });
    }
    Ok(out)
}

/// Precision@10 and nDCG@10 of `score` over every user with a relevant
/// held-out item.
fn ranking(
    train: &[Triple],
    test: &[Triple],
    n_users: usize,
    n_items: usize,
    score: &(dyn Fn(u32, u32) -> f32 + Sync),
) -> (f64, f64) {
    use rayon::prelude::*;
    let mut seen = vec![HashSet::new(); n_users];
    for t in train {
        seen[t.user as usize].insert(t.item);
    }
    let mut relevant = vec![HashSet::new(); n_users];
    for t in test.iter().filter(|t| t.value >= 4.0) {
        relevant[t.user as usize].insert(t.item);
    }
    let per_user: Vec<(f64, f64)> = (0..n_users)
        .into_par_iter()
        .filter(|&u| !relevant[u].is_empty())
        .map(|u| {
            let mut cands: Vec<(u32, f32)> = (0..n_items as u32)
                .filter(|i| !seen[u].contains(i))
                .map(|i| (i, score(u as u32, i)))
                .collect();
            cands.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let rel = &relevant[u];
            let (mut hits, mut dcg) = (0.0, 0.0);
            for (rank, (i, _)) in cands.iter().take(10).enumerate() {
                if rel.contains(i) {
                    hits += 1.0;
                    dcg += 1.0 / ((rank + 2) as f64).log2();
                }
            }
            let ideal: f64 = (0..rel.len().min(10))
                .map(|r| 1.0 / ((r + 2) as f64).log2())
                .sum();
            (hits / 10.0, dcg / ideal)
        })
        .collect();
    let n = per_user.len().max(1) as f64;
    (
        per_user.iter().map(|x| x.0).sum::<f64>() / n,
        per_user.iter().map(|x| x.1).sum::<f64>() / n,
    )
}

const MODELS: [&str; 6] = [
    "most popular (ranking only)",
    "global mean",
    "baseline (biases, ALS)",
    "item-KNN-baseline (k=40, shrunk Pearson-baseline)",
    "biased MF (SGD)",
    "blend: ½ MF + ½ KNN",
];

/// Runs every model on the five splits and returns the markdown section.
pub fn run(data: &Path, command: &str) -> Result<String> {
    let mut scores: Vec<Vec<Score>> = vec![Vec::new(); MODELS.len()];
    let mut mf_epochs = Vec::new();
    let mf_cfg = MfConfig::default();
    let knn_cfg = KnnConfig::default();
    let started = Instant::now();
    for split in 1..=5 {
        let mut ds = Dataset::default();
        // Read both files first so the dense indices cover every id.
        let train = read(&mut ds, &data.join(format!("u{split}.base")))?;
        let test = read(&mut ds, &data.join(format!("u{split}.test")))?;
        let (nu, ni) = (ds.users.len(), ds.items.len());
        let eval = |predict: &(dyn Fn(u32, u32) -> f32 + Sync), fit_s: f64, rank: bool| {
            let (p10, ndcg10) = if rank {
                ranking(&train, &test, nu, ni, predict)
            } else {
                (0.0, 0.0)
            };
            Score {
                rmse: recommend::rmse(&test, predict),
                mae: recommend::mae(&test, predict),
                fit_s,
                p10,
                ndcg10,
            }
        };
        let mut pop = vec![0f32; ni];
        for t in &train {
            pop[t.item as usize] += 1.0;
        }
        let (p10, ndcg10) = ranking(&train, &test, nu, ni, &|_, i| pop[i as usize]);
        scores[0].push(Score {
            p10,
            ndcg10,
            rmse: f64::NAN,
            mae: f64::NAN,
            fit_s: 0.0,
        });
        let mu = train.iter().map(|t| t.value).sum::<f32>() / train.len() as f32;
        scores[1].push(eval(&|_, _| mu, 0.0, false));

        let t0 = Instant::now();
        let base = Baseline::fit(&train, nu, ni, &knn_cfg);
        let fit = t0.elapsed().as_secs_f64();
        scores[2].push(eval(&|u, i| base.predict(u, i), fit, true));

        let t0 = Instant::now();
        let knn = ItemKnn::train(&train, nu, ni, &knn_cfg);
        let knn_fit = t0.elapsed().as_secs_f64();
        scores[3].push(eval(&|u, i| knn.predict(u, i), knn_fit, true));

        let t0 = Instant::now();
        let mf = Mf::train(&train, nu, ni, &mf_cfg);
        let mf_fit = t0.elapsed().as_secs_f64();
        mf_epochs.push(mf.epochs_run);
        scores[4].push(eval(&|u, i| mf.predict(u, i), mf_fit, true));
        scores[5].push(eval(
            &|u, i| 0.5 * (mf.predict(u, i) + knn.predict(u, i)),
            mf_fit + knn_fit,
            true,
        ));
        eprintln!(
            "split u{split}: knn {:.4} mf {:.4} ({} epochs, {:.2}s) blend {:.4}",
            scores[3][split - 1].rmse,
            scores[4][split - 1].rmse,
            mf.epochs_run,
            mf_fit,
            scores[5][split - 1].rmse
        );
    }
    let mean = |v: &[Score], f: fn(&Score) -> f64| v.iter().map(f).sum::<f64>() / v.len() as f64;
    let fmt = |x: f64| {
        if x.is_nan() {
            "–".to_string()
        } else {
            format!("{x:.4}")
        }
    };
    let mut md = String::new();
    md.push_str("## Recommendations: collaborative filtering on MovieLens 100K\n\n");
    md.push_str(&format!(
        "Command: `{command}` (release, {} threads available; whole run {:.1} s).\n\n",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        started.elapsed().as_secs_f64()
    ));
    md.push_str(
        "Mean over the five standard splits u1..u5 (80,000 training and 20,000 test ratings \
         each). Ranking: every item the user did not rate in training is ranked; the relevant \
         ones are the user's test items rated ≥ 4.\n\n",
    );
    md.push_str(
        "| model | RMSE | MAE | fit s/split | precision@10 | nDCG@10 |\n|---|---|---|---|---|---|\n",
    );
    for (m, name) in MODELS.iter().enumerate() {
        let s = &scores[m];
        let ranked = m == 0 || m >= 2;
        md.push_str(&format!(
            "| {name} | {} | {} | {:.3} | {} | {} |\n",
            fmt(mean(s, |x| x.rmse)),
            fmt(mean(s, |x| x.mae)),
            mean(s, |x| x.fit_s),
            if ranked {
                fmt(mean(s, |x| x.p10))
            } else {
                "–".into()
            },
            if ranked {
                fmt(mean(s, |x| x.ndcg10))
            } else {
                "–".into()
            },
        ));
    }
    let (knn, mf, blend) = (
        mean(&scores[3], |x| x.rmse),
        mean(&scores[4], |x| x.rmse),
        mean(&scores[5], |x| x.rmse),
    );
    md.push_str(&format!(
        "\nMF settings: {} factors, lr {} (×{} per epoch), reg {} / {} (biases), early stopping \
         on 5% of the training ratings (epochs run per split: {:?}), stratified SGD over {} \
         strata, seed {}. KNN: k {}, shrinkage {}, {} neighbours kept per item.\n\n",
        mf_cfg.factors,
        mf_cfg.lr,
        mf_cfg.lr_decay,
        mf_cfg.reg,
        mf_cfg.reg_bias,
        mf_epochs,
        mf_cfg.strata,
        mf_cfg.seed,
        knn_cfg.k,
        knn_cfg.shrinkage,
        knn_cfg.keep,
    ));
    let rel = |a: f64, b: f64| {
        let d = 100.0 * (a / b - 1.0);
        if d <= 0.0 {
            format!("{:.1}% below", -d)
        } else {
            format!("{d:.1}% above")
        }
    };
    md.push_str(&format!(
        "Reading: MF's RMSE is {} KNN's, the blend's {} KNN's. For reference, the *published* \
         figures of the Python library Surprise on ml-100k (its documentation's benchmark table, \
         5-fold cross-validation; not measured here) are SVD 0.934, KNNBaseline 0.931, NMF \
         0.963, and issue 5 quotes Surprise 1.1 measured on these u1..u5 splits as BaselineOnly \
         0.946, SVD 0.938 (fit 0.34 s per split), KNNBaseline 0.932. Against those quoted \
         figures: our MF is {} Surprise SVD's, our KNN {} Surprise KNNBaseline's (the model the \
         original system chose), our blend {} it. Surprise was not run in this program, so the \
         training-time comparison is against the quoted 0.34 s only. Ranking: a rating \
         predictor ranks by predicted stars, which favours rarely rated items; most-popular is a \
         strong top-10 baseline on ml-100k, which is why serving blends CF with item neighbours \
         and popularity rather than ranking by MF alone.\n",
        rel(mf, knn),
        rel(blend, knn),
        rel(mf, 0.938),
        rel(knn, 0.932),
        rel(blend, 0.932),
    ));
    Ok(md)
}

/// Replaces (or appends) the recommendations section of `file`.
pub fn write_section(file: &Path, section: &str) -> Result<()> {
    const BEGIN: &str = "<!-- bench:recommend -->";
    const END: &str = "<!-- /bench:recommend -->";
    let block = format!("{BEGIN}\n{}\n{END}", section.trim_end());
    let existing = std::fs::read_to_string(file).unwrap_or_else(|_| "# KMT benchmarks\n".into());
    let updated = match (existing.find(BEGIN), existing.find(END)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{block}{}", &existing[..b], &existing[e + END.len()..])
        }
        _ => format!("{}\n\n{block}\n", existing.trim_end()),
    };
    std::fs::write(file, updated).with_context(|| format!("write {}", file.display()))
}
