//! The HTTP API end to end: writes, search freshness, errors, permissions.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Backend, TestServer};

fn article(slug: &str, title: &str, body: &str) -> Value {
    json!({
        "slug": slug, "title": title, "summary": "- short level", "body": body,
        "category": "collections", "tags": ["levy"], "status": "published"
    })
}

async fn create(s: &TestServer, user: &str, a: &Value) -> (u16, Value) {
    let r = s
        .req(Method::POST, "/v1/articles", Some(user))
        .json(a)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Polls search until `q` returns an article with `slug` (or fails after `limit`).
async fn found_within(
    s: &TestServer,
    user: &str,
    q: &str,
    slug: &str,
    limit: Duration,
) -> Duration {
    let t0 = Instant::now();
    loop {
        let (_, v) = s.get_json(&format!("/v1/search?q={q}"), Some(user)).await;
        if v["hits"]
            .as_array()
            .is_some_and(|h| h.iter().any(|x| x["slug"] == slug))
        {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "{slug} not found by {q:?} within {limit:?}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn created_article_is_found_within_a_second(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (code, a) = create(
        &s,
        "admin",
        &article(
            "quokka-levy",
            "Quokka levy procedure",
            "Steps for the quokka levy.",
        ),
    )
    .await;
    assert_eq!(code, 201, "{a}");
    assert_eq!(a["version"], 1);
    found_within(&s, "vera", "quokka", "quokka-levy", Duration::from_secs(1)).await;
    // An update is searchable as quickly, and the old words are gone.
    let r = s
        .req(
            Method::PUT,
            &format!("/v1/articles/{}", a["id"]),
            Some("admin"),
        )
        .json(&json!({"title": "Wombat levy procedure", "body": "Steps for the wombat levy."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    found_within(&s, "vera", "wombat", "quokka-levy", Duration::from_secs(1)).await;
    let (_, v) = s.get_json("/v1/search?q=quokka", Some("vera")).await;
    assert_eq!(v["total"], 0, "{v}");
    // Delete removes it from search.
    let r = s
        .req(
            Method::DELETE,
            &format!("/v1/articles/{}", a["id"]),
            Some("admin"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let t0 = Instant::now();
    loop {
        let (_, v) = s.get_json("/v1/search?q=wombat", Some("vera")).await;
        if v["total"] == 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "deleted article still found"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.stop().await;
}

/// Issue 2: an API test creates an article and finds it by search within one second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_2_created_article_is_found_within_a_second_sqlite() {
    created_article_is_found_within_a_second(Backend::Sqlite).await;
}

/// The same on PostgreSQL, woken by LISTEN/NOTIFY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_2_created_article_is_found_within_a_second_postgres() {
    created_article_is_found_within_a_second(Backend::Postgres).await;
}

/// Sends raw bytes and returns the start of the response.
async fn raw_request(s: &TestServer, req: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    c.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).to_string()
}

fn assert_problem(code: u16, want: u16, v: &Value) {
    assert_eq!(code, want, "{v}");
    assert_eq!(v["status"], want, "{v}");
    assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()), "{v}");
    assert!(v["type"].as_str().is_some(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_problem_documents() {
    let s = TestServer::start(Backend::Sqlite).await;
    // Malformed JSON.
    let r = s
        .req(Method::POST, "/v1/articles", Some("admin"))
        .header("content-type", "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let code = r.status().as_u16();
    assert_problem(code, 400, &r.json().await.unwrap());
    // Unknown field.
    let (code, v) = create(
        &s,
        "admin",
        &json!({"title": "x", "category": "a", "colour": "red"}),
    )
    .await;
    assert_problem(code, 400, &v);
    assert!(v["detail"].as_str().unwrap().contains("colour"), "{v}");
    // Validation names the field.
    let (code, v) = create(&s, "admin", &json!({"title": "  ", "category": "a"})).await;
    assert_problem(code, 422, &v);
    assert_eq!(v["field"], "title");
    let (code, v) = create(
        &s,
        "admin",
        &json!({"title": "ok", "category": "a", "tags": ["fine", "not fine"]}),
    )
    .await;
    assert_problem(code, 422, &v);
    assert_eq!(v["field"], "tags[1]");
    // Unknown search parameter, bad limit, bad filter.
    let (code, v) = s.get_json("/v1/search?q=x&limt=5", Some("vera")).await;
    assert_problem(code, 400, &v);
    assert_eq!(v["field"], "limt");
    let (code, v) = s.get_json("/v1/search?q=x&limit=500", Some("vera")).await;
    assert_problem(code, 422, &v);
    let (code, v) = s
        .get_json("/v1/search?q=x&filter=colour:red", Some("vera"))
        .await;
    assert_problem(code, 422, &v);
    // Authentication and authorisation.
    let r = s
        .http
        .get(s.url("/v1/search?q=x"))
        .bearer_auth("kmt_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_problem(r.status().as_u16(), 401, &r.json().await.unwrap());
    let (code, v) = create(&s, "vera", &article("a1", "A", "b")).await;
    assert_problem(code, 403, &v);
    let r = s
        .req(Method::POST, "/v1/articles", None)
        .json(&article("a2", "A", "b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // An author may write drafts but not publish directly.
    let (code, v) = create(&s, "alice", &article("a3", "A", "b")).await;
    assert_problem(code, 403, &v);
    let mut draft = article("a3", "A", "b");
    draft["status"] = json!("draft");
    let (code, _) = create(&s, "alice", &draft).await;
    assert_eq!(code, 201);
    // Duplicate slug.
    let (code, v) = create(&s, "admin", &article("a3", "Another", "b")).await;
    assert_problem(code, 409, &v);
    // Unknown route and article.
    let (code, v) = s.get_json("/v1/nothing", None).await;
    assert_problem(code, 404, &v);
    let (code, v) = s.get_json("/v1/articles/999999", Some("admin")).await;
    assert_problem(code, 404, &v);
    // Oversized body: refused from its declared length, before it is read.
    let head = raw_request(&s, &format!(
        "POST /v1/articles HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        s.tokens["admin"], 64 * 1024 * 1024
    )).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_articles_are_invisible_to_others() {
    let s = TestServer::start(Backend::Sqlite).await;
    let mut a = article(
        "selection",
        "Audit selection model",
        "The Thistlewood model ranks returns.",
    );
    a["audience"] = json!(["auditor"]);
    let (code, a) = create(&s, "admin", &a).await;
    assert_eq!(code, 201);
    found_within(
        &s,
        "alice",
        "thistlewood",
        "selection",
        Duration::from_secs(2),
    )
    .await;
    for user in [Some("vera"), Some("harry"), None] {
        let (code, v) = s
            .get_json("/v1/search?q=thistlewood&facets=category,tags", user)
            .await;
        assert_eq!(code, 200);
        assert_eq!(v["total"], 0, "{user:?}: {v}");
        assert_eq!(v["facets"]["category"], json!([]), "{v}");
        let (code, _) = s.get_json(&format!("/v1/articles/{}", a["id"]), user).await;
        assert_eq!(code, 404, "{user:?} must not learn the article exists");
        let (code, _) = s.get_json("/v1/articles/selection/versions", user).await;
        assert_eq!(code, 404);
        let (_, v) = s.get_json("/v1/articles?facets=tags", user).await;
        assert!(!v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["slug"] == "selection"));
    }
    let (code, v) = s.get_json("/v1/articles/selection", Some("alice")).await;
    assert_eq!(code, 200);
    assert_eq!(v["title"], "Audit selection model");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_response_has_the_documented_shape() {
    let s = TestServer::start(Backend::Sqlite).await;
    for (i, t) in ["Bank levy release", "Levy appeals", "Refund offsets"]
        .iter()
        .enumerate()
    {
        let (code, _) = create(&s, "admin", &article(&format!("a{i}"), t, "Body text.")).await;
        assert_eq!(code, 201);
    }
    found_within(&s, "vera", "refund", "a2", Duration::from_secs(2)).await;
    let r = s
        .req(
            Method::GET,
            "/v1/search?q=levy&facets=category,tags&filter=category:collections&limit=1&offset=0",
            Some("vera"),
        )
        .send()
        .await
        .unwrap();
    let timing = r.headers()["server-timing"].to_str().unwrap().to_string();
    for stage in [
        "parse;dur=",
        "search;dur=",
        "facets;dur=",
        "snippets;dur=",
        "total;dur=",
    ] {
        assert!(timing.contains(stage), "{timing}");
    }
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["total"], 2, "{v}");
    assert_eq!(v["hits"].as_array().unwrap().len(), 1);
    let hit = &v["hits"][0];
    for k in [
        "id",
        "slug",
        "title",
        "snippet",
        "score",
        "category",
        "tags",
        "updated_at",
    ] {
        assert!(hit.get(k).is_some(), "missing {k}: {hit}");
    }
    assert_eq!(
        v["facets"]["category"],
        json!([{"value": "collections", "count": 2}])
    );
    assert!(v["took_ms"].as_f64().is_some() && v["timings"]["total"].as_f64().is_some());
    // Versions and optimistic concurrency.
    let path = "/v1/articles/a0";
    let r = s
        .req(Method::PUT, path, Some("admin"))
        .json(&json!({"title": "Bank levy release v2", "expected_version": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .req(Method::PUT, path, Some("admin"))
        .json(&json!({"title": "stale", "expected_version": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let (_, v) = s.get_json("/v1/articles/a0/versions", Some("vera")).await;
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    // Probes and the API description.
    let (code, v) = s.get_json("/readyz", None).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["store"], "sqlite");
    let (code, _) = s.get_json("/healthz", None).await;
    assert_eq!(code, 200);
    let (code, v) = s.get_json("/v1/openapi.json", None).await;
    assert_eq!(code, 200);
    for p in ["/v1/search", "/v1/articles", "/v1/articles/{id}", "/readyz"] {
        assert!(v["paths"].get(p).is_some(), "openapi lacks {p}");
    }
    s.stop().await;
}

/// Version history: a readable diff between any two versions, revert as a
/// new version, and retire removing an article from search while keeping
/// its history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_revert_and_retire() {
    let s = TestServer::start(Backend::Sqlite).await;
    let (code, a) = create(
        &s,
        "admin",
        &article(
            "levy-release",
            "Releasing a levy",
            "Step one.\nStep two.\nStep three.",
        ),
    )
    .await;
    assert_eq!(code, 201, "{a}");
    let put = |body: Value| {
        s.req(Method::PUT, "/v1/articles/levy-release", Some("admin"))
            .json(&body)
            .send()
    };
    assert_eq!(
        put(json!({"body": "Step one.\nStep 2, revised.\nStep three."}))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        put(json!({"title": "Releasing a bank levy"}))
            .await
            .unwrap()
            .status(),
        200
    );
    let (code, d) = s
        .get_json("/v1/articles/levy-release/diff?from=1&to=3", Some("vera"))
        .await;
    assert_eq!(code, 200, "{d}");
    let fields: Vec<&str> = d["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["title", "body"]);
    let body_diff = d["fields"][1]["unified"].as_str().unwrap();
    assert!(
        body_diff.contains("-Step two.") && body_diff.contains("+Step 2, revised."),
        "{body_diff}"
    );
    let (code, _) = s
        .get_json("/v1/articles/levy-release/diff?from=1&to=9", Some("vera"))
        .await;
    assert_eq!(code, 422);
    // Revert writes version 4 with version 1's content.
    let r = s
        .req(
            Method::POST,
            "/v1/articles/levy-release/revert",
            Some("vera"),
        )
        .json(&json!({"version": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = s
        .req(
            Method::POST,
            "/v1/articles/levy-release/revert",
            Some("admin"),
        )
        .json(&json!({"version": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["version"].as_i64(), v["title"].as_str()),
        (Some(4), Some("Releasing a levy"))
    );
    found_within(&s, "vera", "two", "levy-release", Duration::from_secs(2)).await;
    // Retire: gone from search, history kept.
    assert_eq!(
        put(json!({"status": "retired"})).await.unwrap().status(),
        200
    );
    let t0 = Instant::now();
    loop {
        let (_, v) = s.get_json("/v1/search?q=levy", Some("vera")).await;
        if v["total"] == 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "retired article still found: {v}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, v) = s
        .get_json("/v1/search?q=levy&filter=status:retired", Some("admin"))
        .await;
    assert_eq!(v["total"], 1);
    let (_, versions) = s
        .get_json("/v1/articles/levy-release/versions", Some("admin"))
        .await;
    assert_eq!(versions.as_array().unwrap().len(), 5);
    s.stop().await;
}

/// Every response carries the security headers; the home page loads its
/// script and style from our own origin (no inline script, no CDN).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_and_embedded_assets() {
    let s = TestServer::start(Backend::Sqlite).await;
    for path in ["/", "/v1/search?q=x", "/nothing", "/assets/search.js"] {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
    }
    let page = s
        .http
        .get(s.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/assets/search.js") && !page.contains("<script>"));
    // The page and the client library it imports are JavaScript modules.
    for path in ["/assets/search.js", "/assets/kmt-client.js"] {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/javascript"),
            "{path}"
        );
    }
    assert_eq!(
        s.http
            .get(s.url("/assets/app.css"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        s.http
            .get(s.url("/assets/../Cargo.toml"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    s.stop().await;
}

/// A client over its rate limit gets 429 with Retry-After; probes are
/// exempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_over_their_rate_limit_get_429() {
    let limit = api::ratelimit::RateLimit {
        per_sec: 1.0,
        burst: 5.0,
        trust_forwarded_for: false,
    };
    let s = TestServer::start_with(Backend::Sqlite, Some(limit)).await;
    let mut codes = Vec::new();
    for _ in 0..8 {
        codes.push(s.get_json("/v1/search?q=levy", Some("vera")).await.0);
    }
    assert_eq!(&codes[..5], &[200; 5], "{codes:?}");
    let r = s
        .req(Method::GET, "/v1/search?q=levy", Some("vera"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 429);
    for _ in 0..10 {
        let r = s.http.get(s.url("/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 200, "probes are never limited");
    }
    s.stop().await;
}
