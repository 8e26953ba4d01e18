//! KMT over HTTP: `GET /v1/search` load from keep-alive reqwest clients.
//!
//! Every query becomes `/v1/search?q=<urlencoded>&limit=10&facets=category,tags`
//! plus any `--param key=value` pairs (built once, before the run). A request counts as successful when it
//! answers 200 and its body has been read completely; the latency spans
//! sending the request to the last body byte. The `total` field is read from
//! the JSON afterwards (outside the timed span) to report hit counts.

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use crate::loadgen::{self, LoadSpec, Measured, Worker};
use crate::stats::Outcome;

#[derive(Deserialize)]
struct TotalOnly {
    total: u64,
}

/// True when `url` points at this machine (loopback address or `localhost`).
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let host = host.to_ascii_lowercase();
            host == "localhost" || host.ends_with(".localhost")
        }
    }
}

/// The search URL for each query, with the `extra` parameters appended.
pub fn search_urls(
    base: &Url,
    queries: &[String],
    limit: u32,
    extra: &[(String, String)],
) -> Result<Vec<Url>> {
    let endpoint = base
        .join("v1/search")
        .with_context(|| format!("bad base url {base}"))?;
    Ok(queries
        .iter()
        .map(|q| {
            let mut u = endpoint.clone();
            u.query_pairs_mut()
                .append_pair("q", q)
                .append_pair("limit", &limit.to_string())
                .append_pair("facets", "category,tags")
                .extend_pairs(extra);
            u
        })
        .collect())
}

/// A parsed `--url`, with a trailing slash so that `join` keeps any path prefix.
pub fn parse_base(url: &str, allow_remote: bool) -> Result<Url> {
    let mut base = Url::parse(url).with_context(|| format!("bad url {url:?}"))?;
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    if !allow_remote && !is_loopback(&base) {
        bail!(
            "refusing to load-test {base}: not a loopback address (pass --allow-remote to target another host)"
        );
    }
    Ok(base)
}

/// An error with its causes (reqwest's own message omits them).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

pub fn client(concurrency: usize) -> Result<Client> {
    Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(concurrency)
        .pool_idle_timeout(Duration::from_secs(90))
        .timeout(Duration::from_secs(30))
        .build()
        .context("build http client")
}

struct HttpWorker {
    client: Client,
    urls: Arc<Vec<Url>>,
    token: Option<Arc<str>>,
}

impl HttpWorker {
    async fn fetch(&self, url: &Url) -> Outcome {
        fetch(&self.client, url, self.token.as_deref()).await
    }
}

/// One timed `GET` of a search URL: ok when it answers 200 with a complete
/// body (the latency spans sending to the last body byte).
pub async fn fetch(client: &Client, url: &Url, token: Option<&str>) -> Outcome {
    let started = Instant::now();
    let mut req = client.get(url.clone());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let fail = |started: Instant, e: String| Outcome {
        elapsed: started.elapsed(),
        ok: false,
        total: None,
        error: Some(e),
    };
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return fail(started, format!("request failed: {}", chain(&e))),
    };
    let status = resp.status();
    let body = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return fail(started, format!("reading body failed: {}", chain(&e))),
    };
    let elapsed = started.elapsed();
    if status != StatusCode::OK {
        let excerpt = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return fail(started, format!("status {status}: {excerpt}"));
    }
    Outcome {
        elapsed,
        ok: true,
        total: serde_json::from_slice::<TotalOnly>(&body)
            .ok()
            .map(|t| t.total),
        error: None,
    }
}

impl Worker for HttpWorker {
    async fn call(&mut self, query: usize) -> Outcome {
        let urls = self.urls.clone();
        self.fetch(&urls[query]).await
    }
}

