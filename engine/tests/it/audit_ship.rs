//! Audit shipping (issue 7): batches of the audit trail go to a local
//! directory or a real S3-compatible server (s3s-fs over SigV4, see
//! `s3server.rs`) under deterministic keys, survive an unreachable bucket,
//! and `verify_shipped` names the first bad object and row.

use std::time::Duration;

use engine::audit_ship::{
    decode_object, encode_batch, object_key, plan_next, ship_once, ship_planned, verify_shipped,
    LockMode, ObjectLock, ShipConfig, ShipTarget, TargetConfig,
};
use engine::store::{AuditFilter, Store};

use crate::common::{for_each_store, TestDb};
use crate::s3server::{config_for, free_port, S3Server};

const BUCKET: &str = "kmt-audit";

/// Appends `n` audit rows (standalone events).
async fn history(store: &Store, n: usize) {
    for i in 0..n {
        let details = serde_json::json!({ "n": i });
        store
            .audit_event("system", "test.event", &format!("thing:{i}"), details)
            .await
            .unwrap();
    }
}

async fn all_rows(store: &Store) -> Vec<engine::model::AuditEntry> {
    let filter = AuditFilter {
        limit: 100_000,
        ..Default::default()
    };
    store.list_audit(&filter).await.unwrap()
}

/// Which kind of target a test body ships to.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Dir,
    S3,
}

/// A target of `kind` in a fresh temporary directory, with the S3 server
/// (when any) that must stay alive while it is used.
async fn target(kind: Kind, dir: &std::path::Path) -> (ShipTarget, Option<S3Server>) {
    match kind {
        Kind::Dir => {
            let cfg = TargetConfig::Dir(dir.join("shipped"));
            (ShipTarget::open(&cfg).await.unwrap(), None)
        }
        Kind::S3 => {
            let server = S3Server::start(&dir.join("s3"), BUCKET).await;
            let cfg = TargetConfig::S3(server.config(BUCKET, "kmt/test"));
            (ShipTarget::open(&cfg).await.unwrap(), Some(server))
        }
    }
}

async fn ship_and_verify(kind: Kind, store: Store) {
    let tmp = tempfile::tempdir().unwrap();
    let (target, _server) = target(kind, tmp.path()).await;
    history(&store, 7).await;
    let out = ship_once(&store, &target, 3).await.unwrap();
    assert_eq!((out.batches, out.rows, out.caught_up), (3, 7, true));
    let prefix = target.prefix().to_string();
    let keys: Vec<String> = [(1, 3), (4, 6), (7, 7)]
        .iter()
        .map(|&(a, b)| object_key(&prefix, a, b))
        .collect();
    assert_eq!(target.list().await.unwrap(), keys);
    // The objects hold the rows exactly as stored, chain fields included.
    let mut shipped = Vec::new();
    for k in &keys {
        shipped.extend(decode_object(&target.get(k).await.unwrap().unwrap()).unwrap());
    }
    assert_eq!(shipped, all_rows(&store).await);
    let status = store.audit_ship_status().await.unwrap();
    assert_eq!((status.unshipped_rows, status.shipped_through), (0, 7));
    assert!(status.last_shipped_at.is_some());

    // Nothing new: nothing shipped. New rows: one more object after them.
    assert_eq!(ship_once(&store, &target, 3).await.unwrap().batches, 0);
    history(&store, 2).await;
    assert_eq!(store.audit_ship_status().await.unwrap().unshipped_rows, 2);
    assert_eq!(ship_once(&store, &target, 3).await.unwrap().batches, 1);
    let r = verify_shipped(&store, &target).await.unwrap();
    assert_eq!(
        (r.objects, r.rows, r.first_broken.clone()),
        (4, 9, None),
        "{r:?}"
    );
    assert!(r.unrecorded.is_empty(), "{r:?}");
}

/// Batches of at most N rows go to a directory and to S3 as gzip JSON
/// Lines under keys named by their id range, are recorded, and verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_audit_batches_ship_to_s3_and_verify() {
    for_each_store(|store, _| ship_and_verify(Kind::Dir, store)).await;
    for_each_store(|store, _| ship_and_verify(Kind::S3, store)).await;
}

