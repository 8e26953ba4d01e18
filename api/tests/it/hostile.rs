//! Hostile input to every endpoint (issue 7): malformed and mistyped JSON,
//! bodies over the limit, deep nesting, NUL characters, huge and badly
//! encoded query strings, path-traversal and absurd ids, absurd numbers —
//! all sent as an admin, who may call everything. Every answer must be a
//! 4xx problem document (never a 5xx, never a hang) and the store must be
//! exactly as before.
//!
//! The routes come from the server's own OpenAPI document (methods, path
//! parameters, integer query parameters, which writes take a body) plus
//! the few routes it does not describe; a check against `app.rs` keeps the
//! list complete when someone adds a route.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Backend, TestServer};

/// Routes outside the OpenAPI document (pages, assets, probes).
const UNDOCUMENTED: &[&str] = &[
    "/",
    "/assets/{*name}",
    "/{page}",
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/openapi.json",
];

/// One route and what its contract says about its input.
#[derive(Debug, Clone)]
struct Route {
    method: Method,
    template: String,
    /// Declared request body (writes only).
    body: bool,
    /// Integer query parameters and whether they are unsigned.
    ints: Vec<(String, bool)>,
    /// Numeric top-level fields of the request body.
    numbers: Vec<String>,
}

/// Every `.route("…")` path in `app.rs`, so a new route cannot escape this
/// test by being left out of the OpenAPI document and the list above.
fn router_paths() -> BTreeSet<String> {
    let src = include_str!("../../src/app.rs");
    let mut out = BTreeSet::new();
    let mut rest = src;
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        let t = rest.trim_start();
        if let Some(t) = t.strip_prefix('"') {
            if let Some(end) = t.find('"') {
                out.insert(t[..end].to_string());
            }
        }
    }
    out
}

fn has_type(schema: &Value, kinds: &[&str]) -> bool {
    match &schema["type"] {
        Value::String(t) => kinds.contains(&t.as_str()),
        Value::Array(ts) => ts.iter().any(|t| kinds.iter().any(|k| t == k)),
        _ => false,
    }
}

fn is_integer(schema: &Value) -> bool {
    has_type(schema, &["integer"])
}

/// Follows a `$ref` into `components`.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// The numeric top-level properties of an operation's JSON body.
fn numeric_fields(doc: &Value, op: &Value) -> Vec<String> {
    let schema = resolve(
        doc,
        &op["requestBody"]["content"]["application/json"]["schema"],
    );
    schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, p)| has_type(resolve(doc, p), &["integer", "number"]))
        .map(|(k, _)| k.clone())
        .collect()
}

async fn routes(s: &TestServer) -> Vec<Route> {
    let (code, doc) = s.get_json("/v1/openapi.json", None).await;
    assert_eq!(code, 200);
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (m, op) in item.as_object().unwrap() {
            let Ok(method) = m.to_uppercase().parse::<Method>() else {
                continue;
            };
            if !op.is_object() || m == "parameters" {
                continue;
            }
            let ints = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query" && is_integer(&p["schema"]))
                .map(|p| {
                    let unsigned = p["schema"]["minimum"].as_f64().is_some_and(|m| m >= 0.0);
                    (p["name"].as_str().unwrap().to_string(), unsigned)
                })
                .collect();
            out.push(Route {
                method,
                template: path.clone(),
                body: op.get("requestBody").is_some(),
                ints,
                numbers: numeric_fields(&doc, op),
            });
        }
    }
    for p in UNDOCUMENTED {
        out.push(Route {
            method: Method::GET,
            template: p.to_string(),
            body: false,
            ints: Vec::new(),
            numbers: Vec::new(),
        });
    }
    let known: BTreeSet<String> = out.iter().map(|r| r.template.clone()).collect();
    let missing: Vec<_> = router_paths().difference(&known).cloned().collect();
    assert!(missing.is_empty(), "routes not covered: {missing:?}");
    out
}

