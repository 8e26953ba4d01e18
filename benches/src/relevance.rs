//! `kmt-bench relevance`: nDCG@10, recall@100 and MRR@10 of lexical,
//! semantic and hybrid search on a BEIR set (../shared/corpora/msmarco-5k),
//! through the engine code that serves `/v1/search`.
//!
//! The corpus goes through KMT's BEIR importer (as `kmt import` reads it),
//! into an in-memory index with the real embedding model's passage vectors
//! attached. Passage vectors are cached on disk by content hash, so reruns
//! do not re-embed. Reference rankers (BM25 by Python `bm25s` with an
//! English Snowball stemmer, and plain dense retrieval written from scratch
//! in numpy; `benches/relevance_reference.py`) are read from JSON files the
//! wrapper script produces in the same run.
//!
//! Besides the rankers, the report gives an upper bound: the nDCG@10 of the
//! convex combination with the best weight chosen per query by looking at
//! the judgments (an oracle, not a ranker), which shows how much any
//! weighting of these two rankers' scores could add.

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use engine::auth::Principal;
use engine::embed::{self, Embedder, QueryEmbedder};
use engine::import::{ImportOptions, ImportSource};
use engine::model::{Article, Status};
use engine::search::{Fusion, SearchIndex, SearchMode, SearchRequest, Semantic};
use engine::vector::{SearchParams, VectorIndex};

/// Which embedder makes the passage and query vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EmbedderChoice {
    /// all-MiniLM-L6-v2 (our fused forward pass over its weights).
    Local,
    /// The static embedder distilled from it (Model2Vec method).
    Static,
}

impl EmbedderChoice {
    /// Loads the embedder from the model directory; the static one is
    /// distilled there on first use (about a minute, then cached).
    pub fn load(self, model_dir: &Path) -> Result<Arc<dyn Embedder>> {
        let context = || {
            format!(
                "loading the model from {} (run `make model`)",
                model_dir.display()
            )
        };
        Ok(match self {
            EmbedderChoice::Local => {
                Arc::new(embed::local::LocalEmbedder::load(model_dir).with_context(context)?)
            }
            EmbedderChoice::Static => {
                let mut last = Instant::now();
                Arc::new(
                    embed::static_model::StaticEmbedder::load_or_distill(
                        model_dir,
                        |done, total| {
                            if last.elapsed().as_secs() >= 5 || done == total {
                                eprintln!("distilling the static model: {done}/{total} tokens");
                                last = Instant::now();
                            }
                        },
                    )
                    .with_context(context)?,
                )
            }
        })
    }

    /// Short name for labels and row names.
    pub fn name(self) -> &'static str {
        match self {
            EmbedderChoice::Local => "MiniLM",
            EmbedderChoice::Static => "static MiniLM",
        }
    }
}

/// Inputs of a run.
pub struct RelevanceSpec {
    /// The BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv).
    pub set: PathBuf,
    /// The articles, when not the set's own corpus.jsonl.
    pub corpus: Option<PathBuf>,
    /// Model directory.
    pub model_dir: PathBuf,
    /// The embedder measured.
    pub embedder: EmbedderChoice,
    /// Cache directory for passage vectors.
    pub cache: PathBuf,
    /// Reference rankers: label and JSON file with their metrics.
    pub reference: Vec<(String, PathBuf)>,
    /// BENCHMARKS.md to update (optional).
    pub out: Option<PathBuf>,
    /// Write each query's hybrid candidate union (raw scores and grades)
    /// here as JSON Lines, for fitting fusions offline.
    pub dump: Option<PathBuf>,
    /// The command line, for the report.
    pub command: String,
}

/// The three metrics.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct Metrics {
    /// nDCG@10 (linear gains, as trec_eval).
    pub ndcg10: f64,
    /// Recall@100 (judged relevant = grade ≥ 1).
    pub recall100: f64,
    /// MRR@10.
    pub mrr10: f64,
}

type Qrels = HashMap<String, HashMap<String, u32>>;
/// An article's id, content hash and passage vectors.
pub(crate) type ArticleVectors = (i64, String, Vec<Vec<f32>>);

fn read_queries(set: &Path) -> Result<Vec<(String, String)>> {
    let f = std::fs::File::open(set.join("queries.jsonl")).context("queries.jsonl")?;
    let mut out = Vec::new();
    for line in std::io::BufReader::new(f).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line)?;
        let id = v["_id"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v["_id"].to_string());
        out.push((id, v["text"].as_str().unwrap_or_default().to_string()));
    }
    Ok(out)
}

