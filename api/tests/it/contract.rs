//! The routes issue 4's contract names, beside the ones the workflow tests
//! use: `/v1/auth/login|logout`, `/v1/tasks/{id}/approve|reject`,
//! `/v1/articles/{id}/retire` and `/v1/articles/{id}/request-update`.

use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Backend, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_auth_login_and_logout_routes() {
    let s = TestServer::start(Backend::Sqlite).await;
    let (code, _) = s
        .call(
            Method::PUT,
            "/v1/users/vera/password",
            "admin",
            Some(json!({"password": "a long enough password"})),
        )
        .await;
    assert_eq!(code, 204);
    let r = s
        .http
        .post(s.url("/v1/auth/login"))
        .json(&json!({"username": "vera", "password": "a long enough password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let csrf = r.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let me: Value = s
        .http
        .get(s.url("/v1/me"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "vera");
    // Signing out is a cookie-authenticated write: it needs the CSRF token.
    let r = s
        .http
        .post(s.url("/v1/auth/logout"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = s
        .http
        .post(s.url("/v1/auth/logout"))
        .header(COOKIE, &cookie)
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let me: Value = s
        .http
        .get(s.url("/v1/me"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "anonymous", "the session ended");
    let r = s
        .http
        .post(s.url("/v1/auth/login"))
        .json(&json!({"username": "vera", "password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    s.stop().await;
}

async fn task_routes(backend: Backend) {
    let mut s = TestServer::start(backend).await;
    s.add_user("rex", &["reviewer"]).await;
    s.add_user("diana", &["director"]).await;
    let (code, a) = s
        .call(
            Method::POST,
            "/v1/articles",
            "alice",
            Some(json!({
        "title": "Levy appeal deadlines", "category": "collections", "summary": "- 30 days",
        "body": "File within thirty days.", "tags": ["levy"]})),
        )
        .await;
    assert_eq!(code, 201, "{a}");
    let id = a["id"].as_i64().unwrap();
    // Submit, reject through the task, resubmit, approve through the task.
    let (code, t) = s
        .call(
            Method::POST,
            &format!("/v1/articles/{id}/submit"),
            "alice",
            None,
        )
        .await;
    assert_eq!(code, 201, "{t}");
    let task = t["id"].as_i64().unwrap();
    let (code, e) = s
        .call(
            Method::POST,
            &format!("/v1/tasks/{task}/reject"),
            "rex",
            Some(json!({})),
        )
        .await;
    assert_eq!(code, 422, "a rejection needs a note: {e}");
    let (code, r) = s
        .call(
            Method::POST,
            &format!("/v1/tasks/{task}/reject"),
            "rex",
            Some(json!({"note": "cite the statute"})),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["status"], "draft");
    let (code, _) = s
        .call(
            Method::POST,
            &format!("/v1/tasks/{task}/approve"),
            "rex",
            None,
        )
        .await;
    assert_eq!(
        code, 404,
        "the rejected draft is back with its author, out of sight"
    );
    let first = task;
    let (_, t) = s
        .call(
            Method::POST,
            &format!("/v1/articles/{id}/submit"),
            "alice",
            None,
        )
        .await;
    let task = t["id"].as_i64().unwrap();
    let (code, _) = s
        .call(
            Method::POST,
            &format!("/v1/tasks/{task}/approve"),
            "alice",
            None,
        )
        .await;
    assert_eq!(code, 403, "authors do not approve");
    let (code, r) = s
        .call(
            Method::POST,
            &format!("/v1/tasks/{task}/approve"),
            "rex",
            None,
        )
        .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["status"], "published");
    let (code, _) = s
        .call(
            Method::POST,
            &format!("/v1/tasks/{first}/approve"),
            "rex",
            None,
        )
        .await;
    assert_eq!(code, 409, "a closed task cannot be decided again");
    let (code, _) = s
        .call(Method::POST, "/v1/tasks/999999/approve", "rex", None)
        .await;
    assert_eq!(code, 404);

    // Send for update: one task per user and role, the article needs an
    // update (still readable), assignees are notified.
    let (code, e) = s
        .call(
            Method::POST,
            &format!("/v1/articles/{id}/request-update"),
            "diana",
            Some(json!({})),
        )
        .await;
    assert_eq!(code, 422, "{e}");
    let (code, e) = s
        .call(
            Method::POST,
            &format!("/v1/articles/{id}/request-update"),
            "diana",
            Some(json!({"users": ["nobody"]})),
        )
        .await;
    assert_eq!(code, 422, "{e}");
    assert_eq!(e["field"], "users[0]", "{e}");
    let (code, _) = s
        .call(
            Method::POST,
            &format!("/v1/articles/{id}/request-update"),
            "alice",
            Some(json!({"users": ["harry"]})),
        )
        .await;
    assert_eq!(code, 403, "authors do not send articles for update");
    let (code, tasks) = s.call(Method::POST, &format!("/v1/articles/{id}/request-update"), "diana",
        Some(json!({"users": ["harry"], "roles": ["author"], "note": "new interest rates", "due_days": 5}))).await;
    assert_eq!(code, 201, "{tasks}");
    assert_eq!(tasks.as_array().unwrap().len(), 2);
    assert!(tasks.to_string().contains("new interest rates"));
    let (_, a) = s
        .call(Method::GET, &format!("/v1/articles/{id}"), "vera", None)
        .await;
    assert_eq!(a["status"], "needs_update");
    let (_, mine) = s.call(Method::GET, "/v1/tasks", "harry", None).await;
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .any(|t| t["kind"] == "update" && t["article_id"] == id),
        "{mine}"
    );
    let (_, mine) = s.call(Method::GET, "/v1/tasks", "alice", None).await;
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .any(|t| t["kind"] == "update" && t["assignee_role"] == "author"),
        "{mine}"
    );
    let (_, inbox) = s
        .call(Method::GET, "/v1/notifications", "harry", None)
        .await;
    assert!(inbox.to_string().contains("asks for an update"), "{inbox}");
    let (_, audit) = s
        .call(Method::GET, "/v1/audit?limit=1000", "admin", None)
        .await;
    assert!(audit.to_string().contains("task.request"), "{audit}");

    // Retire: gone from search, history kept.
    let (code, _) = s
        .call(
            Method::POST,
            &format!("/v1/articles/{id}/retire"),
            "alice",
            None,
        )
        .await;
    assert_eq!(code, 403);
    let (code, r) = s
        .call(
            Method::POST,
            &format!("/v1/articles/{id}/retire"),
            "rex",
            None,
        )
        .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["status"], "retired");
    let (_, v) = s
        .call(
            Method::GET,
            &format!("/v1/articles/{id}/versions"),
            "alice",
            None,
        )
        .await;
    assert!(v.as_array().unwrap().len() >= 4, "{v}");
    let t0 = std::time::Instant::now();
    loop {
        let (_, r) = s
            .call(
                Method::GET,
                "/v1/search?q=levy%20appeal&mode=lexical",
                "vera",
                None,
            )
            .await;
        if r["total"] == 0 {
            break;
        }
        assert!(
            t0.elapsed().as_secs() < 10,
            "retired article still found: {r}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (code, _) = s
        .call(
            Method::POST,
            &format!("/v1/articles/{id}/request-update"),
            "admin",
            Some(json!({"users": ["harry"]})),
        )
        .await;
    assert_eq!(code, 409, "retired articles are not sent for update");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_task_decisions_request_update_and_retire_sqlite() {
    task_routes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_task_decisions_request_update_and_retire_postgres() {
    task_routes(Backend::Postgres).await;
}
