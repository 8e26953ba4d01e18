//! `kmt-bench recommend`: KMT's collaborative-filtering models on
//! MovieLens 100K's five standard splits (u1..u5 .base/.test), side by
//! side in one run: RMSE, MAE, training time and top-10 ranking quality
//! (precision@10 and nDCG@10 on the held-out items rated 4 or more,
//! ranking every item the user did not rate in training).

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

pub mod ranking;
mod surprise;

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

/// Our models, in table order.
const OURS: [&str; 6] = [
    "most popular (ranking only)",
    "global mean",
    "baseline (biases, ALS)",
    "item-KNN-baseline (k=40, shrunk Pearson-baseline)",
    "biased MF (SGD) — our SVD",
    "blend: ½ MF + ½ KNN",
];

/// A model's row: per split, then the mean.
struct Row {
    name: String,
    ours: bool,
    ranked: bool,
    splits: Vec<Score>,
}

/// Reads split `u<split>` (train, test) on one id map.
fn load_split(data: &Path, split: usize) -> Result<(Dataset, Vec<Triple>, Vec<Triple>)> {
    let mut ds = Dataset::default();
    // Read both files first so the dense indices cover every id.
    let train = read(&mut ds, &data.join(format!("u{split}.base")))?;
    let test = read(&mut ds, &data.join(format!("u{split}.test")))?;
    Ok((ds, train, test))
}

/// Options of a run.
pub struct Spec {
    /// The ml-100k folder.
    pub data: std::path::PathBuf,
    /// Python interpreter with scikit-surprise (None: ours only).
    pub surprise: Option<std::path::PathBuf>,
    /// The command line, for the report.
    pub command: String,
}

