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

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use engine::embed::local::LocalEmbedder;
use engine::embed::{content_hash, passages, Embedder};
use engine::vector::{Allowed, ArticleScore, Plan, SearchParams, VectorIndex, DEFAULT_EF};
use hnsw_rs::prelude::{DistDot, Hnsw};
use serde::{Deserialize, Serialize};

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

#[derive(Deserialize)]
struct Query {
    text: String,
}

#[derive(Deserialize)]
struct MsDoc {
    #[serde(default)]
    title: String,
    text: String,
}

#[derive(Deserialize)]
struct PgDoc {
    title: String,
    body: String,
}

fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1))
        })
        .collect()
}

/// Where the real passages came from.
struct Texts {
    passages: Vec<String>,
    msmarco: usize,
    pgdocs: usize,
    pgdocs_cuts: usize,
    queries: Vec<String>,
    msmarco_queries: usize,
}

/// The real passages and the queries.
fn texts(corpora: &Path, real: usize, queries: usize) -> Result<Texts> {
    let ms: Vec<MsDoc> = read_jsonl(&corpora.join("msmarco-5k/corpus.jsonl"))?;
    let pg: Vec<PgDoc> = read_jsonl(&corpora.join("pgdocs/corpus.jsonl"))?;
    let msq: Vec<Query> = read_jsonl(&corpora.join("msmarco-5k/queries.jsonl"))?;

    let mut out: Vec<String> = ms
        .iter()
        .flat_map(|d| passages(&d.title, "", &d.text))
        .take(real)
        .collect();
    let msmarco = out.len();
    let mut cuts = 0;
    for shift in PGDOCS_SHIFTS {
        if out.len() >= real {
            break;
        }
        cuts += 1;
        for d in &pg {
            let body: Vec<&str> = d.body.split_whitespace().skip(shift).collect();
            if shift > 0 && body.is_empty() {
                continue;
            }
            out.extend(passages(&d.title, "", &body.join(" ")));
            if out.len() >= real {
                break;
            }
        }
    }
    if out.len() < real {
        bail!(
            "the corpora give only {} passages; ask for fewer with --real",
            out.len()
        );
    }
    out.truncate(real);
    let pgdocs = out.len() - msmarco;

    let mut qs: Vec<String> = msq.into_iter().map(|q| q.text).take(queries).collect();
    let msmarco_queries = qs.len();
    let want_titles = queries - qs.len();
    if want_titles > 0 {
        let mut titles: Vec<&str> = pg.iter().map(|d| d.title.trim()).collect();
        titles.sort_unstable();
        titles.dedup();
        if titles.len() < want_titles {
            bail!("only {} pgdocs titles for queries", titles.len());
        }
        // Evenly spaced over the sorted titles.
        for i in 0..want_titles {
            qs.push(titles[i * titles.len() / want_titles].to_string());
        }
    }
    Ok(Texts {
        passages: out,
        msmarco,
        pgdocs,
        pgdocs_cuts: cuts,
        queries: qs,
        msmarco_queries,
    })
}

/// The model, loaded on first use (a cache hit never loads it).
struct Model {
    dir: PathBuf,
    loaded: Option<LocalEmbedder>,
}

impl Model {
    fn get(&mut self) -> Result<&LocalEmbedder> {
        if self.loaded.is_none() {
            let m = LocalEmbedder::load(&self.dir)
                .with_context(|| format!("load the model from {}", self.dir.display()))?;
            self.loaded = Some(m);
        }
        Ok(self.loaded.as_ref().expect("just loaded"))
    }
}

/// Header of a cached vector file.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct CacheHeader {
    /// Embedding model.
    model: String,
    /// Vector dimension.
    dim: usize,
    /// Texts (vectors) in the file.
    count: usize,
    /// `content_hash` of the texts, in order.
    texts: String,
}

/// Embedded vectors of one text set.
struct Embedded {
    /// Text-major vectors.
    flat: Vec<f32>,
    dim: usize,
    model: String,
    /// Embedding time of this run (zero when all came from the cache).
    elapsed: Duration,
    /// Texts embedded by this run.
    embedded: usize,
}

