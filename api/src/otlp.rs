//! OTLP trace export, on when an endpoint is configured: a `tracing` layer
//! that turns closed spans (the per-request span with its request id, and
//! any span inside it) into OTLP/HTTP JSON and posts them to a collector.
//!
//! Written here rather than taken from the OpenTelemetry SDK crates: those
//! bring their own runtime glue, protobuf code and a second HTTP stack for
//! what is a queue, a JSON document and a POST; `reqwest` (blocking) is
//! already built for the embedding client.
//!
//! Tracing must never slow down or block a request: a closed span is
//! handed to a bounded queue with `try_send`; when the queue is full (the
//! collector is slow or down) the span is dropped and counted. One thread
//! sends batches (up to [`MAX_BATCH`] spans, or whatever arrived within
//! [`BATCH_WAIT`]) with a short timeout and no retry: a failed batch is
//! counted and forgotten, so memory stays bounded by the queue.
//!
//! Settings: `KMT_OTLP_ENDPOINT` or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL: `/v1/traces` is appended),
//! or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL, used as is);
//! `OTEL_SERVICE_NAME` (default `kmt`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Spans waiting to be sent, at most.
pub const QUEUE: usize = 4096;
/// Spans per export request, at most.
pub const MAX_BATCH: usize = 512;
/// How long the sender waits to fill a batch after its first span.
pub const BATCH_WAIT: Duration = Duration::from_millis(500);
/// Timeout of one export request.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and as what to export.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// The full traces URL (`…/v1/traces`).
    pub url: String,
    /// `service.name` of the resource.
    pub service: String,
}

impl OtlpConfig {
    /// The configuration from the environment, `None` when no endpoint is
    /// set (export off).
    pub fn from_env() -> Option<OtlpConfig> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`Self::from_env`] over any variable source (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Option<OtlpConfig> {
        let set = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let url = match (
            set("KMT_OTLP_ENDPOINT"),
            set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            set("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(base), _, _) | (None, None, Some(base)) => {
                format!("{}/v1/traces", base.trim_end_matches('/'))
            }
            (None, Some(full), _) => full,
            (None, None, None) => return None,
        };
        Some(OtlpConfig {
            url,
            service: set("OTEL_SERVICE_NAME").unwrap_or_else(|| "kmt".into()),
        })
    }
}

/// What the exporter did, for `/metrics` (process-wide: one exporter).
#[derive(Debug, Default)]
pub struct OtlpStats {
    /// Spans the collector accepted.
    pub exported: AtomicU64,
    /// Spans dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Spans lost to a failed export request.
    pub failed: AtomicU64,
}

/// The exporter's counters; all zero while export is off.
pub fn stats() -> &'static OtlpStats {
    static STATS: OtlpStats = OtlpStats {
        exported: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    };
    &STATS
}

/// A closed span, ready to encode.
#[derive(Debug)]
struct SpanData {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    name: &'static str,
    target: &'static str,
    start: u128,
    end: u128,
    attrs: Vec<(String, String)>,
}

/// Kept in each open span's extensions.
struct Open {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    start: u128,
    attrs: Vec<(String, String)>,
}

/// The layer; build it with [`layer`].
pub struct OtlpLayer {
    tx: SyncSender<SpanData>,
}

/// Starts the sender thread and returns the layer feeding it.
pub fn layer(cfg: OtlpConfig) -> OtlpLayer {
    let (tx, rx) = sync_channel(QUEUE);
    let spawned = std::thread::Builder::new()
        .name("kmt-otlp".into())
        .spawn(move || send_loop(rx, cfg));
    if let Err(e) = spawned {
        // Without a sender every span is dropped and counted: tracing
        // export is not worth refusing to start over.
        eprintln!("warning: trace export off: starting its thread failed: {e}");
    }
    OtlpLayer { tx }
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: String) {
        match self.0.iter_mut().find(|(k, _)| k == field.name()) {
            Some(slot) => slot.1 = value,
            None => self.0.push((field.name().to_string(), value)),
        }
    }
}