/// A shipper that stored an object but died before recording it ships the
/// same range again under the same key (an overwrite), even when more rows
/// arrived meanwhile; two shippers at once write each range once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_retried_batch_overwrites_never_duplicates() {
    for_each_store(|store, db| async move {
        let tmp = tempfile::tempdir().unwrap();
        let (target, server) = target(Kind::S3, tmp.path()).await;
        let server = server.unwrap();
        history(&store, 2).await;
        let s = plan_next(&store, target.prefix(), 3)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((s.first_id, s.last_id), (1, 2));
        ship_planned(&store, &target, &s).await.unwrap();
        // The bookkeeping never happened: as if the shipper died after the PUT.
        db.execute(
            "UPDATE audit_shipments SET shipped_at = NULL",
            "UPDATE audit_shipments SET shipped_at = NULL",
        )
        .await;
        history(&store, 5).await;
        let out = ship_once(&store, &target, 3).await.unwrap();
        // 1..=2 again (not 1..=3), then 3..=5 and 6..=7.
        assert_eq!((out.batches, out.rows), (3, 7));
        let prefix = target.prefix().to_string();
        let want: Vec<String> = [(1, 2), (3, 5), (6, 7)]
            .iter()
            .map(|&(a, b)| object_key(&prefix, a, b))
            .collect();
        assert_eq!(target.list().await.unwrap(), want);
        let first_key_puts = server
            .puts()
            .iter()
            .filter(|r| r.path.ends_with(&want[0]))
            .count();
        assert_eq!(first_key_puts, 2, "the retry overwrote the same key");

        // Two shippers on two handles of the same database, at once.
        let other = db.open_again().await;
        history(&store, 10).await;
        let (a, b) = tokio::join!(ship_once(&store, &target, 4), ship_once(&other, &target, 4));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.caught_up && b.caught_up);
        let r = verify_shipped(&store, &target).await.unwrap();
        assert_eq!((r.rows, r.first_broken.clone()), (17, None), "{r:?}");
        assert!(r.unrecorded.is_empty(), "duplicates: {:?}", r.unrecorded);
        let keys = target.list().await.unwrap();
        let mut covered = Vec::new();
        for k in &keys {
            let rows = decode_object(&target.get(k).await.unwrap().unwrap()).unwrap();
            covered.extend(rows.iter().map(|r| r.id));
        }
        assert_eq!(
            covered,
            (1..=17).collect::<Vec<i64>>(),
            "each row once: {keys:?}"
        );
        crate::common::close(&other).await;
    })
    .await;
}

/// With the bucket unreachable the shipper keeps every row and retries;
/// once the server is up it ships the backlog; a later outage again loses
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_unreachable_bucket_keeps_rows_and_ships_later() {
    for_each_store(|store, _| async move {
        let tmp = tempfile::tempdir().unwrap();
        let addr = free_port();
        let cfg = ShipConfig {
            target: TargetConfig::S3(config_for(addr, BUCKET, "")),
            batch_rows: 4,
            interval: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let shipper = tokio::spawn(engine::audit_ship::run(store.clone(), cfg.clone(), stopped));
        history(&store, 10).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let status = store.audit_ship_status().await.unwrap();
        assert_eq!((status.unshipped_rows, status.shipped_through), (10, 0));
        assert_eq!(all_rows(&store).await.len(), 10, "rows are kept");

        let server = S3Server::start_on(addr, &tmp.path().join("s3"), BUCKET).await;
        wait_shipped(&store, 10).await;
        drop(server);
        history(&store, 3).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(store.audit_ship_status().await.unwrap().unshipped_rows, 3);
        let _server = S3Server::start_on(addr, &tmp.path().join("s3"), BUCKET).await;
        wait_shipped(&store, 13).await;
        stop.send(true).unwrap();
        shipper.await.unwrap();

        let target = ShipTarget::open(&cfg.target).await.unwrap();
        let r = verify_shipped(&store, &target).await.unwrap();
        assert_eq!((r.rows, r.first_broken.clone()), (13, None), "{r:?}");
    })
    .await;
}

/// Waits (up to 15 s) until every row through `through` is shipped.
async fn wait_shipped(store: &Store, through: i64) {
    for _ in 0..150 {
        let s = store.audit_ship_status().await.unwrap();
        if s.shipped_through == through && s.unshipped_rows == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "not shipped in time: {:?}",
        store.audit_ship_status().await.unwrap()
    );
}

async fn tampering_is_named(kind: Kind, store: Store, db: TestDb) {
    let tmp = tempfile::tempdir().unwrap();
    let (target, server) = target(kind, tmp.path()).await;
    history(&store, 6).await;
    ship_once(&store, &target, 3).await.unwrap();
    let second = object_key(target.prefix(), 4, 6);
    let original = target.get(&second).await.unwrap().unwrap();

    // One changed field of row 5 inside the second object.
    let mut rows = decode_object(&original).unwrap();
    rows[1].actor = "mallory".into();
    target
        .put(&second, encode_batch(&rows).unwrap())
        .await
        .unwrap();
    let b = verify_shipped(&store, &target).await.unwrap().first_broken;
    let b = b.expect("tampering detected");
    assert_eq!((b.key.as_str(), b.id), (second.as_str(), Some(5)), "{b:?}");
    assert!(b.reason.contains("changed"), "{b:?}");

    // Same rows, other bytes (recompressed): the object, not a row.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &decompress(&original)).unwrap();
    target.put(&second, gz.finish().unwrap()).await.unwrap();
    let b = verify_shipped(&store, &target).await.unwrap().first_broken;
    let b = b.expect("changed bytes detected");
    assert_eq!((b.key.as_str(), b.id), (second.as_str(), None), "{b:?}");
    assert!(b.reason.contains("sha256"), "{b:?}");

    // A row changed in the store after shipping: the copy disagrees.
    target.put(&second, original).await.unwrap();
    assert_eq!(
        verify_shipped(&store, &target).await.unwrap().first_broken,
        None
    );
    db.execute(
        "UPDATE audit SET target = 'thing:x' WHERE id = 2",
        "UPDATE audit SET target = 'thing:x' WHERE id = 2",
    )
    .await;
    let b = verify_shipped(&store, &target).await.unwrap().first_broken;
    let b = b.expect("store change detected");
    assert_eq!(b.id, Some(2), "{b:?}");
    assert!(b.reason.contains("differs from the store"), "{b:?}");

    // A missing object is named.
    let first = object_key(target.prefix(), 1, 3);
    match &server {
        Some(s) => std::fs::remove_file(s.object_path(BUCKET, &first)).unwrap(),
        None => std::fs::remove_file(tmp.path().join("shipped").join(&first)).unwrap(),
    }
    let b = verify_shipped(&store, &target).await.unwrap().first_broken;
    let b = b.expect("missing object detected");
    assert_eq!((b.key.as_str(), b.id), (first.as_str(), Some(1)), "{b:?}");
    assert!(b.reason.contains("missing"), "{b:?}");
}

fn decompress(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut out).unwrap();
    out
}