/// Fixture ids for a route's path parameters.
struct Fixture {
    task: i64,
    webhook: i64,
}

/// The route with its parameters filled by fixtures; `hostile` replaces
/// the *last* parameter (the one the handler looks up) when given.
fn fill(route: &Route, f: &Fixture, hostile: Option<&str>) -> String {
    let t = &route.template;
    let params: Vec<(usize, usize)> = t
        .match_indices('{')
        .map(|(i, _)| (i, i + t[i..].find('}').unwrap() + 1))
        .collect();
    let mut out = String::new();
    let mut at = 0;
    for (n, (start, end)) in params.iter().enumerate() {
        out.push_str(&t[at..*start]);
        let name = &t[start + 1..end - 1];
        let value = match (hostile, n + 1 == params.len()) {
            (Some(h), true) => h.to_string(),
            _ => match name {
                "id" if t.starts_with("/v1/tasks/") => f.task.to_string(),
                "id" if t.contains("/webhooks/") => f.webhook.to_string(),
                "id" => "hostile-target".into(),
                "username" => "vera".into(),
                "category" => "collections".into(),
                "page" => "search".into(),
                "*name" => "kmt-client.js".into(),
                other => panic!("no fixture for {{{other}}} in {t}"),
            },
        };
        out.push_str(&value);
        at = *end;
    }
    out.push_str(&t[at..]);
    out
}

/// Everything a request could change, serialised for comparison.
async fn fingerprint(s: &TestServer) -> String {
    let st = &s.ts.store;
    let articles = st.scan_articles(0, 100_000).await.unwrap();
    let mut versions = Vec::new();
    for a in &articles {
        versions.push(st.list_versions(a.id).await.unwrap());
    }
    let audit = st
        .list_audit(&engine::store::AuditFilter {
            after_id: 0,
            limit: 1_000_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .len();
    let tasks = st
        .list_tasks(&engine::store::TaskFilter {
            include_done: true,
            ..Default::default()
        })
        .await
        .unwrap();
    json!({
        "articles": articles,
        "versions": versions,
        "users": st.list_users().await.unwrap(),
        "rules": st.list_rules().await.unwrap(),
        "tasks": tasks,
        "audit": audit,
        "outbox": st.outbox_head().await.unwrap(),
    })
    .to_string()
}

/// A hostile request and what it is.
struct Probe {
    what: String,
    method: Method,
    path: String,
    body: Option<(&'static str, Vec<u8>)>,
}

/// How an over-limit body is sent: announced by `Content-Length` (the
/// server must answer without reading it) or streamed in chunks (it must
/// stop reading at the limit).
#[derive(Debug, Clone, Copy)]
enum Huge {
    Announced,
    Chunked,
}

/// Sends an over-limit body over a raw connection and reads the answer
/// without finishing the body (an HTTP client library would insist on
/// writing it all first and report the closed connection instead).
/// Returns (status, content type, body).
async fn send_huge(
    s: &TestServer,
    method: &Method,
    path: &str,
    how: Huge,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let size = crate_body_limit() + 64 * 1024;
    let framing = match how {
        Huge::Announced => format!("content-length: {size}"),
        Huge::Chunked => "transfer-encoding: chunked".to_string(),
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\n{framing}\r\nconnection: close\r\n\r\n",
        s.tokens["admin"]
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    if let Huge::Chunked = how {
        // `{"title":"aaaa…` in 64 KiB chunks, past the limit; the server
        // may answer and close before taking it all.
        let chunk = vec![b'a'; 64 * 1024];
        let _ = conn.write_all(b"a\r\n{\"title\":\"\r\n").await;
        for _ in 0..size / chunk.len() {
            let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
            frame.extend_from_slice(&chunk);
            frame.extend_from_slice(b"\r\n");
            if conn.write_all(&frame).await.is_err() {
                break;
            }
        }
    }
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut raw)).await;
    assert!(
        read.is_ok(),
        "{method} {path} ({how:?} huge body): no answer within 20 s"
    );
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path} ({how:?}): not an HTTP answer: {head:?}"));
    let ct = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    // A chunked answer body: take the JSON between the size lines.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.lines().nth(1).unwrap_or("").to_string()
    } else {
        body.to_string()
    };
    (status, ct, body)
}

