//! OTLP trace export (issue 7): request spans, with their request ids,
//! reach a collector on a loopback port as OTLP/HTTP JSON; with the
//! collector gone, requests go on unhindered and the lost spans are
//! counted.
//!
//! The server runs in this test's process on a current-thread runtime, so
//! the scoped subscriber carrying the OTLP layer sees every span its tasks
//! open (a global subscriber would leak into the other tests).

use std::time::{Duration, Instant};

use api::otlp::{OtlpConfig, OtlpStats};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing_subscriber::layer::SubscriberExt;

use crate::harness::{Backend, TestServer};

/// A minimal OTLP/HTTP collector: accepts POSTs, answers 200 and hands
/// each decoded JSON body to the test.
struct Collector {
    url: String,
    bodies: mpsc::UnboundedReceiver<Value>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    async fn start() -> Collector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let (tx, bodies) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 16 * 1024];
                    // Headers, then Content-Length bytes of body.
                    let (head_end, len) = loop {
                        let n = conn.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                            break (i + 4, len);
                        }
                    };
                    while buf.len() < head_end + len {
                        let n = conn.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let body: Value = serde_json::from_slice(&buf[head_end..head_end + len])
                        .expect("the export is JSON");
                    let _ = tx.send(body);
                    let _ = conn
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                        .await;
                });
            }
        });
        Collector { url, bodies, task }
    }
}

/// Every span in an export, with the resource's service name.
fn spans(doc: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for rs in doc["resourceSpans"].as_array().unwrap() {
        let service = rs["resource"]["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == "service.name")
            .map(|a| a["value"]["stringValue"].as_str().unwrap().to_string())
            .unwrap_or_default();
        for ss in rs["scopeSpans"].as_array().unwrap() {
            for s in ss["spans"].as_array().unwrap() {
                out.push((service.clone(), s.clone()));
            }
        }
    }
    out
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)?["value"]["stringValue"]
        .as_str()
}

fn lost(s: &OtlpStats) -> u64 {
    use std::sync::atomic::Ordering::Relaxed;
    s.failed.load(Relaxed) + s.dropped.load(Relaxed)
}

#[tokio::test]
async fn issue_7_request_spans_reach_an_otlp_collector() {
    let mut collector = Collector::start().await;
    let layer = api::otlp::layer(OtlpConfig {
        url: collector.url.clone(),
        service: "kmt-test".into(),
    });
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(layer);
    let _scope = tracing::subscriber::set_default(subscriber);

    let s = TestServer::start(Backend::Sqlite).await;
    let r = s
        .req(reqwest::Method::GET, "/v1/search?q=levy", Some("vera"))
        .header("x-request-id", "otlp-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "otlp-req-42");

    // Wait for the request's span among the exports.
    let t0 = Instant::now();
    let (service, span) = 'found: loop {
        let left = Duration::from_secs(15).saturating_sub(t0.elapsed());
        let doc = tokio::time::timeout(left, collector.bodies.recv())
            .await
            .expect("no export carried the request span within 15 s")
            .unwrap();
        for (service, span) in spans(&doc) {
            if span["name"] == "request" && attr(&span, "request_id") == Some("otlp-req-42") {
                break 'found (service, span);
            }
        }
    };
    assert_eq!(service, "kmt-test");
    assert_eq!(attr(&span, "path"), Some("/v1/search"));
    assert_eq!(attr(&span, "method"), Some("GET"));
    assert_eq!(span["kind"], 2, "a root request span is SERVER: {span}");
    let hex = |v: &Value, n: usize| {
        v.as_str()
            .is_some_and(|s| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    assert!(hex(&span["traceId"], 32), "{span}");
    assert!(hex(&span["spanId"], 16), "{span}");
    let time = |k: &str| span[k].as_str().unwrap().parse::<u128>().unwrap();
    assert!(time("startTimeUnixNano") <= time("endTimeUnixNano"));
    assert!(
        api::otlp::stats()
            .exported
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );

    // The collector goes away: requests are not slowed or failed, and the
    // spans that cannot be delivered are counted.
    collector.task.abort();
    drop(collector);
    let before = lost(api::otlp::stats());
    for _ in 0..20 {
        let (code, _) = s.get_json("/healthz", None).await;
        assert_eq!(code, 200);
    }
    let t0 = Instant::now();
    while lost(api::otlp::stats()) <= before {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "spans sent to a dead collector were not counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, metrics) = {
        let r = s.http.get(s.url("/metrics")).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    };
    assert!(
        metrics.contains("kmt_otlp_spans_total{outcome=\"failed\"}"),
        "{metrics}"
    );
    s.stop().await;
}
