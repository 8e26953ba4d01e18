//! `GET /v1/suggest` end to end: completions, permissions, errors.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Backend, TestServer};

async fn create(s: &TestServer, a: &Value) {
    let r = s
        .req(Method::POST, "/v1/articles", Some("admin"))
        .json(a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

/// Polls `/v1/suggest` as `user` until a suggestion's text is `want`
/// (the index follows the store asynchronously).
async fn suggested_within(s: &TestServer, user: Option<&str>, q: &str, want: &str) -> Value {
    let t0 = Instant::now();
    loop {
        let (code, v) = s.get_json(&format!("/v1/suggest?q={q}"), user).await;
        assert_eq!(code, 200, "{v}");
        if v["suggestions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["text"] == want))
        {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{want:?} not suggested for {q:?}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggest_completes_titles_and_words_for_readers_only() {
    let s = TestServer::start(Backend::Sqlite).await;
    create(
        &s,
        &json!({"slug": "quokka-levy", "title": "Quokka levy procedure", "body": "Steps for the quokka levy.",
            "category": "collections", "audience": ["public"], "status": "published"}),
    )
    .await;
    create(
        &s,
        &json!({"slug": "selection", "title": "Thistlewood selection model", "body": "The thistlewood model ranks returns.",
            "category": "audits", "audience": ["auditor"], "status": "published"}),
    )
    .await;

    // Anonymous callers get suggestions, like search.
    let v = suggested_within(&s, None, "quok", "Quokka levy procedure").await;
    let title = v["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == "title")
        .unwrap();
    assert_eq!(title["slug"], "quokka-levy");
    assert!(title["article_id"].as_i64().is_some());
    suggested_within(&s, Some("vera"), "levy quok", "levy quokka").await;
    // A typo.
    suggested_within(&s, None, "quokak", "quokka").await;

    // The auditor sees the restricted article; nobody else does.
    suggested_within(&s, Some("alice"), "thistle", "Thistlewood selection model").await;
    for user in [None, Some("vera"), Some("harry")] {
        for q in ["thistle", "thistlewod", "thistlewood"] {
            let (code, v) = s.get_json(&format!("/v1/suggest?q={q}"), user).await;
            assert_eq!(code, 200);
            assert!(
                !v.to_string().to_lowercase().contains("thistlewood "),
                "{user:?} got {v}"
            );
            assert!(
                v["suggestions"].as_array().is_some_and(|a| a
                    .iter()
                    .all(|x| x["kind"] != "title" && x["text"] != "thistlewood")),
                "{user:?} got {v}"
            );
        }
    }

    // Limits.
    let (code, v) = s.get_json("/v1/suggest?q=q&limit=1", None).await;
    assert_eq!(code, 200);
    assert!(v["suggestions"].as_array().unwrap().len() <= 1, "{v}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggest_rejects_bad_parameters_with_problems() {
    let s = TestServer::start(Backend::Sqlite).await;
    for path in [
        "/v1/suggest?q=",
        "/v1/suggest",
        "/v1/suggest?q=%20%20",
        "/v1/suggest?q=x&limit=0",
        "/v1/suggest?q=x&limit=21",
    ] {
        let r = s.req(Method::GET, path, None).send().await.unwrap();
        assert_eq!(r.status(), 422, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], 422, "{v}");
        assert!(v["field"] == "q" || v["field"] == "limit", "{v}");
    }
    let long = "a".repeat(101);
    let (code, v) = s.get_json(&format!("/v1/suggest?q={long}"), None).await;
    assert_eq!(code, 422, "{v}");
    let (code, v) = s.get_json("/v1/suggest?q=x&lim=3", None).await;
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["field"], "lim");
    // Documented in the OpenAPI document.
    let (_, v) = s.get_json("/v1/openapi.json", None).await;
    assert!(v["paths"]["/v1/suggest"]["get"].is_object());
    s.stop().await;
}
