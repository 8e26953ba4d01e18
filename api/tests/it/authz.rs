//! The authorization matrix: every endpoint × every kind of caller, against
//! the role table written out here as the specification. Allowed calls
//! succeed; the others get 401 (anonymous) or 403 and change nothing.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Backend, TestServer};

/// Callers: the harness users plus anonymous, a reviewer, a caller whose
/// only role is a custom group, and a director.
const CALLERS: [&str; 8] = [
    "anonymous",
    "vera",
    "alice",
    "rex",
    "admin",
    "gus",
    "harry",
    "diana",
];
/// Everyone signed in.
const SIGNED_IN: &[&str] = &["vera", "alice", "rex", "admin", "gus", "harry", "diana"];
/// Who reads analytics and assigns reading: directors, reviewers, admins.
const STEERING: &[&str] = &["rex", "admin", "diana"];

struct Case {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    /// Callers allowed (the rest are refused).
    allowed: &'static [&'static str],
    /// Refused callers who get 404 rather than 401/403: the target is not
    /// theirs to read, so its existence does not leak.
    not_found: &'static [&'static str],
    /// Fixture the call needs beyond the common one.
    setup: Setup,
    writes: bool,
}

/// Extra fixtures: the article `review-me`, by alice.
#[derive(Clone, Copy, PartialEq)]
enum Setup {
    /// None.
    Plain,
    /// `review-me` is alice's draft.
    Draft,
    /// `review-me` is alice's submission, in review.
    InReview,
}