fn read_f32s(path: &Path, floats: usize) -> Result<Vec<f32>> {
    let mut bytes = Vec::with_capacity(floats * 4);
    File::open(path)
        .with_context(|| format!("open {}", path.display()))?
        .take(floats as u64 * 4)
        .read_to_end(&mut bytes)
        .with_context(|| format!("read {}", path.display()))?;
    if bytes.len() != floats * 4 {
        bail!("{} is shorter than its header says", path.display());
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Vectors of `texts`, from `<dir>/<name>.f32` when its header
/// (`<name>.json`) matches, else embedded (resuming `<name>.f32.part`).
fn embed_cached(dir: &Path, name: &str, texts: &[String], model: &mut Model) -> Result<Embedded> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let hash = content_hash(texts);
    let data = dir.join(format!("{name}.f32"));
    let head = dir.join(format!("{name}.json"));
    if let Ok(text) = std::fs::read_to_string(&head) {
        if let Ok(h) = serde_json::from_str::<CacheHeader>(&text) {
            if h.texts == hash && h.count == texts.len() && h.dim > 0 {
                let flat = read_f32s(&data, h.count * h.dim)?;
                eprintln!("{name}: {} vectors from {}", h.count, data.display());
                return Ok(Embedded {
                    flat,
                    dim: h.dim,
                    model: h.model,
                    elapsed: Duration::ZERO,
                    embedded: 0,
                });
            }
        }
        eprintln!("{name}: cache header does not match these texts; embedding again");
    }

    let m = model.get()?;
    let header = CacheHeader {
        model: m.model_id().to_string(),
        dim: m.dim(),
        count: texts.len(),
        texts: hash,
    };
    let dim = header.dim;
    let part = dir.join(format!("{name}.f32.part"));
    let part_head = dir.join(format!("{name}.part.json"));
    // Resume a part file of the same texts, up to its last whole vector.
    let mut done = 0usize;
    let resumable = std::fs::read_to_string(&part_head)
        .ok()
        .and_then(|t| serde_json::from_str::<CacheHeader>(&t).ok())
        .is_some_and(|h| h == header);
    if resumable {
        if let Ok(meta) = std::fs::metadata(&part) {
            done = (meta.len() as usize / (dim * 4)).min(texts.len());
        }
    }
    let mut flat = if done > 0 {
        eprintln!(
            "{name}: resuming after {done} vectors in {}",
            part.display()
        );
        read_f32s(&part, done * dim)?
    } else {
        Vec::new()
    };
    flat.reserve((texts.len() - done) * dim);
    std::fs::write(&part_head, serde_json::to_string_pretty(&header)?)
        .with_context(|| format!("write {}", part_head.display()))?;
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&part)
        .with_context(|| format!("open {}", part.display()))?;
    file.set_len((done * dim * 4) as u64)?;
    let mut w = BufWriter::new(file);
    std::io::Seek::seek(&mut w, std::io::SeekFrom::End(0))?;

    let start = Instant::now();
    let mut last = Instant::now();
    let first = done;
    while done < texts.len() {
        let end = (done + EMBED_CHUNK).min(texts.len());
        let chunk: Vec<&str> = texts[done..end].iter().map(String::as_str).collect();
        let vecs = m.embed(&chunk)?;
        for v in &vecs {
            if v.len() != dim {
                bail!("the model returned a {}-d vector, expected {dim}", v.len());
            }
            for x in v {
                w.write_all(&x.to_le_bytes())?;
            }
            flat.extend_from_slice(v);
        }
        w.flush()?;
        done = end;
        if last.elapsed() >= PROGRESS_EVERY || done == texts.len() {
            last = Instant::now();
            let s = start.elapsed().as_secs_f64();
            let rate = (done - first) as f64 / s;
            eprintln!(
                "{name}: embedded {done}/{} ({rate:.1}/s, {:.0} s left)",
                texts.len(),
                (texts.len() - done) as f64 / rate.max(1e-9)
            );
        }
    }
    drop(w);
    std::fs::rename(&part, &data)
        .with_context(|| format!("rename {} to {}", part.display(), data.display()))?;
    std::fs::write(&head, serde_json::to_string_pretty(&header)?)
        .with_context(|| format!("write {}", head.display()))?;
    let _ = std::fs::remove_file(&part_head);
    Ok(Embedded {
        flat,
        dim,
        model: header.model,
        elapsed: start.elapsed(),
        embedded: texts.len() - first,
    })
}

