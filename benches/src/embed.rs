//! `embed`: speed of an embedding model: all-MiniLM-L6-v2 on the CPU
//! (`--embedder local`) or the static embedder distilled from it
//! (`--embedder static`).
//!
//! Two numbers matter for KMT: how long a search waits for its query's
//! vector (single short texts, one at a time, as the API embeds them), and
//! how fast the indexer embeds article passages (many texts per call). Both
//! use real text from `msmarco-5k`: its 50 queries, and passages cut by
//! `engine::embed::passages` from its corpus, once with each MS MARCO
//! passage as an article (short, ~80 tokens) and once with consecutive
//! passages joined into articles long enough to give full 150-word windows
//! (~200 tokens, what KMT's own articles mostly produce).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use engine::embed::local::LocalEmbedder;
use engine::embed::static_model::StaticEmbedder;
use engine::embed::{passages, Embedder};
use serde::Deserialize;

use crate::corpus::read_jsonl;
use crate::relevance::EmbedderChoice;

/// What to measure.
pub struct EmbedSpec {
    /// Model directory.
    pub model_dir: PathBuf,
    /// The embedder measured.
    pub embedder: EmbedderChoice,
    /// Folder holding `msmarco-5k/`.
    pub corpora: PathBuf,
    /// Timed single-query embeddings.
    pub queries: usize,
    /// Passages per throughput run.
    pub passages: usize,
    /// Texts per `embed` call in the throughput runs.
    pub batch: usize,
}

/// The embedder measured, concrete so its token counts can be asked for.
/// Boxed: the two differ much in size, and there is one of them.
enum Model {
    Local(Box<LocalEmbedder>),
    Static(Box<StaticEmbedder>),
}

impl Model {
    fn load(choice: EmbedderChoice, dir: &Path) -> Result<Model> {
        let context = || format!("load the model from {}", dir.display());
        Ok(match choice {
            EmbedderChoice::Local => {
                Model::Local(Box::new(LocalEmbedder::load(dir).with_context(context)?))
            }
            EmbedderChoice::Static => {
                let mut last = Instant::now();
                Model::Static(Box::new(
                    StaticEmbedder::load_or_distill(dir, |done, total| {
                        if last.elapsed().as_secs() >= 5 || done == total {
                            eprintln!("distilling the static model: {done}/{total} tokens");
                            last = Instant::now();
                        }
                    })
                    .with_context(context)?,
                ))
            }
        })
    }

    fn embedder(&self) -> &dyn Embedder {
        match self {
            Model::Local(m) => m.as_ref(),
            Model::Static(m) => m.as_ref(),
        }
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(self.embedder().embed(texts)?)
    }

    /// Short calls on f16 weights or not (the local model only).
    fn set_f16_weights(&mut self, on: bool) {
        if let Model::Local(m) = self {
            m.set_f16_weights(on);
        }
    }

    /// Tokens per text as the model sees them (the static model looks up
    /// no special tokens).
    fn token_counts(&self, texts: &[&str]) -> Result<Vec<usize>> {
        Ok(match self {
            Model::Local(m) => m.token_counts(texts)?,
            Model::Static(m) => m.token_counts(texts)?,
        })
    }
}

/// One throughput run.
struct Throughput {
    name: &'static str,
    passages: usize,
    tokens: usize,
    elapsed: Duration,
    cpu: Option<Duration>,
}

#[derive(Deserialize)]
struct Query {
    text: String,
}

#[derive(Deserialize)]
struct Doc {
    #[serde(default)]
    title: String,
    text: String,
}

