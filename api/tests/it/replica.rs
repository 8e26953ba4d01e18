//! Snapshots and replicas (issue 7), across real processes: `kmt-indexer`
//! publishes snapshots to a directory while it leads; killed with SIGKILL,
//! a standby takes over, boots from the snapshot and keeps publishing; a
//! new `kmt serve` replica with an empty index boots from the newest
//! snapshot, replays only the outbox rows after it, and answers `/readyz`
//! once caught up.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use engine::audit_ship::{ShipTarget, TargetConfig};
use engine::auth::Principal;
use engine::model::{ArticleDraft, Status};
use engine::store::Store;
use engine::testutil::PgTestDb;
use serde_json::Value;

/// Kills the process when dropped (a failed assertion leaves none behind).
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `kmt-indexer`, built beside `kmt`. `cargo test -p kmt-api` builds only
/// this crate's binaries, so build it when it is missing or predates
/// snapshots (a target directory shared by several checkouts may hold
/// another one's build).
pub(crate) fn indexer_bin() -> PathBuf {
    let kmt = Path::new(env!("CARGO_BIN_EXE_kmt"));
    let bin = kmt.with_file_name("kmt-indexer");
    let current = Command::new(&bin)
        .arg("--help")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--snapshot-dir"));
    if !current {
        let profile_dir = kmt.parent().unwrap();
        let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        c.args(["build", "-p", "kmt-indexer", "--bin", "kmt-indexer"])
            .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap());
        if profile_dir.ends_with("release") {
            c.arg("--release");
        }
        assert!(c.status().unwrap().success(), "building kmt-indexer");
    }
    bin
}

/// Pipes the child's stdout and stderr into one channel of lines.
pub(crate) fn lines_of(child: &mut Child) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx2.send(l);
        }
    });
    rx
}

pub(crate) fn wait_line(rx: &Receiver<String>, needle: &str, within: Duration) -> Option<String> {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            if l.contains(needle) {
                return Some(l);
            }
        }
    }
    None
}

fn spawn_indexer(db: &str, data: &Path, snapshots: &Path) -> (Running, Receiver<String>) {
    let mut child = Command::new(indexer_bin())
        .arg("--data")
        .arg(data)
        .env("DATABASE_URL", db)
        .env("KMT_EMBEDDER", "off")
        .env("KMT_SNAPSHOT_DIR", snapshots)
        .env("KMT_SNAPSHOT_INTERVAL_SECS", "1")
        .env("KMT_SNAPSHOT_KEEP", "2")
        .env("KMT_AUDIT_SHIP_INTERVAL_SECS", "0")
        .env("RUST_LOG", "info,tantivy=warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting kmt-indexer");
    let rx = lines_of(&mut child);
    (Running(child), rx)
}

fn drafts(word: &str, n: usize) -> Vec<ArticleDraft> {
    (0..n)
        .map(|i| ArticleDraft {
            slug: format!("{word}-{i}"),
            title: format!("The {word} procedure number {i}"),
            summary: format!("- {word} step {i}"),
            body: format!("How to handle a {word} case, variant {i}. ") + &"Text. ".repeat(30),
            category: "operations".into(),
            tags: vec![word.into()],
            audience: vec!["public".into()],
            status: Status::Published,
            review_due: None,
        })
        .collect()
}

