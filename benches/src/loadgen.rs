//! Closed-loop load generation shared by the HTTP and PostgreSQL benchmarks.
//!
//! `C` workers each send one request, wait for the full answer, record it and
//! send the next one, cycling through the query set (worker `i` starts at
//! query `i * n / C` so that workers do not move in lockstep). A warm-up
//! phase runs the same loop without recording. The run is bounded three ways:
//! by `--duration`, by `--max-requests` measured requests, and by Ctrl-C (the
//! workers finish their in-flight request and stop).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::stats::{Outcome, Recorder};

/// One worker: owns its connection and runs queries by index.
pub trait Worker: Send + 'static {
    fn call(&mut self, query: usize) -> impl Future<Output = Outcome> + Send;
}

/// How long and how hard to run.
#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub max_requests: u64,
}

/// What a run measured.
#[derive(Debug)]
pub struct Measured {
    pub recorder: Recorder,
    /// From the end of warm-up to the last worker finishing.
    pub elapsed: Duration,
    pub interrupted: bool,
}

/// A flag set by Ctrl-C; workers poll it between requests.
pub fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: finishing in-flight requests");
            flag.store(true, Ordering::SeqCst);
        }
    });
    stop
}

/// Runs `workers` (one per concurrent stream) over `n_queries` queries.
pub async fn run<W: Worker>(
    workers: Vec<W>,
    n_queries: usize,
    spec: LoadSpec,
    stop: Arc<AtomicBool>,
) -> Result<Measured> {
    let c = workers.len().max(1);
    let begin = Instant::now();
    let measure_from = begin + spec.warmup;
    let deadline = measure_from + spec.duration;
    let issued = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut worker) in workers.into_iter().enumerate() {
        let issued = issued.clone();
        let stop = stop.clone();
        let max = spec.max_requests;
        tasks.spawn(async move {
            let mut rec = Recorder::new();
            let mut q = i * n_queries / c;
            loop {
                let now = Instant::now();
                if now >= deadline || stop.load(Ordering::Relaxed) {
                    break;
                }
                let measured = now >= measure_from;
                if measured && issued.fetch_add(1, Ordering::Relaxed) >= max {
                    break;
                }
                let outcome = worker.call(q % n_queries).await;
                q += 1;
                if measured {
                    rec.record(outcome);
                }
            }
            rec
        });
    }
    if !spec.warmup.is_zero() {
        eprintln!(
            "warming up for {:.1}s, then measuring for {:.1}s with {} workers",
            spec.warmup.as_secs_f64(),
            spec.duration.as_secs_f64(),
            c
        );
    } else {
        eprintln!(
            "measuring for {:.1}s with {} workers",
            spec.duration.as_secs_f64(),
            c
        );
    }
    let mut recorder = Recorder::new();
    while let Some(rec) = tasks.join_next().await {
        recorder.merge(rec.context("benchmark worker panicked")?);
    }
    let end = Instant::now();
    Ok(Measured {
        recorder,
        elapsed: end.saturating_duration_since(measure_from),
        interrupted: stop.load(Ordering::SeqCst),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sleepy(u32);

    impl Worker for Sleepy {
        async fn call(&mut self, _query: usize) -> Outcome {
            let started = Instant::now();
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.0 += 1;
            Outcome {
                elapsed: started.elapsed(),
                ok: !self.0.is_multiple_of(10),
                total: Some(1),
                error: Some("every tenth fails".into()),
            }
        }
    }

    #[tokio::test]
    async fn bounded_by_count_and_counts_errors() {
        let spec = LoadSpec {
            concurrency: 2,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(30),
            max_requests: 100,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let m = run(vec![Sleepy(0), Sleepy(0)], 5, spec, stop)
            .await
            .unwrap();
        assert_eq!(m.recorder.ok + m.recorder.errors, 100);
        assert_eq!(m.recorder.errors, 10);
        assert!(m.elapsed < Duration::from_secs(5));
        assert!(m.recorder.hist.value_at_quantile(0.5) >= 2000);
    }
}
