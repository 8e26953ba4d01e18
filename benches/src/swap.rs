//! `kmt-bench swap`: search latency and failed queries under a steady HTTP
//! load while the index is swapped (`kmt reindex`) and a replica restarts.
//!
//! It creates a throw-away PostgreSQL database, imports generated articles
//! with `kmt import`, and starts two `kmt serve` replicas (A and B, separate
//! processes on loopback ports). Closed-loop workers then send searches
//! round-robin to the replicas *in rotation*: a checker polls each
//! replica's `/readyz` every `--check-ms` and takes it out of rotation
//! while it answers anything but 200 — what a load balancer's active health
//! check does. The timeline, each phase with its own latency histogram:
//!
//! 1. steady load;
//! 2. `kmt reindex` (run against A's index directory, so it only records
//!    the request): every replica rebuilds a new generation and swaps it in,
//!    until both report the new generation caught up;
//! 3. steady load on the new generations;
//! 4. B restarts: SIGTERM (B answers `/readyz` 503 `draining` for
//!    `KMT_SHUTDOWN_DRAIN_SECS` while still serving, then closes), started
//!    again on the same data, back in rotation once `/readyz` says ready;
//! 5. steady load.
//!
//! A query fails when it gets no complete 200 answer. The run is bounded:
//! the steady phases by `--steady`, the others by `--timeout`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use reqwest::Url;

use crate::stats::{Recorder, Series};

/// Options of `kmt-bench swap`.
#[derive(Args)]
pub struct SwapArgs {
    /// The `kmt` binary (default: the one beside `kmt-bench`).
    #[arg(long)]
    kmt: Option<PathBuf>,
    /// Server to create the throw-away database on.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    database_url: String,
    /// Articles generated from the reference corpora (as `scale` does) and
    /// imported.
    #[arg(long, default_value_t = 10_000)]
    articles: usize,
    /// Folder holding pgdocs/ and msmarco-5k/.
    #[arg(long, env = "KMT_CORPORA", default_value = "../shared/corpora")]
    corpora: PathBuf,
    /// Query file, one query per line (default: the built-in pgdocs set).
    #[arg(long)]
    queries: Option<PathBuf>,
    /// Concurrent closed-loop workers.
    #[arg(long, short = 'c', default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Seconds of steady load before, between and after the swaps.
    #[arg(long, default_value = "8", value_parser = crate::parse_secs)]
    steady: Duration,
    /// Longest wait for the reindex or the restart to complete, and for the
    /// replicas' first index build.
    #[arg(long, default_value = "600", value_parser = crate::parse_secs)]
    timeout: Duration,
    /// The replicas' drain period (`KMT_SHUTDOWN_DRAIN_SECS`).
    #[arg(long, default_value = "1", value_parser = crate::parse_secs)]
    drain: Duration,
    /// Interval of the `/readyz` checks that move replicas in and out of
    /// rotation, in milliseconds.
    #[arg(long, default_value_t = 100)]
    check_ms: u64,
    /// Port of replica A (B gets the next one).
    #[arg(long, default_value_t = 18181)]
    port: u16,
    /// Markdown file whose swap section is replaced.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Allow a PostgreSQL server that is not on this machine.
    #[arg(long)]
    allow_remote: bool,
}

/// Names of the phases, in order.
const PHASES: [&str; 5] = [
    "steady",
    "reindex (rebuild + swap)",
    "steady, new generation",
    "restart of B",
    "steady, B back",
];

/// A `kmt serve` process.
struct Replica {
    name: &'static str,
    port: u16,
    data: PathBuf,
    child: Option<Child>,
}

impl Replica {
    fn base(&self) -> Url {
        Url::parse(&format!("http://127.0.0.1:{}/", self.port)).expect("loopback url")
    }

