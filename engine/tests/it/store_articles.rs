//! Store conformance, articles: create, read, update and delete, version
//! history, and batch upserts. Every behaviour is checked against both the
//! SQLite and the Postgres store (see [`for_each_store`]).

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use engine::error::Error;
use engine::model::{ChangeKind, Status};
use engine::store::{AuditFilter, UpsertOutcome};

use crate::common::{draft, for_each_store, system, user};
use crate::store_support::{snapshot, verify_chain};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_then_get_by_id_slug_and_list() {
    for_each_store(|store, _| async move {
        let author = user("alice", "author");
        let mut d = draft("first");
        d.status = Status::Published;
        d.review_due = Some(Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap());
        let a = store.create_article(&author, d.clone()).await.unwrap();
        assert!(a.id > 0);
        assert_eq!(
            (a.version, a.owner.as_str(), a.slug.as_str()),
            (1, "alice", "first")
        );
        assert_eq!(a.published_at, Some(a.created_at), "published on creation");
        assert_eq!(a.tags, d.tags);
        // What create returns is exactly what is stored (times round-trip).
        assert_eq!(store.get_article(a.id).await.unwrap(), Some(a.clone()));
        assert_eq!(
            store.get_article_by_slug("first").await.unwrap(),
            Some(a.clone())
        );
        assert_eq!(store.get_article(a.id + 1000).await.unwrap(), None);
        assert_eq!(store.get_article_by_slug("nope").await.unwrap(), None);

        let draft_only = store
            .create_article(&author, draft("second"))
            .await
            .unwrap();
        assert_eq!(draft_only.published_at, None);
        assert_eq!(store.count_articles().await.unwrap(), 2);
        let mut got = store
            .get_articles(&[draft_only.id, a.id, 999_999])
            .await
            .unwrap();
        got.sort_by_key(|x| x.id);
        assert_eq!(got, vec![a.clone(), draft_only.clone()]);
        assert!(store.get_articles(&[]).await.unwrap().is_empty());
        let scan = store.scan_articles(0, 1).await.unwrap();
        assert_eq!(scan, vec![a.clone()]);
        let scan = store.scan_articles(a.id, 10).await.unwrap();
        assert_eq!(scan, vec![draft_only]);
        let v = store.list_versions(a.id).await.unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(
            (v[0].version, v[0].author.as_str(), v[0].status),
            (1, "alice", Status::Published)
        );
        assert_eq!(v[0].created_at, a.updated_at);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_slug_is_a_conflict() {
    for_each_store(|store, _| async move {
        store
            .create_article(&system(), draft("same"))
            .await
            .unwrap();
        let before = snapshot(&store).await;
        let err = store
            .create_article(&system(), draft("same"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Conflict(m) if m.contains("\"same\"")),
            "{err:?}"
        );
        assert_eq!(
            snapshot(&store).await,
            before,
            "a failed create writes nothing"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn update_bumps_version_and_keeps_history() {
    for_each_store(|store, _| async move {
        let a = store
            .create_article(&user("alice", "author"), draft("doc"))
            .await
            .unwrap();
        let editor = user("bob", "reviewer");
        let mut d = draft("doc");
        d.title = "Second title".into();
        d.status = Status::Published;
        let b = store
            .update_article(&editor, a.id, d.clone(), Some(1))
            .await
            .unwrap();
        assert_eq!(
            (b.version, b.owner.as_str(), b.title.as_str()),
            (2, "alice", "Second title")
        );
        assert_eq!(b.created_at, a.created_at);
        assert!(b.updated_at >= a.updated_at);
        let first_published = b
            .published_at
            .expect("published_at set on first publication");
        assert_eq!(store.get_article(a.id).await.unwrap(), Some(b.clone()));

        d.slug = "doc-renamed".into();
        d.status = Status::NeedsUpdate;
        let c = store.update_article(&editor, a.id, d, None).await.unwrap();
        assert_eq!(c.version, 3);
        assert_eq!(
            c.published_at,
            Some(first_published),
            "first publication time is kept"
        );
        assert_eq!(
            store.get_article_by_slug("doc-renamed").await.unwrap(),
            Some(c)
        );
        assert_eq!(store.get_article_by_slug("doc").await.unwrap(), None);

        let versions = store.list_versions(a.id).await.unwrap();
        let summary: Vec<_> = versions
            .iter()
            .map(|v| (v.version, v.author.as_str(), v.status))
            .collect();
        assert_eq!(
            summary,
            vec![
                (1, "alice", Status::Draft),
                (2, "bob", Status::Published),
                (3, "bob", Status::NeedsUpdate)
            ]
        );
        assert_eq!(versions[1].title, "Second title");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_version_missing_article_and_taken_slug_are_rejected() {
    for_each_store(|store, _| async move {
        let a = store.create_article(&system(), draft("a")).await.unwrap();
        store.create_article(&system(), draft("b")).await.unwrap();
        store
            .update_article(&system(), a.id, draft("a"), Some(1))
            .await
            .unwrap();
        let before = snapshot(&store).await;

        let err = store
            .update_article(&system(), a.id, draft("a"), Some(1))
            .await
            .unwrap_err();
        let want = format!("article {} is at version 2, not 1", a.id);
        assert!(matches!(&err, Error::Conflict(m) if *m == want), "{err:?}");
        let err = store
            .update_article(&system(), 999_999, draft("zz"), None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err:?}");
        let err = store
            .update_article(&system(), a.id, draft("b"), None)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Conflict(m) if m.contains("\"b\"")),
            "{err:?}"
        );

        assert_eq!(
            snapshot(&store).await,
            before,
            "failed updates write nothing"
        );
        assert_eq!(store.list_versions(a.id).await.unwrap().len(), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_removes_the_article_but_keeps_versions() {
    for_each_store(|store, _| async move {
        let a = store
            .create_article(&system(), draft("gone"))
            .await
            .unwrap();
        store
            .update_article(&system(), a.id, draft("gone"), None)
            .await
            .unwrap();
        store.delete_article(&system(), a.id).await.unwrap();
        assert_eq!(store.get_article(a.id).await.unwrap(), None);
        assert_eq!(store.count_articles().await.unwrap(), 0);
        assert_eq!(store.list_versions(a.id).await.unwrap().len(), 2);
        let err = store.delete_article(&system(), a.id).await.unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err:?}");
        // The slug is free again, and the new article gets a new id.
        let b = store
            .create_article(&system(), draft("gone"))
            .await
            .unwrap();
        assert!(b.id > a.id, "ids are never reused");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upsert_batch_counts_and_skips_unchanged() {
    for_each_store(|store, _| async move {
        let importer = user("importer", "admin");
        let batch: Vec<_> = ["x", "y", "z"].iter().map(|s| draft(s)).collect();
        let out = store.upsert_batch(&importer, batch.clone()).await.unwrap();
        assert_eq!(
            out,
            UpsertOutcome {
                created: 3,
                updated: 0,
                unchanged: 0
            }
        );
        let x = store.get_article_by_slug("x").await.unwrap().unwrap();
        assert_eq!((x.owner.as_str(), x.version), ("importer", 1));

        let before = snapshot(&store).await;
        let out = store.upsert_batch(&importer, batch.clone()).await.unwrap();
        assert_eq!(
            out,
            UpsertOutcome {
                created: 0,
                updated: 0,
                unchanged: 3
            }
        );
        assert_eq!(
            snapshot(&store).await,
            before,
            "an unchanged batch writes nothing"
        );

        let mut next = batch.clone();
        next[1].body = "new body".into();
        next[2].review_due = Some(Utc.with_ymd_and_hms(2031, 5, 6, 7, 8, 9).unwrap());
        next.push(draft("w"));
        let out = store.upsert_batch(&importer, next.clone()).await.unwrap();
        assert_eq!(
            out,
            UpsertOutcome {
                created: 1,
                updated: 2,
                unchanged: 1
            }
        );
        let y = store.get_article_by_slug("y").await.unwrap().unwrap();
        assert_eq!((y.version, y.body.as_str()), (2, "new body"));
        assert_eq!(store.list_versions(y.id).await.unwrap().len(), 2);
        let changes = store.changes_after(before.1, 100).await.unwrap();
        let w = store.get_article_by_slug("w").await.unwrap().unwrap();
        let z = store.get_article_by_slug("z").await.unwrap().unwrap();
        let ids: Vec<_> = changes.iter().map(|c| (c.article_id, c.kind)).collect();
        assert_eq!(
            ids,
            vec![
                (y.id, ChangeKind::Upsert),
                (z.id, ChangeKind::Upsert),
                (w.id, ChangeKind::Upsert)
            ]
        );
        let audit = store
            .list_audit(&AuditFilter {
                after_id: before.2 as i64,
                limit: 0,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(audit
            .iter()
            .all(|e| e.action == "article.import" && e.actor == "importer"));
        assert_eq!(audit.len(), 3);

        let out = store.upsert_batch(&importer, next).await.unwrap();
        assert_eq!(
            out,
            UpsertOutcome {
                created: 0,
                updated: 0,
                unchanged: 4
            }
        );
        assert_eq!(
            store.upsert_batch(&importer, vec![]).await.unwrap(),
            UpsertOutcome::default()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upsert_batch_is_all_or_nothing() {
    for_each_store(|store, db| async move {
        store.create_article(&system(), draft("c")).await.unwrap();
        let before = snapshot(&store).await;

        // The same slug twice: rejected, nothing written.
        let dup = vec![draft("a"), draft("b"), draft("a")];
        let err = store.upsert_batch(&system(), dup).await.unwrap_err();
        assert!(
            matches!(err, Error::Invalid { .. } | Error::Conflict(_)),
            "{err:?}"
        );
        assert_eq!(snapshot(&store).await, before);

        // The database rejects the last record after the first two were
        // inserted: the whole batch rolls back.
        db.execute(
            "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'boom'; END $$; \
             CREATE TRIGGER boom BEFORE UPDATE ON articles FOR EACH ROW \
             WHEN (NEW.title = 'boom') EXECUTE FUNCTION boom();",
            "CREATE TRIGGER boom BEFORE UPDATE ON articles WHEN NEW.title = 'boom' \
             BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .await;
        let mut c = draft("c");
        c.title = "boom".into();
        let err = store
            .upsert_batch(&system(), vec![draft("a"), draft("b"), c])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Database(_)), "{err:?}");
        assert_eq!(
            snapshot(&store).await,
            before,
            "a failed batch writes nothing"
        );
        assert_eq!(store.get_article_by_slug("a").await.unwrap(), None);
        assert_eq!(
            store
                .get_article_by_slug("c")
                .await
                .unwrap()
                .unwrap()
                .version,
            1
        );

        // The store is still usable afterwards.
        let out = store
            .upsert_batch(&system(), vec![draft("a"), draft("b")])
            .await
            .unwrap();
        assert_eq!(out.created, 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upsert_batch_of_a_thousand_is_fast() {
    for_each_store(|store, db| async move {
        let batch: Vec<_> = (0..1000).map(|i| draft(&format!("bulk-{i:04}"))).collect();
        let t = Instant::now();
        let out = store.upsert_batch(&system(), batch.clone()).await.unwrap();
        let created = t.elapsed();
        assert_eq!(out.created, 1000);
        let changed: Vec<_> = batch
            .into_iter()
            .map(|mut d| {
                d.body.push_str(" Edited.");
                d
            })
            .collect();
        let t = Instant::now();
        let out = store.upsert_batch(&system(), changed).await.unwrap();
        let updated = t.elapsed();
        assert_eq!(out.updated, 1000);
        eprintln!("{db:?}: 1000 created in {created:?}, 1000 updated in {updated:?}");
        // Generous: tests run unoptimised on shared machines.
        assert!(created < Duration::from_secs(5) && updated < Duration::from_secs(5));
        assert_eq!(store.outbox_head().await.unwrap(), 2000);
        let audit = store
            .list_audit(&AuditFilter {
                after_id: 0,
                limit: 5000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(audit.len(), 2000);
        verify_chain(&audit);
    })
    .await;
}
