//! `ann`: recall and speed of KMT's vector index (`engine::vector`, HNSW
//! through hnsw_rs) against exact search.
//!
//! The data are real all-MiniLM-L6-v2 vectors of real passages: the 5,000
//! MS MARCO passages of `msmarco-5k`, then the PostgreSQL manual (`pgdocs`)
//! cut by `engine::embed::passages` (again with the windows shifted when one
//! cut is not enough), up to `--real` passages. The rest of the `--vectors`
//! are derived from them: a real vector plus a small Gaussian perturbation,
//! renormalised. Every vector is its own article (one passage each).
//! Queries are real too: the 50 `msmarco-5k` queries and pgdocs page titles.
//!
//! Embeddings are cached on disk (a little-endian `f32` file and a JSON
//! header per text set), so reruns do not embed again; an interrupted
//! embedding run resumes where it stopped.
//!
//! Measured: build time, self-recall and memory; recall@10 and latency of
//! unfiltered graph searches at several `ef` against the exact scan; and,
//! for allow-lists of decreasing size, the exact scan of the allowed vectors
//! against the filtered graph walk (the crossover that `exact_below` should
//! sit at).

mod data;
mod report;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use engine::vector::{Allowed, ArticleScore, Plan, SearchParams, VectorIndex, DEFAULT_EF};
use hnsw_rs::prelude::{DistDot, Hnsw};

use data::*;
pub use report::write_section;
use report::{crossover_text, goal_text};

/// The graph parameters of `engine/src/vector/mod.rs` (private there; keep
/// in step), for the walk of a bare hnsw_rs graph: neighbours per node.
const RAW_MAX_CONNECTIONS: usize = 16;
/// Candidate list size while building the bare graph.
const RAW_EF_CONSTRUCTION: usize = 128;
/// Layers of the bare graph.
const RAW_MAX_LAYERS: usize = 16;
/// Neighbours compared for recall.
const K: usize = 10;
/// Texts per `embed` call while filling the cache.
const EMBED_CHUNK: usize = 128;
/// Seconds between progress lines while embedding.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Word offsets of the successive pgdocs cuts (half, then quarter strides of
/// `passages`' 120-word step), used one after the other until enough
/// passages exist.
const PGDOCS_SHIFTS: [usize; 4] = [0, 60, 30, 90];
/// Shares of the vectors allowed in the filtered measurements.
const FILTER_SHARES: [f64; 7] = [0.5, 0.25, 0.1, 0.05, 0.02, 0.01, 0.001];
/// Recall@10 and speed-up over exact search the unfiltered graph must reach.
const GOAL_RECALL: f64 = 0.95;
/// See [`GOAL_RECALL`].
const GOAL_SPEEDUP: f64 = 20.0;

/// What to measure.
pub struct AnnSpec {
    /// Folder holding `msmarco-5k/` and `pgdocs/`.
    pub corpora: PathBuf,
    /// Embedding cache folder.
    pub cache: PathBuf,
    /// Model directory.
    pub model_dir: PathBuf,
    /// Vectors in the index.
    pub vectors: usize,
    /// Real (embedded) passages among them.
    pub real: usize,
    /// Query count (50 msmarco queries, the rest pgdocs titles).
    pub queries: usize,
    /// Norm of the perturbation relative to the unit vector it perturbs.
    pub noise: f32,
    /// `ef` values of the unfiltered graph searches.
    pub efs: Vec<usize>,
    /// Seed of the derived vectors and allow-lists.
    pub seed: u64,
    /// Also build a bare hnsw_rs graph of the same parameters and time its
    /// walk alone (no slot table, filter or planning).
    pub raw_graph: bool,
    /// The command line, for the report.
    pub command: String,
}

/// `VmRSS` and `VmHWM` (peak) of this process in bytes, if readable.
fn memory() -> (Option<u64>, Option<u64>) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return (None, None);
    };
    let field = |name: &str| {
        status.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kb * 1024)
        })
    };
    (field("VmRSS"), field("VmHWM"))
}

