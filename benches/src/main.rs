//! `kmt-bench`: KMT's benchmark programs.
//!
//! * `scale` — generate a large JSONL corpus from the real reference text;
//! * `queries` — print the committed DBA query set;
//! * `latency` — closed-loop HTTP load on KMT's `/v1/search`;
//! * `pgfts` — the PostgreSQL full-text search baseline over the same data;
//! * `compare` — both in one run, written into BENCHMARKS.md with an SVG plot;
//! * `embed` — query latency and passage throughput of the local embedding model;
//! * `ann` — recall and speed of the vector index (HNSW) against exact search;
//! * `seed-embeddings` — derived passage vectors for a large store, so the
//!   server builds its vector index without running the model
//!   (`benches/run-semantic-latency.sh`);
//! * `swap` — failed queries and latency while `kmt reindex` swaps the index
//!   and a replica restarts, under a steady load over two replicas;
//! * `recommend` — RMSE/MAE and top-10 ranking of the collaborative-filtering
//!   models on MovieLens 100K's u1..u5 splits.
//!
//! `benches/run-latency.sh` drives the whole comparison end to end.

mod ann;
mod classify;
mod corpus;
mod embed;
mod events;
mod http;
mod loadgen;
mod pgfts;
mod plot;
mod queries;
mod recommend;
mod relevance;
mod report;
mod seed;
mod stats;
mod swap;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use loadgen::{LoadSpec, Measured};
use pgfts::PgWork;
use stats::Series;

