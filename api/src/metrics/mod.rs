//! Prometheus metrics: `GET /metrics` in the text exposition format 0.0.4.
//!
//! Hand-written rather than built on a metrics crate: the service needs a
//! handful of counters, gauges and fixed-bucket histograms, and a small
//! renderer costs less compile time than a dependency.
//!
//! What is recorded where:
//! - HTTP requests, by the [`track_http`] middleware: counted by matched
//!   route template (never the raw path, so label cardinality stays bounded
//!   by the router), method and status, and timed by route, method and
//!   status class (`2xx`, `4xx`, …).
//! - Searches, by `routes::search::run` through [`Metrics::observe_search`].
//! - Index and follower state is read when scraped (gauges and the
//!   follower's own counters), so nothing on the indexing path waits on
//!   metrics.
//! - Escalations and notification deliveries by channel: the scheduler's
//!   own counters, read when scraped. Only a process that runs the
//!   scheduler counts them (`kmt serve` on the embedded store); with
//!   PostgreSQL, `kmt-indexer` runs it and the API's series stay at 0.
//!
//! The hot path only touches atomics, after a read-locked map lookup keyed
//! by route template (a bounded set).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use engine::search::SearchResults;

use crate::state::AppState;

mod render;

#[cfg(test)]
use render::escape_help;
pub use render::{escape_label, render};
use render::{header, sample, write_histogram};

/// `content-type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds, in seconds, of latency histograms: fine at the low end
/// because a search typically takes well under a millisecond.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of the hits-per-query histogram.
pub const HITS_BUCKETS: &[f64] = &[
    0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
    50000.0, 100000.0,
];

/// Route label of requests no route matched (404s of unknown paths): one
/// value for all of them, whatever path was asked for.
pub const UNMATCHED: &str = "unmatched";

/// Search stages, in the order of [`engine::search::Timings`].
const STAGES: [&str; 4] = ["parse", "search", "facets", "snippets"];

/// Method labels; any other method (HTTP allows extension methods, which a
/// client could invent without limit) is counted as `other`.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "other",
];

fn method_index(m: &Method) -> usize {
    METHODS
        .iter()
        .position(|x| *x == m.as_str())
        .unwrap_or(METHODS.len() - 1)
}