/// A changed row in a shipped object, changed bytes, a store row that no
/// longer matches its copy, and a missing object are each named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_verify_names_tampered_object_row() {
    for_each_store(|store, db| tampering_is_named(Kind::Dir, store, db)).await;
    for_each_store(|store, db| tampering_is_named(Kind::S3, store, db)).await;
}

/// With Object Lock configured every PUT carries the retention mode and
/// retain-until date; without it, neither header. (And the server really
/// checks SigV4 signatures.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_object_lock_headers_sent_when_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(None, tmp.path()).await.unwrap();
    let server = S3Server::start(&tmp.path().join("s3"), BUCKET).await;
    history(&store, 2).await;
    // The server checks signatures: a wrong secret ships nothing.
    let mut wrong = server.config(BUCKET, "plain");
    wrong.secret_access_key = Some("not-the-secret".into());
    let wrong = ShipTarget::open(&TargetConfig::S3(wrong)).await.unwrap();
    let err = ship_once(&store, &wrong, 1).await.unwrap_err();
    assert!(err.to_string().contains("SignatureDoesNotMatch"), "{err}");
    assert_eq!(store.audit_ship_status().await.unwrap().unshipped_rows, 2);
    let plain = ShipTarget::open(&TargetConfig::S3(server.config(BUCKET, "plain")))
        .await
        .unwrap();
    ship_once(&store, &plain, 1).await.unwrap();
    for put in server.puts() {
        assert!(
            !put.headers.contains_key("x-amz-object-lock-mode"),
            "{put:?}"
        );
    }
    let mut cfg = server.config(BUCKET, "locked");
    cfg.object_lock = Some(ObjectLock {
        mode: LockMode::Compliance,
        days: 30,
    });
    let locked = ShipTarget::open(&TargetConfig::S3(cfg)).await.unwrap();
    history(&store, 1).await;
    ship_once(&store, &locked, 10).await.unwrap();
    let puts = server.puts();
    let put = puts.last().unwrap();
    assert!(put.path.contains("/locked/audit/"), "{put:?}");
    assert_eq!(put.headers["x-amz-object-lock-mode"], "COMPLIANCE");
    let until = put.headers["x-amz-object-lock-retain-until-date"]
        .to_str()
        .unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(until).unwrap();
    let days = (until.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!((29.9..=30.1).contains(&days), "retain until {until}");
    store_close(store).await;
}

async fn store_close(store: Store) {
    crate::common::close(&store).await;
}
