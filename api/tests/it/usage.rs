//! Usage events, ratings, feedback, privacy, analytics and reading
//! assignments over HTTP (issue 5), against a real server.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Backend, TestServer};

async fn call(
    s: &TestServer,
    m: Method,
    path: &str,
    user: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = s.req(m, path, user);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Creates a published article as admin; returns its id.
async fn article(
    s: &TestServer,
    slug: &str,
    title: &str,
    category: &str,
    audience: &[&str],
) -> i64 {
    let a = json!({"slug": slug, "title": title, "category": category, "audience": audience,
        "body": format!("{title}. Collections staff use this."), "status": "published"});
    let (code, v) = call(s, Method::POST, "/v1/articles", Some("admin"), Some(a)).await;
    assert_eq!(code, 201, "{v}");
    v["id"].as_i64().unwrap()
}

/// Polls `f` until it holds (events are written in the background).
async fn eventually<F, Fut>(what: &str, f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = Instant::now();
    while !f().await {
        assert!(t0.elapsed() < Duration::from_secs(10), "never: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Searches `q` as `user` until it finds `n` articles; returns the search id.
async fn search(s: &TestServer, user: &str, q: &str) -> (Value, Option<String>) {
    let r = s
        .req(Method::GET, &format!("/v1/search?q={q}"), Some(user))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r
        .headers()
        .get("x-search-id")
        .map(|v| v.to_str().unwrap().to_string());
    (r.json().await.unwrap(), id)
}

async fn wait_indexed(s: &TestServer, q: &str, n: u64) {
    eventually(&format!("{q} indexed"), || async {
        s.get_json(&format!("/v1/articles?filter=category:{q}"), Some("admin"))
            .await
            .1["total"]
            .as_u64()
            == Some(n)
    })
    .await;
}

/// A search answers before its event is stored (the writer here flushes
/// only hourly or at shutdown), and graceful shutdown writes every event
/// the sink accepted.
async fn search_does_not_wait(backend: Backend) {
    let usage = engine::usage::SinkConfig {
        queue: 10_000,
        batch: 100_000,
        flush_interval: Duration::from_secs(3600),
    };
    let mut s = TestServer::start_with_usage(backend, usage).await;
    article(&s, "levy-basics", "Levy basics", "collections", &["public"]).await;
    wait_indexed(&s, "collections", 1).await;
    for _ in 0..20 {
        let (res, id) = search(&s, "vera", "levy").await;
        assert_eq!(res["total"], 1);
        assert_eq!(id.unwrap().len(), 32);
    }
    let w = engine::model::UsageWindow::default();
    let stored = s.ts.store.query_stats(w, 10).await.unwrap();
    assert!(
        stored.is_empty(),
        "nothing is written before the flush: {stored:?}"
    );
    s.stop_server().await;
    let stored = s.ts.store.query_stats(w, 10).await.unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!((stored[0].query.as_str(), stored[0].searches), ("levy", 20));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_search_returns_before_its_event_is_stored_and_shutdown_flushes_sqlite() {
    search_does_not_wait(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_search_returns_before_its_event_is_stored_and_shutdown_flushes_postgres() {
    search_does_not_wait(Backend::Postgres).await;
}

/// Queries are stored without identity unless the user opted in; a
/// history is visible to its user and admins only; opting out forgets.
async fn privacy(backend: Backend) {
    let s = TestServer::start(backend).await;
    let id = article(&s, "levy-basics", "Levy basics", "collections", &["public"]).await;
    wait_indexed(&s, "collections", 1).await;
    let (code, v) = call(&s, Method::GET, "/v1/me/privacy", Some("alice"), None).await;
    assert_eq!((code, &v), (200, &json!({"keep_search_history": false})));
    let body = json!({"keep_search_history": true});
    let (code, _) = call(&s, Method::PUT, "/v1/me/privacy", Some("alice"), Some(body)).await;
    assert_eq!(code, 200);
    search(&s, "alice", "levy").await;
    search(&s, "vera", "basics").await;
    call(
        &s,
        Method::GET,
        &format!("/v1/articles/{id}"),
        Some("vera"),
        None,
    )
    .await;
    eventually("alice's search in her history", || async {
        let (_, h) = call(&s, Method::GET, "/v1/me/history", Some("alice"), None).await;
        h["searches"].as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    eventually("vera's view and both searches stored", || async {
        let (_, h) = call(&s, Method::GET, "/v1/me/history", Some("vera"), None).await;
        let stats =
            s.ts.store
                .query_stats(Default::default(), 10)
                .await
                .unwrap();
        h["views"].as_array().is_some_and(|a| a.len() == 1) && stats.len() == 2
    })
    .await;
    let (_, h) = call(&s, Method::GET, "/v1/me/history", Some("vera"), None).await;
    assert_eq!(h["searches"], json!([]), "vera did not opt in: {h}");
    assert_eq!(h["views"][0]["article_id"], id);
    let (_, h) = call(&s, Method::GET, "/v1/me/history", Some("alice"), None).await;
    assert_eq!(h["searches"][0]["query"], "levy");
    // Nobody but alice and admins sees alice's history.
    let (code, _) = call(
        &s,
        Method::GET,
        "/v1/users/alice/history",
        Some("vera"),
        None,
    )
    .await;
    assert_eq!(code, 403);
    let (code, h) = call(
        &s,
        Method::GET,
        "/v1/users/alice/history",
        Some("admin"),
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(h["searches"][0]["query"], "levy");
    // Opting out removes her identity from what was stored.
    let body = json!({"keep_search_history": false});
    call(&s, Method::PUT, "/v1/me/privacy", Some("alice"), Some(body)).await;
    let (_, h) = call(&s, Method::GET, "/v1/me/history", Some("alice"), None).await;
    assert_eq!(h["searches"], json!([]));
    let stats =
        s.ts.store
            .query_stats(Default::default(), 10)
            .await
            .unwrap();
    assert_eq!(stats.len(), 2, "the aggregate keeps the query: {stats:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_privacy_queries_kept_without_identity_unless_opted_in_sqlite() {
    privacy(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_privacy_queries_kept_without_identity_unless_opted_in_postgres() {
    privacy(Backend::Postgres).await;
}

/// One rating per user and article, changeable; helpful votes likewise;
/// events and ratings need a readable article.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_rating_one_per_user_changeable_and_validation() {
    let s = TestServer::start(Backend::Sqlite).await;
    let id = article(&s, "levy-basics", "Levy basics", "collections", &["public"]).await;
    let hidden = article(
        &s,
        "hearing-notes",
        "Hearing notes",
        "appeals",
        &["hearing_officer"],
    )
    .await;
    let rating = format!("/v1/articles/{id}/rating");
    let put = |user: &'static str, stars: i64| {
        let rating = rating.clone();
        let s = &s;
        async move {
            call(
                s,
                Method::PUT,
                &rating,
                Some(user),
                Some(json!({"stars": stars})),
            )
            .await
        }
    };
    let (code, v) = put("vera", 2).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["your_stars"].clone(), v["ratings"].clone()),
        (json!(2), json!(1))
    );
    let (_, v) = put("vera", 5).await;
    assert_eq!(
        (v["your_stars"].clone(), v["ratings"].clone()),
        (json!(5), json!(1))
    );
    let (_, v) = put("alice", 3).await;
    assert_eq!(
        (v["ratings"].clone(), v["average"].clone()),
        (json!(2), json!(4.0))
    );
    assert_eq!(put("vera", 6).await.0, 422);
    let (code, _) = call(&s, Method::PUT, &rating, None, Some(json!({"stars": 3}))).await;
    assert_eq!(code, 401);
    let hidden_rating = format!("/v1/articles/{hidden}/rating");
    let (code, _) = call(
        &s,
        Method::PUT,
        &hidden_rating,
        Some("vera"),
        Some(json!({"stars": 3})),
    )
    .await;
    assert_eq!(code, 404, "unreadable is missing");
    let helpful = format!("/v1/articles/{id}/helpful");
    call(
        &s,
        Method::POST,
        &helpful,
        Some("vera"),
        Some(json!({"helpful": true})),
    )
    .await;
    let (_, v) = call(
        &s,
        Method::POST,
        &helpful,
        Some("vera"),
        Some(json!({"helpful": false})),
    )
    .await;
    assert_eq!(
        (v["helpful"].clone(), v["not_helpful"].clone()),
        (json!(0), json!(1))
    );
    // Client events: readable articles, positions from 0, bounded dwell.
    let ev = |e: Value| json!({"events": [e]});
    let bad = [
        (
            ev(json!({"kind": "click", "article_id": id, "position": -1})),
            422,
        ),
        (
            ev(json!({"kind": "dwell", "article_id": id, "dwell_ms": 86_400_000})),
            422,
        ),
        (
            ev(json!({"kind": "dwell", "article_id": hidden, "dwell_ms": 5000})),
            404,
        ),
        (
            ev(json!({"kind": "click", "article_id": id, "position": 0, "search_id": "nope"})),
            422,
        ),
    ];
    for (body, want) in bad {
        let (code, v) = call(&s, Method::POST, "/v1/events", Some("vera"), Some(body)).await;
        assert_eq!(code, want, "{v}");
    }
    let body = ev(json!({"kind": "dwell", "article_id": id, "dwell_ms": 5000}));
    let (code, v) = call(&s, Method::POST, "/v1/events", Some("vera"), Some(body)).await;
    assert_eq!((code, v["accepted"].clone()), (202, json!(1)));
    // Every new route is in the API description.
    let (_, api) = s.get_json("/v1/openapi.json", None).await;
    for p in [
        "/v1/events",
        "/v1/articles/{id}/rating",
        "/v1/articles/{id}/helpful",
        "/v1/articles/{id}/feedback",
        "/v1/articles/{id}/assignments",
        "/v1/assignments/mine",
        "/v1/me/privacy",
        "/v1/me/history",
        "/v1/users/{username}/history",
        "/v1/analytics/articles",
        "/v1/analytics/queries",
        "/v1/analytics/timeseries",
    ] {
        assert!(api["paths"].get(p).is_some(), "openapi lacks {p}");
    }
    s.stop().await;
}

/// Feedback opens an update task for the owner (not the admin who
/// published it) and notifies them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_feedback_opens_a_task_for_the_owner() {
    let s = TestServer::start(Backend::Sqlite).await;
    let a = json!({"slug": "levy-steps", "title": "Levy steps", "category": "collections",
        "audience": ["public"], "body": "Step one."});
    let (code, v) = call(&s, Method::POST, "/v1/articles", Some("alice"), Some(a)).await;
    assert_eq!(code, 201, "{v}");
    let publish = json!({"status": "published"});
    let (code, v) = call(
        &s,
        Method::PUT,
        "/v1/articles/levy-steps",
        Some("admin"),
        Some(publish),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let body = json!({"comment": "Step two is missing: the bank letter."});
    let (code, f) = call(
        &s,
        Method::POST,
        "/v1/articles/levy-steps/feedback",
        Some("vera"),
        Some(body),
    )
    .await;
    assert_eq!(code, 201, "{f}");
    let (_, tasks) = call(&s, Method::GET, "/v1/tasks", Some("alice"), None).await;
    let task = tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == f["task_id"])
        .unwrap_or_else(|| panic!("no feedback task in {tasks}"));
    assert_eq!(task["kind"], "update");
    assert_eq!(task["assignee_user"], "alice");
    assert!(
        task["note"].as_str().unwrap().contains("bank letter"),
        "{task}"
    );
    let (_, n) = call(&s, Method::GET, "/v1/notifications", Some("alice"), None).await;
    assert!(n.to_string().contains("\"feedback\""), "{n}");
    let (code, _) = call(
        &s,
        Method::POST,
        "/v1/articles/levy-steps/feedback",
        Some("vera"),
        Some(json!({"comment": " "})),
    )
    .await;
    assert_eq!(code, 422);
    s.stop().await;
}
