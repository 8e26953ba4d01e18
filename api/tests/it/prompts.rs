//! Knowledge-development prompts (issue 5) with the real model: gaps from
//! unanswered searches grouped by meaning, update prompts by impact, and
//! the category and tags of a new draft from its readable neighbours.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Backend, TestServer};

async fn publish(
    s: &TestServer,
    title: &str,
    body: &str,
    category: &str,
    tags: &[&str],
    extra: Value,
) -> i64 {
    let mut a = json!({"title": title, "body": body, "category": category, "tags": tags, "status": "published"});
    for (k, v) in extra.as_object().unwrap() {
        a[k] = v.clone();
    }
    let (code, v) = s.call(Method::POST, "/v1/articles", "admin", Some(a)).await;
    assert_eq!(code, 201, "{v}");
    v["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_prompts_gaps_updates_and_record_types() {
    let mut s = TestServer::start_semantic(Backend::Sqlite).await;
    s.add_user("rex", &["reviewer"]).await;
    s.add_user("dora", &["director"]).await;
    let levy = publish(
        &s,
        "Releasing a bank levy",
        "When the balance is paid, send the release form to the bank within two business days.",
        "collections",
        &["levy", "bank"],
        json!({}),
    )
    .await;
    publish(
        &s,
        "Installment agreements",
        "A taxpayer who cannot pay at once may spread the debt over monthly payments.",
        "collections",
        &["payment-plan"],
        json!({}),
    )
    .await;
    let stale = publish(
        &s,
        "Penalty abatement for reasonable cause",
        "Abatement removes a penalty when the taxpayer shows reasonable cause.",
        "penalties",
        &["penalty"],
        json!({"review_due": "2020-01-01T00:00:00Z"}),
    )
    .await;
    publish(
        &s,
        "Bank levy fraud referrals",
        "Levies on accounts linked to fraud go to the fraud unit with the bank statement.",
        "fraud",
        &["fraud-referral"],
        json!({"audience": ["director"]}),
    )
    .await;

    // Unanswered searches: three wordings of one need (twice each), and a
    // one-off.
    for q in [
        "cryptocurrency gains reporting",
        "reporting crypto currency profits",
        "bitcoin income tax return",
    ] {
        for _ in 0..2 {
            let (code, r) = s
                .call(
                    Method::GET,
                    &format!("/v1/search?q={q}&mode=lexical"),
                    "vera",
                    None,
                )
                .await;
            assert_eq!(code, 200);
            assert_eq!(r["total"], 0, "{q}: {r}");
        }
    }
    s.call(
        Method::GET,
        "/v1/search?q=garden%20gnome%20permit&mode=lexical",
        "vera",
        None,
    )
    .await;

    // Gaps: authors may see them, viewers may not.
    let (code, _) = s.call(Method::GET, "/v1/prompts/gaps", "vera", None).await;
    assert_eq!(code, 403);
    let t0 = Instant::now();
    let gaps = loop {
        let (code, g) = s.call(Method::GET, "/v1/prompts/gaps", "alice", None).await;
        assert_eq!(code, 200, "{g}");
        if g.as_array()
            .unwrap()
            .iter()
            .map(|x| x["searches"].as_i64().unwrap())
            .sum::<i64>()
            >= 6
        {
            break g;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "search events not stored: {g}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let text = gaps.to_string();
    assert!(
        !text.contains("gnome"),
        "a query asked once is not a gap: {gaps}"
    );
    let first = &gaps[0];
    assert!(
        first["queries"].as_array().unwrap().len() >= 2,
        "rewordings of one need are one gap: {gaps}"
    );
    assert!(first["searches"].as_i64().unwrap() >= 4, "{gaps}");
    assert!(first["zero_results"].as_i64().unwrap() >= 4, "{gaps}");

    // Update prompts: the overdue article, low ratings, feedback.
    for who in ["vera", "alice", "harry"] {
        let (code, v) = s
            .call(
                Method::PUT,
                &format!("/v1/articles/{levy}/rating"),
                who,
                Some(json!({"stars": 1})),
            )
            .await;
        assert_eq!(code, 200, "{v}");
    }
    let (code, v) = s
        .call(
            Method::POST,
            &format!("/v1/articles/{levy}/feedback"),
            "vera",
            Some(json!({"comment": "the release form number changed"})),
        )
        .await;
    assert!(code == 200 || code == 201, "{v}");
    let (_, ups) = s
        .call(Method::GET, "/v1/prompts/updates", "dora", None)
        .await;
    let find = |id: i64| {
        ups.as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == id)
            .cloned()
    };
    let l = find(levy).unwrap_or_else(|| panic!("{ups}"));
    assert!(l["reasons"].to_string().contains("low_rating"), "{l}");
    assert!(l["reasons"].to_string().contains("feedback"), "{l}");
    let p = find(stale).unwrap_or_else(|| panic!("{ups}"));
    assert!(p["reasons"].to_string().contains("review_overdue"), "{p}");
    assert!(
        !ups.to_string().contains("fraud"),
        "director may read it, but it has no problems: {ups}"
    );
    // Owners see their own; viewers own nothing.
    let (_, mine) = s
        .call(Method::GET, "/v1/prompts/updates", "vera", None)
        .await;
    assert_eq!(mine, json!([]));
    let (code, _) = s.get_json("/v1/prompts/updates", None).await;
    assert_eq!(code, 401);

    // Record types: a draft about lifting a levy belongs in collections,
    // tagged levy — and alice never sees the director-only neighbour.
    let (code, c) = s.call(Method::POST, "/v1/prompts/classify", "alice", Some(json!({
        "title": "Lifting a levy on a bank account",
        "body": "Once the taxpayer pays in full, the hold on the account at the bank is released."}))).await;
    assert_eq!(code, 200, "{c}");
    assert_eq!(c["categories"][0]["value"], "collections", "{c}");
    assert!(c["tags"].to_string().contains("levy"), "{c}");
    assert!(!c.to_string().contains("fraud"), "{c}");
    let (code, _) = s
        .call(
            Method::POST,
            "/v1/prompts/classify",
            "vera",
            Some(json!({"title": "x"})),
        )
        .await;
    assert_eq!(code, 403);
    let (code, _) = s
        .call(
            Method::POST,
            "/v1/prompts/classify",
            "alice",
            Some(json!({"title": " "})),
        )
        .await;
    assert_eq!(code, 422);
    s.stop().await;
}

/// "Ask for an article on this" (issue 6): a signed-in reader's request
/// makes its words a gap at once, though searched only once; a person asking
/// again is counted once; anonymous callers and empty words are refused.
async fn article_requests_become_gaps(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ask = |who: &'static str, q: &'static str| {
        let s = &s;
        async move {
            s.call(
                Method::POST,
                "/v1/prompts/requests",
                who,
                Some(json!({"query": q})),
            )
            .await
        }
    };
    let (code, r) = ask("vera", "  Garden GNOME   permits ").await;
    assert_eq!(code, 201, "{r}");
    assert_eq!(r, json!({"query": "garden gnome permits", "requests": 1}));
    let (code, r) = ask("vera", "garden gnome permits").await;
    assert_eq!((code, r["requests"].clone()), (201, json!(1)), "one person");
    let (code, r) = ask("harry", "garden gnome permits").await;
    assert_eq!((code, r["requests"].clone()), (201, json!(2)), "{r}");
    let (code, r) = ask("vera", "   ").await;
    assert_eq!(code, 422, "{r}");
    assert_eq!(r["field"], "query");
    let r = s
        .req(Method::POST, "/v1/prompts/requests", None)
        .json(&json!({"query": "garden gnome permits"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let (code, gaps) = s.call(Method::GET, "/v1/prompts/gaps", "alice", None).await;
    assert_eq!(code, 200, "{gaps}");
    let gap = &gaps[0];
    assert_eq!(gap["suggested_title"], "garden gnome permits", "{gaps}");
    assert_eq!(gap["requests"], 2, "{gaps}");
    assert_eq!(gap["queries"][0]["requests"], 2, "{gaps}");
    assert!(!gaps.to_string().contains("vera"), "no names: {gaps}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_6_article_requests_become_gaps_sqlite() {
    article_requests_become_gaps(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_6_article_requests_become_gaps_postgres() {
    article_requests_become_gaps(Backend::Postgres).await;
}
