//! User, role and token management over HTTP (the admin endpoints whose
//! access the matrix in `authz.rs` checks): what the calls actually do.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Backend, TestServer};

/// Admins manage users, roles and tokens over HTTP; a new token works at
/// once and carries the user's roles; roles are validated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_roles_and_tokens_over_http() {
    let s = TestServer::start(Backend::Sqlite).await;
    let admin = Some("admin");
    let r = s
        .req(Method::POST, "/v1/users", admin)
        .json(&json!({"username": "olga", "display_name": "Olga Officer", "roles": ["Viewer", "hearing_officer"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let u: Value = r.json().await.unwrap();
    assert_eq!(u["roles"], json!(["hearing_officer", "viewer"]));
    let r = s
        .req(Method::POST, "/v1/users/olga/tokens", admin)
        .json(&json!({"name": "laptop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let t: Value = r.json().await.unwrap();
    let token = t["token"].as_str().unwrap();
    let me: Value = s
        .http
        .get(s.url("/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "olga");
    assert_eq!(me["permissions"], json!(["article.read"]));
    // Promote her; the same token now carries the new role.
    let r = s
        .req(Method::PUT, "/v1/users/olga/roles", admin)
        .json(&json!({"roles": ["author"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = s
        .http
        .get(s.url("/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["roles"], json!(["author"]));
    assert!(me["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("article.write")));
    // Bad input is named.
    let r = s
        .req(Method::POST, "/v1/users", admin)
        .json(&json!({"username": "Bad Name", "roles": ["viewer"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = s
        .req(Method::POST, "/v1/users", admin)
        .json(&json!({"username": "olga", "roles": ["viewer"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = s
        .req(Method::PUT, "/v1/users/nobody/roles", admin)
        .json(&json!({"roles": ["viewer"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (_, anon) = s.get_json("/v1/me", None).await;
    assert_eq!(anon["username"], "anonymous");
    s.stop().await;
}