/// Runs the benchmark and prints a markdown table.
pub fn run(spec: &EmbedSpec) -> Result<()> {
    let dir = spec.corpora.join("msmarco-5k");
    let hint = "set --corpora or KMT_CORPORA to the folder holding msmarco-5k/";
    let queries: Vec<Query> = read_jsonl(&dir.join("queries.jsonl")).context(hint)?;
    let docs: Vec<Doc> = read_jsonl(&dir.join("corpus.jsonl")).context(hint)?;
    if queries.is_empty() || docs.is_empty() {
        bail!("{} holds no queries or no passages", dir.display());
    }

    let t = Instant::now();
    let mut model = Model::load(spec.embedder, &spec.model_dir)?;
    let load = t.elapsed();

    // Queries: one text per call, as a search embeds its query. The local
    // model is measured with its f16 weights for short calls (the default)
    // and with f32 weights only, in alternating rounds of the same run.
    let texts: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();
    for q in texts.iter().take(10) {
        model.embed(&[q])?;
    }
    let query_tokens = model.token_counts(&texts)?;
    let variants: &[(&str, bool)] = match model {
        Model::Local(_) => &[
            ("query latency, f16 weights (default)", true),
            ("query latency, f32 weights", false),
        ],
        Model::Static(_) => &[("query latency (1 text/call)", true)],
    };
    let mut lat = vec![Vec::with_capacity(spec.queries); variants.len()];
    let mut cpu = vec![Duration::ZERO; variants.len()];
    const ROUNDS: usize = 10;
    for round in 0..ROUNDS {
        for (v, &(_, f16)) in variants.iter().enumerate() {
            model.set_f16_weights(f16);
            let cpu0 = process_cpu();
            for i in (round * spec.queries / ROUNDS)..((round + 1) * spec.queries / ROUNDS) {
                let q = texts[i % texts.len()];
                let t = Instant::now();
                model.embed(&[q])?;
                lat[v].push(t.elapsed());
            }
            cpu[v] += cpu_since(cpu0).unwrap_or_default();
        }
    }
    model.set_f16_weights(true);
    let mean_tokens = query_tokens.iter().sum::<usize>() as f64 / query_tokens.len() as f64;

    // Passages: whole MS MARCO passages, then full 150-word windows.
    let short: Vec<String> = docs
        .iter()
        .flat_map(|d| passages(&d.title, "", &d.text))
        .take(spec.passages)
        .collect();
    let long: Vec<String> = docs
        .chunks(4)
        .flat_map(|c| {
            let body: Vec<&str> = c.iter().map(|d| d.text.as_str()).collect();
            passages("", "", &body.join(" "))
        })
        .take(spec.passages)
        .collect();
    let mut runs = Vec::new();
    for (name, set) in [("msmarco passages", &short), ("150-word windows", &long)] {
        runs.push(throughput(&model, name, set, spec.batch)?);
    }

    println!(
        "{} on {} CPU thread(s) (RAYON_NUM_THREADS={}), model loaded in {:.0} ms\n",
        model.embedder().model_id(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into()),
        load.as_secs_f64() * 1e3
    );
    println!("| measurement | n | tokens/text | p50 | p99 | mean | CPU/query |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for ((name, _), (lat, cpu)) in variants.iter().zip(lat.iter_mut().zip(&cpu)) {
        lat.sort();
        let pct = |p: f64| -> Duration {
            let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
            lat[i]
        };
        let mean = lat.iter().sum::<Duration>() / lat.len().max(1) as u32;
        let per_query = (!cpu.is_zero()).then(|| *cpu / lat.len().max(1) as u32);
        println!(
            "| {name} | {} | {:.1} | {:.2} ms | {:.2} ms | {:.2} ms | {} |",
            lat.len(),
            mean_tokens,
            ms(pct(0.50)),
            ms(pct(0.99)),
            ms(mean),
            fmt_opt(per_query.map(ms), " ms")
        );
    }
    println!();
    println!(
        "| throughput ({} texts/call) | passages | tokens/text | tokens/s | passages/s | tokens/CPU-s |",
        spec.batch
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for r in &runs {
        let s = r.elapsed.as_secs_f64();
        let per_cpu = r
            .cpu
            .filter(|c| !c.is_zero())
            .map(|c| r.tokens as f64 / c.as_secs_f64());
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.1} | {} |",
            r.name,
            r.passages,
            r.tokens as f64 / r.passages.max(1) as f64,
            r.tokens as f64 / s,
            r.passages as f64 / s,
            per_cpu.map_or_else(|| "n/a".into(), |v| format!("{v:.0}"))
        );
    }
    Ok(())
}

fn throughput(
    model: &Model,
    name: &'static str,
    set: &[String],
    batch: usize,
) -> Result<Throughput> {
    let texts: Vec<&str> = set.iter().map(String::as_str).collect();
    let tokens = model.token_counts(&texts)?.iter().sum();
    // Warm-up: the first calls fault in the weights and grow the allocator.
    model.embed(&texts[..texts.len().min(batch)])?;
    let cpu0 = process_cpu();
    let t = Instant::now();
    for chunk in texts.chunks(batch.max(1)) {
        model.embed(chunk)?;
    }
    Ok(Throughput {
        name,
        passages: texts.len(),
        tokens,
        elapsed: t.elapsed(),
        cpu: cpu_since(cpu0),
    })
}

/// CPU time used by this process so far (all threads), from
/// `/proc/self/stat`; `None` where that file does not exist.
///
/// Reported next to wall-clock time because a shared machine's other work
/// stretches the wall clock but not the CPU time the model needs.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) in parentheses:
    // state is field 3, utime and stime fields 14 and 15, in clock ticks
    // (100 per second on Linux).
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn cpu_since(start: Option<Duration>) -> Option<Duration> {
    Some(process_cpu()?.saturating_sub(start?))
}

fn fmt_opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.2}{unit}"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