fn mib(b: Option<u64>) -> String {
    b.map_or("n/a".into(), |b| {
        format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0))
    })
}

/// Latencies of one series of queries.
#[derive(Default, Clone)]
pub(super) struct Lat(pub(super) Vec<Duration>);

impl Lat {
    pub(super) fn mean_ms(&self) -> f64 {
        self.0.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / self.0.len().max(1) as f64
    }

    pub(super) fn pct_ms(&self, p: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort();
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1e3
    }
}

/// Share of `truth`'s ids that `got` holds.
fn recall(got: &[ArticleScore], truth: &[ArticleScore]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let t: HashSet<i64> = truth.iter().map(|a| a.id).collect();
    got.iter().filter(|a| t.contains(&a.id)).count() as f64 / truth.len() as f64
}

/// One unfiltered row.
pub(super) struct Row {
    pub(super) name: String,
    pub(super) ef: Option<usize>,
    pub(super) recall: f64,
    pub(super) lat: Lat,
    pub(super) graph_plans: usize,
    /// A bare hnsw_rs graph rather than `VectorIndex::search`.
    pub(super) raw: bool,
}

/// One filtered row.
pub(super) struct FilterRow {
    pub(super) share: f64,
    pub(super) vectors: usize,
    pub(super) exact: Lat,
    pub(super) graph: Lat,
    pub(super) graph_recall: f64,
    /// Queries the forced-graph search really ran on the graph.
    pub(super) graph_plans: usize,
    /// Plan of `SearchParams::default()`.
    pub(super) default_plan: Plan,
}

fn run_queries(
    idx: &VectorIndex,
    queries: &[&[f32]],
    allowed: &Allowed,
    params: SearchParams,
) -> (Vec<Vec<ArticleScore>>, Lat, usize) {
    // Warm-up (caches, rayon threads).
    for q in queries.iter().take(10) {
        let _ = idx.search(q, allowed, K, params);
    }
    let mut out = Vec::with_capacity(queries.len());
    let mut lat = Lat::default();
    let mut graph = 0;
    for q in queries {
        let t = Instant::now();
        let (r, plan) = idx.search(q, allowed, K, params);
        lat.0.push(t.elapsed());
        graph += usize::from(plan == Plan::Graph);
        out.push(r);
    }
    (out, lat, graph)
}

fn mean_recall(got: &[Vec<ArticleScore>], truth: &[Vec<ArticleScore>]) -> f64 {
    got.iter()
        .zip(truth)
        .map(|(g, t)| recall(g, t))
        .sum::<f64>()
        / got.len().max(1) as f64
}

