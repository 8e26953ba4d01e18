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