/// A histogram with fixed buckets, updated with atomics only.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket, not cumulative (made cumulative when rendered); the extra
    /// last slot counts observations above every bound.
    counts: Box<[AtomicU64]>,
    /// Sum of observations, as `f64` bits.
    sum: AtomicU64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending upper bounds).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Records one observation (NaN is ignored: it belongs to no bucket).
    pub fn observe(&self, v: f64) {
        if v.is_nan() {
            return;
        }
        // The first bound >= v: Prometheus buckets are `le`, inclusive.
        let i = self.bounds.partition_point(|b| *b < v);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        // A CAS loop, since there is no atomic f64 add; the closure never
        // gives up, so the result is always Ok.
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    fn counts(&self) -> Vec<u64> {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    fn sum(&self) -> f64 {
        f64::from_bits(self.sum.load(Ordering::Relaxed))
    }

    fn write(&self, out: &mut String, name: &str, labels: &[(&str, &str)]) {
        write_histogram(out, name, labels, self.bounds, &self.counts(), self.sum());
    }
}

/// Status classes labelling request durations: the exact status is on the
/// request counter; per-class latency tells fast refusals from slow work
/// without multiplying histograms by every status code.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn class_index(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

/// Requests of one route and method.
#[derive(Debug)]
struct MethodSeries {
    /// By status class, indexed like [`STATUS_CLASSES`].
    durations: [Histogram; 5],
    /// Requests by status code. Read-locked on the hot path; written only
    /// the first time a status is seen (at most a few hundred codes exist).
    statuses: RwLock<BTreeMap<u16, AtomicU64>>,
}

impl MethodSeries {
    fn new() -> MethodSeries {
        MethodSeries {
            durations: std::array::from_fn(|_| Histogram::new(DURATION_BUCKETS)),
            statuses: RwLock::default(),
        }
    }

    fn count_status(&self, status: u16) {
        // A poisoned lock only means another thread panicked mid-update of
        // plain counters: the data is still usable.
        let seen = {
            let m = self.statuses.read().unwrap_or_else(|e| e.into_inner());
            m.get(&status)
                .map(|c| c.fetch_add(1, Ordering::Relaxed))
                .is_some()
        };
        if !seen {
            let mut m = self.statuses.write().unwrap_or_else(|e| e.into_inner());
            m.entry(status)
                .or_insert_with(|| AtomicU64::new(0))
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Requests of one route, one series per entry of [`METHODS`].
#[derive(Debug)]
struct RouteSeries {
    methods: [MethodSeries; METHODS.len()],
}

/// Everything recorded as it happens (the rest is read at scrape time).
#[derive(Debug)]
pub struct Metrics {
    /// By route template (or [`UNMATCHED`]).
    http: RwLock<HashMap<String, Arc<RouteSeries>>>,
    /// By mode: lexical, semantic, hybrid.
    search_duration: [Histogram; 3],
    search_hits: Histogram,
    /// Indexed like [`STAGES`].
    search_stages: [Histogram; 4],
    /// The scheduler's notification counters, when this process runs it.
    notify: std::sync::OnceLock<Arc<engine::notify::deliver::NotifyStats>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            http: RwLock::default(),
            search_duration: std::array::from_fn(|_| Histogram::new(DURATION_BUCKETS)),
            search_hits: Histogram::new(HITS_BUCKETS),
            search_stages: std::array::from_fn(|_| Histogram::new(DURATION_BUCKETS)),
            notify: std::sync::OnceLock::new(),
        }
    }
}

impl Metrics {
    /// Exposes the delivery worker's counters (set once, at start).
    pub fn set_notify_stats(&self, stats: Arc<engine::notify::deliver::NotifyStats>) {
        let _ = self.notify.set(stats);
    }

    /// Records one HTTP request. `route` must be a route template or
    /// [`UNMATCHED`], never a raw path.
    pub fn observe_request(&self, route: &str, method: &Method, status: u16, seconds: f64) {
        let series = self.route_series(route);
        let m = &series.methods[method_index(method)];
        m.durations[class_index(status)].observe(seconds);
        m.count_status(status);
    }

    fn route_series(&self, route: &str) -> Arc<RouteSeries> {
        if let Some(s) = self
            .http
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(route)
        {
            return s.clone();
        }
        let mut map = self.http.write().unwrap_or_else(|e| e.into_inner());
        map.entry(route.to_owned())
            .or_insert_with(|| {
                Arc::new(RouteSeries {
                    methods: std::array::from_fn(|_| MethodSeries::new()),
                })
            })
            .clone()
    }

    /// Records a completed search from the engine's own timings (which
    /// exclude queueing for a blocking thread).
    pub fn observe_search(&self, r: &SearchResults) {
        let t = &r.timings;
        let mode = match r.mode {
            engine::search::SearchMode::Lexical => 0,
            engine::search::SearchMode::Semantic => 1,
            engine::search::SearchMode::Hybrid => 2,
        };
        self.search_duration[mode].observe(t.total / 1000.0);
        self.search_hits.observe(r.total as f64);
        for (h, ms) in self
            .search_stages
            .iter()
            .zip([t.parse, t.search, t.facets, t.snippets])
        {
            h.observe(ms / 1000.0);
        }
    }

    /// Renders what this struct recorded (HTTP and search).
    fn write_recorded(&self, out: &mut String) {
        // Snapshot the map so rendering holds no lock while formatting.
        let mut routes: Vec<(String, Arc<RouteSeries>)> = self
            .http
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        routes.sort_by(|a, b| a.0.cmp(&b.0));

        header(
            out,
            "kmt_http_requests_total",
            "counter",
            "HTTP requests by matched route template, method and status.",
        );
        for (route, s) in &routes {
            for (method, m) in METHODS.iter().zip(&s.methods) {
                let statuses = m.statuses.read().unwrap_or_else(|e| e.into_inner());
                for (status, n) in statuses.iter() {
                    let status = status.to_string();
                    sample(
                        out,
                        "kmt_http_requests_total",
                        &[("route", route), ("method", method), ("status", &status)],
                        n.load(Ordering::Relaxed),
                    );
                }
            }
        }

        header(
            out,
            "kmt_http_request_duration_seconds",
            "histogram",
            "Time to produce the response head, by matched route template, method and status class.",
        );
        for (route, s) in &routes {
            for (method, m) in METHODS.iter().zip(&s.methods) {
                for (class, h) in STATUS_CLASSES.iter().zip(&m.durations) {
                    // Skip combinations never seen: a histogram of zeros
                    // per method and class would only bloat every scrape.
                    if h.counts().iter().all(|c| *c == 0) {
                        continue;
                    }
                    h.write(
                        out,
                        "kmt_http_request_duration_seconds",
                        &[("route", route), ("method", method), ("status", class)],
                    );
                }
            }
        }

        header(
            out,
            "kmt_search_duration_seconds",
            "histogram",
            "Engine time per search (all stages).",
        );
        for (mode, h) in ["lexical", "semantic", "hybrid"]
            .iter()
            .zip(&self.search_duration)
        {
            h.write(out, "kmt_search_duration_seconds", &[("mode", mode)]);
        }
        header(
            out,
            "kmt_search_hits",
            "histogram",
            "Matching readable articles per search (the total, not the page).",
        );
        self.search_hits.write(out, "kmt_search_hits", &[]);
        header(
            out,
            "kmt_search_stage_seconds",
            "histogram",
            "Engine time per search stage.",
        );
        for (stage, h) in STAGES.iter().zip(&self.search_stages) {
            h.write(out, "kmt_search_stage_seconds", &[("stage", stage)]);
        }
    }
}

/// Middleware counting and timing every request (added with
/// `axum::middleware::from_fn_with_state` as a router layer, so the matched
/// route is known). Times until the response head is ready, not the body
/// streamed.
pub async fn track_http(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    // Cloned before the request moves on; `MatchedPath` is an `Arc<str>`.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let res = next.run(req).await;
    let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    m.observe_request(
        route,
        &method,
        res.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    res
}

/// Prometheus metrics in the text exposition format 0.0.4.
///
/// Unauthenticated, so a scraper needs no token. Operators should not
/// expose it publicly (route or firewall it to the monitoring network
/// only): it reveals traffic, index size and follower state. A later issue
/// adds a network policy.
pub async fn scrape(State(s): State<AppState>) -> Response {
    // Walking the index directory is blocking I/O: keep it off the runtime.
    let index = s.index.clone();
    let size = tokio::task::spawn_blocking(move || index.size_bytes())
        .await
        .unwrap_or(0);
    // Computed from the store, so every replica reports the same backlog
    // whichever process ships.
    let audit = match s.store.audit_ship_status().await {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: reading the audit shipping status failed");
            None
        }
    };
    let body = render(&s, size, audit);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_label("/v1/articles/{id}"), "/v1/articles/{id}");
        assert_eq!(escape_help("say \"hi\"\\\n"), "say \"hi\"\\\\\\n");
        let mut out = String::new();
        sample(&mut out, "m", &[("route", "a\"\n\\")], 1);
        assert_eq!(out, "m{route=\"a\\\"\\n\\\\\"} 1\n");
    }

    #[test]
    fn buckets_accumulate() {
        // Binary fractions, so the expected sum is exact.
        let h = Histogram::new(&[0.125, 1.0, 10.0]);
        for v in [0.0625, 0.125, 0.5, 1.0, 3.0, 20.0, f64::NAN] {
            h.observe(v);
        }
        // `le` is inclusive: 0.125 falls in the 0.125 bucket, 1.0 in 1.
        assert_eq!(h.counts(), vec![2, 2, 1, 1]);
        let mut out = String::new();
        h.write(&mut out, "x", &[("k", "v")]);
        let expected = "\
x_bucket{k=\"v\",le=\"0.125\"} 2
x_bucket{k=\"v\",le=\"1\"} 4
x_bucket{k=\"v\",le=\"10\"} 5
x_bucket{k=\"v\",le=\"+Inf\"} 6
x_sum{k=\"v\"} 24.6875
x_count{k=\"v\"} 6
";
        assert_eq!(out, expected);
    }

    #[test]
    fn requests_are_keyed_by_route_method_and_status() {
        let m = Metrics::default();
        m.observe_request("/v1/articles/{id}", &Method::GET, 200, 0.001);
        m.observe_request("/v1/articles/{id}", &Method::GET, 404, 0.001);
        m.observe_request("/v1/articles/{id}", &Method::GET, 200, 0.003);
        m.observe_request(UNMATCHED, &Method::from_bytes(b"BREW").unwrap(), 404, 0.0);
        let mut out = String::new();
        m.write_recorded(&mut out);
        for line in [
            "kmt_http_requests_total{route=\"/v1/articles/{id}\",method=\"GET\",status=\"200\"} 2",
            "kmt_http_requests_total{route=\"/v1/articles/{id}\",method=\"GET\",status=\"404\"} 1",
            "kmt_http_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"} 1",
            "kmt_http_request_duration_seconds_count{route=\"/v1/articles/{id}\",method=\"GET\",status=\"2xx\"} 2",
            "kmt_http_request_duration_seconds_count{route=\"/v1/articles/{id}\",method=\"GET\",status=\"4xx\"} 1",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing:\n{out}");
        }
        // Methods never seen on a route render no histogram.
        assert!(!out.contains("method=\"POST\""), "{out}");
    }
}
