//! Semantic and hybrid search over HTTP with the real model, and the
//! lexical-only fallback without one.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Backend, TestServer};

async fn create(s: &TestServer, title: &str, body: &str, audience: &[&str]) -> i64 {
    let r = s
        .req(Method::POST, "/v1/articles", Some("admin"))
        .json(
            &json!({"title": title, "body": body, "category": "collections",
                      "audience": audience, "status": "published"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// Waits until the embedding worker has vectors for `n` articles.
async fn wait_vectors(s: &TestServer, n: u64) {
    let t0 = Instant::now();
    loop {
        let (_, v) = s.get_json("/readyz", None).await;
        if v["semantic"]["articles"].as_u64() == Some(n) && v["semantic"]["queue"] == 0 {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "vectors not ready: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The id of the first hit for `q` (as admin).
async fn v_id(s: &TestServer, q: &str) -> i64 {
    let (_, v) = s
        .get_json(&format!("/v1/search?q={q}&mode=lexical"), Some("admin"))
        .await;
    v["hits"][0]["id"].as_i64().unwrap()
}

async fn semantic_over_http(backend: Backend) {
    let s = TestServer::start_semantic(backend).await;
    let (_, v) = s.get_json("/readyz", None).await;
    assert_eq!(v["semantic"]["status"], "on", "{v}");
    assert_eq!(v["semantic"]["model"], "all-MiniLM-L6-v2", "{v}");
    let plan = create(&s, "Installment agreements", "A taxpayer who cannot pay at once may spread the debt over monthly payments under an agreement.", &[]).await;
    create(&s, "Releasing a bank levy", "When the balance is paid in full, send the release form to the bank within two business days.", &[]).await;
    let secret = create(
        &s,
        "Quarterly fraud referral thresholds",
        "Cases above the referral threshold go to the fraud unit for criminal investigation.",
        &["director"],
    )
    .await;
    wait_vectors(&s, 3).await;

    // A paraphrase sharing no word with the article.
    let (code, v) = s
        .get_json("/v1/search?q=can%20I%20settle%20my%20tax%20bill%20in%20parts&mode=semantic&explain=true", Some("vera"))
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["mode"], "semantic");
    assert_eq!(v["hits"][0]["id"], plan, "{v}");
    assert!(
        v["hits"][0]["explain"]["semantic"].as_f64().unwrap() > 0.3,
        "{v}"
    );
    // Hybrid is the default; explain shows both sides.
    let (_, v) = s
        .get_json(
            "/v1/search?q=paying%20the%20debt%20monthly&explain=true&facets=category",
            Some("vera"),
        )
        .await;
    assert_eq!(v["mode"], "hybrid", "{v}");
    assert_eq!(v["hits"][0]["id"], plan, "{v}");
    let e = &v["hits"][0]["explain"];
    assert!(
        e["lexical"].is_number() && e["semantic"].is_number() && e["fused"].is_number(),
        "{v}"
    );
    // The restricted article is invisible to a viewer in every mode, also
    // when the query is about nothing else; the director finds it.
    for mode in ["semantic", "hybrid", "lexical"] {
        let path = format!("/v1/search?q=sending%20fraud%20cases%20for%20investigation&mode={mode}&facets=category&limit=100");
        let (_, v) = s.get_json(&path, Some("vera")).await;
        let hits = v["hits"].as_array().unwrap();
        assert!(hits.iter().all(|h| h["id"] != secret), "{mode}: {v}");
        assert_eq!(
            v["total"].as_u64().unwrap() as usize,
            hits.len(),
            "{mode}: {v}"
        );
        let counted: u64 = v["facets"]["category"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["count"].as_u64().unwrap())
            .sum();
        assert_eq!(counted as usize, hits.len(), "{mode}: {v}");
        if mode != "lexical" {
            let (_, v) = s.get_json(&path, Some("admin")).await;
            assert_eq!(v["hits"][0]["id"], secret, "{mode}: {v}");
        }
    }
    // Related articles: never the restricted one, never itself; the
    // restricted article's own related list is a 404 for the viewer.
    let levy = v_id(&s, "levy").await;
    let (code, v) = s
        .get_json(&format!("/v1/articles/{levy}/related"), Some("vera"))
        .await;
    assert_eq!(code, 200, "{v}");
    let rel = v["related"].as_array().unwrap();
    assert!(
        rel.iter().all(|h| h["id"] != secret && h["id"] != levy),
        "{v}"
    );
    assert!(rel.iter().any(|h| h["id"] == plan), "{v}");
    let (code, _) = s
        .get_json(&format!("/v1/articles/{secret}/related"), Some("vera"))
        .await;
    assert_eq!(code, 404);
    let (code, v) = s
        .get_json(&format!("/v1/articles/{secret}/related"), Some("admin"))
        .await;
    assert_eq!(code, 200, "{v}");
    // Bad parameters are problems.
    let (code, v) = s
        .get_json("/v1/search?q=x&mode=psychic", Some("vera"))
        .await;
    assert_eq!(code, 422, "{v}");
    let (code, _) = s
        .get_json("/v1/search?q=x&fusion=convex:2", Some("vera"))
        .await;
    assert_eq!(code, 422);
    // A changed article is re-embedded; a deleted one leaves the vectors.
    let r = s
        .req(
            Method::DELETE,
            &format!("/v1/articles/{plan}"),
            Some("admin"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    wait_vectors(&s, 2).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_3_semantic_and_hybrid_over_http_sqlite() {
    semantic_over_http(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_3_semantic_and_hybrid_over_http_postgres() {
    semantic_over_http(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_3_without_a_model_search_is_lexical_and_readyz_says_why() {
    let empty = tempfile::tempdir().unwrap();
    let embed = indexer::embedder::EmbedArgs {
        model_dir: Some(empty.path().to_path_buf()),
        ..Default::default()
    };
    let s = TestServer::start_full(Backend::Sqlite, None, embed).await;
    let (code, v) = s.get_json("/readyz", None).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["semantic"]["status"], "off", "{v}");
    let reason = v["semantic"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("no embedding model") && reason.contains("make model"),
        "{reason}"
    );
    create(
        &s,
        "Releasing a bank levy",
        "Send the release form to the bank.",
        &[],
    )
    .await;
    let t0 = Instant::now();
    loop {
        let (code, v) = s.get_json("/v1/search?q=levy", Some("vera")).await;
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["mode"], "lexical", "{v}");
        if v["total"] == 1 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "{v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, v) = s
        .get_json("/v1/search?q=levy&mode=semantic", Some("vera"))
        .await;
    assert_eq!(code, 422, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("no embedding model"),
        "{v}"
    );
    s.stop().await;
}
