//! OTLP trace export (issue 7): request spans, with their request ids,
//! reach a collector on a loopback port as OTLP/HTTP JSON; with the
//! collector gone, requests go on unhindered and the lost spans are
//! counted.
//!
//! The real `kmt serve` runs as a child process configured by the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT`: an in-process scoped subscriber proved
//! unreliable beside tests running on other threads (callsite interest is
//! process-wide), and a global one would leak into them.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

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

/// Kills the child when dropped (a failing assertion must not leave a
/// server running).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn counter(metrics: &str, outcome: &str) -> f64 {
    let prefix = format!("kmt_otlp_spans_total{{outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map_or(-1.0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_request_spans_reach_an_otlp_collector() {
    use std::io::BufRead;
    let mut collector = Collector::start().await;
    let base = collector.url.trim_end_matches("/v1/traces").to_string();
    let data = tempfile::tempdir().unwrap();
    // The real binary, configured through the standard variable.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kmt"))
        .arg("--data")
        .arg(data.path())
        .args(["serve", "--port", "0"])
        .env_remove("DATABASE_URL")
        .env("KMT_EMBEDDER", "off")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &base)
        .env("OTEL_SERVICE_NAME", "kmt-test")
        .env("RUST_LOG", "info,tantivy=warn")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _child = Running(child);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("kmt serve did not say where it listens");
        if let Some(rest) = line.split("addr=").nth(1) {
            if line.contains("listening") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        }
    };
    let url = |p: &str| format!("http://{addr}{p}");
    let http = reqwest::Client::new();
    let t0 = Instant::now();
    while !http
        .get(url("/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(t0.elapsed() < Duration::from_secs(60), "not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = http
        .get(url("/v1/search?q=levy"))
        .header("x-request-id", "otlp-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "otlp-req-42");

    // Wait for the request's span among the exports.
    let t0 = Instant::now();
    let (service, span) = 'found: loop {
        let left = Duration::from_secs(20).saturating_sub(t0.elapsed());
        let doc = tokio::time::timeout(left, collector.bodies.recv())
            .await
            .expect("no export carried the request span within 20 s")
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

    // The collector goes away: requests are not slowed or failed, and the
    // spans that cannot be delivered are counted.
    collector.task.abort();
    drop(collector);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..20 {
        let r = http.get(url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let t0 = Instant::now();
    loop {
        let m = http
            .get(url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(counter(&m, "exported") >= 1.0, "{m}");
        if counter(&m, "failed") + counter(&m, "dropped") >= 1.0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "spans sent to a dead collector were not counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