#[derive(Parser)]
#[command(name = "kmt-bench", version, about = "KMT benchmark programs")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate N articles in KMT's JSONL format from the pgdocs and msmarco corpora.
    Scale(ScaleArgs),
    /// Print the built-in query set (benches/queries/pgdocs.txt), or write it to a file.
    Queries {
        /// Write the set here instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Closed-loop latency benchmark of KMT's GET /v1/search over HTTP.
    Latency(LatencyArgs),
    /// PostgreSQL full-text search baseline over the same articles and queries.
    Pgfts(PgftsArgs),
    /// Run KMT and the PostgreSQL baseline one after the other and update BENCHMARKS.md.
    Compare(CompareArgs),
    /// Wait until KMT's index holds the given number of articles (empty-query total).
    WaitIndex {
        /// KMT base URL.
        #[arg(long, env = "KMT_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Bearer token (anonymous callers see only public articles).
        #[arg(long, env = "KMT_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The article count to wait for.
        #[arg(long)]
        articles: u64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
    },
    /// nDCG@10, recall@100 and MRR@10 of lexical, semantic and hybrid search on a BEIR set.
    Relevance(RelevanceArgs),
    /// Category and tag prediction of held-out pgdocs articles from their neighbours.
    Classify(ClassifyArgs),
    /// Query latency and passage throughput of an embedding model (local or static).
    Embed(EmbedArgs),
    /// Recall@10 and speed of the vector index against exact search, filtered and not.
    Ann(AnnArgs),
    /// Write derived passage vectors for every article of an embedded store
    /// (a pool of real embeddings plus noise), for the server to reuse.
    SeedEmbeddings(SeedArgs),
    /// RMSE, MAE and ranking of the recommendation models on ml-100k's u1..u5 splits.
    Recommend {
        /// The ml-100k folder (u1.base .. u5.test).
        #[arg(long, default_value = "../shared/corpora/ml-100k")]
        data: PathBuf,
        /// Markdown file whose recommendations section is replaced.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Python interpreter with scikit-surprise: its BaselineOnly,
        /// KNNBaseline and SVD run in the same run, split by split
        /// (`benches/run-recommend.sh` builds the virtualenv).
        #[arg(long)]
        surprise: Option<PathBuf>,
        /// Instead of the benchmark: try MF settings on a held-out 10% of
        /// each .base file (never the .test files) and print the table.
        #[arg(long)]
        tune: bool,
        /// The settings `--tune` tries: `name=v1,v2 ...` over factors, lr,
        /// decay, reg, reg_bias, init_std, patience, min_gain, holdout, epochs,
        /// strata.
        #[arg(
            long,
            default_value = "factors=16,32 lr=0.02,0.03 decay=0.9,0.95 reg=0.06,0.08,0.1"
        )]
        grid: String,
    },
    /// Leave-last-out hit-rate@10 and nDCG@10 of "recommended for you" (CF,
    /// content, blend, most popular) on ml-100k, titles embedded with MiniLM.
    RecommendRank {
        /// The ml-100k folder (u.data, u.item).
        #[arg(long, default_value = "../shared/corpora/ml-100k")]
        data: PathBuf,
        /// Model directory (default: where `make model` puts it).
        #[arg(long, env = "KMT_MODEL_DIR")]
        model_dir: Option<PathBuf>,
        /// Cache of title vectors (default: ~/.cache/kmt/relevance).
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Markdown file whose ranking section is replaced.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Search latency with usage-event recording on and off, interleaved
    /// over two servers holding the same articles (`benches/run-events.sh`).
    Events {
        /// The server recording events.
        #[arg(long)]
        on: String,
        /// The server with recording off (`KMT_EVENT_QUEUE=0`).
        #[arg(long)]
        off: String,
        /// Query file (default: the committed pgdocs set).
        #[arg(long)]
        queries: Option<PathBuf>,
        /// Concurrent workers.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// Measured seconds.
        #[arg(long, default_value_t = 20)]
        duration: u64,
        /// Warm-up seconds.
        #[arg(long, default_value_t = 3)]
        warmup: u64,
        /// Markdown file whose events section is replaced.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Search load over HTTP on two replicas while `kmt reindex` swaps the
    /// index and a replica restarts: failed queries and latency per phase.
    Swap(swap::SwapArgs),
    /// Draw the series of earlier result files (<label>.json) on one SVG plot.
    Plot {
        /// Result files written by latency, pgfts or compare.
        #[arg(required = true)]
        results: Vec<PathBuf>,
        /// Plot title.
        #[arg(long, default_value = "Search latency")]
        title: String,
        /// Output SVG file.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args)]
struct ScaleArgs {
    /// Folder holding pgdocs/ and msmarco-5k/.
    #[arg(long, env = "KMT_CORPORA", default_value = "../shared/corpora")]
    corpora: PathBuf,
    /// How many articles to generate; 0 converts the pgdocs pages one-to-one.
    #[arg(long, default_value_t = 100_000)]
    articles: usize,
    /// Output JSONL file.
    #[arg(long)]
    out: PathBuf,
    /// PRNG seed: the same seed always gives the same file.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// Options of `kmt-bench relevance`.
#[derive(Args)]
struct RelevanceArgs {
    /// The BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv).
    #[arg(long, default_value = "../shared/corpora/msmarco-5k")]
    set: PathBuf,
    /// Model directory (default: where `make model` puts it).
    #[arg(long, env = "KMT_MODEL_DIR")]
    model_dir: Option<PathBuf>,
    /// Embedder: local (all-MiniLM-L6-v2 via candle) or static (distilled
    /// from it; its results go to their own section).
    #[arg(long, value_enum, default_value_t = relevance::EmbedderChoice::Local)]
    embedder: relevance::EmbedderChoice,
    /// Cache of passage vectors (default: ~/.cache/kmt/relevance).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Reference BM25 metrics (JSON written by benches/bm25_reference.py).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Markdown file whose relevance section is replaced.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Dump each query's hybrid candidate union (JSON Lines) for offline fusion fitting.
    #[arg(long)]
    dump: Option<PathBuf>,
}

#[derive(Args)]
struct ClassifyArgs {
    /// pgdocs corpus.jsonl.
    #[arg(long, default_value = "../shared/corpora/pgdocs/corpus.jsonl")]
    corpus: PathBuf,
    /// Model directory (default: where `make model` puts it).
    #[arg(long, env = "KMT_MODEL_DIR")]
    model_dir: Option<PathBuf>,
    /// Embedders measured beside the lexical vote (repeat).
    #[arg(long = "embedder", value_enum)]
    embedders: Vec<relevance::EmbedderChoice>,
    /// Share held out.
    #[arg(long, default_value_t = 0.2)]
    holdout: f64,
    /// Cache of passage vectors (default: ~/.cache/kmt/relevance).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Markdown file whose classify section is replaced.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct EmbedArgs {
    /// Model directory (default: $KMT_MODEL_DIR or ~/.cache/kmt/models/all-MiniLM-L6-v2).
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// Embedder: local (all-MiniLM-L6-v2 via candle) or static (distilled from it).
    #[arg(long, value_enum, default_value_t = relevance::EmbedderChoice::Local)]
    embedder: relevance::EmbedderChoice,
    /// Folder holding msmarco-5k/.
    #[arg(long, env = "KMT_CORPORA", default_value = "../shared/corpora")]
    corpora: PathBuf,
    /// Timed single-query embeddings (cycling through the 50 msmarco queries).
    #[arg(long, default_value_t = 500)]
    queries: usize,
    /// Passages per throughput run.
    #[arg(long, default_value_t = 500)]
    passages: usize,
    /// Texts per embed call in the throughput runs.
    #[arg(long, default_value_t = 64)]
    batch: usize,
}

#[derive(Args)]
struct AnnArgs {
    /// Folder holding msmarco-5k/ and pgdocs/.
    #[arg(long, env = "KMT_CORPORA", default_value = "../shared/corpora")]
    corpora: PathBuf,
    /// Embedding cache (default: $XDG_CACHE_HOME/kmt/ann or ~/.cache/kmt/ann).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Model directory (default: $KMT_MODEL_DIR or ~/.cache/kmt/models/all-MiniLM-L6-v2).
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// Vectors in the index.
    #[arg(long, default_value_t = 100_000)]
    vectors: usize,
    /// Real (embedded) passages among them; the rest are perturbed copies.
    #[arg(long, default_value_t = 20_000)]
    real: usize,
    /// Queries: the 50 msmarco-5k queries, then pgdocs titles.
    #[arg(long, default_value_t = 400)]
    queries: usize,
    /// Norm of the perturbation of derived vectors (relative to 1).
    #[arg(long, default_value_t = 0.35)]
    noise: f32,
    /// Candidate list sizes of the unfiltered graph searches.
    #[arg(long, value_delimiter = ',', default_value = "32,48,64,96,128,192,256")]
    ef: Vec<usize>,
    /// Seed of the derived vectors and allow-lists.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Skip the bare hnsw_rs graph (a second build) that times the walk alone.
    #[arg(long)]
    no_bare_graph: bool,
    /// Also write the section `## Vector index (ANN)` into this markdown file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Options of `kmt-bench seed-embeddings`.
#[derive(Args)]
struct SeedArgs {
    /// Data directory of the embedded store (no server may be running on it).
    #[arg(long)]
    data: PathBuf,
    /// Model directory (default: $KMT_MODEL_DIR or ~/.cache/kmt/models/all-MiniLM-L6-v2).
    #[arg(long, env = "KMT_MODEL_DIR")]
    model_dir: Option<PathBuf>,
    /// Folder holding msmarco-5k/.
    #[arg(long, env = "KMT_CORPORA", default_value = "../shared/corpora")]
    corpora: PathBuf,
    /// Real msmarco-5k passages embedded for the pool of base vectors.
    #[arg(long, default_value_t = 2000)]
    pool: usize,
    /// Standard deviation of the Gaussian noise added to each dimension.
    #[arg(long, default_value_t = 0.02)]
    noise: f32,
    /// Articles per store transaction.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Seed of the noise.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Cache of the pool's vectors (default: ~/.cache/kmt/seed).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Only count the articles' passages and model tokens; write nothing.
    #[arg(long)]
    count_only: bool,
}

fn cache_dir(name: &str) -> PathBuf {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    non_empty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("kmt")
        .join(name)
}

fn ann_cache_dir() -> PathBuf {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    non_empty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("kmt")
        .join("ann")
}

#[derive(Args, Clone)]
struct LoadArgs {
    /// Query file, one query per line (default: the built-in pgdocs set).
    #[arg(long, env = "KMT_BENCH_QUERIES")]
    queries: Option<PathBuf>,
    /// Concurrent closed-loop workers.
    #[arg(long, short = 'c', env = "KMT_BENCH_CONCURRENCY", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Measured seconds per system (at most 3600).
    #[arg(long, env = "KMT_BENCH_DURATION", default_value = "10", value_parser = parse_secs)]
    duration: Duration,
    /// Warm-up seconds before measuring (not recorded).
    #[arg(long, env = "KMT_BENCH_WARMUP", default_value = "2", value_parser = parse_secs)]
    warmup: Duration,
    /// Stop after this many measured requests per system.
    #[arg(long, default_value_t = 1_000_000)]
    max_requests: u64,
    /// Allow targets that are not on this machine (loopback / Unix socket).
    #[arg(long)]
    allow_remote: bool,
}

impl LoadArgs {
    fn spec(&self) -> LoadSpec {
        LoadSpec {
            concurrency: usize::from(self.concurrency),
            warmup: self.warmup,
            duration: self.duration,
            max_requests: self.max_requests,
        }
    }
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("not a number of seconds: {s}"))?;
    if !(0.0..=3600.0).contains(&v) {
        return Err("seconds must be between 0 and 3600".into());
    }
    Ok(Duration::from_secs_f64(v))
}

#[derive(Args)]
struct LatencyArgs {
    /// KMT base URL.
    #[arg(long, env = "KMT_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Bearer token (anonymous callers see only public articles).
    #[arg(long, env = "KMT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    load: LoadArgs,
    /// Name of the run (file names, plot title).
    #[arg(long, default_value = "kmt")]
    label: String,
    /// Write <label>.json and <label>.svg here.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Extra query parameter appended to every search URL, e.g.
    /// `--param mode=hybrid` (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

#[derive(Args)]
struct PgftsArgs {
    /// Server to create the throw-away benchmark database on.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    database_url: String,
    /// Articles in KMT's JSONL format (as written by `scale`).
    #[arg(long)]
    articles: PathBuf,
    #[command(flatten)]
    load: LoadArgs,
    /// What PostgreSQL computes per query.
    #[arg(long, value_enum, default_value_t = PgWork::Ranked)]
    pg_work: PgWork,
    /// Name of the run (file names, plot title).
    #[arg(long, default_value = "pgfts")]
    label: String,
    /// Write <label>.json and <label>.svg here.
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

#[derive(Args)]
struct CompareArgs {
    /// KMT base URL.
    #[arg(long, env = "KMT_URL", default_value = "http://127.0.0.1:8080")]
    kmt_url: String,
    /// Bearer token for KMT (anonymous callers see only public articles).
    #[arg(long, env = "KMT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Server to create the throw-away benchmark database on.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    database_url: String,
    /// The articles KMT holds, in KMT's JSONL format; PostgreSQL loads the same file.
    #[arg(long)]
    articles: PathBuf,
    #[command(flatten)]
    load: LoadArgs,
    /// What PostgreSQL computes per query.
    #[arg(long, value_enum, default_value_t = PgWork::Ranked)]
    pg_work: PgWork,
    /// Section name in BENCHMARKS.md and plot file name (default n<articles>-c<concurrency>).
    #[arg(long)]
    label: Option<String>,
    /// Markdown file to update.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Where the SVG plot and the JSON results go.
    #[arg(long, default_value = "benches/results")]
    plot_dir: PathBuf,
    /// The driver command to record next to ours (set by run-latency.sh).
    #[arg(long, env = "KMT_BENCH_DRIVER")]
    driver_command: Option<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Scale(a) => {
            let r = corpus::scale(&a.corpora, a.articles, a.seed, &a.out)?;
            println!(
                "wrote {} articles ({:.1} MiB, {:.0} body words on average) to {}",
                r.articles,
                r.bytes as f64 / (1024.0 * 1024.0),
                r.words as f64 / r.articles.max(1) as f64,
                a.out.display()
            );
        }
        Cmd::Queries { out } => match out {
            Some(path) => {
                std::fs::write(&path, queries::PGDOCS)
                    .with_context(|| format!("write {}", path.display()))?;
                println!(
                    "wrote {} queries to {}",
                    queries::parse(queries::PGDOCS).len(),
                    path.display()
                );
            }
            None => {
                for q in queries::parse(queries::PGDOCS) {
                    println!("{q}");
                }
            }
        },
        Cmd::Latency(a) => latency(a).await?,
        Cmd::Swap(a) => swap::run(a).await?,
        Cmd::Pgfts(a) => pgfts_cmd(a).await?,
        Cmd::Compare(a) => compare(a).await?,
        Cmd::Relevance(a) => {
            let spec = relevance::RelevanceSpec {
                set: a.set,
                model_dir: a
                    .model_dir
                    .unwrap_or_else(engine::embed::local::LocalEmbedder::default_dir),
                embedder: a.embedder,
                cache: a.cache.unwrap_or_else(|| {
                    std::env::var_os("XDG_CACHE_HOME")
                        .map(PathBuf::from)
                        .or_else(|| {
                            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache"))
                        })
                        .unwrap_or_else(|| PathBuf::from("."))
                        .join("kmt/relevance")
                }),
                reference: a.reference,
                out: a.out,
                dump: a.dump,
                command: report::command_line(&std::env::args().collect::<Vec<_>>()),
            };
            tokio::task::spawn_blocking(move || relevance::run(&spec))
                .await
                .context("relevance benchmark thread")??;
        }
        Cmd::Classify(a) => {
            classify::run(classify::ClassifySpec {
                corpus: a.corpus,
                model_dir: a
                    .model_dir
                    .unwrap_or_else(engine::embed::local::LocalEmbedder::default_dir),
                embedders: a.embedders,
                cache: a.cache.unwrap_or_else(|| {
                    std::env::var_os("HOME")
                        .map(|h| PathBuf::from(h).join(".cache"))
                        .unwrap_or_else(|| PathBuf::from("."))
                        .join("kmt/relevance")
                }),
                holdout: a.holdout,
                out: a.out,
                command: report::command_line(&std::env::args().collect::<Vec<_>>()),
            })
            .await?;
        }
        Cmd::Embed(a) => {
            if a.queries == 0 || a.passages == 0 || a.batch == 0 {
                bail!("--queries, --passages and --batch must be positive");
            }
            let spec = embed::EmbedSpec {
                model_dir: a
                    .model_dir
                    .unwrap_or_else(engine::embed::local::LocalEmbedder::default_dir),
                embedder: a.embedder,
                corpora: a.corpora,
                queries: a.queries,
                passages: a.passages,
                batch: a.batch,
            };
            // The model is CPU-bound and blocking: keep it off the runtime's
            // worker threads.
            tokio::task::spawn_blocking(move || embed::run(&spec))
                .await
                .context("embed benchmark thread")??;
        }
        Cmd::Ann(a) => {
            if !a.corpora.join("msmarco-5k").is_dir() || !a.corpora.join("pgdocs").is_dir() {
                eprintln!(
                    "skipping: {} holds no msmarco-5k/ and pgdocs/ (set --corpora or KMT_CORPORA)",
                    a.corpora.display()
                );
                return Ok(());
            }
            let spec = ann::AnnSpec {
                corpora: a.corpora,
                cache: a.cache.unwrap_or_else(ann_cache_dir),
                model_dir: a
                    .model_dir
                    .unwrap_or_else(engine::embed::local::LocalEmbedder::default_dir),
                vectors: a.vectors,
                real: a.real,
                queries: a.queries,
                noise: a.noise,
                efs: a.ef,
                seed: a.seed,
                raw_graph: !a.no_bare_graph,
                command: report::command_line(&std::env::args().collect::<Vec<_>>()),
            };
            // Embedding and the index are CPU-bound and blocking.
            let section = tokio::task::spawn_blocking(move || ann::run(&spec))
                .await
                .context("ann benchmark thread")??;
            println!("{section}");
            if let Some(out) = &a.out {
                ann::write_section(out, &section)?;
                eprintln!("updated the vector index section of {}", out.display());
            }
        }
        Cmd::SeedEmbeddings(a) => {
            let count_only = a.count_only;
            let r = seed::run(seed::SeedSpec {
                data: a.data,
                model_dir: a
                    .model_dir
                    .unwrap_or_else(engine::embed::local::LocalEmbedder::default_dir),
                corpora: a.corpora,
                pool: a.pool,
                noise: a.noise,
                batch: a.batch,
                seed: a.seed,
                cache: a.cache.unwrap_or_else(|| cache_dir("seed")),
                count_only,
            })
            .await?;
            if count_only {
                println!(
                    "{} articles, {} passages, {} tokens",
                    r.articles, r.passages, r.tokens
                );
            } else {
                println!(
                    "seeded {} articles with {} derived passage vectors in {:.1} s",
                    r.articles, r.passages, r.seconds
                );
            }
        }
        Cmd::Recommend {
            data,
            out,
            surprise,
            tune,
            grid,
        } => {
            let command = report::command_line(&std::env::args().collect::<Vec<_>>());
            if tune {
                let table = tokio::task::spawn_blocking(move || recommend::tune(&data, &grid))
                    .await
                    .context("recommend tuning thread")??;
                println!("{table}");
                return Ok(());
            }
            let spec = recommend::Spec {
                data,
                surprise,
                command,
            };
            let section = tokio::task::spawn_blocking(move || recommend::run(&spec))
                .await
                .context("recommend benchmark thread")??;
            println!("{section}");
            if let Some(out) = &out {
                recommend::write_section(out, &section)?;
                eprintln!("updated the recommendations section of {}", out.display());
            }
        }
        Cmd::Events {
            on,
            off,
            queries,
            concurrency,
            duration,
            warmup,
            out,
        } => {
            let command = std::env::var("KMT_BENCH_DRIVER")
                .unwrap_or_else(|_| report::command_line(&std::env::args().collect::<Vec<_>>()));
            let section = events::run(events::EventsSpec {
                on,
                off,
                queries: queries::load(queries.as_deref())?,
                concurrency,
                duration: Duration::from_secs(duration),
                warmup: Duration::from_secs(warmup),
                command,
            })
            .await?;
            println!("{section}");
            if let Some(out) = &out {
                events::write_section(out, &section)?;
                eprintln!("updated the events section of {}", out.display());
            }
        }
        Cmd::RecommendRank {
            data,
            model_dir,
            cache,
            out,
        } => {
            let spec = recommend::ranking::RankSpec {
                data,
                model_dir: model_dir
                    .unwrap_or_else(engine::embed::local::LocalEmbedder::default_dir),
                cache: cache.unwrap_or_else(|| {
                    std::env::var_os("HOME")
                        .map(|h| PathBuf::from(h).join(".cache"))
                        .unwrap_or_else(|| PathBuf::from("."))
                        .join("kmt/relevance")
                }),
                command: report::command_line(&std::env::args().collect::<Vec<_>>()),
            };
            let section = tokio::task::spawn_blocking(move || recommend::ranking::run(&spec))
                .await
                .context("ranking benchmark thread")??;
            println!("{section}");
            if let Some(out) = &out {
                recommend::ranking::write_section(out, &section)?;
                eprintln!("updated the ranking section of {}", out.display());
            }
        }
        Cmd::WaitIndex {
            url,
            token,
            articles,
            timeout,
        } => {
            let base = http::parse_base(&url, false)?;
            let token = token.as_deref().filter(|t| !t.is_empty());
            http::wait_for_total(&base, token, articles, Duration::from_secs(timeout)).await?;
        }
        Cmd::Plot {
            results,
            title,
            out,
        } => {
            let mut series = Vec::new();
            for path in &results {
                #[derive(serde::Deserialize)]
                struct ResultFile {
                    series: Vec<Series>,
                }
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("read {}", path.display()))?;
                let file: ResultFile = serde_json::from_str(&text).with_context(|| {
                    format!("{} is not a kmt-bench result file", path.display())
                })?;
                series.extend(file.series);
            }
            std::fs::write(&out, plot::latency_svg(&title, &series))
                .with_context(|| format!("write {}", out.display()))?;
            println!("wrote {}", out.display());
        }
    }
    Ok(())
}

fn finish(name: &str, concurrency: usize, m: &Measured) -> Series {
    let s = Series::new(name, concurrency, &m.recorder, m.elapsed);
    println!("{}", stats::format_summary(&s.summary));
    if m.interrupted {
        eprintln!("note: the run was interrupted; the numbers cover a shorter run");
    }
    s
}

async fn latency(a: LatencyArgs) -> Result<()> {
    let base = http::parse_base(&a.url, a.load.allow_remote)?;
    let qs = queries::load(a.load.queries.as_deref())?;
    let token = a.token.as_deref().filter(|t| !t.is_empty());
    let total = http::preflight(&base, token, &qs[0], &a.params).await?;
    if let Some(t) = total {
        eprintln!("kmt: empty query total {t}");
    }
    let stop = loadgen::stop_on_ctrl_c();
    let spec = a.load.spec();
    let extra: String = a.params.iter().map(|(k, v)| format!(" {k}={v}")).collect();
    eprintln!("kmt: run {}{extra}", a.label);
    let m = http::bench(&base, token, &qs, &a.params, spec, stop).await?;
    let name = if a.params.is_empty() {
        "KMT".to_owned()
    } else {
        format!("KMT ({})", extra.trim())
    };
    let series = finish(&name, spec.concurrency, &m);
    if let Some(dir) = &a.out_dir {
        let label = report::clean_label(&a.label);
        let meta = serde_json::json!({
            "url": base.as_str(),
            "authenticated": token.is_some(),
            "params": a.params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "queries": queries::describe(a.load.queries.as_deref(), qs.len()),
            "warmup_s": spec.warmup.as_secs_f64(),
            "command": report::command_line(&std::env::args().collect::<Vec<_>>()),
        });
        let title = format!("KMT search latency ({label})");
        report::write_results(dir, &label, &title, &[series], &meta)?;
    }
    Ok(())
}

/// Runs `f` against a fresh benchmark database and drops it afterwards, also
/// when `f` fails or Ctrl-C arrives during loading.
async fn with_fresh_db<T, F, Fut>(database_url: &str, allow_remote: bool, f: F) -> Result<T>
where
    F: FnOnce(sqlx::postgres::PgConnectOptions) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let db = pgfts::FreshDb::create(database_url, allow_remote).await?;
    let opts = db.opts.clone();
    let result = tokio::select! {
        r = f(opts) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    if let Err(e) = db.drop().await {
        eprintln!("warning: could not drop the benchmark database: {e:#}");
    }
    result
}

fn pg_system_name(version: &str, work: PgWork) -> String {
    let short = version.split_whitespace().next().unwrap_or(version);
    format!("PostgreSQL {short} FTS ({})", work.name())
}

fn describe_load(l: &pgfts::LoadReport) -> String {
    format!(
        "COPY of {} articles in {:.1} s, GIN index + VACUUM ANALYZE in {:.1} s, {:.0} MiB with indexes",
        l.articles,
        l.load_s,
        l.index_s,
        l.table_bytes as f64 / (1024.0 * 1024.0)
    )
}

async fn pgfts_cmd(a: PgftsArgs) -> Result<()> {
    let qs = queries::load(a.load.queries.as_deref())?;
    let spec = a.load.spec();
    let (articles, work, qs_ref) = (&a.articles, a.pg_work, &qs);
    let (load, m) = with_fresh_db(&a.database_url, a.load.allow_remote, |opts| async move {
        let load = pgfts::load(&opts, articles).await?;
        let stop = loadgen::stop_on_ctrl_c();
        let m = pgfts::bench(&opts, qs_ref, work, spec, stop).await?;
        Ok((load, m))
    })
    .await?;
    println!("postgres {}: {}", load.server_version, describe_load(&load));
    println!("work per query: {}", a.pg_work.describe());
    let name = pg_system_name(&load.server_version, a.pg_work);
    let series = finish(&name, spec.concurrency, &m);
    if let Some(dir) = &a.out_dir {
        let label = report::clean_label(&a.label);
        let meta = serde_json::json!({
            "articles_file": a.articles,
            "load": load,
            "pg_work": a.pg_work,
            "pg_work_description": a.pg_work.describe(),
            "queries": queries::describe(a.load.queries.as_deref(), qs.len()),
            "warmup_s": spec.warmup.as_secs_f64(),
            "command": report::command_line(&std::env::args().collect::<Vec<_>>()),
        });
        let title = format!("PostgreSQL FTS latency ({label})");
        report::write_results(dir, &label, &title, &[series], &meta)?;
    }
    Ok(())
}

fn count_lines(path: &Path) -> Result<u64> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut n = 0;
    for line in std::io::BufReader::new(f).lines() {
        if !line?.trim().is_empty() {
            n += 1;
        }
    }
    Ok(n)
}

async fn compare(a: CompareArgs) -> Result<()> {
    let base = http::parse_base(&a.kmt_url, a.load.allow_remote)?;
    let qs = queries::load(a.load.queries.as_deref())?;
    let articles = count_lines(&a.articles)?;
    if articles == 0 {
        bail!("{} holds no articles", a.articles.display());
    }
    let spec = a.load.spec();
    let label = report::clean_label(
        &a.label
            .clone()
            .unwrap_or_else(|| format!("n{articles}-c{}", spec.concurrency)),
    );
    let token = a.token.as_deref().filter(|t| !t.is_empty());
    let kmt_total = http::preflight(&base, token, &qs[0], &[]).await?;
    match kmt_total {
        Some(t) if t != articles => eprintln!(
            "warning: kmt reports {t} articles for an empty query but {} holds {articles}",
            a.articles.display()
        ),
        Some(_) => {}
        None => eprintln!("warning: kmt's empty query returned no readable total"),
    }
    let (base_ref, qs_ref, path, work) = (&base, &qs, &a.articles, a.pg_work);
    let (load, kmt, pg) = with_fresh_db(&a.database_url, a.load.allow_remote, |opts| async move {
        // Load PostgreSQL first so that the load does not overlap either measurement.
        let load = pgfts::load(&opts, path).await?;
        let stop = loadgen::stop_on_ctrl_c();
        eprintln!("kmt: benchmarking {base_ref}");
        let kmt = http::bench(base_ref, token, qs_ref, &[], spec, stop.clone()).await?;
        eprintln!("pgfts: benchmarking ({})", work.name());
        let pg = pgfts::bench(&opts, qs_ref, work, spec, stop).await?;
        Ok((load, kmt, pg))
    })
    .await?;
    let kmt = finish("KMT", spec.concurrency, &kmt);
    let pg = finish(
        &pg_system_name(&load.server_version, a.pg_work),
        spec.concurrency,
        &pg,
    );
    let command = report::command_line(&std::env::args().collect::<Vec<_>>());
    let qdesc = queries::describe(a.load.queries.as_deref(), qs.len());
    let meta = serde_json::json!({
        "articles_file": a.articles,
        "articles": articles,
        "kmt_url": base.as_str(),
        "kmt_total": kmt_total,
        "load": load,
        "pg_work": a.pg_work,
        "queries": qdesc,
        "warmup_s": spec.warmup.as_secs_f64(),
        "command": command,
    });
    let title = format!(
        "Search latency: KMT vs PostgreSQL FTS, {articles} articles, concurrency {}",
        spec.concurrency
    );
    let svg = report::write_results(
        &a.plot_dir,
        &label,
        &title,
        &[kmt.clone(), pg.clone()],
        &meta,
    )?;
    let out_dir = a
        .out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let plot_link = report::relative_path(&svg, out_dir).display().to_string();
    let kmt_work = format!(
        "`GET /v1/search?q=…&limit=10&facets=category,tags` over HTTP/1.1 keep-alive, {}; timed to the last response byte (ranking, total, facets and snippets)",
        if token.is_some() { "with a bearer token" } else { "anonymous" }
    );
    let info = report::SectionInfo {
        articles,
        kmt_total,
        queries: &qdesc,
        kmt_work: &kmt_work,
        pg_work: a.pg_work.describe(),
        pg_version: &load.server_version,
        pg_load: &describe_load(&load),
        duration_s: spec.duration.as_secs_f64(),
        warmup_s: spec.warmup.as_secs_f64(),
        command: &command,
        driver: a.driver_command.as_deref(),
        plot_link: &plot_link,
    };
    report::upsert_section(&a.out, &label, &report::section_markdown(&kmt, &pg, &info))?;
    println!("updated section {label} of {}", a.out.display());
    Ok(())
}
