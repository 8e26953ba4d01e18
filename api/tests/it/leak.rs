//! One sweep over every read path (issue 4): the words of a restricted
//! article and of a hidden section never reach a reader without the role —
//! not in articles, search hits, totals, facets or snippets (lexical,
//! semantic, hybrid), suggestions, related articles, versions, diffs,
//! drafts, tasks or notifications. Positive controls show each word does
//! reach the readers who hold the role, so the sweep can fail.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Backend, TestServer};

/// Words that exist only in the director-only article.
const SECRET_WORDS: [&str; 3] = ["zanzibarword", "thistlewood", "zanzitag"];
/// A word that exists only in the hearing officers' section.
const SECTION_WORD: &str = "quixoticword";

async fn call(s: &TestServer, method: Method, path: &str, who: &str, body: Value) -> Value {
    let r = s
        .req(method.clone(), path, Some(who))
        .json(&body)
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(
        (200..300).contains(&code),
        "{method} {path} as {who}: {code} {v}"
    );
    v
}

/// Every read path for `who`: (path, lowercased response) pairs.
async fn everything(
    s: &TestServer,
    who: Option<&str>,
    secret: i64,
    open: i64,
) -> Vec<(String, String)> {
    let mut paths: Vec<String> = Vec::new();
    for mode in ["lexical", "semantic", "hybrid"] {
        for q in SECRET_WORDS.iter().chain([
            &SECTION_WORD,
            &"thistlewood referral criteria",
            &"waiver",
            &"hearing notes internal",
        ]) {
            paths.push(format!(
                "/v1/search?q={q}&mode={mode}&facets=category,tags&explain=true&limit=50"
            ));
        }
    }
    paths.push("/v1/articles?facets=category,tags&limit=100".into());
    paths.push("/v1/articles?filter=category:fraud".into());
    paths.push("/v1/articles?filter=tags:zanzitag".into());
    for q in ["zanz", "thistle", "quix", "zanzibarwrd", "quixoticwrd"] {
        paths.push(format!("/v1/suggest?q={q}&limit=20"));
    }
    for id in [secret, open] {
        for tail in [
            "",
            "?level=detailed",
            "?level=summary",
            "/versions",
            "/diff?from=1&to=2",
            "/related?limit=20",
            "/draft",
        ] {
            paths.push(format!("/v1/articles/{id}{tail}"));
        }
    }
    paths.push("/v1/tasks?include_done=true".into());
    paths.push("/v1/notifications?limit=500".into());
    let mut out = Vec::new();
    for p in paths {
        let r = s.req(Method::GET, &p, who).send().await.unwrap();
        let code = r.status().as_u16();
        let text = r.text().await.unwrap();
        // A malformed request would test nothing.
        assert!(
            code < 500 && code != 400 && code != 422,
            "{p}: {code} {text}"
        );
        out.push((format!("{p} ({code})"), text.to_lowercase()));
    }
    out
}

fn contains(seen: &[(String, String)], word: &str) -> bool {
    seen.iter().any(|(_, t)| t.contains(word))
}

async fn wait_ready(s: &TestServer, articles: u64) {
    let t0 = Instant::now();
    loop {
        let (_, v) = s.get_json("/readyz", None).await;
        let (_, r) = s
            .get_json("/v1/search?q=waiver&mode=lexical", Some("admin"))
            .await;
        if v["semantic"]["articles"].as_u64() == Some(articles)
            && v["semantic"]["queue"] == 0
            && r["total"].as_u64() == Some(1)
        {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(90), "not ready: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sweep(backend: Backend) {
    let mut s = TestServer::start_semantic(backend).await;
    s.add_user("rex", &["reviewer"]).await;
    s.add_user("dora", &["director"]).await;
    // The director-only article, and a second one in review so that
    // reviewers get a task and notification for something they cannot read.
    let secret = call(&s, Method::POST, "/v1/articles", "admin", json!({
        "title": "Thistlewood referral thresholds", "category": "fraud", "tags": ["zanzitag"],
        "summary": "- Zanzibarword criteria", "body": "Cases above the zanzibarword threshold go to the fraud unit.",
        "audience": ["director"], "status": "published"})).await["id"].as_i64().unwrap();
    let memo = call(
        &s,
        Method::POST,
        "/v1/articles",
        "admin",
        json!({
        "title": "Zanzibarword escalation memo", "category": "fraud", "summary": "- memo",
        "body": "Thistlewood memo.", "audience": ["director"]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    call(
        &s,
        Method::POST,
        &format!("/v1/articles/{memo}/submit"),
        "admin",
        json!(null),
    )
    .await;
    let open_body = "Steps for a penalty waiver request.\n\
::: section id=hearing audience=hearing_officer title=\"Hearing notes\"\n\
Quixoticword internal hearing notes.\n\
:::\n\
Send the letter.\n";
    let open = call(
        &s,
        Method::POST,
        "/v1/articles",
        "admin",
        json!({
        "title": "Penalty waiver steps", "category": "penalties", "tags": ["waiver"],
        "summary": "- Waivers in brief", "body": open_body, "status": "published"}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    // A second version changes the hidden section (diffs compare v1, v2),
    // and a working copy of the next one holds it too.
    call(&s, Method::PUT, &format!("/v1/articles/{open}"), "admin",
        json!({"body": open_body.replace("internal hearing notes", "internal hearing notes, revised")})).await;
    call(
        &s,
        Method::PUT,
        &format!("/v1/articles/{secret}"),
        "admin",
        json!({"body": "Cases above the zanzibarword threshold go to the fraud unit at once."}),
    )
    .await;
    call(
        &s,
        Method::PUT,
        &format!("/v1/articles/{open}/draft"),
        "admin",
        json!({"summary": "- Waivers in brief, next revision"}),
    )
    .await;
    wait_ready(&s, 3).await;

    for who in [None, Some("vera"), Some("alice"), Some("rex")] {
        let seen = everything(&s, who, secret, open).await;
        for w in SECRET_WORDS.iter().chain([&SECTION_WORD, &"fraud"]) {
            if let Some((path, text)) = seen.iter().find(|(_, t)| t.contains(w)) {
                panic!("{w:?} reached {who:?} through {path}: {text}");
            }
        }
        // The open article itself is there for signed-in readers.
        if who.is_some() {
            assert!(contains(&seen, "penalty waiver steps"), "{who:?}");
        }
    }
    // Positive controls: the words reach those who may read them.
    let dora = everything(&s, Some("dora"), secret, open).await;
    for w in SECRET_WORDS {
        assert!(contains(&dora, w), "{w} should reach the director");
    }
    assert!(
        !contains(&dora, SECTION_WORD),
        "the section is not the director's"
    );
    let harry = everything(&s, Some("harry"), secret, open).await;
    assert!(
        contains(&harry, SECTION_WORD),
        "the section is the hearing officer's"
    );
    let (_, v) = s
        .get_json(
            &format!("/v1/search?q={SECTION_WORD}&mode=lexical"),
            Some("harry"),
        )
        .await;
    assert_eq!(v["total"], 1, "{v}");
    let (_, v) = s
        .get_json("/v1/search?q=zanzibarword&mode=lexical", Some("dora"))
        .await;
    assert_eq!(v["total"], 1, "{v}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_no_read_path_leaks_restricted_words_sqlite() {
    sweep(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_no_read_path_leaks_restricted_words_postgres() {
    sweep(Backend::Postgres).await;
}