    fn start(&mut self, kmt: &Path, db_url: &str, drain: Duration) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.with_extension("log"))?;
        let child = Command::new(kmt)
            .arg("--data")
            .arg(&self.data)
            .args(["serve", "--port", &self.port.to_string()])
            .env("DATABASE_URL", db_url)
            .env("KMT_EMBEDDER", "off")
            // One client address sends every request: no per-client limit.
            .env("KMT_RATE_LIMIT_PER_SEC", "0")
            .env("KMT_SHUTDOWN_DRAIN_SECS", drain.as_secs_f64().to_string())
            .env("RUST_LOG", "info,tantivy=warn,tower_http=warn")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", kmt.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGTERM, then waits for the exit.
    async fn stop(&mut self, within: Duration) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("could not signal replica {}", self.name);
        }
        let t0 = Instant::now();
        loop {
            if let Some(s) = child.try_wait()? {
                if !s.success() {
                    bail!("replica {} exited with {s}", self.name);
                }
                return Ok(());
            }
            if t0.elapsed() > within {
                let _ = child.kill();
                bail!("replica {} did not stop within {within:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `/readyz` of `base`: status code and body (code 0 when unreachable).
async fn readyz(client: &reqwest::Client, base: &Url) -> (u16, serde_json::Value) {
    let url = base.join("readyz").expect("readyz url");
    match client.get(url).send().await {
        Ok(r) => (
            r.status().as_u16(),
            r.json().await.unwrap_or(serde_json::Value::Null),
        ),
        Err(_) => (0, serde_json::Value::Null),
    }
}

/// Waits until `pred` holds for the `/readyz` answer of `base`.
async fn wait_readyz(
    client: &reqwest::Client,
    base: &Url,
    within: Duration,
    what: &str,
    pred: impl Fn(u16, &serde_json::Value) -> bool,
) -> Result<()> {
    let t0 = Instant::now();
    loop {
        let (code, v) = readyz(client, base).await;
        if pred(code, &v) {
            return Ok(());
        }
        if t0.elapsed() > within {
            bail!("{base}: {what} not reached within {within:?} (last: {code} {v})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Which replicas take requests: those whose last `/readyz` answered 200.
struct Rotation {
    up: Vec<AtomicBool>,
    next: AtomicUsize,
}

impl Rotation {
    fn pick(&self) -> Option<usize> {
        let n = self.up.len();
        (0..n)
            .map(|_| self.next.fetch_add(1, Ordering::Relaxed) % n)
            .find(|&i| self.up[i].load(Ordering::Relaxed))
    }
}

/// One phase's measurements.
#[derive(Default)]
struct PhaseRec {
    rec: Recorder,
    /// Requests sent to each replica.
    per_replica: [u64; 2],
}

/// Runs the benchmark.
pub async fn run(a: SwapArgs) -> Result<()> {
    let kmt = match &a.kmt {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("kmt"),
    };
    if !kmt.is_file() {
        bail!("no kmt binary at {} (pass --kmt)", kmt.display());
    }
    let queries = crate::queries::load(a.queries.as_deref())?;
    let work = std::env::temp_dir().join(format!("kmt-bench-swap-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let db = crate::pgfts::FreshDb::create_named(&a.database_url, a.allow_remote, "kmt_bench_swap")
        .await?;
    let db_url = {
        let mut u = Url::parse(&a.database_url).context("bad --database-url")?;
        u.set_path(&format!("/{}", db.name));
        u.to_string()
    };
    let result = run_in(&a, &kmt, &db_url, &work, &queries).await;
    db.drop().await?;
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("swap: replica logs kept in {}", work.display());
    }
    result
}

async fn run_in(
    a: &SwapArgs,
    kmt: &Path,
    db_url: &str,
    work: &Path,
    queries: &[String],
) -> Result<()> {
    let file = work.join("articles.jsonl");
    let generated = crate::corpus::scale(&a.corpora, a.articles, 42, &file)?;
    eprintln!("swap: importing {} articles", generated.articles);
    let status = Command::new(kmt)
        .args(["--data"])
        .arg(work.join("import"))
        .arg("import")
        .arg(&file)
        .args(["--format", "jsonl"])
        .env("DATABASE_URL", db_url)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("kmt import failed ({status})");
    }

    let mut replicas = [("A", 0u16), ("B", 1)].map(|(name, i)| Replica {
        name,
        port: a.port + i,
        data: work.join(format!("replica-{name}")),
        child: None,
    });
    for r in &mut replicas {
        r.start(kmt, db_url, a.drain)?;
    }
    let probe = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()?;
    for r in &replicas {
        wait_readyz(&probe, &r.base(), a.timeout, "first index build", |c, _| {
            c == 200
        })
        .await?;
    }
    eprintln!("swap: both replicas ready");

    // The rotation, kept by a checker like a balancer's health check.
    let rotation = Arc::new(Rotation {
        up: vec![AtomicBool::new(true), AtomicBool::new(true)],
        next: AtomicUsize::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let checker = {
        let (rotation, stop, probe) = (rotation.clone(), stop.clone(), probe.clone());
        let bases: Vec<Url> = replicas.iter().map(Replica::base).collect();
        let every = Duration::from_millis(a.check_ms.max(10));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for (i, b) in bases.iter().enumerate() {
                    let ok = readyz(&probe, b).await.0 == 200;
                    rotation.up[i].store(ok, Ordering::Relaxed);
                }
                tokio::time::sleep(every).await;
            }
        })
    };

    // The load.
    let urls: Arc<Vec<Vec<Url>>> = Arc::new(
        replicas
            .iter()
            .map(|r| crate::http::search_urls(&r.base(), queries, 10, &[]))
            .collect::<Result<_>>()?,
    );
    let phase = Arc::new(AtomicUsize::new(0));
    let recs: Arc<Mutex<Vec<PhaseRec>>> = Arc::new(Mutex::new(
        (0..PHASES.len()).map(|_| PhaseRec::default()).collect(),
    ));
    let concurrency = usize::from(a.concurrency);
    let client = crate::http::client(concurrency * 2)?;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let (urls, phase, recs, rotation, stop, client) = (
            urls.clone(),
            phase.clone(),
            recs.clone(),
            rotation.clone(),
            stop.clone(),
            client.clone(),
        );
        workers.spawn(async move {
            let mut mine: Vec<PhaseRec> = (0..PHASES.len()).map(|_| PhaseRec::default()).collect();
            let n = urls[0].len();
            let mut q = w * n / concurrency;
            while !stop.load(Ordering::Relaxed) {
                let Some(r) = rotation.pick() else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let p = phase.load(Ordering::Relaxed);
                let outcome = crate::http::fetch(&client, &urls[r][q % n], None).await;
                q += 1;
                mine[p].per_replica[r] += 1;
                mine[p].rec.record(outcome);
            }
            let mut all = recs.lock().expect("phase records lock");
            for (into, from) in all.iter_mut().zip(mine) {
                into.rec.merge(from.rec);
                into.per_replica[0] += from.per_replica[0];
                into.per_replica[1] += from.per_replica[1];
            }
        });
    }

    let mut spans = [Duration::ZERO; PHASES.len()];
    let mut notes = Vec::new();
    let timeline = async {
        let t = Instant::now();
        tokio::time::sleep(a.steady).await;
        spans[0] = t.elapsed();

        // 2. The reindex.
        phase.store(1, Ordering::Relaxed);
        let t = Instant::now();
        let mut before = Vec::new();
        for r in &replicas {
            let (_, v) = readyz(&probe, &r.base()).await;
            before.push(v["index_generation"].as_u64().unwrap_or(0));
        }
        let out = Command::new(kmt)
            .arg("--data")
            .arg(&replicas[0].data)
            .arg("reindex")
            .env("DATABASE_URL", db_url)
            .output()?;
        if !out.status.success() {
            bail!(
                "kmt reindex failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
        eprintln!("swap: {said}");
        for (r, gen) in replicas.iter().zip(&before) {
            wait_readyz(
                &probe,
                &r.base(),
                a.timeout,
                "the new generation",
                |c, v| c == 200 && v["index_generation"].as_u64().unwrap_or(0) > *gen,
            )
            .await?;
        }
        spans[1] = t.elapsed();
        notes.push(format!(
            "`kmt reindex` ({said}) to both replicas serving the new generation: {:.1} s",
            spans[1].as_secs_f64()
        ));

        phase.store(2, Ordering::Relaxed);
        let t = Instant::now();
        tokio::time::sleep(a.steady).await;
        spans[2] = t.elapsed();

        // 4. The restart of B.
        phase.store(3, Ordering::Relaxed);
        let t = Instant::now();
        replicas[1].stop(a.timeout).await?;
        let stopped = t.elapsed();
        replicas[1].start(kmt, db_url, a.drain)?;
        while !rotation.up[1].load(Ordering::Relaxed) {
            if t.elapsed() > a.timeout {
                bail!("replica B did not come back within {:?}", a.timeout);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        spans[3] = t.elapsed();
        notes.push(format!(
            "restart of B: SIGTERM to exit {:.1} s (drain {:.1} s), back in rotation after {:.1} s",
            stopped.as_secs_f64(),
            a.drain.as_secs_f64(),
            spans[3].as_secs_f64()
        ));

        phase.store(4, Ordering::Relaxed);
        let t = Instant::now();
        tokio::time::sleep(a.steady).await;
        spans[4] = t.elapsed();
        anyhow::Ok(())
    };
    let outcome = timeline.await;
    stop.store(true, Ordering::Relaxed);
    while let Some(r) = workers.join_next().await {
        r.context("load worker panicked")?;
    }
    let _ = checker.await;
    for r in &mut replicas {
        r.stop(Duration::from_secs(30)).await?;
    }
    outcome?;

    let recs = Arc::try_unwrap(recs)
        .ok()
        .expect("workers are done")
        .into_inner()
        .expect("phase records lock");
    let md = report(a, &generated, queries.len(), &recs, &spans, &notes);
    println!("{md}");
    if let Some(out) = &a.out {
        crate::report::upsert_section(out, "swap", &md)?;
        eprintln!("swap: updated {}", out.display());
    }
    let failed: u64 = recs.iter().map(|p| p.rec.errors).sum();
    if failed > 0 {
        let samples: Vec<&String> = recs.iter().flat_map(|p| &p.rec.error_samples).collect();
        bail!("{failed} queries failed, e.g. {samples:?}");
    }
    Ok(())
}

/// The markdown section.
fn report(
    a: &SwapArgs,
    generated: &crate::corpus::ScaleReport,
    n_queries: usize,
    recs: &[PhaseRec],
    spans: &[Duration],
    notes: &[String],
) -> String {
    let c = usize::from(a.concurrency);
    let mut md = format!(
        "### Index swap and replica restart under load — {} articles, concurrency {c}\n\n",
        generated.articles
    );
    md.push_str(
        "| phase | seconds | queries | failed | to A | to B | p50 (ms) | p99 (ms) | max (ms) |\n",
    );
    md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut all = Recorder::new();
    let mut to = [0u64; 2];
    for ((name, p), span) in PHASES.iter().zip(recs).zip(spans) {
        let s = Series::new(name, c, &p.rec, *span).summary;
        md.push_str(&format!(
            "| {name} | {:.1} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} |\n",
            span.as_secs_f64(),
            s.requests,
            s.errors,
            p.per_replica[0],
            p.per_replica[1],
            s.p50_ms,
            s.p99_ms,
            s.max_ms
        ));
        all.merge(p.rec.clone());
        to[0] += p.per_replica[0];
        to[1] += p.per_replica[1];
    }
    let total: Duration = spans.iter().sum();
    let s = Series::new("all", c, &all, total).summary;
    md.push_str(&format!(
        "| **all** | {:.1} | {} | **{}** | {} | {} | {:.2} | {:.2} | {:.2} |\n\n",
        total.as_secs_f64(),
        s.requests,
        s.errors,
        to[0],
        to[1],
        s.p50_ms,
        s.p99_ms,
        s.max_ms
    ));
    for n in notes {
        md.push_str(&format!("- {n}\n"));
    }
    md.push_str(&format!(
        "- setup: PostgreSQL, two `kmt serve` replicas (lexical search, embedder off), \
         {} round-robin over the replicas whose `/readyz` answered 200 \
         at the last check (every {} ms, as a load balancer's health check); a query fails \
         unless it gets a complete 200 answer\n",
        crate::queries::describe(a.queries.as_deref(), n_queries),
        a.check_ms
    ));
    md.push_str(&format!(
        "- command: `{}` ({})\n",
        crate::report::command_line(&std::env::args().collect::<Vec<_>>()),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    ));
    md
}
