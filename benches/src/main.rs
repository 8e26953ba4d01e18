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
mod cli;
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

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;

use cli::*;
use loadgen::Measured;
use pgfts::PgWork;
use stats::Series;

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
                corpus: a.corpus,
                model_dir: a
                    .model_dir
                    .unwrap_or_else(engine::embed::local::LocalEmbedder::default_dir),
                embedder: a.embedder,
                cache: a.cache.unwrap_or_else(|| cache_dir("relevance")),
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
                cache: a.cache.unwrap_or_else(|| cache_dir("relevance")),
                holdout: a.holdout,
                out: a.out,
                dump: a.dump,
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
                cache: a.cache.unwrap_or_else(|| cache_dir("ann")),
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
                cache: cache.unwrap_or_else(|| cache_dir("relevance")),
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
    let base = http::parse_base(&a.kmt.url, a.load.allow_remote)?;
    let qs = queries::load(a.load.queries.as_deref())?;
    let token = a.kmt.token.as_deref().filter(|t| !t.is_empty());
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
    let (articles, work, qs_ref) = (&a.pg.articles, a.pg.pg_work, &qs);
    let (load, m) = with_fresh_db(&a.pg.database_url, a.load.allow_remote, |opts| async move {
        let load = pgfts::load(&opts, articles).await?;
        let stop = loadgen::stop_on_ctrl_c();
        let m = pgfts::bench(&opts, qs_ref, work, spec, stop).await?;
        Ok((load, m))
    })
    .await?;
    println!("postgres {}: {}", load.server_version, describe_load(&load));
    println!("work per query: {}", a.pg.pg_work.describe());
    let name = pg_system_name(&load.server_version, a.pg.pg_work);
    let series = finish(&name, spec.concurrency, &m);
    if let Some(dir) = &a.out_dir {
        let label = report::clean_label(&a.label);
        let meta = serde_json::json!({
            "articles_file": a.pg.articles,
            "load": load,
            "pg_work": a.pg.pg_work,
            "pg_work_description": a.pg.pg_work.describe(),
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
    let base = http::parse_base(&a.kmt.url, a.load.allow_remote)?;
    let qs = queries::load(a.load.queries.as_deref())?;
    let articles = count_lines(&a.pg.articles)?;
    if articles == 0 {
        bail!("{} holds no articles", a.pg.articles.display());
    }
    let spec = a.load.spec();
    let label = report::clean_label(
        &a.label
            .clone()
            .unwrap_or_else(|| format!("n{articles}-c{}", spec.concurrency)),
    );
    let token = a.kmt.token.as_deref().filter(|t| !t.is_empty());
    let kmt_total = http::preflight(&base, token, &qs[0], &[]).await?;
    match kmt_total {
        Some(t) if t != articles => eprintln!(
            "warning: kmt reports {t} articles for an empty query but {} holds {articles}",
            a.pg.articles.display()
        ),
        Some(_) => {}
        None => eprintln!("warning: kmt's empty query returned no readable total"),
    }
    let (base_ref, qs_ref, path, work) = (&base, &qs, &a.pg.articles, a.pg.pg_work);
    let (load, kmt, pg) =
        with_fresh_db(&a.pg.database_url, a.load.allow_remote, |opts| async move {
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
        &pg_system_name(&load.server_version, a.pg.pg_work),
        spec.concurrency,
        &pg,
    );
    let command = report::command_line(&std::env::args().collect::<Vec<_>>());
    let qdesc = queries::describe(a.load.queries.as_deref(), qs.len());
    let meta = serde_json::json!({
        "articles_file": a.pg.articles,
        "articles": articles,
        "kmt_url": base.as_str(),
        "kmt_total": kmt_total,
        "load": load,
        "pg_work": a.pg.pg_work,
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
        pg_work: a.pg.pg_work.describe(),
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
