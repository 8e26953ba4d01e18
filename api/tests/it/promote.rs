//! Issue 4: signed webhooks, publications to category webhooks, the Atom
//! feed and users' addresses, over real receivers and a real server.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use engine::auth::Principal;
use engine::model::{Channels, Status};
use engine::notify::deliver::DeliveryConfig;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Backend, TestServer, TestStore};
use crate::notify::{config, deliverer, draft, drain, user, SECRET};
use crate::receivers::{TestClock, WebhookReceiver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_webhook_signatures_verify() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let ts = TestStore::new(backend).await;
        let hooks = WebhookReceiver::start().await;
        let store = ts.store.clone().with_channels(Channels {
            email: false,
            webhook: true,
        });
        let system = Principal::system();
        user(
            &store,
            "sam",
            &["viewer"],
            false,
            Some(hooks.url("/sms/sam")),
        )
        .await;
        let sub = engine::notify::channels::register_webhook(
            &store,
            &system,
            "payroll",
            &hooks.url("/category"),
        )
        .await
        .unwrap();
        let sub_secret = sub.secret.clone().unwrap();
        assert!(sub_secret.len() >= 64, "a long random secret");
        assert_eq!(
            store.list_webhooks("payroll").await.unwrap()[0].secret,
            None
        );
        store
            .notify(
                &["sam".into()],
                "approved",
                None,
                None,
                "your article was approved",
            )
            .await
            .unwrap();
        let d = draft(
            "w2",
            "W-2 corrections",
            "payroll",
            &["public"],
            Status::Published,
        );
        let article = store.create_article(&system, d).await.unwrap();

        let clock = TestClock::at(Utc::now());
        let report = drain(&deliverer(&store, &clock, config(None))).await;
        assert_eq!(report.sent, 2, "{backend:?}");
        let hits = hooks.hits();
        assert_eq!(hits.len(), 2);
        let ids: Vec<i64> = store
            .list_deliveries()
            .await
            .unwrap()
            .iter()
            .map(|d| d.delivery.id)
            .collect();
        for hit in &hits {
            assert_eq!(
                hit.header("x-kmt-timestamp"),
                clock_now_secs(&clock).to_string()
            );
            let id: i64 = hit.header("x-kmt-delivery").parse().unwrap();
            assert!(ids.contains(&id));
            assert_eq!(hit.header("content-type"), "application/json");
        }
        let sms = &hooks.accepted("/sms/sam")[0];
        assert!(sms.signed_with(SECRET), "user webhooks: server-wide secret");
        assert!(!sms.signed_with(&sub_secret));
        assert_eq!(sms.json()["message"], "your article was approved");
        assert_eq!(sms.json()["recipient"], "sam");
        let cat = &hooks.accepted("/category")[0];
        assert!(
            cat.signed_with(&sub_secret),
            "category webhooks: their own secret"
        );
        assert!(!cat.signed_with(SECRET));
        let body = cat.json();
        assert_eq!(body["event"], "article.published");
        assert_eq!(body["article_id"], article.id);
        assert_eq!(body["version"], 1);
        assert_eq!(
            body["title"], "W-2 corrections",
            "public articles carry their title"
        );
        // A changed body no longer verifies.
        let mut forged = cat.clone();
        forged.body = axum::body::Bytes::from(cat.body.iter().copied().rev().collect::<Vec<u8>>());
        assert!(!forged.signed_with(&sub_secret));
        ts.cleanup().await;
    }
}

fn clock_now_secs(c: &Arc<TestClock>) -> i64 {
    engine::jobs::Clock::now(&**c).timestamp()
}

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
    let resp = r.send().await.unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or(Value::Null))
}

