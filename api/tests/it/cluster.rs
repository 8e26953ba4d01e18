//! Issue 7's multi-process cluster on one machine: a fresh PostgreSQL
//! database, a real S3-compatible server (s3s-fs on a loopback port, reached
//! over HTTP by every process), one `kmt-indexer` publishing snapshots to
//! it with a second one standing by on the advisory lock, and `kmt serve`
//! replicas as separate processes.
//!
//! (a) writes through replica A become searchable on replica B within 1 s;
//! (b) a replica started later boots from the S3 snapshot and answers like
//! A; (c) the leading indexer killed with SIGKILL in the middle of a batch
//! of writes is replaced by the standby, and afterwards the store, every
//! replica's index, the standby's index and its newest snapshot agree
//! article for article (ids and versions).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::audit_ship::{ShipTarget, TargetConfig};
use engine::auth::{new_token, Principal};
use engine::model::{ArticleDraft, ArticleId, Status};
use engine::search::SearchIndex;
use engine::store::Store;
use engine::testutil::PgTestDb;
use serde_json::{json, Value};

use crate::replica::{get_json, indexer_bin, lines_of, metric, wait_line, Running};
use crate::s3server::{S3Server, ACCESS_KEY, SECRET_KEY};

const BUCKET: &str = "kmt-snapshots";

/// What every spawned process shares: the database and the snapshot store.
struct Cluster {
    db_url: String,
    root: PathBuf,
    s3: S3Server,
}

impl Cluster {
    /// Settings of the S3 snapshot store (audit shipping's endpoint and
    /// credentials), plus quiet, plain logs.
    fn common_env(&self, c: &mut Command) {
        c.env("DATABASE_URL", &self.db_url)
            .env("KMT_EMBEDDER", "off")
            .env("KMT_SNAPSHOT_S3_BUCKET", BUCKET)
            .env("KMT_AUDIT_S3_ENDPOINT", format!("http://{}", self.s3.addr))
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("KMT_AUDIT_SHIP_INTERVAL_SECS", "0")
            .env("RUST_LOG", "info,tantivy=warn,tower_http=warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
    }

    async fn target(&self) -> ShipTarget {
        let cfg = crate::s3server::config_for(self.s3.addr, BUCKET, "");
        ShipTarget::open(&TargetConfig::S3(cfg)).await.unwrap()
    }

    /// `kmt-indexer` over `<root>/<name>`, publishing a snapshot every
    /// second when its index moved; small batches, so a kill lands between
    /// commits of one burst of writes.
    fn indexer(&self, name: &str) -> Proc {
        let mut c = Command::new(indexer_bin());
        c.arg("--data").arg(self.root.join(name));
        self.common_env(&mut c);
        c.env("KMT_SNAPSHOT_INTERVAL_SECS", "1")
            .env("KMT_SNAPSHOT_KEEP", "3")
            .env("KMT_INDEXER_BATCH", "5");
        Proc::spawn(c, self.root.join(name))
    }

    /// `kmt serve` over `<root>/<name>` on a free port, rate limiting off
    /// (the test polls one replica hard from one address).
    fn replica(&self, name: &str) -> Proc {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = Command::new(env!("CARGO_BIN_EXE_kmt"));
        c.arg("--data")
            .arg(self.root.join(name))
            .args(["serve", "--port", &port.to_string()]);
        self.common_env(&mut c);
        c.env("KMT_RATE_LIMIT_PER_SEC", "0");
        let mut p = Proc::spawn(c, self.root.join(name));
        p.base = format!("http://127.0.0.1:{port}");
        p
    }
}

/// A spawned process with its log lines and data directory.
struct Proc {
    run: Running,
    log: Receiver<String>,
    data: PathBuf,
    base: String,
}

impl Proc {
    fn spawn(mut c: Command, data: PathBuf) -> Proc {
        let mut child = c.spawn().expect("starting a cluster process");
        let log = lines_of(&mut child);
        Proc {
            run: Running(child),
            log,
            data,
            base: String::new(),
        }
    }

    fn wait_line(&self, needle: &str, secs: u64) -> String {
        wait_line(&self.log, needle, Duration::from_secs(secs))
            .unwrap_or_else(|| panic!("{} never logged {needle:?}", self.data.display()))
    }

