//! Password sign-in: cookies, CSRF, fixation, rate limits, and hashes that
//! never leave the store.

use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Backend, TestServer};

async fn sign_in(s: &TestServer, user: &str, password: &str) -> (u16, Option<String>, Value) {
    let r = s
        .http
        .post(s.url("/v1/session"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    let cookie = r
        .headers()
        .get(SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_string());
    (code, cookie, r.json().await.unwrap_or(Value::Null))
}

fn session_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_password_sign_in_with_cookie_and_csrf() {
    let s = TestServer::start(Backend::Sqlite).await;
    // An admin sets alice's password; alice changes it herself.
    let r = s
        .req(Method::PUT, "/v1/users/alice/password", Some("admin"))
        .json(&json!({"password": "first password 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s
        .req(Method::PUT, "/v1/users/alice/password", Some("vera"))
        .json(&json!({"password": "vera sets it 12"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = s
        .req(Method::PUT, "/v1/users/alice/password", Some("admin"))
        .json(&json!({"password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    let (code, _, _) = sign_in(&s, "alice", "wrong password").await;
    assert_eq!(code, 401);
    let (code, _, _) = sign_in(&s, "nobody", "whatever pass").await;
    assert_eq!(code, 401, "unknown users fail like wrong passwords");
    let (code, set, info) = sign_in(&s, "alice", "first password 1").await;
    assert_eq!(code, 200, "{info}");
    let set = set.expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP here");
    let cookie = session_value(&set);
    let csrf = info["csrf_token"].as_str().unwrap().to_string();

    // The cookie authenticates reads.
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
    assert_eq!(me["username"], "alice");
    let cur: Value = s
        .http
        .get(s.url("/v1/session"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cur["csrf_token"], csrf.as_str());
    // Writes need the CSRF token; without it nothing is written.
    let draft = json!({"title": "Cookie draft", "category": "audits", "status": "draft"});
    let r = s
        .http
        .post(s.url("/v1/articles"))
        .header(COOKIE, &cookie)
        .json(&draft)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = s
        .http
        .post(s.url("/v1/articles"))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", "0".repeat(64))
        .json(&draft)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(s.ts.store.count_articles().await.unwrap(), 0);
    let r = s
        .http
        .post(s.url("/v1/articles"))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .json(&draft)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Session fixation: a new sign-in gets a new id and ends the old one.
    let r = s
        .http
        .post(s.url("/v1/session"))
        .header(COOKIE, &cookie)
        .json(&json!({"username": "alice", "password": "first password 1"}))
        .send()
        .await
        .unwrap();
    let cookie2 = session_value(r.headers()[SET_COOKIE].to_str().unwrap());
    assert_ne!(cookie, cookie2);
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
    assert_eq!(me["username"], "anonymous", "the old session is gone");

    // Sign-out ends the session and clears the cookie.
    let r = s
        .http
        .delete(s.url("/v1/session"))
        .header(COOKIE, &cookie2)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "sign-out is a write: it needs the CSRF token"
    );
    let info2 = s
        .http
        .get(s.url("/v1/session"))
        .header(COOKIE, &cookie2)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let r = s
        .http
        .delete(s.url("/v1/session"))
        .header(COOKIE, &cookie2)
        .header("x-csrf-token", info2["csrf_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let r = s
        .http
        .get(s.url("/v1/session"))
        .header(COOKIE, &cookie2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Password hashes and session ids never leave the store.
    let (_, users) = s.get_json("/v1/users", Some("admin")).await;
    let (_, audit) = s.get_json("/v1/audit?limit=1000", Some("admin")).await;
    for text in [users.to_string(), audit.to_string()] {
        assert!(!text.contains("$argon2"), "{text}");
        assert!(!text.contains(&cookie2[cookie2.find('=').unwrap() + 1..]));
        assert!(!text.contains("first password"));
    }
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for a in [
        "user.set_password",
        "session.failed",
        "session.create",
        "session.delete",
    ] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_rate_limited() {
    let s = TestServer::start(Backend::Sqlite).await;
    let r = s
        .req(Method::PUT, "/v1/users/vera/password", Some("admin"))
        .json(&json!({"password": "vera password 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for _ in 0..5 {
        let (code, _, _) = sign_in(&s, "vera", "not her password").await;
        assert_eq!(code, 401);
    }
    let r = s
        .http
        .post(s.url("/v1/session"))
        .json(&json!({"username": "vera", "password": "vera password 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        429,
        "even the right password waits once the limit is hit"
    );
    assert!(r.headers().get("retry-after").is_some());
    s.stop().await;
}
