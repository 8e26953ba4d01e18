//! `kmt-indexer` ships the audit trail (issue 7): the real binary, leading
//! on PostgreSQL, writes batches to its audit directory, and they verify.

use std::process::{Command, Stdio};
use std::time::Duration;

use engine::audit_ship::{object_key, verify_shipped, ShipTarget, TargetConfig};
use engine::auth::Principal;
use engine::store::Store;
use engine::testutil::PgTestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_indexer_ships_the_audit_trail() {
    let db = PgTestDb::create("auditship").await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(Some(&db.url), dir.path()).await.unwrap();
    let ship_dir = dir.path().join("ship");
    let mut indexer = Command::new(env!("CARGO_BIN_EXE_kmt-indexer"))
        .arg("--data")
        .arg(dir.path())
        .env("DATABASE_URL", &db.url)
        .env("KMT_EMBEDDER", "off")
        .env("KMT_AUDIT_DIR", &ship_dir)
        .env("KMT_AUDIT_SHIP_INTERVAL_SECS", "0.2")
        .env("KMT_AUDIT_SHIP_BATCH", "5")
        .env_remove("KMT_AUDIT_S3_BUCKET")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting kmt-indexer");
    for i in 0..12 {
        let roles = ["viewer".to_string()];
        store
            .create_user(&Principal::system(), &format!("u{i}"), "U", &roles)
            .await
            .unwrap();
    }
    let t0 = std::time::Instant::now();
    loop {
        let s = store.audit_ship_status().await.unwrap();
        if s.shipped_through == 12 && s.unshipped_rows == 0 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "not shipped: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    indexer.kill().unwrap();
    indexer.wait().unwrap();
    let target = ShipTarget::open(&TargetConfig::Dir(ship_dir.clone()))
        .await
        .unwrap();
    let keys = target.list().await.unwrap();
    // Rows may arrive while a round runs, so batch borders vary; the last
    // object ends at row 12 and all of them verify.
    assert!(keys.len() >= 3, "{keys:?}");
    assert!(
        keys.last().unwrap().ends_with("-000000000012.jsonl.gz"),
        "{keys:?}"
    );
    assert!(keys[0].starts_with(&object_key("", 1, 1)[..19]), "{keys:?}");
    let r = verify_shipped(&store, &target).await.unwrap();
    assert_eq!((r.rows, r.first_broken.clone()), (12, None), "{r:?}");
    assert!(r.unrecorded.is_empty(), "{r:?}");
    if let Store::Postgres(p) = &store {
        p.close().await;
    }
    db.drop_db().await;
}