fn crate_body_limit() -> usize {
    api::app::BODY_LIMIT
}

/// Checks for a 4xx problem document; the fault otherwise.
fn check_problem(ctx: &str, code: u16, ct: &str, text: &str) -> Result<(), String> {
    if !(400..500).contains(&code) {
        return Err(format!(
            "{ctx}: expected a 4xx, got {code}: {}",
            abbreviate(text)
        ));
    }
    if !ct.starts_with("application/problem+json") {
        return Err(format!(
            "{ctx}: {code} with content type {ct:?}: {}",
            abbreviate(text)
        ));
    }
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| format!("{ctx}: problem body is not JSON ({e}): {text}"))?;
    if doc["status"] != code || !doc["detail"].is_string() {
        return Err(format!("{ctx}: malformed problem {doc}"));
    }
    Ok(())
}

/// Sends a probe as admin; checks for a 4xx problem document.
async fn send(s: &TestServer, client: &reqwest::Client, p: &Probe) -> (u16, Result<(), String>) {
    let url = format!("{}{}", s.base, p.path);
    let mut r = client
        .request(p.method.clone(), &url)
        .bearer_auth(&s.tokens["admin"]);
    if let Some((ct, body)) = &p.body {
        r = r.header("content-type", *ct).body(body.clone());
    }
    let ctx = format!("{} {} ({})", p.method, abbreviate(&p.path), p.what);
    let resp = match r.send().await {
        Ok(r) => r,
        // A server may close the connection on a body over the limit
        // before reading it all; that is a refusal too, but ours answer.
        Err(e) => panic!("{ctx}: no answer: {e}"),
    };
    let code = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.text().await.unwrap_or_default();
    (code, check_problem(&ctx, code, &ct, &text))
}

fn abbreviate(s: &str) -> String {
    if s.len() > 160 {
        let mut end = 160;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…({} bytes)", &s[..end], s.len())
    } else {
        s.to_string()
    }
}

/// Hostile path segments (already percent-encoded where needed).
fn hostile_ids() -> Vec<String> {
    vec![
        "..%2F..%2F..%2Fetc%2Fpasswd".into(),
        "%2e%2e%2f%2e%2e%2fCargo.toml".into(),
        "..%5C..%5Cwindows".into(),
        "a%00b".into(),
        "%ff%fe".into(),
        "%C0%AE%C0%AE".into(),
        "-1".into(),
        "0".into(),
        "99999999999999999999999999".into(),
        "9223372036854775808".into(),
        "%27%20OR%201%3D1--".into(),
        "%7B%7D".into(),
        "x".repeat(4_000),
    ]
}