async fn feed(s: &TestServer, user: Option<&str>) -> String {
    let r = s
        .req(Method::GET, "/v1/categories/payroll/feed.atom", user)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_publish_notifies_category_webhooks_and_feed() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let mut s = TestServer::start(backend).await;
        s.add_user("rex", &["reviewer"]).await;
        let hooks = WebhookReceiver::start().await;
        let path = "/v1/categories/payroll/webhooks";
        let body = json!({"url": hooks.url("/payroll")});
        assert_eq!(
            call(&s, Method::POST, path, None, Some(body.clone()))
                .await
                .0,
            401
        );
        assert_eq!(
            call(&s, Method::POST, path, Some("rex"), Some(body.clone()))
                .await
                .0,
            403
        );
        let bad = json!({"url": "ftp://x"});
        assert_eq!(
            call(&s, Method::POST, path, Some("admin"), Some(bad))
                .await
                .0,
            422
        );
        let (code, hook) = call(&s, Method::POST, path, Some("admin"), Some(body)).await;
        assert_eq!(code, 201, "{hook}");
        let secret = hook["secret"].as_str().unwrap().to_string();
        let (code, list) = call(&s, Method::GET, path, Some("admin"), None).await;
        assert_eq!(code, 200);
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert!(
            list[0].get("secret").is_none(),
            "the secret is shown once: {list}"
        );
        assert_eq!(call(&s, Method::GET, path, Some("vera"), None).await.0, 403);

        // Approval publishes: one delivery per subscription.
        let art = json!({"slug": "w2-fix", "title": "Fixing a W-2 & \"other\" <forms>",
            "category": "payroll", "body": "Issue a W-2c.", "audience": ["public"]});
        assert_eq!(
            call(&s, Method::POST, "/v1/articles", Some("alice"), Some(art))
                .await
                .0,
            201
        );
        assert_eq!(
            call(
                &s,
                Method::POST,
                "/v1/articles/w2-fix/submit",
                Some("alice"),
                None
            )
            .await
            .0,
            201
        );
        assert!(
            store_deliveries(&s).await.is_empty(),
            "nothing is published yet"
        );
        let (code, approved) = call(
            &s,
            Method::POST,
            "/v1/articles/w2-fix/approve",
            Some("rex"),
            Some(json!({})),
        )
        .await;
        assert_eq!(code, 200, "{approved}");
        // A restricted article published directly by an admin.
        let art = json!({"slug": "garnish-audit", "title": "Auditor notes on garnishments",
            "category": "payroll", "body": "Internal.", "audience": ["auditor"], "status": "published"});
        let (code, restricted) =
            call(&s, Method::POST, "/v1/articles", Some("admin"), Some(art)).await;
        assert_eq!(code, 201, "{restricted}");
        assert_eq!(store_deliveries(&s).await.len(), 2);

        // The server's own scheduler may deliver too (embedded store): the
        // leases make sure each goes out once either way.
        let clock = TestClock::at(Utc::now());
        let worker = deliverer(&s.ts.store, &clock, DeliveryConfig::default());
        drain(&worker).await;
        // Wait (polling, not timing) for a send the server's worker may
        // have in flight.
        let t = std::time::Instant::now();
        while store_deliveries(&s)
            .await
            .iter()
            .any(|d| d.delivered_at.is_none())
        {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(20),
                "never delivered"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let got = hooks.accepted("/payroll");
        assert_eq!(got.len(), 2, "{backend:?}");
        assert!(got.iter().all(|h| h.signed_with(&secret)));
        let by_slug: HashMap<String, Value> = got
            .iter()
            .map(|h| (h.json()["slug"].as_str().unwrap().to_string(), h.json()))
            .collect();
        assert_eq!(by_slug["w2-fix"]["article_id"], approved["id"]);
        assert_eq!(by_slug["w2-fix"]["version"], approved["version"]);
        assert_eq!(
            by_slug["w2-fix"]["title"],
            "Fixing a W-2 & \"other\" <forms>"
        );
        assert!(
            by_slug["garnish-audit"].get("title").is_none(),
            "a restricted article's title stays inside"
        );

        // The feed: valid Atom, escaped, and only what the caller may read.
        let anon = feed(&s, None).await;
        assert!(anon.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">"));
        assert!(
            anon.contains("<title>Fixing a W-2 &amp; &quot;other&quot; &lt;forms&gt;</title>"),
            "{anon}"
        );
        assert!(!anon.contains("<forms>"));
        assert!(
            !anon.contains("garnish"),
            "anonymous callers see public articles only"
        );
        assert!(well_formed(&anon), "{anon}");
        assert!(!feed(&s, Some("vera")).await.contains("garnish"));
        let auditor = feed(&s, Some("alice")).await;
        assert!(
            auditor.contains("Auditor notes on garnishments"),
            "{auditor}"
        );
        assert_eq!(auditor.matches("<entry>").count(), 2);
        assert!(well_formed(&auditor));
        assert_eq!(
            call(
                &s,
                Method::GET,
                "/v1/categories/NO%20SUCH/feed.atom",
                None,
                None
            )
            .await
            .0,
            422
        );

        // Deleting the subscription stops deliveries; both changes are audited.
        let id = hook["id"].as_i64().unwrap();
        let del = format!("{path}/{id}");
        assert_eq!(
            call(&s, Method::DELETE, &del, Some("vera"), None).await.0,
            403
        );
        assert_eq!(
            call(&s, Method::DELETE, &del, Some("admin"), None).await.0,
            204
        );
        assert_eq!(
            call(&s, Method::DELETE, &del, Some("admin"), None).await.0,
            404
        );
        let art = json!({"slug": "later", "title": "Later", "category": "payroll",
            "body": "Published after the webhook was removed.", "status": "published", "audience": ["public"]});
        assert_eq!(
            call(&s, Method::POST, "/v1/articles", Some("admin"), Some(art))
                .await
                .0,
            201
        );
        assert_eq!(store_deliveries(&s).await.len(), 2);
        let (_, audit) = call(&s, Method::GET, "/v1/audit?limit=500", Some("admin"), None).await;
        let actions: Vec<&str> = audit["items"]
            .as_array()
            .or(audit.as_array())
            .unwrap()
            .iter()
            .map(|r| r["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains(&"webhook.create") && actions.contains(&"webhook.delete"),
            "{actions:?}"
        );
        s.stop().await;
    }
}

