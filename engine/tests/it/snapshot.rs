//! Index snapshots (issue 7): published to a directory or a real
//! S3-compatible server, the newest N kept, restored into an empty index
//! directory with the same search results, and a damaged snapshot skipped
//! for the one before it.

use std::path::Path;

use engine::audit_ship::{ShipTarget, TargetConfig};
use engine::model::Status;
use engine::search::{SearchIndex, SearchRequest};
use engine::snapshot::{self, Manifest};
use engine::store::Store;
use engine::vector::VectorIndex;

use crate::common::{draft, system};
use crate::s3server::S3Server;

const MODEL: &str = "test-model";

/// Writes `n` published articles to the store and the index, committed at
/// the store's outbox head.
async fn write_round(store: &Store, index: &SearchIndex, round: usize, n: usize) {
    let mut u = index.updater().unwrap();
    for i in 0..n {
        let mut d = draft(&format!("round-{round}-article-{i}"));
        d.status = Status::Published;
        d.title = format!("Levy procedure {round} {i}");
        d.body = format!("Garnishment and refund steps for round {round}, item {i}.");
        let a = store.create_article(&system(), d).await.unwrap();
        u.upsert(&a).unwrap();
    }
    u.commit(store.outbox_head().await.unwrap()).unwrap();
}

/// A small saved vector index, so snapshots carry `vectors/` too.
fn save_vectors(root: &Path, n: i64) {
    let arts = (1..=n)
        .map(|id| {
            let mut v: Vec<f32> = (0..8).map(|j| ((id * 7 + j) % 5) as f32 + 0.5).collect();
            engine::embed::normalize(&mut v);
            (id, format!("h{id}"), vec![v])
        })
        .collect();
    VectorIndex::build(8, arts)
        .save(&root.join("vectors"), MODEL)
        .unwrap();
}

fn ids(index: &SearchIndex, q: &str) -> (u64, Vec<i64>) {
    let req = SearchRequest {
        q: q.into(),
        limit: 50,
        ..Default::default()
    };
    let r = index.search(&system(), &req).unwrap();
    (r.total, r.hits.iter().map(|h| h.id).collect())
}

/// Publishes four snapshots (keep 3) and restores the newest into a fresh
/// directory; returns the store's final head.
async fn publish_four(target: &ShipTarget, tmp: &Path) -> (SearchIndex, i64) {
    let store = Store::open(None, &tmp.join("data")).await.unwrap();
    let index = SearchIndex::open(&tmp.join("index")).unwrap();
    for round in 0..4 {
        write_round(&store, &index, round, 5).await;
        save_vectors(&tmp.join("index"), 5 * (round as i64 + 1));
        let p = snapshot::publish(&index, target, 3).await.unwrap();
        assert_eq!(p.manifest.seq, store.outbox_head().await.unwrap());
        assert_eq!(p.manifest.embedding_model.as_deref(), Some(MODEL));
        assert!(p.manifest.files.iter().any(|f| f.path == "index/meta.json"));
        assert!(p
            .manifest
            .files
            .iter()
            .any(|f| f.path == "vectors/meta.json"));
        assert_eq!(p.pruned, usize::from(round == 3));
    }
    let head = store.outbox_head().await.unwrap();
    let snaps = snapshot::list(target).await.unwrap();
    assert_eq!(
        snaps.len(),
        3,
        "all but the newest 3 are deleted: {snaps:?}"
    );
    assert_eq!(snaps[0].seq, head, "newest first");
    assert!(snaps[0].seq > snaps[1].seq && snaps[1].seq > snaps[2].seq);
    (index, head)
}

fn assert_same_results(a: &SearchIndex, b: &SearchIndex) {
    assert_eq!(a.num_docs(), b.num_docs());
    assert_eq!(a.documents().unwrap(), b.documents().unwrap());
    for q in [
        "levy",
        "garnishment refund",
        "procedure 3",
        "round 1 item 2",
        "levvy",
    ] {
        assert_eq!(ids(a, q), ids(b, q), "results differ for {q:?}");
    }
}

/// Issue 7: publishing keeps the newest N complete snapshots; a restore
/// gives the same documents and search results; a snapshot whose file no
/// longer matches its SHA-256 is skipped for the previous one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_snapshot_publish_keeps_last_n_and_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let snaps_dir = tmp.path().join("snapshots");
    let target = ShipTarget::open(&TargetConfig::Dir(snaps_dir.clone()))
        .await
        .unwrap();
    let (index, head) = publish_four(&target, tmp.path()).await;

    // An incomplete snapshot (no manifest) newer than all is ignored.
    let partial = snaps_dir.join("snapshots/999999999999-20991231T000000.000Z/index");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("meta.json"), b"{}").unwrap();

    let replica = tmp.path().join("replica");
    let r = snapshot::restore_latest(&target, &replica)
        .await
        .unwrap()
        .expect("a snapshot to restore");
    assert_eq!(r.seq, head);
    assert!(r.skipped.is_empty());
    let restored = SearchIndex::open(&replica).unwrap();
    assert_eq!(restored.checkpoint().unwrap(), head);
    assert_same_results(&index, &restored);
    let vectors = VectorIndex::load(&replica.join("vectors"), MODEL, 8)
        .unwrap()
        .expect("vectors restored");
    assert_eq!(vectors.stats().articles, 20);
    // The restored generation is writable like any other.
    let mut u = restored.updater().unwrap();
    u.delete(1);
    u.commit(head + 1).unwrap();
    assert_eq!(restored.checkpoint().unwrap(), head + 1);

    // Damage one index file of the newest snapshot: the restore skips it
    // and installs the one before.
    let snaps = snapshot::list(&target).await.unwrap();
    let newest = &snaps[0].name;
    let m: Manifest = snapshot::manifest(&target, newest).await.unwrap();
    let victim = m
        .files
        .iter()
        .find(|f| f.path.ends_with(".store"))
        .expect("a segment store file");
    let path = snaps_dir.join(format!("snapshots/{newest}/{}", victim.path));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let replica2 = tmp.path().join("replica2");
    let r2 = snapshot::restore_latest(&target, &replica2)
        .await
        .unwrap()
        .expect("the previous snapshot");
    assert_eq!(r2.skipped, vec![newest.clone()]);
    assert_eq!(r2.seq, snaps[1].seq);
    let older = SearchIndex::open(&replica2).unwrap();
    assert_eq!(older.checkpoint().unwrap(), snaps[1].seq);
    assert_eq!(older.num_docs(), 15);
    assert!(!replica2
        .join(".restore-".to_string() + &std::process::id().to_string())
        .exists());
}

/// Issue 7: the same through a real S3-compatible server, under a prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_snapshot_to_s3() {
    let tmp = tempfile::tempdir().unwrap();
    let server = S3Server::start(&tmp.path().join("s3"), "kmt-snapshots").await;
    let cfg = TargetConfig::S3(server.config("kmt-snapshots", "prod/kmt"));
    let target = ShipTarget::open(&cfg).await.unwrap();
    let (index, head) = publish_four(&target, tmp.path()).await;
    let keys = target.list_under("prod/kmt/snapshots/").await.unwrap();
    let names: std::collections::BTreeSet<_> = keys
        .iter()
        .map(|k| k.split('/').nth(3).unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 3, "only the newest 3 remain in the bucket");
    let replica = tmp.path().join("replica");
    let r = snapshot::restore_latest(&target, &replica)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.seq, head);
    let restored = SearchIndex::open(&replica).unwrap();
    assert_same_results(&index, &restored);
    drop(server);
}
