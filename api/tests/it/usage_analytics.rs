//! Analytics and reading assignments over HTTP (issue 5): the director's
//! report sorted on every column and restricted to readable articles,
//! query figures and click-through, time series, assignments end to end.

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

async fn article(
    s: &TestServer,
    slug: &str,
    title: &str,
    category: &str,
    audience: &[&str],
) -> i64 {
    let a = json!({"slug": slug, "title": title, "category": category, "audience": audience,
        "body": format!("{title}. Levy guidance for collections staff."), "status": "published"});
    let (code, v) = call(s, Method::POST, "/v1/articles", Some("admin"), Some(a)).await;
    assert_eq!(code, 201, "{v}");
    v["id"].as_i64().unwrap()
}

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

async fn search(s: &TestServer, user: &str, q: &str) -> (u64, String) {
    let r = s
        .req(Method::GET, &format!("/v1/search?q={q}"), Some(user))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-search-id"].to_str().unwrap().to_string();
    let v: Value = r.json().await.unwrap();
    (v["total"].as_u64().unwrap(), id)
}

async fn click(s: &TestServer, user: &str, search_id: &str, article: i64, position: i64) {
    let body = json!({"events": [{"kind": "click", "search_id": search_id, "article_id": article, "position": position}]});
    let (code, v) = call(s, Method::POST, "/v1/events", Some(user), Some(body)).await;
    assert_eq!(code, 202, "{v}");
}

async fn wait_searchable(s: &TestServer, n: u64) {
    eventually("articles indexed", || async {
        s.get_json("/v1/articles", Some("admin")).await.1["total"].as_u64() == Some(n)
    })
    .await;
}

/// Whether `rows` are sorted on `col` (missing values last, ties by id).
fn check_sorted(rows: &[Value], col: &str, desc: bool) {
    for w in rows.windows(2) {
        let (a, b) = (&w[0][col], &w[1][col]);
        let ord = match (a, b) {
            (Value::Null, Value::Null) => std::cmp::Ordering::Equal,
            (Value::Null, _) => panic!("{col}: missing value before a present one: {rows:?}"),
            (_, Value::Null) => continue,
            (Value::Number(x), Value::Number(y)) => {
                let o = x
                    .as_f64()
                    .unwrap()
                    .partial_cmp(&y.as_f64().unwrap())
                    .unwrap();
                if desc {
                    o.reverse()
                } else {
                    o
                }
            }
            (Value::String(x), Value::String(y)) => {
                let time = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
                let o = match (time(x), time(y)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    _ if col == "title" => x.to_lowercase().cmp(&y.to_lowercase()),
                    _ => x.cmp(y),
                };
                if desc {
                    o.reverse()
                } else {
                    o
                }
            }
            other => panic!("{col}: unexpected values {other:?}"),
        };
        assert_ne!(
            ord,
            std::cmp::Ordering::Greater,
            "{col} desc={desc}: {a} before {b}"
        );
        if ord == std::cmp::Ordering::Equal {
            assert!(
                w[0]["id"].as_i64() < w[1]["id"].as_i64(),
                "{col}: ties by id"
            );
        }
    }
}

