//! The indexer's integration tests: the real `kmt-indexer` binary killed
//! with SIGKILL at random points must converge to the store's state.

mod audit_ship;
mod embedding;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use engine::auth::Principal;
use engine::model::{ArticleDraft, ArticlePatch, Status};
use engine::search::SearchIndex;
use engine::store::Store;
use engine::testutil::PgTestDb;
use rand::Rng;

fn draft(i: usize) -> ArticleDraft {
    ArticleDraft {
        slug: format!("article-{i}"),
        title: format!("Article number {i} about levies and refunds"),
        summary: format!("- point {i}"),
        body: format!("Body {i}. ") + &"Procedure text for the knowledge base. ".repeat(40),
        category: ["audits", "collections", "refunds"][i % 3].into(),
        tags: vec![format!("t{}", i % 7)],
        audience: vec![],
        status: Status::Published,
        review_due: None,
    }
}

fn spawn_indexer(db: Option<&str>, data: &std::path::Path, once: bool) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kmt-indexer"));
    c.arg("--data").arg(data).arg("--batch").arg("20");
    if once {
        c.arg("--once");
    }
    match db {
        Some(url) => c.env("DATABASE_URL", url),
        None => c.env_remove("DATABASE_URL"),
    };
    // These tests are about the full-text index; embedding 3,000 articles
    // with the model would only slow them down (tests/it/embedding.rs
    // covers the embedding worker).
    c.env("KMT_EMBEDDER", "off");
    c.env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    c.spawn().expect("starting kmt-indexer")
}

/// Applies a few random writes while the indexer runs.
async fn churn(store: &Store, n: usize, rng: &mut impl Rng) {
    let actor = Principal::system();
    for _ in 0..n {
        let id = rng.random_range(1..=3000i64);
        match rng.random_range(0..10) {
            0 => {
                let _ = store.delete_article(&actor, id).await;
            }
            _ => {
                if let Some(a) = store.get_article(id).await.unwrap() {
                    let d = ArticleDraft::from_article(&a)
                        .apply(ArticlePatch {
                            title: Some(format!("{} (edited)", a.title)),
                            ..Default::default()
                        })
                        .unwrap();
                    store.update_article(&actor, id, d, None).await.unwrap();
                }
            }
        }
    }
}

async fn killed_indexer_converges(store: Store, db: Option<&str>, data: &std::path::Path) {
    let actor = Principal::system();
    for chunk in (0..3000).collect::<Vec<_>>().chunks(500) {
        store
            .upsert_batch(&actor, chunk.iter().map(|&i| draft(i)).collect())
            .await
            .unwrap();
    }
    let mut rng = rand::rng();
    let mut interrupted = 0;
    for round in 0..5 {
        if round == 2 {
            // A rebuild request: a kill may land in the middle of a rebuild too.
            store.request_reindex(&actor).await.unwrap();
        }
        let mut child = spawn_indexer(db, data, false);
        let wait = Duration::from_millis(rng.random_range(300..1200));
        churn(&store, 30, &mut rng).await;
        tokio::time::sleep(wait).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let index = SearchIndex::open(&data.join("index")).unwrap();
        if index.checkpoint().unwrap() < store.outbox_head().await.unwrap() {
            interrupted += 1;
        }
    }
    assert!(
        interrupted > 0,
        "no kill landed mid-way; the test proved nothing"
    );
    let status = spawn_indexer(db, data, true).wait().unwrap();
    assert!(status.success());
    let index = SearchIndex::open(&data.join("index")).unwrap();
    assert_eq!(
        index.checkpoint().unwrap(),
        store.outbox_head().await.unwrap()
    );
    let mut want = Vec::new();
    let mut after = 0;
    loop {
        let page = store.scan_articles(after, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        want.extend(page.iter().map(|a| (a.id, a.version)));
    }
    let got = index.documents().unwrap();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want, "index and store disagree");
}

/// Issue 2: kill -9 the indexer mid-batch, restart: index and store agree
/// article for article.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_2_killed_indexer_converges_postgres() {
    let db = PgTestDb::create("indexer").await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(Some(&db.url), dir.path()).await.unwrap();
    killed_indexer_converges(store.clone(), Some(&db.url), dir.path()).await;
    if let Store::Postgres(s) = store {
        s.close().await;
    }
    db.drop_db().await;
}

/// The same on the embedded store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_2_killed_indexer_converges_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(None, dir.path()).await.unwrap();
    killed_indexer_converges(store, None, dir.path()).await;
}

/// The scheduler runs the review-date job with the clock it is given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_runs_the_review_date_job_on_its_clock() {
    struct Later;
    impl engine::jobs::Clock for Later {
        fn now(&self) -> chrono::DateTime<chrono::Utc> {
            chrono::Utc::now() + chrono::Duration::days(400)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(None, dir.path()).await.unwrap();
    let mut d = draft(1);
    d.review_due = Some(chrono::Utc::now() + chrono::Duration::days(365));
    let a = store.create_article(&Principal::system(), d).await.unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let job = tokio::spawn(indexer::jobs::run(
        store.clone(),
        std::sync::Arc::new(Later),
        Duration::from_millis(20),
        None,
        rx,
    ));
    let t0 = std::time::Instant::now();
    loop {
        let now = store.get_article(a.id).await.unwrap().unwrap();
        if now.status == Status::NeedsUpdate {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "job never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tx.send(true).unwrap();
    job.await.unwrap();
}

/// Starts `kmt-indexer` with info logs and returns it with a channel of its
/// log lines.
fn spawn_logged(db: &str, data: &std::path::Path) -> (Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kmt-indexer"))
        .arg("--data")
        .arg(data)
        .env("DATABASE_URL", db)
        .env("KMT_EMBEDDER", "off")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting kmt-indexer");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn wait_for_line(rx: &std::sync::mpsc::Receiver<String>, needle: &str, within: Duration) -> bool {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < within {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(l) if l.contains(needle) => return true,
            _ => {}
        }
    }
    false
}

/// One indexer leads; a second stands by and takes over when the first is
/// killed, and then indexes what was written meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_indexer_takes_over_when_the_leader_dies() {
    let db = PgTestDb::create("leader").await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = Store::open(Some(&db.url), dir_a.path()).await.unwrap();
    let (mut a, a_log) = spawn_logged(&db.url, dir_a.path());
    assert!(
        wait_for_line(&a_log, "leading", Duration::from_secs(20)),
        "first indexer never led"
    );
    let (mut b, b_log) = spawn_logged(&db.url, dir_b.path());
    assert!(
        wait_for_line(&b_log, "standing by", Duration::from_secs(20)),
        "second indexer did not stand by"
    );
    store
        .upsert_batch(&Principal::system(), (0..50).map(draft).collect())
        .await
        .unwrap();
    a.kill().unwrap();
    a.wait().unwrap();
    assert!(
        wait_for_line(&b_log, "leading", Duration::from_secs(20)),
        "standby never took over"
    );
    let head = store.outbox_head().await.unwrap();
    let t0 = std::time::Instant::now();
    loop {
        // The standby's own index fills up from the store.
        if let Ok(ix) = SearchIndex::open(&dir_b.path().join("index")) {
            if ix.checkpoint().unwrap_or(0) == head && ix.num_docs() == 50 {
                break;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "standby did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.kill().unwrap();
    b.wait().unwrap();
    if let Store::Postgres(s) = store {
        s.close().await;
    }
    db.drop_db().await;
}