/// Runs every model on the five splits — ours and Surprise's interleaved
/// split by split — and returns the markdown section.
pub fn run(spec: &Spec) -> Result<String> {
    let data = spec.data.as_path();
    let mut reference = match &spec.surprise {
        Some(py) => Some(surprise::Surprise::start(py, data)?),
        None => None,
    };
    let mut rows: Vec<Row> = OURS
        .iter()
        .enumerate()
        .map(|(m, name)| Row {
            name: name.to_string(),
            ours: true,
            ranked: m == 0 || m >= 2,
            splits: Vec::new(),
        })
        .collect();
    if reference.is_some() {
        for name in surprise::MODELS {
            rows.push(Row {
                name: format!("Surprise {name} (defaults)"),
                ours: false,
                ranked: false,
                splits: Vec::new(),
            });
        }
    }
    let mut mf_epochs = Vec::new();
    let mf_cfg = MfConfig::default();
    let knn_cfg = KnnConfig::default();
    let started = Instant::now();
    for split in 1..=5 {
        let (ds, train, test) = load_split(data, split)?;
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
        let mut reference_run = |model: usize, rows: &mut Vec<Row>| -> Result<()> {
            if let Some(r) = reference.as_mut() {
                let m = r.run(split, surprise::MODELS[model])?;
                rows[OURS.len() + model].splits.push(Score {
                    rmse: m.rmse,
                    mae: m.mae,
                    fit_s: m.fit_s,
                    p10: f64::NAN,
                    ndcg10: f64::NAN,
                });
            }
            Ok(())
        };
        let mut pop = vec![0f32; ni];
        for t in &train {
            pop[t.item as usize] += 1.0;
        }
        let (p10, ndcg10) = ranking(&train, &test, nu, ni, &|_, i| pop[i as usize]);
        rows[0].splits.push(Score {
            p10,
            ndcg10,
            rmse: f64::NAN,
            mae: f64::NAN,
            fit_s: 0.0,
        });
        let mu = train.iter().map(|t| t.value).sum::<f32>() / train.len() as f32;
        rows[1].splits.push(eval(&|_, _| mu, 0.0, false));

        // Each of Surprise's models right before ours of the same kind.
        reference_run(0, &mut rows)?;
        let t0 = Instant::now();
        let base = Baseline::fit(&train, nu, ni, &knn_cfg);
        let fit = t0.elapsed().as_secs_f64();
        rows[2]
            .splits
            .push(eval(&|u, i| base.predict(u, i), fit, true));

        reference_run(1, &mut rows)?;
        let t0 = Instant::now();
        let knn = ItemKnn::train(&train, nu, ni, &knn_cfg);
        let knn_fit = t0.elapsed().as_secs_f64();
        rows[3]
            .splits
            .push(eval(&|u, i| knn.predict(u, i), knn_fit, true));

        reference_run(2, &mut rows)?;
        let t0 = Instant::now();
        let mf = Mf::train(&train, nu, ni, &mf_cfg);
        let mf_fit = t0.elapsed().as_secs_f64();
        mf_epochs.push(mf.epochs_run);
        rows[4]
            .splits
            .push(eval(&|u, i| mf.predict(u, i), mf_fit, true));
        rows[5].splits.push(eval(
            &|u, i| 0.5 * (mf.predict(u, i) + knn.predict(u, i)),
            mf_fit + knn_fit,
            true,
        ));
        let line: Vec<String> = rows
            .iter()
            .filter_map(|r| {
                let s = r.splits.last()?;
                (!s.rmse.is_nan()).then(|| format!("{} {:.4} ({:.3}s)", r.name, s.rmse, s.fit_s))
            })
            .collect();
        eprintln!("split u{split}: {}", line.join("; "));
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
        "Command: `{}` (release, {} threads available; whole run {:.1} s).\n\n",
        spec.command,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        started.elapsed().as_secs_f64()
    ));
    if let Some(r) = &reference {
        md.push_str(&format!(
            "Surprise {} ran in the same program run (`benches/surprise_reference.py`, a child \
             process of kmt-bench, in a virtualenv under ~/.cache/kmt), split by split right \
             before our model of the same kind, so machine noise hits both. Surprise's fit times \
             are `algo.fit(trainset)` alone, on one core (Surprise does not parallelise); ours \
             are `train` alone, with rayon on the 2 cores.\n\n",
            r.version
        ));
    }
    md.push_str(
        "Mean over the five standard splits u1..u5 (80,000 training and 20,000 test ratings \
         each). Ranking (ours only): every item the user did not rate in training is ranked; \
         the relevant ones are the user's test items rated ≥ 4.\n\n",
    );
    md.push_str(
        "| model | RMSE | MAE | fit s/split | precision@10 | nDCG@10 |\n|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        let s = &r.splits;
        md.push_str(&format!(
            "| {} | {} | {} | {:.3} | {} | {} |\n",
            r.name,
            fmt(mean(s, |x| x.rmse)),
            fmt(mean(s, |x| x.mae)),
            mean(s, |x| x.fit_s),
            if r.ranked {
                fmt(mean(s, |x| x.p10))
            } else {
                "–".into()
            },
            if r.ranked {
                fmt(mean(s, |x| x.ndcg10))
            } else {
                "–".into()
            },
        ));
    }
    md.push_str("\nPer split (RMSE / MAE / fit seconds):\n\n| model | u1 | u2 | u3 | u4 | u5 |\n|---|---|---|---|---|---|\n");
    for r in rows.iter().filter(|r| !r.splits[0].rmse.is_nan()) {
        let cells: Vec<String> = r
            .splits
            .iter()
            .map(|s| format!("{:.4} / {:.4} / {:.3}", s.rmse, s.mae, s.fit_s))
            .collect();
        md.push_str(&format!("| {} | {} |\n", r.name, cells.join(" | ")));
    }
    md.push_str(&format!(
        "\nMF settings (`MfConfig::default()`, what the server trains): {} factors, lr {} (×{} \
         per epoch), reg {} / {} (biases), early stopping on {}% of the training ratings \
         (epochs run per split: {:?}), stratified SGD over {} strata, seed {}. KNN: k {}, \
         shrinkage {}, {} neighbours kept per item.\n\n",
        mf_cfg.factors,
        mf_cfg.lr,
        mf_cfg.lr_decay,
        mf_cfg.reg,
        mf_cfg.reg_bias,
        mf_cfg.holdout * 100.0,
        mf_epochs,
        mf_cfg.strata,
        mf_cfg.seed,
        knn_cfg.k,
        knn_cfg.shrinkage,
        knn_cfg.keep,
    ));
    md.push_str(&goals(&rows, |s: &[Score], f| mean(s, f)));
    Ok(md)
}

/// The goals of issue 5 against what this run measured.
fn goals(rows: &[Row], mean: impl Fn(&[Score], fn(&Score) -> f64) -> f64) -> String {
    let find = |name: &str| rows.iter().find(|r| r.name.starts_with(name));
    let rmse = |r: &Row| mean(&r.splits, |x| x.rmse);
    let fit = |r: &Row| mean(&r.splits, |x| x.fit_s);
    let best = rows
        .iter()
        .filter(|r| r.ours && !rmse(r).is_nan())
        .min_by(|a, b| rmse(a).total_cmp(&rmse(b)));
    let mut s = String::from("| goal (issue 5) | measured | status |\n|---|---|---|\n");
    let status = |ok: bool| if ok { "met" } else { "**not met**" };
    let (ours, theirs) = (find("biased MF"), find("Surprise SVD"));
    if let (Some(o), Some(t)) = (ours, theirs) {
        s.push_str(&format!(
            "| our SVD RMSE ≤ Surprise SVD's, same splits | {:.4} vs {:.4} | {} |\n",
            rmse(o),
            rmse(t),
            status(rmse(o) <= rmse(t))
        ));
        let ratio = fit(t) / fit(o).max(1e-9);
        s.push_str(&format!(
            "| our SVD training ≥ 10× faster than Surprise's, same run | {:.3} s vs {:.3} s per split: {:.1}× | {} |\n",
            fit(o),
            fit(t),
            ratio,
            status(ratio >= 10.0)
        ));
    } else {
        s.push_str("| comparisons with Surprise | Surprise not run (`--surprise PYTHON`) | not measured |\n");
    }
    if let Some(b) = best {
        s.push_str(&format!(
            "| our best model RMSE ≤ 0.92 | {:.4} ({}) | {} |\n",
            rmse(b),
            b.name,
            status(rmse(b) <= 0.92)
        ));
    }
    s
}