    /// SIGTERM, then waits for a clean exit.
    fn terminate(&mut self) {
        let pid = self.run.0.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.run.0.try_wait().unwrap() {
                assert!(status.success(), "{} exited {status}", self.data.display());
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "{} did not stop on SIGTERM",
                self.data.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn index(&self) -> SearchIndex {
        SearchIndex::open(&self.data.join("index")).unwrap()
    }

    /// Waits until `/readyz` answers 200 with the index at `seq` or past it.
    async fn ready_at(&self, seq: i64) -> Value {
        let t0 = Instant::now();
        loop {
            let (code, v) = get_json(&format!("{}/readyz", self.base)).await;
            if code == 200 && v["checkpoint"].as_i64().unwrap_or(0) >= seq {
                return v;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{} not ready at {seq}: {code} {v}",
                self.data.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A made-up word per number (consonants only, so no stemmer rule and no
/// other article's word is near it by accident).
fn word(i: usize) -> String {
    const L: &[u8] = b"bcdfghjkmnpqrtvwxz";
    let n = L.len();
    let s: String = [i / (n * n), (i / n) % n, i % n]
        .iter()
        .map(|&d| L[d % n] as char)
        .collect();
    format!("vq{s}")
}

fn seed(n: usize) -> Vec<ArticleDraft> {
    (0..n)
        .map(|i| ArticleDraft {
            slug: format!("walrus-{i}"),
            title: format!("The walrus procedure number {i}"),
            summary: format!("- walrus step {i}"),
            body: format!("How to handle a walrus case, variant {i}. ") + &"Text. ".repeat(30),
            category: "operations".into(),
            tags: vec!["walrus".into()],
            audience: vec!["public".into()],
            status: Status::Published,
            review_due: None,
        })
        .collect()
}

/// Every (id, version) in the store, by id.
async fn store_documents(store: &Store) -> Vec<(ArticleId, i32)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store.scan_articles(after, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        out.extend(page.iter().map(|a| (a.id, a.version)));
    }
    out
}

/// Authenticated HTTP calls of the test's admin.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    token: String,
}

impl Api {
    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let r = req.bearer_auth(&self.token).send().await.unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    async fn create(&self, base: &str, w: &str) -> (ArticleId, i32) {
        let body = json!({
            "title": format!("Cluster note {w}"),
            "summary": format!("- remember {w}"),
            "body": format!("An operational note about {w} for the cluster test."),
            "category": "operations",
            "tags": ["cluster"],
            "audience": ["public"],
            "status": "published",
        });
        let (code, v) = self
            .send(self.http.post(format!("{base}/v1/articles")).json(&body))
            .await;
        assert_eq!(code, 201, "{v}");
        (
            v["id"].as_i64().unwrap(),
            v["version"].as_i64().unwrap() as i32,
        )
    }

    async fn search(&self, base: &str, query: &str) -> Value {
        let (code, v) = self
            .send(self.http.get(format!("{base}/v1/search?{query}")))
            .await;
        assert_eq!(code, 200, "{query}: {v}");
        v
    }
}

fn ids(v: &Value) -> Vec<i64> {
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_i64().unwrap())
        .collect()
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Waits until the newest complete snapshot in the store covers `seq`.
async fn snapshot_at(target: &ShipTarget, seq: i64, secs: u64) -> i64 {
    let t0 = Instant::now();
    loop {
        if let Some(s) = engine::snapshot::list(target).await.unwrap().first() {
            if s.seq >= seq {
                return s.seq;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "no snapshot covering {seq}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Issue 7, the multi-process acceptance test (see the module docs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_cluster_replicas_snapshots_and_standby_indexer() {
    let db = PgTestDb::create("cluster").await;
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&tmp.path().join("s3"), BUCKET).await;
    let cluster = Cluster {
        db_url: db.url.clone(),
        root: tmp.path().to_path_buf(),
        s3,
    };
    let target = cluster.target().await;
    let store = Store::open(Some(&db.url), &tmp.path().join("test"))
        .await
        .unwrap();
    let system = Principal::system();
    store
        .create_user(&system, "admin", "admin", &["admin".to_string()])
        .await
        .unwrap();
    let (token, hash) = new_token();
    store
        .create_token(&system, "admin", "test", &hash)
        .await
        .unwrap();
    let api = Api {
        http: reqwest::Client::new(),
        token,
    };
    store.upsert_batch(&system, seed(40)).await.unwrap();

    // One indexer leads, a second stands by on the advisory lock.
    let mut lead = cluster.indexer("indexer-1");
    lead.wait_line("leading", 30);
    let standby = cluster.indexer("indexer-2");
    standby.wait_line("standing by", 30);
    let a = cluster.replica("a");
    let b = cluster.replica("b");
    let head = store.outbox_head().await.unwrap();
    a.ready_at(head).await;
    b.ready_at(head).await;

    // (a) Each write through A, searchable on B: the time from A's answer
    // to the first search on B that finds it.
    let mut waits = Vec::new();
    let mut written = Vec::new();
    for i in 0..200 {
        let w = word(i);
        let (id, _) = api.create(&a.base, &w).await;
        let t0 = Instant::now();
        loop {
            let v = api.search(&b.base, &format!("q={w}&limit=5")).await;
            if ids(&v).contains(&id) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(1),
                "write {i} ({w}, article {id}) not searchable on B within 1 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        waits.push(t0.elapsed());
        written.push(id);
    }
    waits.sort();
    println!(
        "issue 7: write on A searchable on B, over {} writes: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        waits.len(),
        quantile(&waits, 0.5).as_secs_f64() * 1e3,
        quantile(&waits, 0.95).as_secs_f64() * 1e3,
        waits.last().unwrap().as_secs_f64() * 1e3,
    );

    // (b) A replica started now boots from the newest S3 snapshot, not by
    // replaying the outbox, and then answers like A.
    let head = store.outbox_head().await.unwrap();
    let snap = snapshot_at(&target, head, 30).await;
    for i in 200..205 {
        api.create(&a.base, &word(i)).await; // after the snapshot: caught up
    }
    let head = store.outbox_head().await.unwrap();
    let c = cluster.replica("c");
    let line = c.wait_line("restored the index from a snapshot", 30);
    assert!(line.contains(&format!("seq={snap}")), "{line}");
    let ready = c.ready_at(head).await;
    assert_eq!(ready["restored_from_seq"], snap, "{ready}");
    a.ready_at(head).await;
    let text = reqwest::get(format!("{}/metrics", c.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(&text, "kmt_snapshot_restored_seq"),
        Some(snap as f64)
    );
    assert_eq!(metric(&text, "kmt_indexer_rebuilds_total"), Some(0.0));
    let queries = [
        "q=".to_string(),
        "q=walrus".into(),
        "q=cluster+note".into(),
        "q=operational".into(),
        format!("q={}", word(3)),
        format!("q={}", word(203)),
        format!("q={}+{}", word(17), word(150)),
        "q=walrus+procedure&match=any".into(),
        "q=vqbc".into(), // a prefix of many words
    ];
    for q in &queries {
        // Sorted by title, the pages must be identical; by relevance, the
        // same articles (BM25 statistics count deleted documents until a
        // merge, and equal scores tie-break by document address, so the
        // order may differ between replicas): compared when one page holds
        // every hit.
        let by_title = format!("{q}&sort=title&limit=100");
        let (va, vc) = (
            api.search(&a.base, &by_title).await,
            api.search(&c.base, &by_title).await,
        );
        assert_eq!(va["total"], vc["total"], "{q}");
        assert_eq!(ids(&va), ids(&vc), "{q}");
        let by_rank = format!("{q}&limit=100");
        let (ra, rc) = (
            api.search(&a.base, &by_rank).await,
            api.search(&c.base, &by_rank).await,
        );
        assert_eq!(ra["total"], rc["total"], "{q}");
        if ra["total"].as_u64().unwrap() <= 100 {
            let (mut ra, mut rc) = (ids(&ra), ids(&rc));
            ra.sort();
            rc.sort();
            assert_eq!(ra, rc, "{q}");
        }
    }

    // (c) A burst of creates, updates and deletes through A, B and C; the
    // leading indexer is killed with SIGKILL part-way through it.
    let done = Arc::new(AtomicUsize::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for (n, base) in [&a.base, &b.base, &c.base].into_iter().enumerate() {
        let (api, base, done) = (api.clone(), base.clone(), done.clone());
        let mine: Vec<ArticleId> = written.iter().copied().skip(n).step_by(3).collect();
        writers.spawn(async move {
            for (k, id) in mine.into_iter().take(40).enumerate() {
                match k % 4 {
                    0 => {
                        api.create(&base, &word(300 + n * 100 + k)).await;
                    }
                    3 => {
                        let (code, v) = api
                            .send(api.http.delete(format!("{base}/v1/articles/{id}")))
                            .await;
                        assert_eq!(code, 204, "{v}");
                    }
                    _ => {
                        let patch = json!({"title": format!("Cluster note {k} revised on {n}")});
                        let (code, v) = api
                            .send(
                                api.http
                                    .put(format!("{base}/v1/articles/{id}"))
                                    .json(&patch),
                            )
                            .await;
                        assert_eq!(code, 200, "{v}");
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while done.load(Ordering::Relaxed) < 40 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    lead.run.0.kill().unwrap(); // SIGKILL
    lead.run.0.wait().unwrap();
    let killed_at = store.outbox_head().await.unwrap();
    standby.wait_line("leading", 30);
    while let Some(r) = writers.join_next().await {
        r.unwrap();
    }
    let head = store.outbox_head().await.unwrap();
    assert!(
        head > killed_at,
        "writes went on after the kill ({killed_at} → {head})"
    );
    assert!(
        lead.index().checkpoint().unwrap() < head,
        "the killed indexer did not miss anything; the test proved nothing"
    );
    // The standby took over: it restored the newest snapshot, caught up and
    // publishes the head.
    standby.wait_line("restored the index from a snapshot", 30);
    snapshot_at(&target, head, 30).await;
    for p in [&a, &b, &c] {
        p.ready_at(head).await;
    }

    let want = store_documents(&store).await;
    assert_eq!(
        want.len(),
        40 + 200 + 5 + 30 - 30,
        "40 seeded, 205 written, 30 created and 30 deleted in the burst"
    );
    let restored = tmp.path().join("restored");
    engine::snapshot::restore_latest(&target, &restored)
        .await
        .unwrap()
        .expect("a snapshot to restore");
    let snapshot_docs = SearchIndex::open(&restored).unwrap().documents().unwrap();
    assert_eq!(
        snapshot_docs, want,
        "the newest snapshot and the store disagree"
    );
    for mut p in [a, b, c, standby] {
        p.terminate();
        let name = p.data.display().to_string();
        let index = p.index();
        assert_eq!(index.checkpoint().unwrap(), head, "{name}");
        assert_eq!(
            index.documents().unwrap(),
            want,
            "{name} and the store disagree"
        );
    }

    if let Store::Postgres(s) = store {
        s.close().await;
    }
    drop(lead);
    db.drop_db().await;
}

/// Issue 7: on SIGTERM with a drain period, `kmt serve` reports
/// `draining` (503) on `/readyz` while it still answers searches, then
/// stops accepting and exits cleanly — so a load balancer polling
/// `/readyz` takes it out of rotation before any connection is refused
/// (what makes a rolling restart lose no query; see `kmt-bench swap`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_shutdown_drains_behind_readyz() {
    let tmp = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = Command::new(env!("CARGO_BIN_EXE_kmt"));
    c.arg("--data")
        .arg(tmp.path())
        .args(["serve", "--port", &port.to_string()])
        .env_remove("DATABASE_URL")
        .env("KMT_EMBEDDER", "off")
        .env("KMT_SHUTDOWN_DRAIN_SECS", "3")
        .env("KMT_RATE_LIMIT_PER_SEC", "0")
        .env("RUST_LOG", "info,tantivy=warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn(c, tmp.path().to_path_buf());
    p.base = format!("http://127.0.0.1:{port}");
    p.ready_at(0).await;
    let pid = p.run.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    p.wait_line("draining", 10);
    let (code, v) = get_json(&format!("{}/readyz", p.base)).await;
    assert_eq!((code, v["status"].as_str()), (503, Some("draining")), "{v}");
    let (code, v) = get_json(&format!("{}/v1/search?q=anything", p.base)).await;
    assert_eq!(code, 200, "searches are still answered while draining: {v}");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = p.run.0.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "never stopped");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    assert_eq!(get_json(&format!("{}/readyz", p.base)).await.0, 0);
}
