//! Latency recording and summaries.
//!
//! Latencies are recorded in microseconds into an HDR histogram (3 significant
//! digits, 1 µs to 60 s), one per worker, merged at the end. A [`Summary`] holds
//! what the reports print (p50/p90/p99/max, QPS, errors); a [`Series`] adds the
//! cumulative distribution that the SVG plot draws.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

const MAX_MICROS: u64 = 60_000_000;

/// The result of one request, as measured by the worker that sent it.
#[derive(Debug)]
pub struct Outcome {
    /// Time from sending the request to having the whole response.
    pub elapsed: Duration,
    /// Whether the request succeeded (HTTP 200 / query ran).
    pub ok: bool,
    /// The `total` the system reported, when it could be read.
    pub total: Option<u64>,
    /// Why it failed (kept for the first few errors only).
    pub error: Option<String>,
}

/// Per-worker (and then merged) counters and the latency histogram.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub hist: Histogram<u64>,
    pub ok: u64,
    pub errors: u64,
    pub totals_seen: u64,
    pub totals_sum: u64,
    pub zero_totals: u64,
    pub error_samples: Vec<String>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds"),
            ok: 0,
            errors: 0,
            totals_seen: 0,
            totals_sum: 0,
            zero_totals: 0,
            error_samples: Vec::new(),
        }
    }

    /// Records one outcome; only successful requests enter the histogram.
    pub fn record(&mut self, o: Outcome) {
        if !o.ok {
            self.errors += 1;
            if self.error_samples.len() < 3 {
                self.error_samples
                    .push(o.error.unwrap_or_else(|| "unknown error".into()));
            }
            return;
        }
        self.ok += 1;
        let micros = u64::try_from(o.elapsed.as_micros()).unwrap_or(u64::MAX);
        self.hist.saturating_record(micros.clamp(1, MAX_MICROS));
        if let Some(t) = o.total {
            self.totals_seen += 1;
            self.totals_sum += t;
            if t == 0 {
                self.zero_totals += 1;
            }
        }
    }

    pub fn merge(&mut self, other: Recorder) {
        self.hist.add(&other.hist).expect("same histogram bounds");
        self.ok += other.ok;
        self.errors += other.errors;
        self.totals_seen += other.totals_seen;
        self.totals_sum += other.totals_sum;
        self.zero_totals += other.zero_totals;
        for e in other.error_samples {
            if self.error_samples.len() < 3 {
                self.error_samples.push(e);
            }
        }
    }
}

/// The numbers a report prints for one system.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub system: String,
    pub concurrency: usize,
    pub requests: u64,
    pub errors: u64,
    pub elapsed_s: f64,
    pub qps: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Mean of the `total` field over responses that had one.
    pub mean_total: Option<f64>,
    /// Share of responses whose `total` was 0.
    pub zero_total_share: Option<f64>,
    pub error_samples: Vec<String>,
}

/// A summary plus the cumulative latency distribution, for plots and JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    pub summary: Summary,
    /// `(latency_ms, fraction of requests at or below it)`, ascending.
    pub cdf: Vec<(f64, f64)>,
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

impl Series {
    pub fn new(system: &str, concurrency: usize, rec: &Recorder, elapsed: Duration) -> Self {
        let h = &rec.hist;
        let n = h.len();
        let elapsed_s = elapsed.as_secs_f64();
        let q = |p: f64| {
            if n == 0 {
                0.0
            } else {
                ms(h.value_at_quantile(p))
            }
        };
        let summary = Summary {
            system: system.to_owned(),
            concurrency,
            requests: rec.ok + rec.errors,
            errors: rec.errors,
            elapsed_s,
            qps: if elapsed_s > 0.0 {
                rec.ok as f64 / elapsed_s
            } else {
                0.0
            },
            mean_ms: if n == 0 { 0.0 } else { h.mean() / 1000.0 },
            p50_ms: q(0.50),
            p90_ms: q(0.90),
            p99_ms: q(0.99),
            max_ms: if n == 0 { 0.0 } else { ms(h.max()) },
            mean_total: (rec.totals_seen > 0)
                .then(|| rec.totals_sum as f64 / rec.totals_seen as f64),
            zero_total_share: (rec.totals_seen > 0)
                .then(|| rec.zero_totals as f64 / rec.totals_seen as f64),
            error_samples: rec.error_samples.clone(),
        };
        Self {
            summary,
            cdf: cdf_points(h, 1500),
        }
    }
}

/// The empirical CDF at each distinct recorded value, thinned to about
/// `max_points` points (always keeping the first and last).
fn cdf_points(h: &Histogram<u64>, max_points: usize) -> Vec<(f64, f64)> {
    let n = h.len();
    if n == 0 {
        return Vec::new();
    }
    let mut all = Vec::new();
    for v in h.iter_recorded() {
        // The value a bucket represents: its highest equivalent value, so that
        // the plotted maximum matches the reported maximum.
        let value = h.highest_equivalent(v.value_iterated_to());
        all.push((ms(value.min(h.max())), v.quantile_iterated_to()));
    }
    if all.len() <= max_points {
        return all;
    }
    let step = all.len() as f64 / max_points as f64;
    let mut out: Vec<(f64, f64)> = (0..max_points)
        .map(|i| all[(i as f64 * step) as usize])
        .collect();
    out.push(*all.last().expect("non-empty"));
    out
}

/// One line for the terminal.
pub fn format_summary(s: &Summary) -> String {
    let mut line = format!(
        "{}: {} requests ({} errors) in {:.1}s, {:.1} qps, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        s.system, s.requests, s.errors, s.elapsed_s, s.qps, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
    );
    if let (Some(t), Some(z)) = (s.mean_total, s.zero_total_share) {
        line.push_str(&format!(
            ", mean total {t:.0}, {:.0}% with no hits",
            z * 100.0
        ));
    }
    for e in &s.error_samples {
        line.push_str(&format!("\n  error: {e}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(ms: u64) -> Outcome {
        Outcome {
            elapsed: Duration::from_millis(ms),
            ok: true,
            total: Some(ms % 2),
            error: None,
        }
    }

    #[test]
    fn percentiles_and_counts() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        for i in 1..=50 {
            a.record(ok(i));
        }
        for i in 51..=100 {
            b.record(ok(i));
        }
        b.record(Outcome {
            elapsed: Duration::from_millis(1),
            ok: false,
            total: None,
            error: Some("status 500".into()),
        });
        a.merge(b);
        let s = Series::new("x", 2, &a, Duration::from_secs(10));
        assert_eq!(s.summary.requests, 101);
        assert_eq!(s.summary.errors, 1);
        assert!((s.summary.qps - 10.0).abs() < 1e-9);
        assert!(
            (s.summary.p50_ms - 50.0).abs() < 0.1,
            "{}",
            s.summary.p50_ms
        );
        assert!((s.summary.p99_ms - 99.0).abs() < 0.1);
        assert!((s.summary.max_ms - 100.0).abs() < 0.1);
        assert_eq!(s.summary.zero_total_share, Some(0.5));
        let last = s.cdf.last().unwrap();
        assert!((last.1 - 1.0).abs() < 1e-9 && (last.0 - 100.0).abs() < 0.1);
    }
}