fn read_qrels(set: &Path) -> Result<Qrels> {
    let text = std::fs::read_to_string(set.join("qrels/test.tsv")).context("qrels/test.tsv")?;
    let mut q: Qrels = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 3 || f[2].parse::<u32>().is_err() {
            continue; // a header line
        }
        q.entry(f[0].to_string())
            .or_default()
            .insert(f[1].to_string(), f[2].parse()?);
    }
    Ok(q)
}

/// Metrics of one ranking against one query's judgments.
pub fn score(ranked: &[String], judged: &HashMap<String, u32>) -> Metrics {
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, d)| judged.get(d).copied().unwrap_or(0) as f64 / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<u32> = judged.values().copied().filter(|&g| g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, &g)| g as f64 / (i as f64 + 2.0).log2())
        .sum();
    let relevant = ideal.len();
    let found = ranked
        .iter()
        .take(100)
        .filter(|d| judged.get(*d).is_some_and(|&g| g > 0))
        .count();
    let mrr = ranked
        .iter()
        .take(10)
        .position(|d| judged.get(d).is_some_and(|&g| g > 0))
        .map_or(0.0, |p| 1.0 / (p as f64 + 1.0));
    Metrics {
        ndcg10: if idcg > 0.0 { dcg / idcg } else { 0.0 },
        recall100: if relevant > 0 {
            found as f64 / relevant as f64
        } else {
            0.0
        },
        mrr10: mrr,
    }
}

fn mean(ms: &[Metrics]) -> Metrics {
    let n = ms.len().max(1) as f64;
    Metrics {
        ndcg10: ms.iter().map(|m| m.ndcg10).sum::<f64>() / n,
        recall100: ms.iter().map(|m| m.recall100).sum::<f64>() / n,
        mrr10: ms.iter().map(|m| m.mrr10).sum::<f64>() / n,
    }
}

/// Loads the corpus through KMT's importer.
pub(crate) fn load_articles(set: &Path) -> Result<Vec<Article>> {
    let mut src =
        ImportSource::open(set, &ImportOptions::default()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    while let Some(batch) = src.next_batch() {
        for r in batch {
            let r = r.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let d = r.draft;
            out.push(Article {
                id: out.len() as i64 + 1,
                slug: d.slug,
                title: d.title,
                summary: d.summary,
                body: d.body,
                category: d.category,
                tags: d.tags,
                audience: d.audience,
                status: Status::Published,
                owner: "bench".into(),
                version: 1,
                created_at: now,
                updated_at: now,
                published_at: Some(now),
                review_due: None,
            });
        }
    }
    Ok(out)
}

/// Passage vectors by content hash, cached in one file per model.
pub(crate) fn vectors(
    articles: &[Article],
    model: &dyn Embedder,
    cache: &Path,
) -> Result<Vec<ArticleVectors>> {
    let dim = model.dim();
    let file = cache.join(format!(
        "passages-{}.bin",
        model.model_id().replace('/', "_")
    ));
    let mut known: HashMap<String, Vec<Vec<f32>>> = HashMap::new();
    if let Ok(mut f) = std::fs::File::open(&file) {
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        let mut at = 0;
        while at + 68 <= bytes.len() {
            let hash = String::from_utf8_lossy(&bytes[at..at + 64]).to_string();
            let n = u32::from_le_bytes(bytes[at + 64..at + 68].try_into()?) as usize;
            at += 68;
            let len = n * dim * 4;
            if at + len > bytes.len() {
                break;
            }
            if let Some(v) = embed::from_bytes(&bytes[at..at + len], dim) {
                known.insert(hash, v);
            }
            at += len;
        }
    }
    let jobs: Vec<(i64, String, Vec<String>)> = articles
        .iter()
        .map(|a| {
            let p = embed::passages(&a.title, &a.summary, &a.body);
            (a.id, embed::content_hash(&p), p)
        })
        .collect();
    let missing: Vec<&(i64, String, Vec<String>)> =
        jobs.iter().filter(|j| !known.contains_key(&j.1)).collect();
    if !missing.is_empty() {
        let total: usize = missing.iter().map(|j| j.2.len()).sum();
        eprintln!(
            "embedding {total} passages of {} articles (cached for reruns)",
            missing.len()
        );
        let started = Instant::now();
        let mut done = 0;
        let mut last = Instant::now();
        std::fs::create_dir_all(cache)?;
        let mut out = std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&file)?,
        );
        for chunk in missing.chunks(64) {
            let texts: Vec<&str> = chunk
                .iter()
                .flat_map(|j| j.2.iter().map(String::as_str))
                .collect();
            let vecs = model.embed(&texts)?;
            let mut it = vecs.into_iter();
            for j in chunk {
                let v: Vec<Vec<f32>> = it.by_ref().take(j.2.len()).collect();
                out.write_all(j.1.as_bytes())?;
                out.write_all(&(v.len() as u32).to_le_bytes())?;
                out.write_all(&embed::to_bytes(&v))?;
                known.insert(j.1.clone(), v);
            }
            done += texts.len();
            if last.elapsed().as_secs() >= 5 {
                eprintln!(
                    "  {done}/{total} passages, {:.0}/s",
                    done as f64 / started.elapsed().as_secs_f64()
                );
                last = Instant::now();
            }
        }
        out.flush()?;
    }
    Ok(jobs
        .into_iter()
        .map(|(id, hash, _)| {
            let v = known.get(&hash).cloned().unwrap_or_default();
            (id, hash, v)
        })
        .collect())
}