/// Vectors of `passages` (the first `passages.len()` of the passage stream)
/// out of the cache of a run with more real passages, finished or not: the
/// stream does not depend on its length, so any longer cache starts with
/// ours. Verified by the longer cache's text hash.
fn prefix_of_longer(dir: &Path, corpora: &Path, passages: &[String]) -> Result<Option<Embedded>> {
    let n = passages.len();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(None);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_prefix("passages-") else {
            continue;
        };
        let (count, data) = if let Some(c) = stem.strip_suffix(".part.json") {
            (c, dir.join(format!("passages-{c}.f32.part")))
        } else if let Some(c) = stem.strip_suffix(".json") {
            (c, dir.join(format!("passages-{c}.f32")))
        } else {
            continue;
        };
        let Ok(count) = count.parse::<usize>() else {
            continue;
        };
        let Some(h) = std::fs::read_to_string(entry.path())
            .ok()
            .and_then(|t| serde_json::from_str::<CacheHeader>(&t).ok())
        else {
            continue;
        };
        let have = std::fs::metadata(&data).map_or(0, |m| m.len() as usize) / (h.dim * 4).max(1);
        if count <= n || h.count != count || h.dim == 0 || have < n {
            continue;
        }
        let longer = texts(corpora, count, 0)?;
        if content_hash(&longer.passages) != h.texts || longer.passages[..n] != *passages {
            continue;
        }
        eprintln!(
            "passages-{n}: the first {n} of {have} vectors cached in {}",
            data.display()
        );
        return Ok(Some(Embedded {
            flat: read_f32s(&data, n * h.dim)?,
            dim: h.dim,
            model: h.model,
            elapsed: Duration::ZERO,
            embedded: 0,
        }));
    }
    Ok(None)
}

/// SplitMix64: a small deterministic generator (no dependency).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Two independent standard normal numbers (Box–Muller).
    fn gauss2(&mut self) -> (f32, f32) {
        let r = (-2.0 * self.unit().ln()).sqrt();
        let t = std::f64::consts::TAU * self.unit();
        ((r * t.cos()) as f32, (r * t.sin()) as f32)
    }
}