/// Runs the benchmark; returns the markdown section (heading included).
pub fn run(spec: &AnnSpec) -> Result<String> {
    if spec.real == 0 || spec.real > spec.vectors {
        bail!("--real must be between 1 and --vectors");
    }
    if spec.queries < 1 {
        bail!("--queries must be positive");
    }
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let t = texts(&spec.corpora, spec.real, spec.queries)?;
    eprintln!(
        "{} real passages ({} msmarco, {} pgdocs in {} cut(s)), {} queries",
        t.passages.len(),
        t.msmarco,
        t.pgdocs,
        t.pgdocs_cuts,
        t.queries.len()
    );
    let mut model = Model {
        dir: spec.model_dir.clone(),
        loaded: None,
    };
    let name = format!("passages-{}", spec.real);
    let cached = spec.cache.join(format!("{name}.json")).is_file();
    let pas = match prefix_of_longer(&spec.cache, &spec.corpora, &t.passages)? {
        Some(e) if !cached => e,
        _ => embed_cached(&spec.cache, &name, &t.passages, &mut model)?,
    };
    let qv = embed_cached(
        &spec.cache,
        &format!("queries-{}", t.queries.len()),
        &t.queries,
        &mut model,
    )?;
    drop(model);
    let dim = pas.dim;
    if qv.dim != dim {
        bail!("query vectors are {}-d, passages {dim}-d", qv.dim);
    }
    let mut flat = pas.flat;
    let cos = derive(
        &mut flat,
        dim,
        spec.real,
        spec.vectors,
        spec.noise,
        spec.seed,
    );
    let n = spec.vectors;
    let queries: Vec<&[f32]> = qv.flat.chunks_exact(dim).collect();

    // Build.
    let (rss_base, _) = memory();
    let articles: Vec<(i64, String, Vec<Vec<f32>>)> = flat
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, v)| (i as i64, String::new(), vec![v.to_vec()]))
        .collect();
    let (rss_before, _) = memory();
    eprintln!("building the index of {n} vectors");
    let t0 = Instant::now();
    let idx = VectorIndex::build(dim, articles);
    let build = t0.elapsed();
    let (rss_after, hwm) = memory();
    let stats = idx.stats();
    eprintln!(
        "built in {:.1} s; checking self-recall",
        build.as_secs_f64()
    );
    let t0 = Instant::now();
    let self_recall = idx.self_recall();
    let self_recall_time = t0.elapsed();

    // Unfiltered: every vector allowed.
    let all = Allowed::from_ids((0..n as i64).collect());
    eprintln!("unfiltered searches");
    let exact_params = SearchParams {
        ef: DEFAULT_EF,
        exact_below: usize::MAX,
        exact_fraction: 1.0,
    };
    let (truth, exact_lat, _) = run_queries(&idx, &queries, &all, exact_params);
    let mut raw_exact = Lat::default();
    for q in &queries {
        let t = Instant::now();
        let r = idx.search_exact(q, &all, K);
        raw_exact.0.push(t.elapsed());
        std::hint::black_box(r);
    }
    let mut rows = vec![
        Row {
            name: "exact scan, `search` (plans, then scans)".into(),
            ef: None,
            recall: 1.0,
            lat: exact_lat.clone(),
            graph_plans: 0,
            raw: false,
        },
        Row {
            name: "exact scan, `search_exact` (no planning)".into(),
            ef: None,
            recall: 1.0,
            lat: raw_exact,
            graph_plans: 0,
            raw: false,
        },
    ];
    for &ef in &spec.efs {
        let (got, lat, graph) = run_queries(
            &idx,
            &queries,
            &all,
            SearchParams {
                ef,
                exact_below: 0,
                exact_fraction: 0.0,
            },
        );
        rows.push(Row {
            name: "graph".into(),
            ef: Some(ef),
            recall: mean_recall(&got, &truth),
            lat,
            graph_plans: graph,
            raw: false,
        });
    }
    let exact_mean = exact_lat.mean_ms();

    // Filtered: allow-lists of decreasing size, random members.
    let mut frows = Vec::new();
    let mut rng = Rng(spec.seed ^ 0xA11_0E0);
    for share in FILTER_SHARES {
        let m = ((n as f64 * share).round() as usize).clamp(1, n);
        // Partial Fisher–Yates over the ids.
        let mut ids: Vec<i64> = (0..n as i64).collect();
        for i in 0..m {
            let j = i + rng.below(n - i);
            ids.swap(i, j);
        }
        ids.truncate(m);
        let allowed = Allowed::from_ids(ids);
        eprintln!("filtered searches, {m} allowed");
        let (truth, exact, _) = run_queries(&idx, &queries, &allowed, exact_params);
        let (got, graph, graph_plans) = run_queries(
            &idx,
            &queries,
            &allowed,
            SearchParams {
                ef: DEFAULT_EF,
                exact_below: 0,
                exact_fraction: 0.0,
            },
        );
        let (_, default_plan) = idx.search(queries[0], &allowed, K, SearchParams::default());
        frows.push(FilterRow {
            share,
            vectors: m,
            exact,
            graph,
            graph_recall: mean_recall(&got, &truth),
            graph_plans,
            default_plan,
        });
    }

    // The walk alone: a bare hnsw_rs graph of the same parameters.
    let mut raw_build = None;
    if spec.raw_graph {
        drop(idx);
        eprintln!("building a bare hnsw_rs graph of {n} vectors");
        let t0 = Instant::now();
        let mut h = Hnsw::<f32, DistDot>::new(
            RAW_MAX_CONNECTIONS,
            n.max(1024),
            RAW_MAX_LAYERS,
            RAW_EF_CONSTRUCTION,
            DistDot,
        );
        let items: Vec<(&[f32], usize)> = flat.chunks_exact(dim).zip(0..).collect();
        h.parallel_insert_slice(&items);
        h.set_searching_mode(true);
        raw_build = Some(t0.elapsed());
        for &ef in &spec.efs {
            for q in queries.iter().take(10) {
                std::hint::black_box(h.search(q, K, ef.max(K)));
            }
            let mut lat = Lat::default();
            let mut got = Vec::with_capacity(queries.len());
            for q in &queries {
                let t = Instant::now();
                let r = h.search(q, K, ef.max(K));
                lat.0.push(t.elapsed());
                got.push(
                    r.iter()
                        .map(|nb| ArticleScore {
                            id: nb.d_id as i64,
                            similarity: 1.0 - nb.distance,
                            passage: 0,
                        })
                        .collect::<Vec<_>>(),
                );
            }
            rows.push(Row {
                name: "bare hnsw_rs walk (no table, filter or planning)".into(),
                ef: Some(ef),
                recall: mean_recall(&got, &truth),
                lat,
                graph_plans: queries.len(),
                raw: true,
            });
        }
    }

    // Report.
    let mut s = String::new();
    let w = &mut s;
    use std::fmt::Write as _;
    let _ = writeln!(w, "## Vector index (ANN)\n");
    let _ = writeln!(
        w,
        "`{}`, {date}, on the project's 2-core machine (2 rayon threads; the exact scan \
         uses both, a graph walk one). Numbers move ±25% between runs on this shared machine.\n",
        spec.command
    );
    let cuts = if t.pgdocs_cuts <= 1 {
        "one cut".to_string()
    } else {
        format!(
            "{} cuts, the later ones shifted by {} words, since one cut of the manual gives \
             about 8,600",
            t.pgdocs_cuts,
            PGDOCS_SHIFTS[1..t.pgdocs_cuts]
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let _ = writeln!(
        w,
        "**Data.** {n} vectors of {dim} dimensions, each its own article (one passage). \
         {} are real {} vectors of real passages: {} passages of the MS MARCO documents of `msmarco-5k` and \
         {} windows of the PostgreSQL manual (`pgdocs`) cut by `engine::embed::passages` \
         ({}). The other {} are derived: real vector `i mod {}` plus Gaussian noise \
         of norm {:.2}, renormalised (mean cosine with its base {:.3}). Queries: {} real \
         vectors, the {} `msmarco-5k` queries and {} pgdocs page titles. Embeddings are \
         cached in `{}`{}.\n",
        spec.real,
        pas.model,
        t.msmarco,
        t.pgdocs,
        cuts,
        n - spec.real,
        spec.real,
        spec.noise,
        cos,
        t.queries.len(),
        t.msmarco_queries,
        t.queries.len() - t.msmarco_queries,
        spec.cache.display(),
        if pas.embedded > 0 {
            format!(
                " (this run embedded {} passages in {:.0} s, {:.1}/s)",
                pas.embedded,
                pas.elapsed.as_secs_f64(),
                pas.embedded as f64 / pas.elapsed.as_secs_f64().max(1e-9)
            )
        } else {
            String::new()
        }
    );
    if pas.embedded + qv.embedded > 0 {
        let _ = writeln!(
            w,
            "(This run loaded the model to embed, so its RSS figures include the model; \
             a rerun from the cache does not.)\n"
        );
    }
    let vector_bytes = (n * dim * 4) as u64;
    let _ = writeln!(
        w,
        "**Build** (`VectorIndex::build`: parallel insert, then the self-recall repair):\n"
    );
    let _ = writeln!(w, "| vectors | build | self-recall after build | orphans (exact-scan list) | self-recall check took | raw vectors | RSS before input | RSS before build | RSS after build | peak RSS |");
    let _ = writeln!(
        w,
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let _ = writeln!(
        w,
        "| {n} | {:.1} s | {:.4}% | {} | {:.1} s | {} | {} | {} | {} | {} |\n",
        build.as_secs_f64(),
        self_recall * 100.0,
        stats.orphans,
        self_recall_time.as_secs_f64(),
        mib(Some(vector_bytes)),
        mib(rss_base),
        mib(rss_before),
        mib(rss_after),
        mib(hwm)
    );
    if let Some(t) = raw_build {
        let _ = writeln!(
            w,
            "A bare hnsw_rs graph of the same parameters (M {RAW_MAX_CONNECTIONS}, \
             ef_construction {RAW_EF_CONSTRUCTION}), built with the same parallel insert, \
             took {:.1} s.\n",
            t.as_secs_f64()
        );
    }
    if let (Some(b), Some(a)) = (rss_base, rss_after) {
        let _ = writeln!(
            w,
            "The index holds each vector twice (its slot table and hnsw_rs's own copy, \
             {} each) plus the graph's links: RSS after the build minus RSS before the \
             input was made is {} ({:.1} × the raw vectors).\n",
            mib(Some(vector_bytes)),
            mib(Some(a.saturating_sub(b))),
            a.saturating_sub(b) as f64 / vector_bytes as f64
        );
    }

    let _ = writeln!(w, "**Unfiltered search** (top {K}, all {n} vectors allowed, {} queries one at a time; recall@{K} against the exact top {K}; speed-up against the exact scan through `search`):\n", queries.len());
    let _ = writeln!(
        w,
        "| search | ef | recall@{K} | mean | p50 | p99 | speed-up | ran on the graph |"
    );
    let _ = writeln!(
        w,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in &rows {
        let _ = writeln!(
            w,
            "| {} | {} | {:.4} | {:.3} ms | {:.3} ms | {:.3} ms | {:.1}× | {}/{} |",
            r.name,
            r.ef.map_or("–".into(), |e| e.to_string()),
            r.recall,
            r.lat.mean_ms(),
            r.lat.pct_ms(0.5),
            r.lat.pct_ms(0.99),
            exact_mean / r.lat.mean_ms().max(1e-9),
            r.graph_plans,
            r.lat.0.len()
        );
    }
    let _ = writeln!(w);

    let _ = writeln!(w, "**Filtered search** (random allow-lists; exact = `search` with `exact_below = usize::MAX`, graph = `exact_below = 0`, ef {DEFAULT_EF}; recall@{K} of the graph against the exact top {K} under the same filter):\n");
    let _ = writeln!(w, "| allowed | vectors | exact mean | exact p99 | graph mean | graph p99 | graph recall@{K} | ran on the graph | `SearchParams::default()` plans |");
    let _ = writeln!(
        w,
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for f in &frows {
        let _ = writeln!(
            w,
            "| {}% | {} | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms | {:.4} | {}/{} | {:?} |",
            f.share * 100.0,
            f.vectors,
            f.exact.mean_ms(),
            f.exact.pct_ms(0.99),
            f.graph.mean_ms(),
            f.graph.pct_ms(0.99),
            f.graph_recall,
            f.graph_plans,
            f.graph.0.len(),
            f.default_plan
        );
    }
    let _ = writeln!(w);

    // Interpretation, from the numbers.
    let goal = format!(
        "{} {}",
        goal_text(
            "`search`",
            rows.iter().filter(|r| r.ef.is_some() && !r.raw),
            exact_mean
        ),
        goal_text(
            "The bare hnsw_rs walk",
            rows.iter().filter(|r| r.raw),
            exact_mean
        )
    );
    let _ = writeln!(
        w,
        "**Reading.** {goal} Self-recall after the build is {:.2}% ({} of {n} vectors unreachable \
         in the graph, all on the exact-scan list).",
        self_recall * 100.0,
        stats.orphans
    );
    let _ = writeln!(w, "{}", crossover_text(&frows));
    Ok(s)
}