/// One configuration measured.
struct Row {
    name: String,
    mean: Metrics,
    per_query: Vec<f64>,
}

/// Runs the benchmark.
pub fn run(spec: &RelevanceSpec) -> Result<()> {
    let corpus = spec.corpus.clone().unwrap_or_else(|| spec.set.clone());
    if spec.corpus.is_none() && !spec.set.join("corpus.jsonl").exists() {
        bail!(
            "no BEIR set at {} (the corpora live in ../shared/corpora; pass --set)",
            spec.set.display()
        );
    }
    if !corpus.exists() {
        bail!(
            "no corpus at {} (the corpora live in ../shared/corpora; pass --corpus)",
            corpus.display()
        );
    }
    let started = Instant::now();
    let model = spec.embedder.load(&spec.model_dir)?;
    eprintln!(
        "{} loaded in {:.1} s",
        model.model_id(),
        started.elapsed().as_secs_f64()
    );
    let articles = load_articles(&corpus)?;
    let queries = read_queries(&spec.set)?;
    let qrels = read_qrels(&spec.set)?;
    let all_queries = queries.len();
    let queries: Vec<(String, String)> = queries
        .into_iter()
        .filter(|(id, _)| qrels.contains_key(id))
        .collect();
    eprintln!(
        "{} articles, {} judged queries",
        articles.len(),
        queries.len()
    );

    let index = SearchIndex::in_memory()?;
    let mut u = index.updater()?;
    for a in &articles {
        u.upsert(a)?;
    }
    u.commit(1)?;
    let vecs = vectors(&articles, &*model, &spec.cache)?;
    let vectors = VectorIndex::build(model.dim(), vecs);
    index.attach_semantic(Arc::new(Semantic {
        embedder: QueryEmbedder::new(model.clone(), 1024),
        vectors,
        params: SearchParams::default(),
    }));

    let who = Principal::system();
    let slug_of: HashMap<i64, &str> = articles.iter().map(|a| (a.id, a.slug.as_str())).collect();
    if let Some(path) = &spec.dump {
        let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
        for (qid, text) in &queries {
            let union = index.hybrid_union(&who, &request(text, None, None))?;
            let cands: Vec<serde_json::Value> = union
                .iter()
                .map(|c| {
                    let slug = slug_of.get(&c.id).copied().unwrap_or_default();
                    serde_json::json!({"doc": slug, "lex": c.lexical, "sim": c.semantic,
                        "grade": qrels[qid].get(slug).copied().unwrap_or(0)})
                })
                .collect();
            let judged: Vec<u32> = qrels[qid].values().copied().collect();
            serde_json::to_writer(
                &mut w,
                &serde_json::json!({"qid": qid, "q": text, "judged": judged, "cands": cands}),
            )?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
        eprintln!("wrote candidate unions to {}", path.display());
    }
    let mut configs: Vec<(String, SearchMode, Option<Fusion>)> = vec![
        ("lexical (BM25, KMT)".into(), SearchMode::Lexical, None),
        (
            format!("semantic ({}, max passage)", spec.embedder.name()),
            SearchMode::Semantic,
            None,
        ),
    ];
    for fusion in [
        Fusion::Rrf,
        Fusion::Convex(0.3),
        Fusion::Convex(0.5),
        Fusion::Convex(0.7),
        Fusion::Convex(0.75),
        Fusion::Convex(0.8),
        Fusion::Convex(0.85),
        Fusion::Convex(0.9),
        Fusion::Adaptive,
    ] {
        let name = match fusion {
            Fusion::Rrf => "hybrid: RRF (k=60)".to_string(),
            Fusion::Convex(w) => format!("hybrid: convex w={w}"),
            Fusion::Adaptive => "hybrid: adaptive (weight by agreement)".to_string(),
        };
        let name = if fusion == Fusion::Convex(model.hybrid_weight()) {
            format!("**{name} (default)**")
        } else {
            name
        };
        configs.push((name, SearchMode::Hybrid, Some(fusion)));
    }
    let mut rows = Vec::new();
    for (name, mode, fusion) in configs {
        let mut per = Vec::new();
        for (qid, text) in &queries {
            let req = request(text, Some(mode), fusion);
            let res = index.search(&who, &req)?;
            let ranked: Vec<String> = res.hits.into_iter().map(|h| h.slug).collect();
            per.push(score(&ranked, &qrels[qid]));
        }
        let m = mean(&per);
        eprintln!(
            "{name}: nDCG@10 {:.3} R@100 {:.3} MRR@10 {:.3}",
            m.ndcg10, m.recall100, m.mrr10
        );
        rows.push(Row {
            name,
            mean: m,
            per_query: per.iter().map(|m| m.ndcg10).collect(),
        });
    }
    let mut bound = Vec::new();
    for (qid, text) in &queries {
        let union = index.hybrid_union(&who, &request(text, None, None))?;
        bound.push(best_convex(&union, &slug_of, &qrels[qid]));
    }
    let bound = mean(&bound);
    let mut reference = Vec::new();
    for (label, p) in &spec.reference {
        let m: Metrics = serde_json::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))?,
        )
        .with_context(|| format!("reference json {}", p.display()))?;
        reference.push((label.clone(), m));
    }
    let md = markdown(
        spec,
        model.model_id(),
        &rows,
        &reference,
        bound,
        articles.len(),
        (queries.len(), all_queries),
    );
    println!("{md}");
    if let Some(out) = &spec.out {
        // One section per embedder, so their results stand side by side.
        let label = match spec.embedder {
            EmbedderChoice::Local => format!("relevance-{}", set_name(&spec.set)),
            EmbedderChoice::Static => format!("relevance-{}-static", set_name(&spec.set)),
        };
        crate::report::upsert_section(out, &label, &md)?;
        eprintln!("updated {}", out.display());
    }
    Ok(())
}