fn cases() -> Vec<Case> {
    let all: &'static [&'static str] = &CALLERS;
    let writers: &'static [&'static str] = &["alice", "rex", "admin"];
    let admin: &'static [&'static str] = &["admin"];
    vec![
        Case {
            method: Method::GET,
            path: "/v1/search?q=levy",
            body: None,
            allowed: all,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/articles",
            body: None,
            allowed: all,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/articles/public-levy",
            body: None,
            allowed: all,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/articles/public-levy/versions",
            body: None,
            allowed: all,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/me",
            body: None,
            allowed: all,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::POST,
            path: "/v1/articles",
            body: Some(json!({"title": "New draft", "category": "audits", "status": "draft"})),
            allowed: writers,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        // A status change on an admin-owned article: publishers only.
        Case {
            method: Method::PUT,
            path: "/v1/articles/public-levy",
            body: Some(json!({"status": "needs_update"})),
            allowed: &["rex", "admin"],
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        // Proposing changes to a live article: anyone who writes.
        Case {
            method: Method::PUT,
            path: "/v1/articles/public-levy/draft",
            body: Some(json!({"summary": "- proposal"})),
            allowed: writers,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::PUT,
            path: "/v1/users/vera/password",
            body: Some(json!({"password": "a long enough password"})),
            allowed: &["admin", "vera"],
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::GET,
            path: "/v1/notifications",
            body: None,
            allowed: SIGNED_IN,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/rules",
            body: None,
            allowed: SIGNED_IN,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::PUT,
            path: "/v1/rules/collections",
            body: Some(json!({"mandatory_fields": ["tags"]})),
            allowed: admin,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::GET,
            path: "/v1/rules/collections/history",
            body: None,
            allowed: admin,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::POST,
            path: "/v1/categories/collections/webhooks",
            body: Some(json!({"url": "http://127.0.0.1:9/hook"})),
            allowed: admin,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::GET,
            path: "/v1/categories/collections/webhooks",
            body: None,
            allowed: admin,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/categories/collections/feed.atom",
            body: None,
            allowed: all,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::PUT,
            path: "/v1/users/vera/contact",
            body: Some(json!({"email": "vera@example.org"})),
            allowed: &["admin", "vera"],
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::GET,
            path: "/v1/tasks",
            body: None,
            allowed: SIGNED_IN,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::DELETE,
            path: "/v1/articles/doomed",
            body: None,
            allowed: admin,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::GET,
            path: "/v1/articles/public-levy/diff?from=1&to=1",
            body: None,
            allowed: all,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::POST,
            path: "/v1/articles/public-levy/revert",
            body: Some(json!({"version": 1})),
            allowed: &["rex", "admin"],
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::GET,
            path: "/v1/audit",
            body: None,
            allowed: admin,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/users",
            body: None,
            allowed: admin,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::POST,
            path: "/v1/users",
            body: Some(json!({"username": "newbie", "roles": ["viewer"]})),
            allowed: admin,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::PUT,
            path: "/v1/users/vera/roles",
            body: Some(json!({"roles": ["viewer", "auditor"]})),
            allowed: admin,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::POST,
            path: "/v1/users/vera/tokens",
            body: Some(json!({"name": "by someone else"})),
            allowed: &["admin", "vera"],
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::POST,
            path: "/v1/articles/review-me/submit",
            body: None,
            allowed: &["alice", "admin"],
            // Publishers see drafts only once they are submitted.
            not_found: &["rex"],
            setup: Setup::Draft,
            writes: true,
        },
        Case {
            method: Method::POST,
            path: "/v1/articles/review-me/approve",
            body: Some(json!({})),
            allowed: &["rex", "admin"],
            not_found: &[],
            setup: Setup::InReview,
            writes: true,
        },
        Case {
            method: Method::POST,
            path: "/v1/articles/review-me/reject",
            body: Some(json!({"note": "cite the statute"})),
            allowed: &["rex", "admin"],
            not_found: &[],
            setup: Setup::InReview,
            writes: true,
        },
        Case {
            method: Method::GET,
            path: "/v1/articles/public-levy/draft",
            body: None,
            // No working copy exists: writers are told so (404) below.
            allowed: &[],
            not_found: &["alice", "rex", "admin"],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/suggest?q=lev",
            body: None,
            allowed: all,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/articles/public-levy/related",
            body: None,
            allowed: all,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/rules/collections",
            body: None,
            allowed: SIGNED_IN,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::POST,
            path: "/v1/notifications/read",
            body: Some(json!({})),
            allowed: SIGNED_IN,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/me/preferences",
            body: None,
            allowed: SIGNED_IN,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::PUT,
            path: "/v1/me/preferences",
            body: Some(json!({"level": "summary"})),
            allowed: SIGNED_IN,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::POST,
            path: "/v1/tasks/{task}/approve",
            body: Some(json!({})),
            allowed: &["rex", "admin"],
            not_found: &[],
            setup: Setup::InReview,
            writes: true,
        },
        Case {
            method: Method::POST,
            path: "/v1/tasks/{task}/reject",
            body: Some(json!({"note": "cite the statute"})),
            allowed: &["rex", "admin"],
            not_found: &[],
            setup: Setup::InReview,
            writes: true,
        },
        Case {
            method: Method::POST,
            path: "/v1/articles/public-levy/retire",
            body: None,
            allowed: &["rex", "admin"],
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::POST,
            path: "/v1/articles/public-levy/request-update",
            body: Some(json!({"users": ["alice"], "note": "new rates"})),
            allowed: STEERING,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::GET,
            path: "/v1/prompts/gaps",
            body: None,
            allowed: writers,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::POST,
            path: "/v1/prompts/requests",
            body: Some(json!({"query": "garden gnome permits"})),
            allowed: SIGNED_IN,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::GET,
            path: "/v1/prompts/updates",
            body: None,
            allowed: SIGNED_IN,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::POST,
            path: "/v1/prompts/classify",
            body: Some(json!({"title": "Releasing a levy"})),
            allowed: writers,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/roles",
            body: None,
            allowed: admin,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::POST,
            path: "/v1/roles",
            body: Some(json!({"name": "appeals_unit", "description": "hearing officers"})),
            allowed: admin,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::POST,
            path: "/v1/admin/reindex",
            body: None,
            allowed: admin,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        // Recommendations (issue 5): for signed-in users; "also used" for
        // whoever may read the article (others: 404); retraining for admins.
        Case {
            method: Method::GET,
            path: "/v1/recommendations?limit=5",
            body: None,
            allowed: SIGNED_IN,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/articles/public-levy/also-used",
            body: None,
            allowed: all,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/articles/review-me/also-used",
            body: None,
            allowed: &["alice", "admin"],
            not_found: &["anonymous", "vera", "rex", "gus", "harry", "diana"],
            setup: Setup::Draft,
            writes: false,
        },
        Case {
            method: Method::POST,
            path: "/v1/admin/recommendations/retrain",
            body: None,
            allowed: admin,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        // Usage (issue 5): events for anyone who reads; ratings, votes,
        // feedback, privacy and history for signed-in users; another
        // user's history for admins; analytics and assignments for
        // directors, reviewers and admins.
        Case {
            method: Method::POST,
            path: "/v1/events",
            body: Some(json!({"events": []})),
            allowed: all,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::GET,
            path: "/v1/articles/public-levy/rating",
            body: None,
            allowed: all,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::PUT,
            path: "/v1/articles/public-levy/rating",
            body: Some(json!({"stars": 4})),
            allowed: SIGNED_IN,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::POST,
            path: "/v1/articles/public-levy/helpful",
            body: Some(json!({"helpful": true})),
            allowed: SIGNED_IN,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::POST,
            path: "/v1/articles/public-levy/feedback",
            body: Some(json!({"comment": "step 3 is out of date"})),
            allowed: SIGNED_IN,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::GET,
            path: "/v1/me/privacy",
            body: None,
            allowed: SIGNED_IN,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::PUT,
            path: "/v1/me/privacy",
            body: Some(json!({"keep_search_history": true})),
            allowed: SIGNED_IN,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::GET,
            path: "/v1/me/history",
            body: None,
            allowed: SIGNED_IN,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/users/vera/history",
            body: None,
            allowed: &["admin", "vera"],
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/assignments/mine",
            body: None,
            allowed: SIGNED_IN,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/analytics/articles?sort=title&order=asc",
            body: None,
            allowed: STEERING,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/analytics/queries",
            body: None,
            allowed: STEERING,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::GET,
            path: "/v1/analytics/timeseries?metric=views&bucket=hour",
            body: None,
            allowed: STEERING,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
        Case {
            method: Method::POST,
            path: "/v1/articles/public-levy/assignments",
            body: Some(json!({"users": ["vera"], "roles": ["auditor"], "kind": "read"})),
            allowed: STEERING,
            not_found: &[],
            setup: Setup::Plain,
            writes: true,
        },
        Case {
            method: Method::GET,
            path: "/v1/articles/public-levy/assignments",
            body: None,
            allowed: STEERING,
            not_found: &[],
            setup: Setup::Plain,
            writes: false,
        },
    ]
}

/// Counts of everything a write could change.
async fn state(s: &TestServer) -> (i64, usize, i64, usize) {
    let st = &s.ts.store;
    let audit = st
        .list_audit(&engine::store::AuditFilter {
            after_id: 0,
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .len();
    (
        st.count_articles().await.unwrap(),
        st.list_users().await.unwrap().len(),
        st.outbox_head().await.unwrap(),
        audit,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_against_every_role() {
    let mut s = TestServer::start(Backend::Sqlite).await;
    s.add_user("rex", &["reviewer"]).await;
    s.add_user("gus", &["auditor"]).await;
    s.add_user("diana", &["viewer", "director"]).await;
    for case in cases() {
        for caller in CALLERS {
            // Fresh fixtures for each call, so allowed writes can repeat.
            let mut a = json!({"slug": "public-levy", "title": "Levy basics", "category": "collections", "audience": ["public"], "status": "published"});
            let admin = Some("admin");
            for slug in ["public-levy", "new-draft"] {
                s.req(Method::DELETE, &format!("/v1/articles/{slug}"), admin)
                    .send()
                    .await
                    .unwrap();
            }
            s.req(Method::POST, "/v1/articles", admin)
                .json(&a)
                .send()
                .await
                .unwrap();
            a["slug"] = json!("doomed");
            s.req(Method::POST, "/v1/articles", admin)
                .json(&a)
                .send()
                .await
                .unwrap();
            let mut task = String::new();
            if case.setup != Setup::Plain {
                s.req(Method::DELETE, "/v1/articles/review-me", admin)
                    .send()
                    .await
                    .unwrap();
                let r = s
                    .req(Method::POST, "/v1/articles", Some("alice"))
                    .json(&json!({"slug": "review-me", "title": "Review me", "category": "audits", "summary": "- a summary", "body": "Steps.", "tags": ["levy"]}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
                if case.setup == Setup::InReview {
                    let r = s
                        .req(Method::POST, "/v1/articles/review-me/submit", Some("alice"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 201);
                    let t: Value = r.json().await.unwrap();
                    task = t["id"].to_string();
                }
            }
            let _ =
                s.ts.store
                    .set_roles(
                        &engine::auth::Principal::system(),
                        "vera",
                        &["viewer".to_string()],
                    )
                    .await;
            let before = state(&s).await;
            let who = (caller != "anonymous").then_some(caller);
            let path = case.path.replace("{task}", &task);
            let mut r = s.req(case.method.clone(), &path, who);
            if let Some(b) = &case.body {
                r = r.json(b);
            }
            let resp = r.send().await.unwrap();
            let code = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            let what = format!("{} {} as {caller}: {code} {body}", case.method, case.path);
            if case.allowed.contains(&caller) {
                assert!((200..300).contains(&code), "should be allowed: {what}");
            } else {
                let want = if case.not_found.contains(&caller) {
                    404
                } else if caller == "anonymous" {
                    401
                } else {
                    403
                };
                assert_eq!(code, want, "should be refused: {what}");
                assert_eq!(body["status"], want, "{what}");
                if case.writes {
                    assert_eq!(
                        state(&s).await,
                        before,
                        "a refused call changed something: {what}"
                    );
                }
            }
        }
    }
    s.stop().await;
}
