//! Store conformance, stored embeddings: byte-exact round trips, replacement
//! on a second put, reads of several ids (missing ones absent), isolation
//! between models, paging by article id, rows of deleted articles skipped
//! or cascade-deleted, and rejected vector lengths. Every behaviour is
//! checked against both the SQLite and the Postgres store (see
//! [`for_each_store`]).

use std::slice;

use engine::error::Error;
use engine::model::ArticleId;
use engine::store::{Store, StoredEmbedding};

use crate::common::{draft, for_each_store, system};
use crate::store_support::snapshot;

/// A row whose vectors are `count` vectors of `dim` floats, each byte
/// derived from `seed` so that rows differ and every byte value occurs.
fn row(
    id: ArticleId,
    model: &str,
    hash: &str,
    dim: i32,
    count: usize,
    seed: u8,
) -> StoredEmbedding {
    let len = dim as usize * 4 * count;
    let vectors = (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect();
    StoredEmbedding {
        article_id: id,
        model_id: model.into(),
        content_hash: hash.into(),
        dim,
        vectors,
    }
}

/// Creates one article per slug; returns their ids in order.
async fn articles(store: &Store, slugs: &[&str]) -> Vec<ArticleId> {
    let mut ids = Vec::new();
    for slug in slugs {
        let a = store.create_article(&system(), draft(slug)).await.unwrap();
        ids.push(a.id);
    }
    ids
}

/// `rows` sorted by article id, as a get may return them in any order.
fn by_id(mut rows: Vec<StoredEmbedding>) -> Vec<StoredEmbedding> {
    rows.sort_by_key(|r| r.article_id);
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embeddings_round_trip_and_are_replaced() {
    for_each_store(|store, _| async move {
        let ids = articles(&store, &["a", "b"]).await;
        let (a, b) = (ids[0], ids[1]);
        assert!(store
            .get_embeddings("m1", &[a, b])
            .await
            .unwrap()
            .is_empty());
        // An empty batch writes nothing and is fine.
        store.put_embeddings(&[]).await.unwrap();

        // 96 vectors of 2 floats: 768 bytes, every byte value included.
        let first = row(a, "m1", "hash-1", 2, 96, 3);
        assert!((0..=255u8).all(|v| first.vectors.contains(&v)));
        let before = snapshot(&store).await;
        store.put_embeddings(slice::from_ref(&first)).await.unwrap();
        // Not audited, not in the outbox.
        assert_eq!(snapshot(&store).await, before);
        let got = store.get_embeddings("m1", &[a]).await.unwrap();
        assert_eq!(got, slice::from_ref(&first));

        // A second put with a new hash replaces the row, dim and all.
        let second = row(a, "m1", "hash-2", 3, 1, 9);
        store
            .put_embeddings(slice::from_ref(&second))
            .await
            .unwrap();
        let got = store.get_embeddings("m1", &[a, b]).await.unwrap();
        assert_eq!(got, slice::from_ref(&second));
        let scanned = store.scan_embeddings("m1", 0, 10).await.unwrap();
        assert_eq!(scanned, [second]);

        // No passages: zero vectors are a valid (empty) row.
        let empty = row(b, "m1", "hash-empty", 4, 0, 0);
        store.put_embeddings(slice::from_ref(&empty)).await.unwrap();
        assert_eq!(store.get_embeddings("m1", &[b]).await.unwrap(), [empty]);

        // The same (article, model) twice in one batch: the later row wins.
        let older = row(a, "m1", "hash-3", 2, 2, 1);
        let newer = row(a, "m1", "hash-4", 2, 3, 2);
        store.put_embeddings(&[older, newer.clone()]).await.unwrap();
        assert_eq!(store.get_embeddings("m1", &[a]).await.unwrap(), [newer]);
        assert_eq!(snapshot(&store).await, before);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embeddings_are_read_by_ids_per_model() {
    for_each_store(|store, _| async move {
        let ids = articles(&store, &["a", "b", "c"]).await;
        let (a, b, c) = (ids[0], ids[1], ids[2]);
        let a1 = row(a, "m1", "ha", 2, 2, 1);
        let c1 = row(c, "m1", "hc", 2, 1, 2);
        let a2 = row(a, "m2", "ha-m2", 8, 1, 3);
        let b2 = row(b, "m2", "hb-m2", 8, 2, 4);
        let put = [c1.clone(), a2.clone(), a1.clone(), b2.clone()];
        store.put_embeddings(&put).await.unwrap();

        // Several ids, with repeats and ids without a row (b has none under
        // m1; 999_999 is no article at all).
        let want = [c, 999_999, a, b, a];
        let got = store.get_embeddings("m1", &want).await.unwrap();
        assert_eq!(by_id(got), [a1.clone(), c1.clone()]);
        let got = store.get_embeddings("m2", &want).await.unwrap();
        assert_eq!(by_id(got), [a2.clone(), b2.clone()]);
        assert!(store.get_embeddings("m3", &want).await.unwrap().is_empty());
        assert!(store.get_embeddings("m1", &[]).await.unwrap().is_empty());

        // Replacing under one model leaves the other alone.
        let a1_new = row(a, "m1", "ha-new", 2, 1, 5);
        store
            .put_embeddings(slice::from_ref(&a1_new))
            .await
            .unwrap();
        let got = store.get_embeddings("m1", &[a]).await.unwrap();
        assert_eq!(got, [a1_new]);
        assert_eq!(store.get_embeddings("m2", &[a]).await.unwrap(), [a2]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embeddings_read_many_ids_at_once() {
    for_each_store(|store, _| async move {
        // More ids than one SQLite statement takes.
        let drafts = (0..620).map(|i| draft(&format!("bulk-{i:04}"))).collect();
        store.upsert_batch(&system(), drafts).await.unwrap();
        let all = store.scan_articles(0, 1000).await.unwrap();
        let ids: Vec<ArticleId> = all.iter().map(|a| a.id).collect();
        assert_eq!(ids.len(), 620);
        let rows: Vec<StoredEmbedding> = ids
            .iter()
            .map(|&id| row(id, "m", &format!("h{id}"), 4, 1, id as u8))
            .collect();
        store.put_embeddings(&rows[..500]).await.unwrap();
        store.put_embeddings(&rows[500..]).await.unwrap();

        // Every id (reversed), a missing one, and repeats.
        let mut want: Vec<ArticleId> = ids.iter().rev().copied().collect();
        want.push(-1);
        want.extend_from_slice(&ids[..50]);
        let got = store.get_embeddings("m", &want).await.unwrap();
        assert_eq!(by_id(got), rows);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embeddings_scan_in_pages_by_id() {
    for_each_store(|store, _| async move {
        let ids = articles(&store, &["a", "b", "c", "d", "e"]).await;
        // Put out of order; the scan returns them by id.
        let m1: Vec<StoredEmbedding> = ids
            .iter()
            .map(|&id| row(id, "m1", &format!("h{id}"), 2, 1, id as u8))
            .collect();
        let mut shuffled = m1.clone();
        shuffled.reverse();
        shuffled.swap(0, 2);
        store.put_embeddings(&shuffled).await.unwrap();
        let m2 = row(ids[1], "m2", "other", 2, 1, 0);
        store.put_embeddings(slice::from_ref(&m2)).await.unwrap();

        let mut pages = Vec::new();
        let mut after = 0;
        loop {
            let page = store.scan_embeddings("m1", after, 2).await.unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 2);
            after = page.last().unwrap().article_id;
            pages.push(page);
        }
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
        assert_eq!(pages.concat(), m1);

        // From the middle; only the given model; no rows for limit <= 0.
        let tail = store.scan_embeddings("m1", ids[2], 10).await.unwrap();
        assert_eq!(tail, m1[3..]);
        let other = store.scan_embeddings("m2", 0, 10).await.unwrap();
        assert_eq!(other, [m2]);
        assert!(store.scan_embeddings("m3", 0, 10).await.unwrap().is_empty());
        assert!(store.scan_embeddings("m1", 0, 0).await.unwrap().is_empty());
        assert!(store.scan_embeddings("m1", 0, -1).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embeddings_follow_their_articles() {
    for_each_store(|store, _| async move {
        let ids = articles(&store, &["kept", "gone"]).await;
        let (kept, gone) = (ids[0], ids[1]);
        store.delete_article(&system(), gone).await.unwrap();

        // Rows of a deleted article, and of an id that was never used, are
        // skipped; the rest of the batch is written.
        let rows = [
            row(gone, "m", "h-gone", 2, 1, 1),
            row(kept, "m", "h-kept", 2, 1, 2),
            row(987_654, "m", "h-never", 2, 1, 3),
        ];
        store.put_embeddings(&rows).await.unwrap();
        let got = store.get_embeddings("m", &[kept, gone, 987_654]).await;
        assert_eq!(got.unwrap(), slice::from_ref(&rows[1]));
        assert_eq!(
            store.scan_embeddings("m", 0, 10).await.unwrap(),
            slice::from_ref(&rows[1])
        );

        // Deleting the article deletes its rows under every model.
        let other = row(kept, "m-other", "h-kept", 4, 2, 4);
        store.put_embeddings(&[other]).await.unwrap();
        store.delete_article(&system(), kept).await.unwrap();
        assert!(store.get_embeddings("m", &[kept]).await.unwrap().is_empty());
        assert!(store.scan_embeddings("m", 0, 10).await.unwrap().is_empty());
        assert!(store
            .scan_embeddings("m-other", 0, 10)
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embeddings_with_bad_lengths_are_rejected() {
    for_each_store(|store, _| async move {
        let a = articles(&store, &["a"]).await[0];
        let good = row(a, "m", "h", 2, 1, 0);
        let mut bad_dims = Vec::new();
        for dim in [0, -1, i32::MIN] {
            bad_dims.push(StoredEmbedding {
                dim,
                ..good.clone()
            });
        }
        for bad in bad_dims {
            let err = store
                .put_embeddings(&[good.clone(), bad])
                .await
                .unwrap_err();
            assert!(
                matches!(&err, Error::Invalid { field, .. } if field == "rows[1].dim"),
                "{err:?}"
            );
        }
        // 5 bytes for dim 1; 8 bytes (two floats) for dim 3; 4 bytes over.
        let lengths = [(1, 5), (3, 8), (2, 12), (1, 1)];
        for (dim, len) in lengths {
            let bad = StoredEmbedding {
                dim,
                vectors: vec![0; len],
                ..good.clone()
            };
            let err = store
                .put_embeddings(&[bad, good.clone()])
                .await
                .unwrap_err();
            assert!(
                matches!(&err, Error::Invalid { field, .. } if field == "rows[0].vectors"),
                "{err:?}"
            );
        }
        // Nothing of a rejected batch was written.
        assert!(store.get_embeddings("m", &[a]).await.unwrap().is_empty());
        store.put_embeddings(slice::from_ref(&good)).await.unwrap();
        assert_eq!(store.get_embeddings("m", &[a]).await.unwrap(), [good]);
    })
    .await;
}