/// What every row asks: any word may match, the first 100 hits.
fn request(q: &str, mode: Option<SearchMode>, fusion: Option<Fusion>) -> SearchRequest {
    SearchRequest {
        q: q.to_string(),
        limit: 100,
        mode,
        fusion,
        match_mode: engine::search::MatchMode::Any,
        ..Default::default()
    }
}

/// The set's folder name (`msmarco-5k`, `pgdocs-questions`).
fn set_name(set: &Path) -> &str {
    set.file_name().and_then(|n| n.to_str()).unwrap_or("set")
}

fn markdown(
    spec: &RelevanceSpec,
    model_id: &str,
    rows: &[Row],
    reference: &[(String, Metrics)],
    bound: Metrics,
    articles: usize,
    (queries, all_queries): (usize, usize),
) -> String {
    let scale = queries as f64 / all_queries.max(1) as f64;
    let mut s = String::new();
    s.push_str(&format!(
        "## Relevance: {} ({articles} articles, {queries} judged queries), embedder {}\n\n",
        set_name(&spec.set),
        model_id
    ));
    s.push_str(&format!(
        "Command: `{}` (date {}). Every row goes through `SearchIndex::search`, the code behind `GET /v1/search`, with `match=any` and `limit=100`.\n\n",
        spec.command,
        chrono::Utc::now().format("%Y-%m-%d")
    ));
    if queries < all_queries {
        s.push_str(&format!(
            "nDCG@10 is averaged over the {queries} queries that have judgments (as BEIR and trec_eval do); the column \"over all {all_queries}\" counts the {} unjudged queries as 0, the scale of the reference numbers quoted in issue 3 (bm25s 0.620, dense 0.704, goal 0.72).\n\n",
            all_queries - queries
        ));
    }
    // The "over all" column only where some queries have no judgments.
    let partial = queries < all_queries;
    let row = |name: &str, m: &Metrics, worse: &str| {
        let all = if partial {
            format!(" {:.3} |", m.ndcg10 * scale)
        } else {
            String::new()
        };
        format!(
            "| {name} | {:.3} |{all} {:.3} | {:.3} | {worse} |\n",
            m.ndcg10, m.recall100, m.mrr10
        )
    };
    if partial {
        s.push_str(&format!("| ranker | nDCG@10 | nDCG@10 over all {all_queries} | recall@100 | MRR@10 | queries worse than the better single mode (nDCG@10) |\n|---|---:|---:|---:|---:|---:|\n"));
    } else {
        s.push_str("| ranker | nDCG@10 | recall@100 | MRR@10 | queries worse than the better single mode (nDCG@10) |\n|---|---:|---:|---:|---:|\n");
    }
    for (label, r) in reference {
        s.push_str(&row(&format!("reference: {label}, same run"), r, ""));
    }
    let lex = rows.iter().find(|r| r.name.starts_with("lexical"));
    let sem = rows.iter().find(|r| r.name.starts_with("semantic"));
    for r in rows {
        let worse = match (lex, sem, r.name.contains("hybrid")) {
            (Some(l), Some(se), true) => {
                let n = r
                    .per_query
                    .iter()
                    .zip(l.per_query.iter().zip(&se.per_query))
                    .filter(|(h, (a, b))| **h + 1e-9 < a.max(**b))
                    .count();
                format!("{n} of {}", r.per_query.len())
            }
            _ => String::new(),
        };
        s.push_str(&row(&r.name, &r.mean, &worse));
    }
    s.push_str(&row(
        "bound: convex with the best weight per query (oracle, not a ranker)",
        &bound,
        "",
    ));
    s
}