/// Checks that KMT answers a search (with the `extra` parameters), and
/// returns the `total` for an empty query.
pub async fn preflight(
    base: &Url,
    token: Option<&str>,
    probe: &str,
    extra: &[(String, String)],
) -> Result<Option<u64>> {
    let w = HttpWorker {
        client: client(1)?,
        urls: Arc::new(Vec::new()),
        token: token.map(Arc::from),
    };
    let probe_url = &search_urls(base, &[probe.to_owned()], 10, extra)?[0];
    let out = w.fetch(probe_url).await;
    if !out.ok {
        bail!(
            "kmt at {base} did not answer {probe_url}: {}",
            out.error.unwrap_or_default()
        );
    }
    let empty = &search_urls(base, &[String::new()], 1, &[])?[0];
    Ok(w.fetch(empty).await.total)
}

/// Polls `GET /v1/search?q=&limit=1` until its `total` equals `expected`.
pub async fn wait_for_total(
    base: &Url,
    token: Option<&str>,
    expected: u64,
    timeout: Duration,
) -> Result<()> {
    let w = HttpWorker {
        client: client(1)?,
        urls: Arc::new(Vec::new()),
        token: token.map(Arc::from),
    };
    let url = &search_urls(base, &[String::new()], 1, &[])?[0];
    let started = Instant::now();
    let mut last_note = Instant::now();
    let mut unreachable = 0;
    loop {
        let out = w.fetch(url).await;
        unreachable = match &out.error {
            Some(e) if e.starts_with("request failed") => unreachable + 1,
            _ => 0,
        };
        if unreachable >= 20 {
            bail!(
                "kmt at {base} stopped answering: {}",
                out.error.unwrap_or_default()
            );
        }
        let seen = match (&out.error, out.total) {
            (Some(e), _) => e.clone(),
            (None, Some(t)) if t == expected => {
                eprintln!(
                    "kmt: index holds {t} articles ({:.0}s)",
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            (None, Some(t)) => format!("{t} of {expected} articles"),
            (None, None) => "an answer without a total".to_owned(),
        };
        if started.elapsed() >= timeout {
            bail!(
                "kmt at {base} still reports {seen} after {:.0}s",
                timeout.as_secs_f64()
            );
        }
        if last_note.elapsed() >= Duration::from_secs(10) {
            eprintln!(
                "kmt: waiting for the index: {seen} ({:.0}s)",
                started.elapsed().as_secs_f64()
            );
            last_note = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs the closed-loop search benchmark against `base`, with the `extra`
/// query parameters on every request.
pub async fn bench(
    base: &Url,
    token: Option<&str>,
    queries: &[String],
    extra: &[(String, String)],
    spec: LoadSpec,
    stop: Arc<AtomicBool>,
) -> Result<Measured> {
    let urls = Arc::new(search_urls(base, queries, 10, extra)?);
    let client = client(spec.concurrency)?;
    let token: Option<Arc<str>> = token.map(Arc::from);
    let workers = (0..spec.concurrency)
        .map(|_| HttpWorker {
            client: client.clone(),
            urls: urls.clone(),
            token: token.clone(),
        })
        .collect();
    loadgen::run(workers, queries.len(), spec, stop).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_encoded_and_keep_prefix() {
        let base = parse_base("http://127.0.0.1:8080/kmt", false).unwrap();
        let u = search_urls(&base, &["pg_hba.conf & co".into()], 10, &[]).unwrap();
        assert_eq!(
            u[0].as_str(),
            "http://127.0.0.1:8080/kmt/v1/search?q=pg_hba.conf+%26+co&limit=10&facets=category%2Ctags"
        );
        let extra = [("mode".to_owned(), "hybrid".to_owned())];
        let u = search_urls(&base, &["x".into()], 10, &extra).unwrap();
        assert!(u[0]
            .as_str()
            .ends_with("&facets=category%2Ctags&mode=hybrid"));
    }

    #[test]
    fn remote_hosts_are_refused() {
        assert!(parse_base("http://localhost:1/", false).is_ok());
        assert!(parse_base("http://[::1]:1/", false).is_ok());
        assert!(parse_base("http://10.0.0.1:1/", false).is_err());
        assert!(parse_base("http://example.com/", false).is_err());
    }
}