impl<S> Layer<S> for OtlpLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span.parent().and_then(|p| {
            p.extensions()
                .get::<Open>()
                .map(|o| (o.trace_id, o.span_id))
        });
        let mut open = Open {
            trace_id: parent.map_or_else(rand::random, |p| p.0),
            span_id: rand::random(),
            parent: parent.map(|p| p.1),
            start: now_nanos(),
            attrs: Vec::new(),
        };
        attrs.record(&mut Fields(&mut open.attrs));
        span.extensions_mut().insert(open);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(open) = span.extensions_mut().get_mut::<Open>() {
                values.record(&mut Fields(&mut open.attrs));
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(open) = span.extensions_mut().remove::<Open>() else {
            return;
        };
        let data = SpanData {
            trace_id: open.trace_id,
            span_id: open.span_id,
            parent: open.parent,
            name: span.metadata().name(),
            target: span.metadata().target(),
            start: open.start,
            end: now_nanos(),
            attrs: open.attrs,
        };
        match self.tx.try_send(data) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                stats().dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn send_loop(rx: Receiver<SpanData>, cfg: OtlpConfig) {
    let client = match reqwest::blocking::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warning: trace export off: building its HTTP client failed: {e}");
            // Dropping the receiver makes every later span count as dropped.
            return;
        }
    };
    // Warn about a failing collector once per outage, not per batch.
    let mut failing = false;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let until = Instant::now() + BATCH_WAIT;
        while batch.len() < MAX_BATCH {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(s) => batch.push(s),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        let n = batch.len() as u64;
        let result = client
            .post(&cfg.url)
            .header("content-type", "application/json")
            .body(encode(&cfg.service, &batch).to_string())
            .send()
            .and_then(|r| r.error_for_status());
        match result {
            Ok(_) => {
                stats().exported.fetch_add(n, Ordering::Relaxed);
                failing = false;
            }
            Err(e) => {
                stats().failed.fetch_add(n, Ordering::Relaxed);
                if !failing {
                    // Not through `tracing`: that would make spans about
                    // exporting spans.
                    eprintln!(
                        "warning: trace export to {} failed ({e}); dropping spans until it recovers",
                        cfg.url
                    );
                    failing = true;
                }
            }
        }
    }
}

/// The OTLP/HTTP JSON document for one batch (ids in hex, times as
/// decimal strings, as the OTLP JSON mapping specifies).
fn encode(service: &str, spans: &[SpanData]) -> Value {
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let mut attrs: Vec<Value> = s
                .attrs
                .iter()
                .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
                .collect();
            attrs.push(json!({"key": "code.namespace", "value": {"stringValue": s.target}}));
            let mut span = json!({
                "traceId": hex::encode(s.trace_id),
                "spanId": hex::encode(s.span_id),
                "name": s.name,
                // SERVER for the root (the request), INTERNAL inside it.
                "kind": if s.parent.is_none() { 2 } else { 1 },
                "startTimeUnixNano": s.start.to_string(),
                "endTimeUnixNano": s.end.to_string(),
                "attributes": attrs,
            });
            if let Some(p) = s.parent {
                span["parentSpanId"] = json!(hex::encode(p));
            }
            span
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "kmt", "version": env!("CARGO_PKG_VERSION")}, "spans": spans}],
    }]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_settings() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(OtlpConfig::from_lookup(env(&[])), None);
        assert_eq!(
            OtlpConfig::from_lookup(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]))
                .unwrap()
                .url,
            "http://c:4318/v1/traces"
        );
        let c = OtlpConfig::from_lookup(env(&[
            ("KMT_OTLP_ENDPOINT", "http://k:4318"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_SERVICE_NAME", "kmt-a"),
        ]))
        .unwrap();
        assert_eq!(c.url, "http://k:4318/v1/traces");
        assert_eq!(c.service, "kmt-a");
        assert_eq!(
            OtlpConfig::from_lookup(env(&[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t/x"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ]))
            .unwrap()
            .url,
            "http://t/x"
        );
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        use tracing_subscriber::layer::SubscriberExt;
        // A layer whose sender never runs: the queue fills, then spans drop.
        let (tx, _rx) = sync_channel(2);
        let sub = tracing_subscriber::registry().with(OtlpLayer { tx });
        let before = stats().dropped.load(Ordering::Relaxed);
        tracing::subscriber::with_default(sub, || {
            for i in 0..5 {
                let _s = tracing::info_span!("request", request_id = i).entered();
            }
        });
        assert!(stats().dropped.load(Ordering::Relaxed) >= before + 3);
    }

    #[test]
    fn encodes_parent_links_and_attributes() {
        let s = SpanData {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent: Some([3; 8]),
            name: "search",
            target: "api",
            start: 5,
            end: 7,
            attrs: vec![("request_id".into(), "r-1".into())],
        };
        let doc = encode("kmt", &[s]);
        let span = &doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "01".repeat(16));
        assert_eq!(span["parentSpanId"], "03".repeat(8));
        assert_eq!(span["kind"], 1);
        assert_eq!(span["startTimeUnixNano"], "5");
        assert_eq!(span["attributes"][0]["value"]["stringValue"], "r-1");
    }
}
