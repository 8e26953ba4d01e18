//! `kmt-bench`'s command line: one clap struct per subcommand, every
//! option documented (it is the benchmark's `--help`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::loadgen::LoadSpec;
use crate::pgfts::PgWork;
use crate::{relevance, swap};

#[derive(Parser)]
#[command(name = "kmt-bench", version, about = "KMT benchmark programs")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
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
pub(crate) struct ScaleArgs {
    /// Folder holding pgdocs/ and msmarco-5k/.
    #[arg(long, env = "KMT_CORPORA", default_value = "../shared/corpora")]
    pub(crate) corpora: PathBuf,
    /// How many articles to generate; 0 converts the pgdocs pages one-to-one.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) articles: usize,
    /// Output JSONL file.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// PRNG seed: the same seed always gives the same file.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
}

/// Options of `kmt-bench relevance`.
#[derive(Args)]
pub(crate) struct RelevanceArgs {
    /// The BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv).
    #[arg(long, default_value = "../shared/corpora/msmarco-5k")]
    pub(crate) set: PathBuf,
    /// The articles, when the set's folder holds only queries and judgments
    /// (benches/relevance/pgdocs-questions judges ../shared/corpora/pgdocs):
    /// any file or folder `kmt import` reads.
    #[arg(long)]
    pub(crate) corpus: Option<PathBuf>,
    /// Model directory (default: where `make model` puts it).
    #[arg(long, env = "KMT_MODEL_DIR")]
    pub(crate) model_dir: Option<PathBuf>,
    /// Embedder: local (all-MiniLM-L6-v2 in-process) or static (distilled
    /// from it; its results go to their own section).
    #[arg(long, value_enum, default_value_t = relevance::EmbedderChoice::Local)]
    pub(crate) embedder: relevance::EmbedderChoice,
    /// Cache of passage vectors (default: ~/.cache/kmt/relevance).
    #[arg(long)]
    pub(crate) cache: Option<PathBuf>,
    /// A reference ranker's metrics, as `LABEL=FILE` (JSON written by
    /// benches/relevance_reference.py in the same run); repeat for several.
    #[arg(long, value_parser = parse_reference)]
    pub(crate) reference: Vec<(String, PathBuf)>,
    /// Markdown file whose relevance section is replaced.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Dump each query's hybrid candidate union (JSON Lines) for offline fusion fitting.
    #[arg(long)]
    pub(crate) dump: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct ClassifyArgs {
    /// pgdocs corpus.jsonl.
    #[arg(long, default_value = "../shared/corpora/pgdocs/corpus.jsonl")]
    pub(crate) corpus: PathBuf,
    /// Model directory (default: where `make model` puts it).
    #[arg(long, env = "KMT_MODEL_DIR")]
    pub(crate) model_dir: Option<PathBuf>,
    /// Embedders measured beside the lexical vote (repeat).
    #[arg(long = "embedder", value_enum)]
    pub(crate) embedders: Vec<relevance::EmbedderChoice>,
    /// Share held out.
    #[arg(long, default_value_t = 0.2)]
    pub(crate) holdout: f64,
    /// Cache of passage vectors (default: ~/.cache/kmt/relevance).
    #[arg(long)]
    pub(crate) cache: Option<PathBuf>,
    /// Markdown file whose classify section is replaced.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Folder to write every article's labels, passage vectors and
    /// draft-query vector to (for exploring classifiers offline).
    #[arg(long)]
    pub(crate) dump: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct EmbedArgs {
    /// Model directory (default: $KMT_MODEL_DIR or ~/.cache/kmt/models/all-MiniLM-L6-v2).
    #[arg(long)]
    pub(crate) model_dir: Option<PathBuf>,
    /// Embedder: local (all-MiniLM-L6-v2 in-process) or static (distilled from it).
    #[arg(long, value_enum, default_value_t = relevance::EmbedderChoice::Local)]
    pub(crate) embedder: relevance::EmbedderChoice,
    /// Folder holding msmarco-5k/.
    #[arg(long, env = "KMT_CORPORA", default_value = "../shared/corpora")]
    pub(crate) corpora: PathBuf,
    /// Timed single-query embeddings (cycling through the 50 msmarco queries).
    #[arg(long, default_value_t = 500)]
    pub(crate) queries: usize,
    /// Passages per throughput run.
    #[arg(long, default_value_t = 500)]
    pub(crate) passages: usize,
    /// Texts per embed call in the throughput runs.
    #[arg(long, default_value_t = 64)]
    pub(crate) batch: usize,
}

#[derive(Args)]
pub(crate) struct AnnArgs {
    /// Folder holding msmarco-5k/ and pgdocs/.
    #[arg(long, env = "KMT_CORPORA", default_value = "../shared/corpora")]
    pub(crate) corpora: PathBuf,
    /// Embedding cache (default: $XDG_CACHE_HOME/kmt/ann or ~/.cache/kmt/ann).
    #[arg(long)]
    pub(crate) cache: Option<PathBuf>,
    /// Model directory (default: $KMT_MODEL_DIR or ~/.cache/kmt/models/all-MiniLM-L6-v2).
    #[arg(long)]
    pub(crate) model_dir: Option<PathBuf>,
    /// Vectors in the index.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) vectors: usize,
    /// Real (embedded) passages among them; the rest are perturbed copies.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) real: usize,
    /// Queries: the 50 msmarco-5k queries, then pgdocs titles.
    #[arg(long, default_value_t = 400)]
    pub(crate) queries: usize,
    /// Norm of the perturbation of derived vectors (relative to 1).
    #[arg(long, default_value_t = 0.35)]
    pub(crate) noise: f32,
    /// Candidate list sizes of the unfiltered graph searches.
    #[arg(long, value_delimiter = ',', default_value = "32,48,64,96,128,192,256")]
    pub(crate) ef: Vec<usize>,
    /// Seed of the derived vectors and allow-lists.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Skip the bare hnsw_rs graph (a second build) that times the walk alone.
    #[arg(long)]
    pub(crate) no_bare_graph: bool,
    /// Also write the section `## Vector index (ANN)` into this markdown file.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

/// Options of `kmt-bench seed-embeddings`.
#[derive(Args)]
pub(crate) struct SeedArgs {
    /// Data directory of the embedded store (no server may be running on it).
    #[arg(long)]
    pub(crate) data: PathBuf,
    /// Model directory (default: $KMT_MODEL_DIR or ~/.cache/kmt/models/all-MiniLM-L6-v2).
    #[arg(long, env = "KMT_MODEL_DIR")]
    pub(crate) model_dir: Option<PathBuf>,
    /// Folder holding msmarco-5k/.
    #[arg(long, env = "KMT_CORPORA", default_value = "../shared/corpora")]
    pub(crate) corpora: PathBuf,
    /// Real msmarco-5k passages embedded for the pool of base vectors.
    #[arg(long, default_value_t = 2000)]
    pub(crate) pool: usize,
    /// Standard deviation of the Gaussian noise added to each dimension.
    #[arg(long, default_value_t = 0.02)]
    pub(crate) noise: f32,
    /// Articles per store transaction.
    #[arg(long, default_value_t = 500)]
    pub(crate) batch: usize,
    /// Seed of the noise.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Cache of the pool's vectors (default: ~/.cache/kmt/seed).
    #[arg(long)]
    pub(crate) cache: Option<PathBuf>,
    /// Only count the articles' passages and model tokens; write nothing.
    #[arg(long)]
    pub(crate) count_only: bool,
}

/// `$XDG_CACHE_HOME/kmt/NAME` (else `$HOME/.cache/kmt/NAME`): where the
/// benchmarks keep vectors between runs.
pub(crate) fn cache_dir(name: &str) -> PathBuf {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    non_empty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("kmt")
        .join(name)
}

#[derive(Args, Clone)]
pub(crate) struct LoadArgs {
    /// Query file, one query per line (default: the built-in pgdocs set).
    #[arg(long, env = "KMT_BENCH_QUERIES")]
    pub(crate) queries: Option<PathBuf>,
    /// Concurrent closed-loop workers.
    #[arg(long, short = 'c', env = "KMT_BENCH_CONCURRENCY", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) concurrency: u16,
    /// Measured seconds per system (at most 3600).
    #[arg(long, env = "KMT_BENCH_DURATION", default_value = "10", value_parser = parse_secs)]
    pub(crate) duration: Duration,
    /// Warm-up seconds before measuring (not recorded).
    #[arg(long, env = "KMT_BENCH_WARMUP", default_value = "2", value_parser = parse_secs)]
    pub(crate) warmup: Duration,
    /// Stop after this many measured requests per system.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) max_requests: u64,
    /// Allow targets that are not on this machine (loopback / Unix socket).
    #[arg(long)]
    pub(crate) allow_remote: bool,
}

impl LoadArgs {
    pub(crate) fn spec(&self) -> LoadSpec {
        LoadSpec {
            concurrency: usize::from(self.concurrency),
            warmup: self.warmup,
            duration: self.duration,
            max_requests: self.max_requests,
        }
    }
}

pub(crate) fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("not a number of seconds: {s}"))?;
    if !(0.0..=3600.0).contains(&v) {
        return Err("seconds must be between 0 and 3600".into());
    }
    Ok(Duration::from_secs_f64(v))
}

/// The KMT server a load run sends its searches to.
#[derive(Args)]
pub(crate) struct KmtServer {
    /// KMT base URL.
    #[arg(
        long = "url",
        visible_alias = "kmt-url",
        env = "KMT_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub(crate) url: String,
    /// Bearer token (anonymous callers see only public articles).
    #[arg(long, env = "KMT_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
}

/// The PostgreSQL full-text search side of a run.
#[derive(Args)]
pub(crate) struct PgSide {
    /// Server to create the throw-away benchmark database on.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    pub(crate) database_url: String,
    /// Articles in KMT's JSONL format (as written by `scale`), loaded into
    /// PostgreSQL; for `compare`, the file KMT holds.
    #[arg(long)]
    pub(crate) articles: PathBuf,
    /// What PostgreSQL computes per query.
    #[arg(long, value_enum, default_value_t = PgWork::Ranked)]
    pub(crate) pg_work: PgWork,
}

#[derive(Args)]
pub(crate) struct LatencyArgs {
    #[command(flatten)]
    pub(crate) kmt: KmtServer,
    #[command(flatten)]
    pub(crate) load: LoadArgs,
    /// Name of the run (file names, plot title).
    #[arg(long, default_value = "kmt")]
    pub(crate) label: String,
    /// Write <label>.json and <label>.svg here.
    #[arg(long)]
    pub(crate) out_dir: Option<PathBuf>,
    /// Extra query parameter appended to every search URL, e.g.
    /// `--param mode=hybrid` (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub(crate) params: Vec<(String, String)>,
}

pub(crate) fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

#[derive(Args)]
pub(crate) struct PgftsArgs {
    #[command(flatten)]
    pub(crate) pg: PgSide,
    #[command(flatten)]
    pub(crate) load: LoadArgs,
    /// Name of the run (file names, plot title).
    #[arg(long, default_value = "pgfts")]
    pub(crate) label: String,
    /// Write <label>.json and <label>.svg here.
    #[arg(long)]
    pub(crate) out_dir: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct CompareArgs {
    #[command(flatten)]
    pub(crate) kmt: KmtServer,
    #[command(flatten)]
    pub(crate) pg: PgSide,
    #[command(flatten)]
    pub(crate) load: LoadArgs,
    /// Section name in BENCHMARKS.md and plot file name (default n<articles>-c<concurrency>).
    #[arg(long)]
    pub(crate) label: Option<String>,
    /// Markdown file to update.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub(crate) out: PathBuf,
    /// Where the SVG plot and the JSON results go.
    #[arg(long, default_value = "benches/results")]
    pub(crate) plot_dir: PathBuf,
    /// The driver command to record next to ours (set by run-latency.sh).
    #[arg(long, env = "KMT_BENCH_DRIVER")]
    pub(crate) driver_command: Option<String>,
}

/// `LABEL=FILE` of `--reference`.
fn parse_reference(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((label, file)) if !label.is_empty() && !file.is_empty() => {
            Ok((label.to_string(), PathBuf::from(file)))
        }
        _ => Err(format!("expected LABEL=FILE, got {s:?}")),
    }
}