/// Bodies every write route must refuse (content type, bytes, what).
fn hostile_bodies() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let j = "application/json";
    let deep_arrays = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let deep_objects = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    // Every field name the API uses, each with a wrong type.
    let wrong_types = json!({
        "title": 5, "summary": [], "body": {}, "category": true, "tags": "levy",
        "audience": 7, "status": ["published"], "slug": 1.5, "username": null,
        "display_name": 3, "roles": "admin", "password": 12345678, "name": [],
        "note": {"x": 1}, "url": 9, "users": "vera", "kind": 1, "comment": [],
        "stars": "five", "helpful": "yes", "history": "on", "level": 2,
        "email": 1, "webhook_url": [], "mandatory_fields": "tags", "events": {},
        "text": 5, "q": 1
    });
    let absurd = json!({
        "title": "Absurd", "category": "collections", "stars": 1e300,
        "min_length": -1e12, "review_interval_days": 1e12, "limit": 1e12,
        "offset": -5, "version": 99999999999999999999u128 as f64,
        "roles": ["admin"], "users": ["vera"], "kind": "read", "helpful": true,
        "events": [{"kind": "click", "position": -1e15, "dwell_ms": 1e300}]
    });
    vec![
        (j, b"{\"title\": ".to_vec(), "truncated JSON"),
        (j, b"{title: 'x'}".to_vec(), "not JSON"),
        (j, b"\xff\xfe{}".to_vec(), "invalid UTF-8"),
        (j, b"[]".to_vec(), "an array"),
        (j, b"\"text\"".to_vec(), "a string"),
        (j, b"42".to_vec(), "a number"),
        (j, b"null".to_vec(), "null"),
        (j, wrong_types.to_string().into_bytes(), "wrong field types"),
        (j, absurd.to_string().into_bytes(), "absurd numbers"),
        (
            j,
            br#"{"title":"a\u0000b","body":"x\u0000","note":"\u0000","username":"v\u0000","password":"p\u0000ssword-long","url":"http://x/\u0000","roles":["\u0000"],"users":["\u0000"],"comment":"\u0000"}"#.to_vec(),
            "NUL characters",
        ),
        (j, deep_arrays.into_bytes(), "50,000 nested arrays"),
        (j, deep_objects.into_bytes(), "10,000 nested objects"),
        ("text/plain", b"{\"title\":\"x\"}".to_vec(), "wrong content type"),
    ]
}