/// The report sorts on every column both ways; restricted articles never
/// appear in a report or in a query's clicked articles for someone who
/// may not read them; click-through rate and time series add up.
async fn report(backend: Backend) {
    let mut s = TestServer::start(backend).await;
    s.add_user("rex", &["reviewer"]).await;
    s.add_user("diana", &["viewer", "director"]).await;
    let a = article(&s, "levy-basics", "Levy basics", "collections", &["public"]).await;
    let b = article(&s, "bank-levy", "bank Levy letters", "collections", &[]).await;
    let c = article(
        &s,
        "appeal-levy",
        "Appeal of a levy",
        "appeals",
        &["public"],
    )
    .await;
    let hidden = article(
        &s,
        "levy-hearing",
        "Levy hearing notes",
        "appeals",
        &["hearing_officer"],
    )
    .await;
    wait_searchable(&s, 4).await;
    // Uses: a ×3 (two readers), b ×1, hidden ×2 (harry); c none.
    for (user, id) in [
        ("vera", a),
        ("vera", a),
        ("alice", a),
        ("vera", b),
        ("harry", hidden),
        ("harry", hidden),
    ] {
        let (code, _) = call(
            &s,
            Method::GET,
            &format!("/v1/articles/{id}"),
            Some(user),
            None,
        )
        .await;
        assert_eq!(code, 200);
    }
    for (user, id, stars) in [
        ("vera", a, 4),
        ("alice", a, 5),
        ("vera", b, 2),
        ("harry", hidden, 1),
    ] {
        let r = format!("/v1/articles/{id}/rating");
        call(
            &s,
            Method::PUT,
            &r,
            Some(user),
            Some(json!({"stars": stars})),
        )
        .await;
    }
    for (user, id, h) in [("vera", a, true), ("alice", a, false), ("vera", c, true)] {
        let r = format!("/v1/articles/{id}/helpful");
        call(
            &s,
            Method::POST,
            &r,
            Some(user),
            Some(json!({"helpful": h})),
        )
        .await;
    }
    let r = format!("/v1/articles/{b}/feedback");
    call(
        &s,
        Method::POST,
        &r,
        Some("vera"),
        Some(json!({"comment": "outdated"})),
    )
    .await;
    // Searches: "levy" ×4 (two clicked: one twice, one by harry on the
    // hidden article), "zzzq" ×1 (no results), "appeal" ×1 (no click).
    let mut levy = vec![];
    for user in ["vera", "vera", "alice", "harry"] {
        levy.push(search(&s, user, "levy").await);
    }
    assert_eq!(levy[0].0, 3, "vera reads three levy articles");
    click(&s, "vera", &levy[0].1, a, 0).await;
    click(&s, "vera", &levy[0].1, b, 1).await;
    click(&s, "harry", &levy[3].1, hidden, 0).await;
    let (zero, _) = search(&s, "vera", "zzzq").await;
    assert_eq!(zero, 0);
    search(&s, "vera", "Appeal").await;
    eventually("events stored", || async {
        let (_, q) = call(
            &s,
            Method::GET,
            "/v1/analytics/queries",
            Some("admin"),
            None,
        )
        .await;
        let (_, r) = call(
            &s,
            Method::GET,
            "/v1/analytics/articles",
            Some("admin"),
            None,
        )
        .await;
        q["overall"]["clicks"] == 3
            && q["overall"]["searches"] == 6
            && r["rows"][0]["uses"] == 3
            && r["rows"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["id"] == hidden && x["uses"] == 2)
    })
    .await;

    // Every column, both ways; the director sees no restricted article.
    let columns = [
        "id",
        "slug",
        "title",
        "category",
        "status",
        "last_reviewed",
        "review_due",
        "uses",
        "unique_readers",
        "avg_rating",
        "ratings",
        "helpful_pct",
        "feedback",
    ];
    for col in columns {
        for order in ["asc", "desc"] {
            for user in ["admin", "diana", "rex"] {
                let path = format!("/v1/analytics/articles?sort={col}&order={order}");
                let (code, v) = call(&s, Method::GET, &path, Some(user), None).await;
                assert_eq!(code, 200, "{v}");
                let rows = v["rows"].as_array().unwrap();
                let want = if user == "admin" { 4 } else { 3 };
                assert_eq!(rows.len(), want, "{user}: {v}");
                assert_eq!(v["total"], want);
                check_sorted(rows, col, order == "desc");
                if user != "admin" {
                    assert!(
                        rows.iter().all(|r| r["id"] != hidden),
                        "{user} sees the hidden article"
                    );
                }
            }
        }
    }
    let (_, v) = call(
        &s,
        Method::GET,
        "/v1/analytics/articles?sort=uses",
        Some("diana"),
        None,
    )
    .await;
    let top = &v["rows"][0];
    assert_eq!(
        (
            top["id"].as_i64(),
            top["uses"].as_i64(),
            top["unique_readers"].as_i64()
        ),
        (Some(a), Some(3), Some(2))
    );
    assert_eq!(
        (
            top["avg_rating"].as_f64(),
            top["ratings"].as_i64(),
            top["helpful_pct"].as_f64()
        ),
        (Some(4.5), Some(2), Some(50.0))
    );
    assert!(
        top.get("owner").is_none() && top.get("audience").is_none(),
        "{top}"
    );
    let (_, v) = call(
        &s,
        Method::GET,
        "/v1/analytics/articles?category=appeals&sort=id&order=asc",
        Some("admin"),
        None,
    )
    .await;
    let ids: Vec<_> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![c, hidden]);
    let (code, _) = call(
        &s,
        Method::GET,
        "/v1/analytics/articles?sort=owner",
        Some("admin"),
        None,
    )
    .await;
    assert_eq!(code, 422);

    // Queries: CTR = clicked searches / searches.
    let (_, q) = call(&s, Method::GET, "/v1/analytics/queries", Some("rex"), None).await;
    assert_eq!(q["overall"]["clicked_searches"], 2);
    assert!(
        (q["overall"]["ctr"].as_f64().unwrap() - 2.0 / 6.0).abs() < 1e-9,
        "{q}"
    );
    let top = &q["top"][0];
    assert_eq!(
        (
            top["query"].as_str(),
            top["searches"].as_i64(),
            top["clicks"].as_i64()
        ),
        (Some("levy"), Some(4), Some(3))
    );
    assert!((top["ctr"].as_f64().unwrap() - 0.5).abs() < 1e-9, "{top}");
    let clicked: Vec<_> = top["clicked_articles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect();
    assert_eq!(clicked.len(), 2, "{top}");
    assert!(
        !clicked.contains(&hidden),
        "rex may not read the hidden article"
    );
    let (_, q_admin) = call(
        &s,
        Method::GET,
        "/v1/analytics/queries",
        Some("admin"),
        None,
    )
    .await;
    assert_eq!(
        q_admin["top"][0]["clicked_articles"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(q["no_results"][0]["query"], "zzzq");
    assert_eq!(
        q["poor_results"][0]["query"], "appeal",
        "normalised, no clicks"
    );

    // Time series: every bucket of the range, the counts add up.
    let from = (chrono::Utc::now() - chrono::Duration::hours(3)).to_rfc3339();
    let path = format!(
        "/v1/analytics/timeseries?metric=searches&bucket=hour&from={}",
        urlencode(&from)
    );
    let (code, t) = call(&s, Method::GET, &path, Some("diana"), None).await;
    assert_eq!(code, 200, "{t}");
    let points = t["points"].as_array().unwrap();
    assert!((4..=5).contains(&points.len()), "{t}");
    let sum: i64 = points.iter().map(|p| p["count"].as_i64().unwrap()).sum();
    assert_eq!(sum, 6);
    for (metric, want) in [("views", 6), ("clicks", 3)] {
        let (_, t) = call(
            &s,
            Method::GET,
            &format!("/v1/analytics/timeseries?metric={metric}"),
            Some("rex"),
            None,
        )
        .await;
        let points = t["points"].as_array().unwrap();
        assert_eq!(points.len(), 31, "30 days back, by day: {t}");
        let sum: i64 = points.iter().map(|p| p["count"].as_i64().unwrap()).sum();
        assert_eq!(sum, want, "{metric}: {t}");
    }
    let metrics = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let recorded = metrics
        .lines()
        .find(|l| l.starts_with("kmt_usage_events_total{outcome=\"recorded\"}"))
        .unwrap_or_else(|| panic!("no usage counter in {metrics}"));
    assert!(
        recorded.ends_with(" 15"),
        "6 views + 6 searches + 3 clicks: {recorded}"
    );
    s.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_report_sorts_every_column_hides_restricted_and_ctr_adds_up_sqlite() {
    report(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_report_sorts_every_column_hides_restricted_and_ctr_adds_up_postgres() {
    report(Backend::Postgres).await;
}

/// One call assigns people and a role; the assignees see it in their
/// list and get a notification; viewing the article completes a read
/// assignment, rating completes a review; people who may not read the
/// article are skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_5_reading_assignments_flow() {
    let mut s = TestServer::start(Backend::Sqlite).await;
    s.add_user("rex", &["reviewer"]).await;
    let id = article(&s, "levy-basics", "Levy basics", "collections", &[]).await;
    let audit_only = article(&s, "audit-memo", "Audit memo", "audits", &["auditor"]).await;
    let path = format!("/v1/articles/{id}/assignments");
    let body = json!({"users": ["vera"], "roles": ["hearing_officer"], "kind": "read"});
    let (code, v) = call(&s, Method::POST, &path, Some("rex"), Some(body)).await;
    assert_eq!(code, 201, "{v}");
    let names: Vec<_> = v["assigned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["harry", "vera"]);
    assert_eq!(v["assigned"][0]["via_role"], "hearing_officer");
    let body = json!({"users": ["vera", "alice"], "kind": "read"});
    let (_, v) = call(
        &s,
        Method::POST,
        &format!("/v1/articles/{audit_only}/assignments"),
        Some("admin"),
        Some(body),
    )
    .await;
    assert_eq!(v["skipped"], json!(["vera"]), "vera may not read it: {v}");
    let (code, _) = call(
        &s,
        Method::POST,
        &path,
        Some("rex"),
        Some(json!({"users": ["nobody"]})),
    )
    .await;
    assert_eq!(code, 422);
    let (code, _) = call(
        &s,
        Method::POST,
        &path,
        Some("alice"),
        Some(json!({"users": ["vera"]})),
    )
    .await;
    assert_eq!(code, 403);

    let (_, mine) = call(&s, Method::GET, "/v1/assignments/mine", Some("vera"), None).await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(
        (mine[0]["article_id"].as_i64(), mine[0]["kind"].as_str()),
        (Some(id), Some("read"))
    );
    let (_, n) = call(&s, Method::GET, "/v1/notifications", Some("vera"), None).await;
    assert!(n.to_string().contains("rex asks you to read"), "{n}");

    let (code, _) = call(
        &s,
        Method::GET,
        "/v1/articles/levy-basics",
        Some("vera"),
        None,
    )
    .await;
    assert_eq!(code, 200);
    eventually("vera's read assignment done", || async {
        let (_, v) = call(&s, Method::GET, &path, Some("rex"), None).await;
        v.as_array()
            .unwrap()
            .iter()
            .any(|a| a["username"] == "vera" && !a["done_at"].is_null())
    })
    .await;
    let (_, v) = call(&s, Method::GET, &path, Some("rex"), None).await;
    let harry = v
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["username"] == "harry")
        .unwrap();
    assert!(harry["done_at"].is_null(), "harry has not read it: {v}");
    let (_, mine) = call(&s, Method::GET, "/v1/assignments/mine", Some("vera"), None).await;
    assert_eq!(mine, json!([]));
    let (_, mine) = call(
        &s,
        Method::GET,
        "/v1/assignments/mine?include_done=true",
        Some("vera"),
        None,
    )
    .await;
    assert_eq!(mine.as_array().unwrap().len(), 1);

    // A review assignment is done by the assignee's rating.
    let body = json!({"users": ["alice"], "kind": "review"});
    call(&s, Method::POST, &path, Some("rex"), Some(body)).await;
    let (_, mine) = call(&s, Method::GET, "/v1/assignments/mine", Some("alice"), None).await;
    assert_eq!(mine[0]["kind"], "review");
    call(
        &s,
        Method::PUT,
        &format!("/v1/articles/{id}/rating"),
        Some("alice"),
        Some(json!({"stars": 4})),
    )
    .await;
    let (_, mine) = call(&s, Method::GET, "/v1/assignments/mine", Some("alice"), None).await;
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .all(|a| a["kind"] != "review"),
        "{mine}"
    );
    s.stop().await;
}
