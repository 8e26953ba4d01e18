//! The embedding worker with the real model: stored embeddings are reused
//! by a second index (a new replica), changed text is re-embedded, and a
//! saved vector index is reloaded instead of rebuilt.

use std::sync::atomic::Ordering;

use engine::auth::Principal;
use engine::model::{ArticleDraft, ArticlePatch};
use engine::search::SearchIndex;
use engine::store::Store;
use indexer::embedder::{setup, EmbedArgs};

use super::draft;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_3_replicas_reuse_stored_embeddings_and_reload_saved_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(None, dir.path()).await.unwrap();
    let actor = Principal::system();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(store.create_article(&actor, draft(i)).await.unwrap().id);
    }

    // The first index embeds everything and stores it.
    let index1 = SearchIndex::open(&dir.path().join("index1")).unwrap();
    let (w, st1) = setup(&EmbedArgs::default(), &store, &index1);
    let (mut w1, _) = w.expect("the model is needed (run `make model`)");
    assert_eq!(w1.sync_all().await.unwrap(), 3);
    assert_eq!(st1.embedded.load(Ordering::Relaxed), 3);
    assert_eq!(st1.reused.load(Ordering::Relaxed), 0);
    let stored = store
        .get_embeddings("all-MiniLM-L6-v2", &ids)
        .await
        .unwrap();
    assert_eq!(stored.len(), 3);

    // A second index (a new replica) takes them from the store.
    let index2 = SearchIndex::open(&dir.path().join("index2")).unwrap();
    let (w, st2) = setup(&EmbedArgs::default(), &store, &index2);
    let (mut w2, _) = w.unwrap();
    assert_eq!(w2.sync_all().await.unwrap(), 3);
    assert_eq!(st2.embedded.load(Ordering::Relaxed), 0);
    assert_eq!(st2.reused.load(Ordering::Relaxed), 3);
    assert_eq!(index2.semantic().unwrap().vectors.stats().articles, 3);

    // Changed text is embedded again; unchanged text is not.
    let a = store.get_article(ids[1]).await.unwrap().unwrap();
    let d = ArticleDraft::from_article(&a)
        .apply(ArticlePatch {
            body: Some("A completely different body about refunds.".into()),
            ..Default::default()
        })
        .unwrap();
    store
        .update_article(&actor, a.id, d, Some(a.version))
        .await
        .unwrap();
    assert_eq!(w2.sync_all().await.unwrap(), 1);
    assert_eq!(st2.embedded.load(Ordering::Relaxed), 1);

    // Saved and reloaded: the vectors are there before any sync, and a sync
    // finds nothing to do.
    w2.save_index();
    drop(w2);
    let index3 = SearchIndex::open(&dir.path().join("index2")).unwrap();
    let (w, st3) = setup(&EmbedArgs::default(), &store, &index3);
    let (mut w3, _) = w.unwrap();
    let sem = index3.semantic().unwrap();
    assert_eq!(sem.vectors.stats().articles, 3);
    assert_eq!(
        sem.vectors.hash_of(ids[1]),
        index2.semantic().unwrap().vectors.hash_of(ids[1])
    );
    assert_eq!(w3.sync_all().await.unwrap(), 0);
    assert_eq!(st3.embedded.load(Ordering::Relaxed), 0);
    assert_eq!(sem.vectors.self_recall(), 1.0);
}
