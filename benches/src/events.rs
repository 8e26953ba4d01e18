//! `kmt-bench events`: search latency with usage-event recording on and
//! off, in one run. Two `kmt serve` processes hold the same articles, one
//! with recording on (the default) and one with `KMT_EVENT_QUEUE=0`; every
//! worker sends each query to both, alternating which goes first, so both
//! see the same queries under the same machine load
//! (`benches/run-events.sh` starts the servers).
//!
//! The "on" server's `kmt_usage_events_total{outcome="recorded"}` is read
//! before and after, to show that its searches really were stored.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use reqwest::{Client, Url};

use crate::http::{parse_base, search_urls};

/// Inputs of a run.
pub struct EventsSpec {
    /// Server with recording on.
    pub on: String,
    /// Server with recording off.
    pub off: String,
    /// Queries, cycled.
    pub queries: Vec<String>,
    /// Concurrent workers (each alternates between the two servers).
    pub concurrency: usize,
    /// Measured seconds.
    pub duration: Duration,
    /// Unmeasured seconds first.
    pub warmup: Duration,
    /// The command line, for the report.
    pub command: String,
}

/// Latencies of one server.
struct Side {
    hist: Histogram<u64>,
    errors: u64,
}

impl Side {
    fn new() -> Side {
        Side {
            hist: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
            errors: 0,
        }
    }
}

async fn timed(client: &Client, url: &Url) -> Option<u64> {
    let t0 = Instant::now();
    let resp = client.get(url.clone()).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.bytes().await.ok()?;
    Some(t0.elapsed().as_micros().max(1) as u64)
}

/// `kmt_usage_events_total{outcome="recorded"}` of a server.
async fn recorded(client: &Client, base: &Url) -> Result<u64> {
    let text = client
        .get(base.join("metrics")?)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    text.lines()
        .find(|l| l.starts_with("kmt_usage_events_total{outcome=\"recorded\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse::<f64>().ok())
        .map(|n| n as u64)
        .context("no kmt_usage_events_total{outcome=\"recorded\"} in /metrics")
}

/// Runs the comparison and returns the markdown section.
pub async fn run(spec: EventsSpec) -> Result<String> {
    let on = parse_base(&spec.on, false)?;
    let off = parse_base(&spec.off, false)?;
    if spec.queries.is_empty() {
        bail!("no queries");
    }
    let urls_on = search_urls(&on, &spec.queries, 10, &[])?;
    let urls_off = search_urls(&off, &spec.queries, 10, &[])?;
    let client = Client::builder().build()?;
    let before = recorded(&client, &on).await?;
    let before_off = recorded(&client, &off).await?;
    let n = spec.queries.len();
    let mut tasks = Vec::new();
    let started = Instant::now();
    for w in 0..spec.concurrency.max(1) {
        let (urls_on, urls_off) = (urls_on.clone(), urls_off.clone());
        let (warmup, duration) = (spec.warmup, spec.duration);
        tasks.push(tokio::spawn(async move {
            let client = Client::builder()
                .pool_max_idle_per_host(2)
                .build()
                .expect("http client");
            let (mut s_on, mut s_off) = (Side::new(), Side::new());
            let start = Instant::now();
            let mut i = w * n / 4 + w;
            let mut turn = w;
            loop {
                let el = start.elapsed();
                if el >= warmup + duration {
                    break;
                }
                let measured = el >= warmup;
                let q = i % n;
                // Alternate which server goes first.
                let order: [bool; 2] = if turn % 2 == 0 {
                    [true, false]
                } else {
                    [false, true]
                };
                for is_on in order {
                    let (url, side) = if is_on {
                        (&urls_on[q], &mut s_on)
                    } else {
                        (&urls_off[q], &mut s_off)
                    };
                    let t = timed(&client, url).await;
                    if measured {
                        match t {
                            Some(us) => side.hist.record(us).unwrap_or(()),
                            None => side.errors += 1,
                        }
                    }
                }
                i += 1;
                turn += 1;
            }
            (s_on, s_off)
        }));
    }
    let (mut s_on, mut s_off) = (Side::new(), Side::new());
    for t in tasks {
        let (a, b) = t.await?;
        s_on.hist.add(&a.hist)?;
        s_on.errors += a.errors;
        s_off.hist.add(&b.hist)?;
        s_off.errors += b.errors;
    }
    let wall = started.elapsed().as_secs_f64();
    // Let the writer flush its last batch (flush interval 1 s by default).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = recorded(&client, &on).await?;
    let after_off = recorded(&client, &off).await?;
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let mut md = String::from("## Usage events: search latency with recording on and off\n\n");
    md.push_str(&format!(
        "Command: `{}` — two `kmt serve` processes over the same articles (pgdocs, 1,139), one \
         recording usage events (the default) and one with `KMT_EVENT_QUEUE=0` (recording \
         off); {} workers each send every query to both servers in turn, alternating which \
         goes first, for {:.0} s after {:.0} s of warm-up (whole run {wall:.1} s). Anonymous \
         lexical searches (`limit=10`, facets) from the committed DBA query set; each search \
         with words is one usage event.\n\n",
        spec.command,
        spec.concurrency,
        spec.duration.as_secs_f64(),
        spec.warmup.as_secs_f64(),
    ));
    md.push_str("| recording | searches | errors | p50 ms | p90 ms | p99 ms | mean ms | events stored during the run |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (name, s, ev) in [
        ("on (default)", &s_on, after.saturating_sub(before)),
        (
            "off (`KMT_EVENT_QUEUE=0`)",
            &s_off,
            after_off.saturating_sub(before_off),
        ),
    ] {
        md.push_str(&format!(
            "| {name} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {ev} |\n",
            s.hist.len(),
            s.errors,
            ms(&s.hist, 0.5),
            ms(&s.hist, 0.9),
            ms(&s.hist, 0.99),
            s.hist.mean() / 1000.0,
        ));
    }
    let (p50, p99) = (
        ms(&s_on.hist, 0.5) / ms(&s_off.hist, 0.5).max(1e-9),
        ms(&s_on.hist, 0.99) / ms(&s_off.hist, 0.99).max(1e-9),
    );
    md.push_str(&format!(
        "\nOn / off: p50 ×{p50:.3}, p99 ×{p99:.3}. Recording costs the request one bounded-channel \
         `try_send`; the batched writes happen on the writer task.\n"
    ));
    Ok(md)
}

/// Replaces (or appends) the events section of `file`.
pub fn write_section(file: &Path, section: &str) -> Result<()> {
    crate::recommend::write_marked(file, "events", section)
}