/// The metrics of the convex combination (the engine's normalisation:
/// similarity min-max over the union, BM25 over its maximum) with the
/// semantic weight, in steps of 0.05, that gives this query the best
/// nDCG@10.
fn best_convex(
    union: &[engine::search::UnionCandidate],
    slug_of: &HashMap<i64, &str>,
    judged: &HashMap<String, u32>,
) -> Metrics {
    let max_lex = union
        .iter()
        .filter_map(|c| c.lexical)
        .fold(0.0f32, f32::max);
    let (lo, hi) = union
        .iter()
        .filter_map(|c| c.semantic)
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| {
            (lo.min(s), hi.max(s))
        });
    let mut best = Metrics::default();
    for step in 0..=20 {
        let w = step as f32 / 20.0;
        let mut ranked: Vec<(f32, &str)> = union
            .iter()
            .map(|c| {
                let sim = c
                    .semantic
                    .map_or(0.0, |s| if hi > lo { (s - lo) / (hi - lo) } else { 1.0 });
                let lex = c
                    .lexical
                    .map_or(0.0, |l| if max_lex > 0.0 { l / max_lex } else { 0.0 });
                let slug = slug_of.get(&c.id).copied().unwrap_or_default();
                (w * sim + (1.0 - w) * lex, slug)
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        let ranked: Vec<String> = ranked.into_iter().map(|(_, s)| s.to_string()).collect();
        let m = score(&ranked, judged);
        if m.ndcg10 > best.ndcg10 {
            best = m;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_of_a_known_ranking() {
        let judged: HashMap<String, u32> = [("a".to_string(), 3), ("b".to_string(), 1)]
            .into_iter()
            .collect();
        let ranked: Vec<String> = ["x", "a", "b"].iter().map(|s| s.to_string()).collect();
        let m = score(&ranked, &judged);
        let dcg = 3.0 / 3f64.log2() + 1.0 / 4f64.log2();
        let idcg = 3.0 + 1.0 / 3f64.log2();
        assert!((m.ndcg10 - dcg / idcg).abs() < 1e-9);
        assert_eq!(m.recall100, 1.0);
        assert_eq!(m.mrr10, 0.5);
    }
}