/// Replaces (or appends) the recommendations section of `file`.
pub fn write_section(file: &Path, section: &str) -> Result<()> {
    write_marked(file, "recommend", section)
}

/// Replaces (or appends) the block between `<!-- bench:TAG -->` markers.
pub(crate) fn write_marked(file: &Path, tag: &str, section: &str) -> Result<()> {
    let begin = format!("<!-- bench:{tag} -->");
    let end = format!("<!-- /bench:{tag} -->");
    let block = format!("{begin}\n{}\n{end}", section.trim_end());
    let existing = std::fs::read_to_string(file).unwrap_or_else(|_| "# KMT benchmarks\n".into());
    let updated = match (existing.find(&begin), existing.find(&end)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{block}{}", &existing[..b], &existing[e + end.len()..])
        }
        _ => format!("{}\n\n{block}\n", existing.trim_end()),
    };
    std::fs::write(file, updated).with_context(|| format!("write {}", file.display()))
}

/// `kmt-bench recommend --tune`: MF settings tried on a held-out 10% of
/// each split's .base file (the .test files are never read), mean RMSE
/// and training time over the five splits, best first. This is how
/// `MfConfig::default()` was chosen.
pub fn tune(data: &Path, grid: &str) -> Result<String> {
    // `name=v1,v2 name=v3 ...`: every combination is tried.
    let mut axes: Vec<(String, Vec<f64>)> = Vec::new();
    for part in grid.split_whitespace() {
        let (name, values) = part.split_once('=').context("grid item without '='")?;
        let values: Vec<f64> = values
            .split(',')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("grid values of {name}"))?;
        axes.push((name.to_string(), values));
    }
    let mut configs = vec![MfConfig::default()];
    for (name, values) in &axes {
        let mut next = Vec::new();
        for c in &configs {
            for &v in values {
                let mut c = c.clone();
                match name.as_str() {
                    "factors" => c.factors = v as usize,
                    "lr" => c.lr = v as f32,
                    "decay" => c.lr_decay = v as f32,
                    "reg" => c.reg = v as f32,
                    "reg_bias" => c.reg_bias = v as f32,
                    "init_std" => c.init_std = v as f32,
                    "patience" => c.patience = v as usize,
                    "min_gain" => c.min_gain = v,
                    "holdout" => c.holdout = v,
                    "epochs" => c.epochs = v as usize,
                    "strata" => c.strata = v as usize,
                    other => anyhow::bail!("unknown MF setting {other}"),
                }
                next.push(c);
            }
        }
        configs = next;
    }
    let mut splits = Vec::new();
    for split in 1..=5 {
        let mut ds = Dataset::default();
        let base = read(&mut ds, &data.join(format!("u{split}.base")))?;
        let mut rng = recommend::Rng::new(1000 + split as u64);
        let (train, valid) = recommend::split_holdout(&base, 0.1, &mut rng);
        splits.push((ds.users.len(), ds.items.len(), train, valid));
    }
    let mut results: Vec<(f64, f64, f64, &MfConfig)> = Vec::new();
    for cfg in &configs {
        let (mut rmse, mut fit, mut epochs) = (0.0, 0.0, 0.0);
        for (nu, ni, train, valid) in &splits {
            let t0 = Instant::now();
            let m = Mf::train(train, *nu, *ni, cfg);
            fit += t0.elapsed().as_secs_f64();
            rmse += m.rmse(valid);
            epochs += m.epochs_run as f64;
        }
        let n = splits.len() as f64;
        eprintln!("{}: {:.4} {:.3}s", describe(cfg), rmse / n, fit / n);
        results.push((rmse / n, fit / n, epochs / n, cfg));
    }
    results.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut md =
        String::from("| MF settings | validation RMSE | fit s | epochs |\n|---|---|---|---|\n");
    for (rmse, fit, epochs, c) in results {
        md.push_str(&format!(
            "| {} | {rmse:.4} | {fit:.3} | {epochs:.1} |\n",
            describe(c)
        ));
    }
    Ok(md)
}

fn describe(c: &MfConfig) -> String {
    format!(
        "factors {} lr {} decay {} reg {} reg_bias {} init_std {} patience {} min_gain {} holdout {} strata {}",
        c.factors,
        c.lr,
        c.lr_decay,
        c.reg,
        c.reg_bias,
        c.init_std,
        c.patience,
        c.min_gain,
        c.holdout,
        c.strata
    )
}