async fn store_deliveries(s: &TestServer) -> Vec<engine::model::DeliveryState> {
    s.ts.store.list_deliveries().await.unwrap()
}

/// A small well-formedness check: every tag closes in order, attributes
/// are quoted, and no `&` starts anything but a known entity.
fn well_formed(xml: &str) -> bool {
    let body = xml.split_once("?>").map_or(xml, |(_, b)| b);
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find('<') {
        let text = &rest[..i];
        if !entities_ok(text) {
            return false;
        }
        let Some(j) = rest[i..].find('>') else {
            return false;
        };
        let tag = &rest[i + 1..i + j];
        rest = &rest[i + j + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            if stack.pop().as_deref() != Some(name) {
                return false;
            }
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().unwrap_or("");
            stack.push(name.to_string());
        }
        if !tag.matches('"').count().is_multiple_of(2) || !entities_ok(tag) {
            return false;
        }
    }
    stack.is_empty() && entities_ok(rest)
}

fn entities_ok(s: &str) -> bool {
    s.match_indices('&').all(|(i, _)| {
        ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
            .iter()
            .any(|e| s[i..].starts_with(e))
    })
}

/// The new routes are described in the OpenAPI document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_channel_routes_are_documented() {
    let s = TestServer::start(Backend::Sqlite).await;
    let (code, doc) = call(&s, Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(code, 200);
    let paths = &doc["paths"];
    assert!(paths["/v1/categories/{category}/webhooks"]["post"].is_object());
    assert!(paths["/v1/categories/{category}/webhooks"]["get"].is_object());
    assert!(paths["/v1/categories/{category}/webhooks/{id}"]["delete"].is_object());
    assert!(paths["/v1/categories/{category}/feed.atom"]["get"].is_object());
    assert!(paths["/v1/users/{username}/contact"]["put"].is_object());
    s.stop().await;
}

