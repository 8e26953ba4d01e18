//! Sections and reading levels over HTTP (issue 4): readers get the
//! sections they may see in the level they prefer; an editor who cannot
//! see a section keeps it; bad section syntax is a 422 naming the line;
//! custom groups over `/v1/roles`.

use reqwest::Method;
use serde_json::json;

use crate::harness::{Backend, TestServer};

const BODY: &str = "1. Open the case.\n\
::: section id=internal audience=reviewer title=\"Internal notes\"\n\
Check the prior penalties first.\n\
:::\n\
2. Send the letter.\n";

async fn sections_over_http(backend: Backend) {
    let mut s = TestServer::start(backend).await;
    s.add_user("rex", &["reviewer"]).await;
    let (code, a) = s
        .call(
            Method::POST,
            "/v1/articles",
            "admin",
            Some(json!({
        "title": "Penalty letters", "category": "penalties", "summary": "- Send within 30 days",
        "body": BODY, "status": "published"})),
        )
        .await;
    assert_eq!(code, 201, "{a}");
    let id = a["id"].as_i64().unwrap();
    let path = format!("/v1/articles/{id}");

    // A viewer: detailed by default, without the reviewers' section.
    let (_, v) = s.call(Method::GET, &path, "vera", None).await;
    assert_eq!(v["level"], "detailed");
    let body = v["body"].as_str().unwrap();
    assert!(
        body.contains("Send the letter") && !body.contains("prior penalties"),
        "{v}"
    );
    assert_eq!(v["sections"], json!([]));
    // A reviewer: summary by default; the section shows at the detailed level.
    let (_, r) = s.call(Method::GET, &path, "rex", None).await;
    assert_eq!(r["level"], "summary");
    assert_eq!(r["body"], "");
    assert_eq!(r["summary"], "- Send within 30 days");
    let (_, r) = s
        .call(Method::GET, &format!("{path}?level=detailed"), "rex", None)
        .await;
    assert!(r["body"].as_str().unwrap().contains("prior penalties"));
    assert_eq!(r["sections"][0]["id"], "internal");
    assert_eq!(r["sections"][0]["title"], "Internal notes");
    assert_eq!(r["sections"][0]["audience"], json!(["reviewer"]));
    // Preferences: saved per user, audited, and used by default.
    let (code, p) = s
        .call(
            Method::PUT,
            "/v1/me/preferences",
            "vera",
            Some(json!({"level": "summary"})),
        )
        .await;
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["effective_level"], "summary");
    let (_, v) = s.call(Method::GET, &path, "vera", None).await;
    assert_eq!(v["level"], "summary");
    assert_eq!(v["body"], "");
    let (code, e) = s
        .call(
            Method::PUT,
            "/v1/me/preferences",
            "vera",
            Some(json!({"level": "huge"})),
        )
        .await;
    assert_eq!(code, 400, "{e}");
    let (code, e) = s
        .call(Method::GET, &format!("{path}?level=huge"), "vera", None)
        .await;
    assert_eq!(code, 422, "{e}");
    let (code, _) = s.get_json("/v1/me/preferences", None).await;
    assert_eq!(code, 401);
    let (_, audit) = s
        .call(Method::GET, "/v1/audit?limit=1000", "admin", None)
        .await;
    assert!(audit.to_string().contains("user.preferences"), "{audit}");

    // Alice (author, not reviewer) proposes a change to the live article
    // without seeing the section: the section is kept.
    let (_, seen) = s
        .call(
            Method::GET,
            &format!("{path}?level=detailed"),
            "alice",
            None,
        )
        .await;
    let edited = seen["body"]
        .as_str()
        .unwrap()
        .replace("Send the letter", "Send the letter by post");
    let (code, d) = s
        .call(
            Method::PUT,
            &format!("{path}/draft"),
            "alice",
            Some(json!({"body": edited})),
        )
        .await;
    assert_eq!(code, 200, "{d}");
    assert!(
        !d["body"].as_str().unwrap().contains("prior penalties"),
        "{d}"
    );
    let (code, d) = s
        .call(Method::GET, &format!("{path}/draft"), "admin", None)
        .await;
    assert_eq!(code, 200);
    let full = d["body"].as_str().unwrap();
    assert!(
        full.contains("by post") && full.contains("prior penalties"),
        "{full}"
    );
    // She may not write a section she could not read herself.
    let forged = format!("{edited}::: section audience=reviewer\nsneaky\n:::\n");
    let (code, e) = s
        .call(
            Method::PUT,
            &format!("{path}/draft"),
            "alice",
            Some(json!({"body": forged})),
        )
        .await;
    assert_eq!(code, 422, "{e}");
    // Bad syntax names the field and the line.
    let (code, e) = s.call(Method::POST, "/v1/articles", "alice", Some(json!({
        "title": "Broken", "category": "penalties", "body": "ok\n::: section id=x\nnever closed\n"}))).await;
    assert_eq!(code, 422, "{e}");
    assert!(e.to_string().contains("line 2"), "{e}");
    assert!(e.to_string().contains("body"), "{e}");
    // Versions and diffs hide the section from those who may not see it.
    let (_, vs) = s
        .call(Method::GET, &format!("{path}/versions"), "vera", None)
        .await;
    assert!(!vs.to_string().contains("prior penalties"), "{vs}");
    let (_, vs) = s
        .call(Method::GET, &format!("{path}/versions"), "rex", None)
        .await;
    assert!(vs.to_string().contains("prior penalties"), "{vs}");

    // Custom groups: defined by admins, listed with members; built-in
    // names refused.
    let (code, g) = s
        .call(
            Method::POST,
            "/v1/roles",
            "admin",
            Some(json!({"name": "appeals_unit", "description": "hearing officers"})),
        )
        .await;
    assert_eq!(code, 201, "{g}");
    let (code, _) = s
        .call(
            Method::POST,
            "/v1/roles",
            "admin",
            Some(json!({"name": "appeals_unit"})),
        )
        .await;
    assert_eq!(code, 409);
    let (code, _) = s
        .call(
            Method::POST,
            "/v1/roles",
            "admin",
            Some(json!({"name": "admin"})),
        )
        .await;
    assert_eq!(code, 422);
    let (_, roles) = s.call(Method::GET, "/v1/roles", "admin", None).await;
    let find = |n: &str| {
        roles
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("appeals_unit")["kind"], "group");
    assert_eq!(find("hearing_officer")["members"], json!(["harry"]));
    assert!(find("reviewer")["permissions"]
        .to_string()
        .contains("article.publish"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_sections_levels_and_groups_over_http_sqlite() {
    sections_over_http(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_sections_levels_and_groups_over_http_postgres() {
    sections_over_http(Backend::Postgres).await;
}