/// Appends `n - real` derived vectors to the `real` ones in `flat`: real
/// vector `i % real` plus Gaussian noise of expected norm `noise`,
/// renormalised. Returns the mean cosine of a derived vector with its base.
fn derive(flat: &mut Vec<f32>, dim: usize, real: usize, n: usize, noise: f32, seed: u64) -> f64 {
    let mut rng = Rng(seed);
    let sigma = noise / (dim as f32).sqrt();
    let mut cos_sum = 0.0f64;
    flat.reserve((n - real) * dim);
    let mut v = vec![0.0f32; dim];
    for i in real..n {
        let base = (i - real) % real;
        for j in (0..dim).step_by(2) {
            let (a, b) = rng.gauss2();
            v[j] = flat[base * dim + j] + sigma * a;
            if j + 1 < dim {
                v[j + 1] = flat[base * dim + j + 1] + sigma * b;
            }
        }
        engine::embed::normalize(&mut v);
        cos_sum += engine::embed::dot(&v, &flat[base * dim..(base + 1) * dim]) as f64;
        flat.extend_from_slice(&v);
    }
    if n > real {
        cos_sum / (n - real) as f64
    } else {
        1.0
    }
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
struct Lat(Vec<Duration>);

impl Lat {
    fn mean_ms(&self) -> f64 {
        self.0.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / self.0.len().max(1) as f64
    }

    fn pct_ms(&self, p: f64) -> f64 {
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
struct Row {
    name: String,
    ef: Option<usize>,
    recall: f64,
    lat: Lat,
    graph_plans: usize,
    /// A bare hnsw_rs graph rather than `VectorIndex::search`.
    raw: bool,
}

/// One filtered row.
struct FilterRow {
    share: f64,
    vectors: usize,
    exact: Lat,
    graph: Lat,
    graph_recall: f64,
    /// Queries the forced-graph search really ran on the graph.
    graph_plans: usize,
    /// Plan of `SearchParams::default()`.
    default_plan: Plan,
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

/// Whether graph rows meet the goal against the exact scan's `exact_mean`.
fn goal_text<'a>(who: &str, rows: impl Iterator<Item = &'a Row>, exact_mean: f64) -> String {
    let rows: Vec<(usize, f64, f64)> = rows
        .map(|r| {
            (
                r.ef.unwrap_or(0),
                r.recall,
                exact_mean / r.lat.mean_ms().max(1e-9),
            )
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let goal = format!("recall@{K} ≥ {GOAL_RECALL} at ≥ {GOAL_SPEEDUP:.0}× the exact scan");
    if let Some((ef, rec, sp)) = rows
        .iter()
        .find(|r| r.1 >= GOAL_RECALL && r.2 >= GOAL_SPEEDUP)
    {
        return format!("{who} meets the goal ({goal}) from ef {ef} (recall {rec:.3}, {sp:.1}×).");
    }
    match rows
        .iter()
        .filter(|r| r.1 >= GOAL_RECALL)
        .max_by(|a, b| a.2.total_cmp(&b.2))
    {
        Some((ef, rec, sp)) => format!(
            "{who} does **not** meet the goal ({goal}): its fastest setting with recall ≥ \
             {GOAL_RECALL} is ef {ef} (recall {rec:.3}, {sp:.1}×)."
        ),
        None => format!("{who} reaches recall@{K} ≥ {GOAL_RECALL} at no measured ef."),
    }
}

/// Where the exact scan of the allowed vectors stops being faster than the
/// filtered walk, interpolated between the measured allow-lists.
fn crossover_text(frows: &[FilterRow]) -> String {
    // Rows that really ran on the graph, largest allow-list first.
    let pts: Vec<(usize, f64, f64)> = frows
        .iter()
        .filter(|f| f.graph_plans * 2 > f.graph.0.len())
        .map(|f| (f.vectors, f.exact.mean_ms(), f.graph.mean_ms()))
        .collect();
    let forced: Vec<String> = frows
        .iter()
        .filter(|f| f.graph_plans * 2 <= f.graph.0.len())
        .map(|f| format!("{}%", f.share * 100.0))
        .collect();
    let mut out = String::new();
    if !forced.is_empty() {
        out.push_str(&format!(
            "At {} the graph walk could not be forced: `search` scans exactly whenever the \
             allowed vectors are under 5% of the index, whatever `exact_below` says. ",
            forced.join(", ")
        ));
    }
    let mut cross = None;
    for w in pts.windows(2) {
        let (big, small) = (w[0], w[1]);
        // exact - graph changes sign between the two sizes.
        let (db, ds) = (big.1 - big.2, small.1 - small.2);
        if db > 0.0 && ds <= 0.0 {
            // Linear in the number of vectors.
            let f = db / (db - ds);
            cross = Some(big.0 as f64 - f * (big.0 as f64 - small.0 as f64));
        }
    }
    match (cross, pts.first(), pts.last()) {
        (Some(c), _, _) => out.push_str(&format!(
            "The exact scan of the allowed vectors is faster than the filtered walk below about \
             {:.0} allowed vectors (linear interpolation between the measured lists): the \
             measured crossover, to compare with `SearchParams::default().exact_below` = {}.",
            c,
            SearchParams::default().exact_below
        )),
        (None, Some(first), Some(last)) if first.1 <= first.2 => out.push_str(&format!(
            "The exact scan was faster than the filtered walk at every measured size up to {} \
             allowed vectors: the crossover lies above that.",
            first.0.max(last.0)
        )),
        (None, Some(_), Some(last)) => out.push_str(&format!(
            "The filtered walk was faster at every measured size down to {} allowed vectors.",
            last.0
        )),
        _ => {}
    }
    out
}

/// Replaces the `## Vector index (ANN)` section of `file` with `section`
/// (between `<!-- bench:ann -->` markers; appended when absent).
pub fn write_section(file: &Path, section: &str) -> Result<()> {
    const BEGIN: &str = "<!-- bench:ann -->";
    const END: &str = "<!-- /bench:ann -->";
    const HEADING: &str = "## Vector index (ANN)";
    let block = format!("{BEGIN}\n{}\n{END}", section.trim_end());
    let existing = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# KMT benchmarks\n".into(),
        Err(e) => return Err(e).with_context(|| format!("read {}", file.display())),
    };
    let updated = if let (Some(b), Some(e)) = (existing.find(BEGIN), existing.find(END)) {
        format!("{}{block}{}", &existing[..b], &existing[e + END.len()..])
    } else if let Some(b) = existing
        .match_indices(HEADING)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || existing.as_bytes()[i - 1] == b'\n')
    {
        // A hand-written section without markers: up to the next level-2
        // heading or another tool's marker.
        let rest = &existing[b + HEADING.len()..];
        let end = rest
            .match_indices('\n')
            .map(|(i, _)| i + 1)
            .find(|&i| rest[i..].starts_with("## ") || rest[i..].starts_with("<!-- bench:"))
            .map_or(existing.len(), |i| b + HEADING.len() + i);
        format!(
            "{}{block}\n\n{}",
            &existing[..b],
            existing[end..].trim_start()
        )
    } else {
        format!("{}\n\n{block}\n", existing.trim_end())
    };
    std::fs::write(file, updated).with_context(|| format!("write {}", file.display()))
}