/// Users' addresses are optional, set on creation or later, by admins or
/// the users themselves; validated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_user_addresses() {
    let s = TestServer::start(Backend::Sqlite).await;
    let body = json!({"username": "sms", "roles": ["viewer"], "email": "sms@example.org",
        "webhook_url": "https://gateway.example/send?key=k"});
    let (code, u) = call(&s, Method::POST, "/v1/users", Some("admin"), Some(body)).await;
    assert_eq!(code, 201, "{u}");
    assert_eq!(u["email"], "sms@example.org");
    let (code, u) = call(
        &s,
        Method::POST,
        "/v1/users",
        Some("admin"),
        Some(json!({"username": "plain", "roles": ["viewer"]})),
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(u["email"], Value::Null);
    let path = "/v1/users/vera/contact";
    let (code, u) = call(
        &s,
        Method::PUT,
        path,
        Some("vera"),
        Some(json!({"email": "vera@example.org"})),
    )
    .await;
    assert_eq!(code, 200, "{u}");
    assert_eq!(u["email"], "vera@example.org");
    assert_eq!(
        call(&s, Method::PUT, path, Some("alice"), Some(json!({})))
            .await
            .0,
        403
    );
    assert_eq!(
        call(&s, Method::PUT, path, None, Some(json!({}))).await.0,
        401
    );
    assert_eq!(
        call(
            &s,
            Method::PUT,
            path,
            Some("vera"),
            Some(json!({"email": "nope"}))
        )
        .await
        .0,
        422
    );
    let hook = json!({"email": "vera@example.org", "webhook_url": "http://127.0.0.1:9/x"});
    let refused = call(&s, Method::PUT, path, Some("vera"), Some(hook.clone())).await;
    assert_eq!(refused.0, 403, "only admins point the server at a URL");
    let (code, u) = call(&s, Method::PUT, path, Some("admin"), Some(hook)).await;
    assert_eq!(
        (code, &u["webhook_url"]),
        (200, &json!("http://127.0.0.1:9/x"))
    );
    // Vera may still change her e-mail, keeping the URL the admin set.
    let keep = json!({"email": "v@example.org", "webhook_url": "http://127.0.0.1:9/x"});
    assert_eq!(
        call(&s, Method::PUT, path, Some("vera"), Some(keep))
            .await
            .0,
        200
    );
    let (_, audit) = call(&s, Method::GET, "/v1/audit?limit=500", Some("admin"), None).await;
    let text = audit.to_string();
    assert!(text.contains("user.set_contact"));
    assert!(
        !text.contains("key=k"),
        "webhook URLs (which may hold keys) stay out of the audit trail"
    );
    s.stop().await;
}

/// The notification settings parse from flags and environment names, and
/// turn the channels on only when configured.
#[test]
fn issue_4_notification_settings() {
    use clap::Parser;
    let cli = api::cli::Cli::try_parse_from([
        "kmt",
        "serve",
        "--smtp-url",
        "smtp://127.0.0.1:2525",
        "--delivery-max-attempts",
        "3",
    ])
    .unwrap();
    let api::cli::Command::Serve(args) = cli.command else {
        panic!("not serve");
    };
    let cfg = args.notify.config();
    assert_eq!(cfg.smtp_url.as_deref(), Some("smtp://127.0.0.1:2525"));
    assert_eq!(cfg.max_attempts, 3);
    assert_eq!(cfg.smtp_from, "kmt@localhost");
    assert_eq!(
        cfg.channels(),
        Channels {
            email: true,
            webhook: false
        }
    );
    let off = api::cli::Cli::try_parse_from(["kmt", "serve"]).unwrap();
    let api::cli::Command::Serve(args) = off.command else {
        panic!("not serve");
    };
    assert_eq!(args.notify.config().channels(), Channels::default());
}

/// A delivery whose subscription was deleted is given up at once, not
/// retried; nothing reaches the old URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_deleted_webhook_is_not_retried() {
    let ts = TestStore::new(Backend::Sqlite).await;
    let hooks = WebhookReceiver::start().await;
    let system = Principal::system();
    let store = ts.store.clone();
    let hook =
        engine::notify::channels::register_webhook(&store, &system, "payroll", &hooks.url("/h"))
            .await
            .unwrap();
    let d = draft("gone", "Gone", "payroll", &["public"], Status::Published);
    store.create_article(&system, d).await.unwrap();
    engine::notify::channels::delete_webhook(&store, &system, "payroll", hook.id)
        .await
        .unwrap();
    let clock = TestClock::at(Utc::now());
    let report = drain(&deliverer(&store, &clock, config(None))).await;
    assert_eq!((report.sent, report.retried, report.failed), (0, 0, 1));
    assert!(hooks.hits().is_empty());
    ts.cleanup().await;
}