async fn every_endpoint(backend: Backend) {
    let s = TestServer::start(backend).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // Fixtures: a live article, alice's article in review with its task,
    // a webhook and a rule, so that lookups find real things.
    let admin = "admin";
    let (c, _) = s
        .call(Method::POST, "/v1/articles", admin, Some(json!({"slug": "hostile-target", "title": "Hostile target", "summary": "- a summary", "body": "Steps.", "category": "collections", "tags": ["levy"], "status": "published"})))
        .await;
    assert_eq!(c, 201);
    let (c, _) = s
        .call(Method::POST, "/v1/articles", "alice", Some(json!({"slug": "in-review", "title": "In review", "summary": "- a summary", "body": "Steps.", "category": "audits", "tags": ["levy"]})))
        .await;
    assert_eq!(c, 201);
    let (c, task) = s
        .call(Method::POST, "/v1/articles/in-review/submit", "alice", None)
        .await;
    assert_eq!(c, 201, "{task}");
    let (c, hook) = s
        .call(
            Method::POST,
            "/v1/categories/collections/webhooks",
            admin,
            Some(json!({"url": "http://127.0.0.1:9/hook"})),
        )
        .await;
    assert_eq!(c, 201, "{hook}");
    let (c, _) = s
        .call(
            Method::PUT,
            "/v1/rules/collections",
            admin,
            Some(json!({"mandatory_fields": ["tags"]})),
        )
        .await;
    assert!((200..300).contains(&c));
    let f = Fixture {
        task: task["id"].as_i64().unwrap(),
        webhook: hook["id"].as_i64().unwrap(),
    };

    let routes = routes(&s).await;
    let bodies = hostile_bodies();
    let mut sent = 0;
    let mut failures = Vec::<String>::new();
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for route in &routes {
        let before = fingerprint(&s).await;
        let path = fill(route, &f, None);
        let mut probes = Vec::new();
        let probe = |what: &str, path: String, body: Option<(&'static str, Vec<u8>)>| Probe {
            what: what.to_string(),
            method: route.method.clone(),
            path,
            body,
        };
        // Query strings: too long, badly encoded, NUL — on every route.
        for (what, q) in [
            ("a 10 KB query string", format!("q={}", "a".repeat(10_000))),
            ("invalid UTF-8 in a value", "q=%ff%fe".into()),
            ("malformed percent-encoding", "q=%zz".into()),
            ("a truncated escape", "q=abc%".into()),
            ("a NUL in a value", "q=a%00b".into()),
            ("invalid UTF-8 in a name", "%c3%28=1".into()),
        ] {
            probes.push(probe(what, format!("{path}?{q}"), None));
        }
        // Integer parameters: not integers, out of range, negative.
        for (name, unsigned) in &route.ints {
            let mut values = vec!["1e12", "abc", "99999999999999999999", "1.5", "0x10"];
            if *unsigned {
                values.push("-1");
            }
            for v in values {
                probes.push(probe(
                    &format!("{name}={v}"),
                    format!("{path}?{name}={v}"),
                    None,
                ));
            }
        }
        // Path parameters: traversal, NUL, bad encoding, absurd ids. A
        // read may answer one that is a well-formed name ("0", "-1": a
        // category with no rules or webhooks yet) with 2xx; writes refuse
        // all of them.
        let mut reads_of_names = Vec::new();
        if route.template.contains('{') {
            for id in hostile_ids() {
                let what = format!("path id {}", abbreviate(&id));
                let name = id.len() <= 64
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if name && route.method == Method::GET {
                    reads_of_names.push(fill(route, &f, Some(&id)));
                } else {
                    probes.push(probe(&what, fill(route, &f, Some(&id)), None));
                }
            }
        }
        // Bodies: on writes that take one, everything hostile; on writes
        // that take none, any body at all.
        let write = route.method != Method::GET;
        if write && route.body {
            for (ct, b, what) in &bodies {
                probes.push(probe(what, path.clone(), Some((*ct, b.clone()))));
            }
            // Each numeric field alone, out of any sensible range.
            for field in &route.numbers {
                for v in ["1000000000000", "-1", "1e300", "-9223372036854775808"] {
                    let body = format!("{{\"{field}\": {v}}}").into_bytes();
                    probes.push(probe(
                        &format!("{field}: {v}"),
                        path.clone(),
                        Some(("application/json", body)),
                    ));
                }
            }
        } else if write {
            probes.push(probe(
                "a body where none is taken",
                path.clone(),
                Some(("application/json", b"{\"force\":true}".to_vec())),
            ));
        }
        // A method the route does not have.
        probes.push(Probe {
            what: "an unsupported method".into(),
            method: Method::PATCH,
            path: path.clone(),
            body: None,
        });
        for p in &probes {
            let (code, checked) = send(&s, &client, p).await;
            failures.extend(checked.err());
            *by_status.entry(code).or_default() += 1;
            sent += 1;
        }
        for path in &reads_of_names {
            let r = client
                .get(format!("{}{path}", s.base))
                .bearer_auth(&s.tokens["admin"])
                .send()
                .await
                .unwrap();
            let code = r.status().as_u16();
            if !(200..500).contains(&code) {
                failures.push(format!("GET {path}: {code}"));
            }
            sent += 1;
        }
        // Bodies over the limit, announced and streamed, on every write.
        if write {
            for how in [Huge::Announced, Huge::Chunked] {
                let (code, ct, text) = send_huge(&s, &route.method, &path, how).await;
                let ctx = format!("{} {path} ({how:?} body over the limit)", route.method);
                failures.extend(check_problem(&ctx, code, &ct, &text).err());
                if route.body && code != 413 {
                    failures.push(format!("{ctx}: expected 413, got {code}: {text}"));
                }
                *by_status.entry(code).or_default() += 1;
                sent += 1;
            }
        }
        if fingerprint(&s).await != before {
            failures.push(format!(
                "{} {}: a refused request changed the store",
                route.method, route.template
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {sent} hostile requests were not refused cleanly:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(routes.len() >= 70, "{} routes", routes.len());
    eprintln!(
        "hostile input ({backend:?}): {sent} requests to {} routes, all refused: {by_status:?}",
        routes.len()
    );
    // The server still answers normally afterwards.
    let (c, v) = s.get_json("/v1/search?q=hostile", Some("admin")).await;
    assert_eq!(c, 200, "{v}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_hostile_input_to_every_endpoint_sqlite() {
    every_endpoint(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_hostile_input_to_every_endpoint_postgres() {
    every_endpoint(Backend::Postgres).await;
}