/// Waits until the snapshot store's newest complete snapshot covers `seq`.
async fn wait_snapshot(
    target: &ShipTarget,
    seq: i64,
    within: Duration,
    log: &Receiver<String>,
) -> i64 {
    let t0 = Instant::now();
    loop {
        if let Some(s) = engine::snapshot::list(target).await.unwrap().first() {
            if s.seq >= seq {
                return s.seq;
            }
        }
        if t0.elapsed() > within {
            let lines: Vec<String> = log.try_iter().collect();
            panic!(
                "no snapshot covering {seq} appeared; indexer log:\n{}",
                lines.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn get_json(url: &str) -> (u16, Value) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
        Err(_) => (0, Value::Null),
    }
}

pub(crate) fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Issue 7: the whole replica path across real processes on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_replica_boots_from_snapshot_and_catches_up() {
    let db = PgTestDb::create("replica").await;
    let tmp = tempfile::tempdir().unwrap();
    let snaps = tmp.path().join("snapshots");
    let target = ShipTarget::open(&TargetConfig::Dir(snaps.clone()))
        .await
        .unwrap();
    let store = Store::open(Some(&db.url), tmp.path()).await.unwrap();
    let actor = Principal::system();
    store
        .upsert_batch(&actor, drafts("walrus", 40))
        .await
        .unwrap();

    // The leader publishes a snapshot of what it indexed.
    let (mut a, a_log) = spawn_indexer(&db.url, &tmp.path().join("a"), &snaps);
    assert!(wait_line(&a_log, "leading", Duration::from_secs(30)).is_some());
    let head = store.outbox_head().await.unwrap();
    wait_snapshot(&target, head, Duration::from_secs(30), &a_log).await;
    let (_b, b_log) = spawn_indexer(&db.url, &tmp.path().join("b"), &snaps);
    assert!(
        wait_line(&b_log, "standing by", Duration::from_secs(30)).is_some(),
        "second indexer did not stand by"
    );

    // Writes, and the leader killed with SIGKILL in the middle of following
    // them: the standby takes over, boots from the snapshot and publishes.
    store
        .upsert_batch(&actor, drafts("narwhal", 30))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.0.kill().unwrap();
    a.0.wait().unwrap();
    assert!(
        wait_line(&b_log, "leading", Duration::from_secs(30)).is_some(),
        "standby never took over"
    );
    let head = store.outbox_head().await.unwrap();
    let published = wait_snapshot(&target, head, Duration::from_secs(30), &b_log).await;
    assert_eq!(published, head, "the standby publishes the new head");
    assert!(
        engine::snapshot::list(&target).await.unwrap().len() <= 2,
        "only the newest 2 are kept"
    );

    // More writes after the newest snapshot, then a new replica.
    store
        .upsert_batch(&actor, drafts("dolphin", 20))
        .await
        .unwrap();
    let final_head = store.outbox_head().await.unwrap();
    assert!(final_head > published);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut replica = Command::new(env!("CARGO_BIN_EXE_kmt"))
        .arg("--data")
        .arg(tmp.path().join("replica"))
        .args(["serve", "--port", &port.to_string()])
        .env("DATABASE_URL", &db.url)
        .env("KMT_EMBEDDER", "off")
        .env("KMT_SNAPSHOT_DIR", &snaps)
        // One row per batch: the batch count is the number of rows replayed.
        .env("KMT_INDEXER_BATCH", "1")
        .env("RUST_LOG", "info,tantivy=warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r_log = lines_of(&mut replica);
    let _replica = Running(replica);
    let base = format!("http://127.0.0.1:{port}");
    let line = wait_line(
        &r_log,
        "restored the index from a snapshot",
        Duration::from_secs(30),
    )
    .expect("the replica restores from the snapshot");
    assert!(line.contains(&format!("seq={published}")), "{line}");
    let t0 = Instant::now();
    let ready = loop {
        let (code, v) = get_json(&format!("{base}/readyz")).await;
        if code == 200 {
            break v;
        }
        if code == 503 {
            // Starting: the restored index is served from its first moment,
            // its checkpoint at or past the snapshot's.
            assert_eq!(v["status"], "starting", "{v}");
            assert!(v["checkpoint"].as_i64().unwrap() >= published, "{v}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "replica never ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(ready["restored_from_seq"], published, "{ready}");
    assert_eq!(ready["checkpoint"], final_head, "ready only when caught up");
    assert_eq!(ready["lag"], 0);
    // It replayed only the rows after the snapshot, not the outbox from zero.
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let batches = metric(&text, "kmt_indexer_batches_total").unwrap();
    assert!(
        batches <= (final_head - published) as f64,
        "replayed {batches} rows, the snapshot covered all but {}",
        final_head - published
    );
    assert_eq!(
        metric(&text, "kmt_snapshot_restored_seq"),
        Some(published as f64)
    );
    let age = metric(&text, "kmt_snapshot_age_seconds").expect("snapshot age");
    assert!((0.0..120.0).contains(&age), "{age}");
    for (word, n) in [("walrus", 40), ("narwhal", 30), ("dolphin", 20)] {
        let (code, v) = get_json(&format!("{base}/v1/search?q={word}&limit=50")).await;
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["total"], n, "{word}: {v}");
    }
    if let Store::Postgres(s) = store {
        s.close().await;
    }
    drop(_replica);
    drop(_b);
    db.drop_db().await;
}
