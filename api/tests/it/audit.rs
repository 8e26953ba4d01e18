//! The audit trail: the hash chain verifies, tampering is named, admins
//! read it over HTTP.

use engine::auth::Principal;
use engine::model::NewArticle;
use engine::store::audit::verify;
use reqwest::Method;

use crate::harness::{Backend, TestServer, TestStore};

async fn some_history(ts: &TestStore) {
    let system = Principal::system();
    for i in 0..4 {
        let d = NewArticle {
            title: format!("Article {i}"),
            category: "audits".into(),
            ..Default::default()
        }
        .into_draft()
        .unwrap();
        let a = ts.store.create_article(&system, d.clone()).await.unwrap();
        let mut d2 = d;
        d2.body = "changed".into();
        ts.store
            .update_article(&system, a.id, d2, None)
            .await
            .unwrap();
    }
    ts.store
        .create_user(&system, "mallory", "M", &["viewer".to_string()])
        .await
        .unwrap();
}

/// Changing any row of the audit table makes verification fail naming it;
/// so does removing one.
#[tokio::test]
async fn tampering_with_the_audit_table_is_named() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let ts = TestStore::new(backend).await;
        some_history(&ts).await;
        let r = verify(&ts.store).await.unwrap();
        assert_eq!((r.rows, r.first_broken), (9, None));
        ts.raw_sql("UPDATE audit SET actor = 'mallory' WHERE id = 3")
            .await;
        let r = verify(&ts.store).await.unwrap();
        let b = r.first_broken.expect("tampering detected");
        assert_eq!(b.id, 3, "{b:?}");
        assert!(b.reason.contains("changed"), "{b:?}");
        ts.cleanup().await;

        let ts = TestStore::new(backend).await;
        some_history(&ts).await;
        ts.raw_sql("DELETE FROM audit WHERE id = 5").await;
        let b = verify(&ts.store).await.unwrap().first_broken.unwrap();
        assert_eq!(b.id, 5);
        assert!(b.reason.contains("missing"), "{b:?}");
        ts.cleanup().await;
    }
}

/// `kmt audit verify` exits 0 on an intact chain and names the first bad
/// row otherwise.
#[tokio::test]
async fn audit_verify_command() {
    let ts = TestStore::new(Backend::Sqlite).await;
    some_history(&ts).await;
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_kmt"))
            .env_remove("DATABASE_URL")
            .arg("--data")
            .arg(ts.dir.path())
            .args(["audit", "verify"])
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact: 9 rows"));
    ts.raw_sql("UPDATE audit SET details = '{\"slug\":\"x\"}' WHERE id = 7")
        .await;
    let out = run();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("row 7"), "{err}");
    ts.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_read_the_audit_trail() {
    let s = TestServer::start(Backend::Sqlite).await;
    let (code, v) = s.get_json("/v1/audit?limit=2", Some("admin")).await;
    assert_eq!(code, 200, "{v}");
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], 1);
    assert_eq!(rows[0]["action"], "user.create");
    let (code, v) = s
        .get_json("/v1/audit?after_id=1&limit=1", Some("admin"))
        .await;
    assert_eq!(code, 200);
    assert_eq!(v[0]["id"], 2);
    // Tokens never appear in the trail.
    let (_, all) = s.get_json("/v1/audit?limit=1000", Some("admin")).await;
    let text = all.to_string();
    for t in s.tokens.values() {
        assert!(!text.contains(t.as_str()));
    }
    let (code, _) = s.get_json("/v1/audit", Some("vera")).await;
    assert_eq!(code, 403);
    let r = s.req(Method::GET, "/v1/audit", None).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let (code, _) = s.get_json("/v1/audit?limit=0", Some("admin")).await;
    assert_eq!(code, 422);
    s.stop().await;
}

