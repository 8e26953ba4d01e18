//! Recommendations over HTTP (issue 5): synthetic users rate articles
//! through the rating endpoint, an admin retrains, and the answers are
//! checked for permissions, cold start, collaborative signal and reasons.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Backend, TestServer};

async fn call(
    s: &TestServer,
    m: Method,
    path: &str,
    user: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = s.req(m, path, Some(user));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A published article; returns its id.
async fn article(s: &TestServer, slug: &str, category: &str, audience: &[&str]) -> i64 {
    let a = json!({"slug": slug, "title": format!("About {slug}"), "category": category,
        "audience": audience, "body": format!("{slug} explained."), "status": "published"});
    let (code, v) = call(s, Method::POST, "/v1/articles", "admin", Some(a)).await;
    assert_eq!(code, 201, "{v}");
    v["id"].as_i64().unwrap()
}

async fn rate(s: &TestServer, user: &str, id: i64, stars: i32) {
    let path = format!("/v1/articles/{id}/rating");
    let (code, v) = call(s, Method::PUT, &path, user, Some(json!({ "stars": stars }))).await;
    assert_eq!(code, 200, "{user} rates {id}: {v}");
}

/// Retrains and waits until the new model serves.
async fn retrain(s: &TestServer) {
    let (code, v) = call(
        s,
        Method::POST,
        "/v1/admin/recommendations/retrain",
        "admin",
        None,
    )
    .await;
    assert_eq!(code, 202, "{v}");
    let want = v["generation"].as_u64().unwrap();
    let t0 = Instant::now();
    loop {
        let (_, r) = s.get_json("/v1/recommendations", Some("admin")).await;
        if r["model"]["generation"].as_u64().is_some_and(|g| g >= want) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "model {want} never served: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the index holds `n` articles (the allowed sets come from it).
async fn wait_indexed(s: &TestServer, n: u64) {
    let t0 = Instant::now();
    while s.get_json("/v1/articles", Some("admin")).await.1["total"].as_u64() != Some(n) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "index never held {n}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn ids(v: &Value) -> Vec<i64> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {v}"))
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

const GROUP_A: [&str; 6] = ["a1", "a2", "a3", "a4", "a5", "a6"];
const GROUP_B: [&str; 6] = ["b1", "b2", "b3", "b4", "b5", "b6"];

/// Two taste groups over eight articles (x*: loved by A, hated by B; y*:
/// the reverse) and a user `tess` who loved x1 and x2. Returns (xs, ys).
async fn two_groups(s: &mut TestServer) -> (Vec<i64>, Vec<i64>) {
    for u in GROUP_A.iter().chain(&GROUP_B).chain(&["tess"]) {
        s.add_user(u, &["viewer"]).await;
    }
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for n in 1..=4 {
        xs.push(article(s, &format!("x{n}"), "guides", &[]).await);
        ys.push(article(s, &format!("y{n}"), "guides", &[]).await);
    }
    for (g, (mine, theirs)) in [(&GROUP_A, (&xs, &ys)), (&GROUP_B, (&ys, &xs))] {
        for (k, u) in g.iter().enumerate() {
            for (j, &id) in mine.iter().enumerate() {
                rate(s, u, id, if (k + j) % 3 == 0 { 4 } else { 5 }).await;
            }
            for &id in theirs.iter() {
                rate(s, u, id, 1).await;
            }
        }
    }
    rate(s, "tess", xs[0], 5).await;
    rate(s, "tess", xs[1], 5).await;
    wait_indexed(s, 8).await;
    retrain(s).await;
    (xs, ys)
}

async fn collaborative(backend: Backend) {
    let mut s = TestServer::start(backend).await;
    let (xs, ys) = two_groups(&mut s).await;
    let (code, v) = s
        .get_json("/v1/recommendations?limit=4", Some("tess"))
        .await;
    assert_eq!(code, 200, "{v}");
    let got = ids(&v);
    assert_eq!(got.len(), 4, "{v}");
    // What tess's group used and she has not: first.
    let mut top: Vec<i64> = got[..2].to_vec();
    top.sort();
    assert_eq!(top, vec![xs[2], xs[3]], "{v}");
    assert!(got[2..].iter().all(|id| ys.contains(id)), "{v}");
    // Nothing she has seen.
    assert!(!got.contains(&xs[0]) && !got.contains(&xs[1]), "{v}");
    // People who used x1 also used the other x's.
    let (code, v) = s
        .get_json(
            &format!("/v1/articles/{}/also-used?limit=3", xs[0]),
            Some("tess"),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    let mut near = ids(&v);
    near.sort();
    assert_eq!(near, xs[1..].to_vec(), "{v}");
    s.stop().await;
}

#[tokio::test]
async fn issue_5_collaborative_recommends_what_similar_users_used() {
    collaborative(Backend::Sqlite).await;
}

#[tokio::test]
async fn issue_5_collaborative_recommends_what_similar_users_used_postgres() {
    collaborative(Backend::Postgres).await;
}

#[tokio::test]
async fn issue_5_recommendations_say_why() {
    let mut s = TestServer::start(Backend::Sqlite).await;
    let (xs, _) = two_groups(&mut s).await;
    let (_, v) = s
        .get_json("/v1/recommendations?limit=8", Some("tess"))
        .await;
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 6, "every unseen article: {v}");
    for it in items {
        let kind = it["reason"]["kind"]
            .as_str()
            .unwrap_or_else(|| panic!("no reason: {it}"));
        assert!(
            [
                "collaborative",
                "also_used",
                "similar_content",
                "popular_in_category",
                "popular"
            ]
            .contains(&kind),
            "{it}"
        );
        if kind == "also_used" {
            let because: Vec<i64> = it["reason"]["because"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_i64().unwrap())
                .collect();
            assert!(
                !because.is_empty() && because.iter().all(|b| xs[..2].contains(b)),
                "{it}"
            );
        }
        assert!(
            it["slug"].is_string() && it["title"].is_string() && it["score"].is_number(),
            "{it}"
        );
    }
    // Scores are in decreasing order.
    let scores: Vec<f64> = items.iter().map(|i| i["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let (_, spec) = s.get_json("/v1/openapi.json", None).await;
    for p in [
        "/v1/recommendations",
        "/v1/articles/{id}/also-used",
        "/v1/admin/recommendations/retrain",
    ] {
        assert!(spec["paths"].get(p).is_some(), "openapi lacks {p}");
    }
    // also-used answers name the article they started from.
    let (_, v) = s
        .get_json(&format!("/v1/articles/{}/also-used", xs[0]), Some("tess"))
        .await;
    for it in v["items"].as_array().unwrap() {
        assert_eq!(
            it["reason"],
            json!({"kind": "also_used", "because": [xs[0]]}),
            "{it}"
        );
    }
    s.stop().await;
}

async fn permissions(backend: Backend) {
    let mut s = TestServer::start(backend).await;
    let fans = ["h1", "h2", "h3", "h4", "h5", "h6"];
    for u in fans {
        s.add_user(u, &["viewer", "hearing_officer"]).await;
    }
    let secret = article(&s, "sealed", "hearings", &["hearing_officer"]).await;
    let open: Vec<i64> = [
        article(&s, "p1", "hearings", &[]).await,
        article(&s, "p2", "hearings", &[]).await,
        article(&s, "p3", "hearings", &[]).await,
    ]
    .to_vec();
    // Everyone who used p1 loved the sealed article most.
    for u in fans {
        rate(&s, u, secret, 5).await;
        rate(&s, u, open[0], 5).await;
        rate(&s, u, open[1], 4).await;
        rate(&s, u, open[2], 3).await;
    }
    rate(&s, "vera", open[0], 5).await;
    wait_indexed(&s, 4).await;
    retrain(&s).await;
    // The sealed article is among p1's neighbours for those who may read it...
    let path = format!("/v1/articles/{}/also-used?limit=3", open[0]);
    let (_, v) = s.get_json(&path, Some("harry")).await;
    assert!(ids(&v).contains(&secret), "{v}");
    // ...and never shown to vera, who still gets as many as exist for her.
    let path = format!("/v1/articles/{}/also-used?limit=2", open[0]);
    let (code, v) = s.get_json(&path, Some("vera")).await;
    assert_eq!(code, 200, "{v}");
    let mut got = ids(&v);
    got.sort();
    assert_eq!(got, vec![open[1], open[2]], "{v}");
    let (_, v) = s
        .get_json("/v1/recommendations?limit=50", Some("vera"))
        .await;
    let got = ids(&v);
    assert!(!got.contains(&secret), "{v}");
    assert!(got.contains(&open[1]) && got.contains(&open[2]), "{v}");
    // Her recommendations of an article she cannot read: as if it did not exist.
    let (code, _) = s
        .get_json(&format!("/v1/articles/{secret}/also-used"), Some("vera"))
        .await;
    assert_eq!(code, 404);
    // Retired: gone for everyone but its owner and publishers.
    let path = format!("/v1/articles/{}/retire", open[1]);
    let (code, v) = call(&s, Method::POST, &path, "admin", None).await;
    assert_eq!(code, 200, "{v}");
    wait_retired(&s, open[1]).await;
    let (_, v) = s
        .get_json("/v1/recommendations?limit=50", Some("vera"))
        .await;
    assert!(!ids(&v).contains(&open[1]), "{v}");
    s.stop().await;
}

async fn wait_retired(s: &TestServer, id: i64) {
    let t0 = Instant::now();
    while s
        .get_json(&format!("/v1/articles/{id}"), Some("vera"))
        .await
        .0
        != 404
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "{id} never retired");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn issue_5_recommendations_obey_permissions() {
    permissions(Backend::Sqlite).await;
}

#[tokio::test]
async fn issue_5_recommendations_obey_permissions_postgres() {
    permissions(Backend::Postgres).await;
}

#[tokio::test]
async fn issue_5_cold_start_gets_popular_in_role_categories() {
    let mut s = TestServer::start(Backend::Sqlite).await;
    for u in ["o1", "o2", "o3"] {
        s.add_user(u, &["viewer", "hearing_officer"]).await;
    }
    for u in ["c1", "c2", "c3", "c4"] {
        s.add_user(u, &["viewer", "clerk"]).await;
    }
    s.add_user("newbie", &["viewer", "hearing_officer"]).await;
    let mut rulings = Vec::new();
    for n in 0..3 {
        rulings.push(article(&s, &format!("ruling-{n}"), "rulings", &[]).await);
    }
    let mut forms = Vec::new();
    for n in 0..3 {
        forms.push(article(&s, &format!("form-{n}"), "forms", &[]).await);
    }
    // Officers read rulings (ruling-0 most), clerks read forms, more of
    // them, so forms are the most popular overall.
    for (k, u) in ["o1", "o2", "o3"].iter().enumerate() {
        for &id in &rulings[..3 - k] {
            rate(&s, u, id, 4).await;
        }
    }
    for u in ["c1", "c2", "c3", "c4"] {
        for &id in &forms {
            rate(&s, u, id, 4).await;
        }
    }
    wait_indexed(&s, 6).await;
    retrain(&s).await;
    let (code, v) = s
        .get_json("/v1/recommendations?limit=6", Some("newbie"))
        .await;
    assert_eq!(code, 200, "{v}");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 6, "{v}");
    for (k, it) in items[..3].iter().enumerate() {
        assert_eq!(it["id"].as_i64(), Some(rulings[k]), "{v}");
        assert_eq!(
            it["reason"],
            json!({"kind": "popular_in_category", "category": "rulings"}),
            "{v}"
        );
    }
    assert!(
        items[3..]
            .iter()
            .all(|i| forms.contains(&i["id"].as_i64().unwrap())),
        "{v}"
    );
    s.stop().await;
}

/// Record types (issue 5): after a training, the category of a draft comes
/// from the classifier, which learned only from articles everyone may read
/// — a restricted article's category is never suggested, however closely
/// the draft copies it — and a draft with no known word falls back to the
/// neighbours' vote.
async fn classifier(backend: Backend) {
    let s = TestServer::start(backend).await;
    let bodies = [
        (
            "levy-bank",
            "collections",
            "A bank levy holds the taxpayer's account until the debt is paid.",
        ),
        (
            "levy-release",
            "collections",
            "Release the levy and notify the bank once payment clears.",
        ),
        (
            "garnish",
            "collections",
            "Wage garnishment collects a debt from the taxpayer's employer.",
        ),
        (
            "appeal-file",
            "appeals",
            "An appeal is filed with the hearing officer within thirty days.",
        ),
        (
            "appeal-hear",
            "appeals",
            "The hearing officer schedules the appeal hearing and decides.",
        ),
        (
            "appeal-late",
            "appeals",
            "A late appeal needs good cause shown to the hearing officer.",
        ),
    ];
    for (slug, cat, body) in bodies {
        let a = json!({"slug": slug, "title": slug.replace('-', " "), "category": cat,
            "body": body, "status": "published"});
        let (code, v) = call(&s, Method::POST, "/v1/articles", "admin", Some(a)).await;
        assert_eq!(code, 201, "{v}");
    }
    for slug in ["zebra-1", "zebra-2"] {
        let a = json!({"slug": slug, "title": "Zebra quagga okapi", "category": "secret-unit",
            "audience": ["director"], "body": "Zebra quagga okapi tapir procedures for the unit.",
            "status": "published"});
        let (code, v) = call(&s, Method::POST, "/v1/articles", "admin", Some(a)).await;
        assert_eq!(code, 201, "{v}");
    }
    wait_indexed(&s, 8).await;
    retrain(&s).await;

    let classify = |title: &'static str, body: &'static str| {
        let s = &s;
        async move {
            let (code, c) = call(
                s,
                Method::POST,
                "/v1/prompts/classify",
                "alice",
                Some(json!({"title": title, "body": body})),
            )
            .await;
            assert_eq!(code, 200, "{c}");
            c
        }
    };
    let c = classify(
        "Lifting a bank levy",
        "The levy on the account ends when the debt is paid.",
    )
    .await;
    assert_eq!(c["category_source"], "classifier", "{c}");
    assert_eq!(c["categories"][0]["value"], "collections", "{c}");
    let total: f64 = c["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["score"].as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-3, "probabilities: {c}");
    let c = classify(
        "Appeal deadlines",
        "When must the hearing officer receive the appeal?",
    )
    .await;
    assert_eq!(c["categories"][0]["value"], "appeals", "{c}");

    let c = classify("Zebra quagga okapi", "Zebra quagga okapi tapir procedures.").await;
    assert!(!c.to_string().contains("secret-unit"), "{c}");
    assert!(!c.to_string().contains("zebra-"), "{c}");
    let c = classify("Xylophone", "Xylophone").await;
    assert_eq!(c["category_source"], "neighbours", "{c}");
    s.stop().await;
}

#[tokio::test]
async fn issue_5_classifier_learns_only_what_everyone_reads() {
    classifier(Backend::Sqlite).await;
}

#[tokio::test]
async fn issue_5_classifier_learns_only_what_everyone_reads_postgres() {
    classifier(Backend::Postgres).await;
}