/// `GET /v1/audit` filters by actor, action, target and time range, each
/// alone and combined with paging; bad values are 422s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_audit_query_filters() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let s = TestServer::start(backend).await;
        // The harness made 4 users and 4 tokens (actor `system`).
        let ids = |v: &serde_json::Value| -> Vec<i64> {
            v.as_array()
                .unwrap_or_else(|| panic!("{v}"))
                .iter()
                .map(|r| r["id"].as_i64().unwrap())
                .collect()
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let between = chrono::Utc::now();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let body = serde_json::json!({"title": "Filtered", "category": "audits", "body": "x"});
        let r = s
            .req(Method::POST, "/v1/articles", Some("admin"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let article: serde_json::Value = r.json().await.unwrap();

        let (code, v) = s.get_json("/v1/audit?actor=admin", Some("admin")).await;
        assert_eq!(code, 200, "{v}");
        assert_eq!(ids(&v), vec![9]);
        assert_eq!(v[0]["action"], "article.create");
        let (_, v) = s
            .get_json("/v1/audit?action=token.create", Some("admin"))
            .await;
        assert_eq!(ids(&v).len(), 4);
        assert!(v
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["action"] == "token.create"));
        let (_, v) = s
            .get_json("/v1/audit?target=user:vera", Some("admin"))
            .await;
        let actions: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["user.create", "token.create"]);
        let target = format!("/v1/audit?target=article:{}", article["id"]);
        assert_eq!(ids(&s.get_json(&target, Some("admin")).await.1), vec![9]);
        // Time range: `since` inclusive, `until` exclusive, dates allowed.
        let since = between.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let q = format!("/v1/audit?since={}", since.replace('+', "%2B"));
        assert_eq!(ids(&s.get_json(&q, Some("admin")).await.1), vec![9]);
        let q = format!("/v1/audit?until={since}");
        assert_eq!(
            ids(&s.get_json(&q, Some("admin")).await.1),
            (1..=8).collect::<Vec<_>>()
        );
        let (_, v) = s
            .get_json("/v1/audit?until=2000-01-01", Some("admin"))
            .await;
        assert!(ids(&v).is_empty());
        let (_, v) = s
            .get_json("/v1/audit?since=2000-01-01&until=2999-01-01&actor=system&action=token.create&after_id=4&limit=2", Some("admin"))
            .await;
        assert_eq!(ids(&v).len(), 2);
        assert!(ids(&v).iter().all(|&id| id > 4));
        // Nothing matches: an empty page, not an error.
        let (code, v) = s.get_json("/v1/audit?actor=nobody", Some("admin")).await;
        assert_eq!((code, ids(&v).len()), (200, 0));
        for bad in ["since=yesterday", "until=2025-13-01"] {
            let (code, v) = s.get_json(&format!("/v1/audit?{bad}"), Some("admin")).await;
            assert_eq!(code, 422, "{bad}: {v}");
        }
        let (code, _) = s.get_json("/v1/audit?actr=admin", Some("admin")).await;
        assert_eq!(code, 400, "a misspelt filter is not ignored");
        let (code, _) = s.get_json("/v1/audit?actor=admin", Some("vera")).await;
        assert_eq!(code, 403);
        s.stop().await;
    }
}

/// `kmt serve` on the embedded store ships the trail in-process to
/// `<data>/shipped`, `/metrics` reports the backlog, and `kmt audit verify`
/// checks the shipped objects and names a tampered one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_serve_ships_in_process_and_verify_checks_objects() {
    let s = TestServer::start(Backend::Sqlite).await;
    let scrape = || async {
        let r = s.http.get(s.url("/metrics")).send().await.unwrap();
        r.text().await.unwrap()
    };
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape().await;
        if text.contains("\nkmt_audit_unshipped_rows 0\n")
            && text.contains("kmt_audit_shipped_through_id 8\n")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(text.contains("\nkmt_audit_unshipped_rows 0\n"), "{text}");
    assert!(
        text.contains("# TYPE kmt_audit_last_shipment_age_seconds gauge"),
        "{text}"
    );
    let data = s.ts.dir.path().to_path_buf();
    let key = "audit/000000000001-000000000008.jsonl.gz";
    let path = data.join("shipped").join(key);
    assert!(path.exists(), "{}", path.display());

    // Now the CLI, on the same data directory (CLI commands work beside a
    // running server).
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_kmt"))
            .env_remove("DATABASE_URL")
            .env_remove("KMT_AUDIT_S3_BUCKET")
            .env_remove("KMT_AUDIT_DIR")
            .arg("--data")
            .arg(&data)
            .args(["audit", "verify"])
            .output()
            .unwrap()
    };
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("shipped audit objects intact: 1 objects, 8 rows"),
        "{stdout}"
    );
    // Flip one row inside the shipped object.
    let mut rows = engine::audit_ship::decode_object(&std::fs::read(&path).unwrap()).unwrap();
    rows[2].target = "user:mallory".into();
    std::fs::write(&path, engine::audit_ship::encode_batch(&rows).unwrap()).unwrap();
    let out = run();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(key) && err.contains("at row 3"), "{err}");
    std::fs::remove_file(&path).unwrap();
    let err = String::from_utf8_lossy(&run().stderr).to_string();
    assert!(err.contains(key) && err.contains("missing"), "{err}");
    s.stop().await;
}
