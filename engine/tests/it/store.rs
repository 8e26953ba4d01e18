//! Store conformance suite: every behaviour is checked against both the
//! SQLite and the Postgres store (see [`for_each_store`]).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use engine::error::Error;
use engine::model::{
    ChangeKind, Decision, EscalationStep, RuleSpec, Status, Task, TaskKind, TaskStatus,
};
use engine::store::audit::{chain_hash, GENESIS};
use engine::store::{AuditFilter, Store, TaskFilter, UpsertOutcome};
use engine::testutil::PgTestDb;
use serde_json::json;

use crate::common::{close, draft, for_each_store, system, user, TestDb};

/// Everything observable that a failed write must leave untouched.
async fn snapshot(store: &Store) -> (i64, i64, usize) {
    let audit = store
        .list_audit(&AuditFilter {
            after_id: 0,
            limit: 100_000,
        })
        .await
        .unwrap();
    (
        store.count_articles().await.unwrap(),
        store.outbox_head().await.unwrap(),
        audit.len(),
    )
}

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
            })
            .await
            .unwrap();
        assert_eq!(audit.len(), 2000);
        verify_chain(&audit);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_records_kinds_in_order() {
    for_each_store(|store, _| async move {
        assert_eq!(store.outbox_head().await.unwrap(), 0);
        let a = store.create_article(&system(), draft("a")).await.unwrap();
        store
            .update_article(&system(), a.id, draft("a"), None)
            .await
            .unwrap();
        store.delete_article(&system(), a.id).await.unwrap();
        let seq = store.request_reindex(&system()).await.unwrap();
        assert_eq!(seq, store.outbox_head().await.unwrap());

        let all = store.changes_after(0, 100).await.unwrap();
        let kinds: Vec<_> = all.iter().map(|c| (c.article_id, c.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (a.id, ChangeKind::Upsert),
                (a.id, ChangeKind::Upsert),
                (a.id, ChangeKind::Delete),
                (0, ChangeKind::Reindex)
            ]
        );
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(all.last().unwrap().seq, seq);
        let page = store.changes_after(all[0].seq, 2).await.unwrap();
        assert_eq!(page, all[1..3].to_vec());
        assert!(store.changes_after(seq, 10).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_writers_commit_outbox_rows_in_order() {
    for_each_store(|store, _| async move {
        // A follower reading while the writers run must never see a gap that
        // is filled later: each page starts right after the last seq seen.
        let follower = tokio::spawn({
            let store = store.clone();
            async move {
                let mut last = 0;
                let mut seen = 0;
                while seen < 80 {
                    for c in store.changes_after(last, 1000).await.unwrap() {
                        assert_eq!(
                            c.seq,
                            last + 1,
                            "follower saw seq {} right after {last}",
                            c.seq
                        );
                        last = c.seq;
                        seen += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..10 {
                        store
                            .create_article(&system(), draft(&format!("w{w}-{i}")))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(30), follower)
            .await
            .expect("follower saw all 80 changes")
            .unwrap();
        let all = store.changes_after(0, 1000).await.unwrap();
        assert_eq!(all.len(), 80);
        assert!(
            all.windows(2).all(|w| w[1].seq == w[0].seq + 1),
            "seqs are contiguous"
        );
        let ids: HashSet<_> = all.iter().map(|c| c.article_id).collect();
        assert_eq!(ids.len(), 80);
        let audit = store.list_audit(&AuditFilter::default()).await.unwrap();
        assert_eq!(audit.len(), 80);
        verify_chain(&audit);
    })
    .await;
}

/// Checks links and hashes of a chain read from its first row.
fn verify_chain(rows: &[engine::model::AuditEntry]) {
    let mut prev = GENESIS.to_string();
    for (i, e) in rows.iter().enumerate() {
        assert_eq!(e.id, i as i64 + 1, "ids are 1-based and dense");
        assert_eq!(e.prev_hash, prev, "row {} links to its predecessor", e.id);
        let h = chain_hash(
            &e.prev_hash,
            e.at,
            &e.actor,
            &e.action,
            &e.target,
            &e.details,
        );
        assert_eq!(e.hash, h, "row {} hash recomputes", e.id);
        prev = e.hash.clone();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_rows_form_a_verifiable_chain() {
    for_each_store(|store, _| async move {
        let admin = user("root", "admin");
        let a = store.create_article(&admin, draft("a")).await.unwrap();
        store
            .update_article(&admin, a.id, draft("a"), None)
            .await
            .unwrap();
        store.upsert_batch(&admin, vec![draft("b")]).await.unwrap();
        store.delete_article(&admin, a.id).await.unwrap();
        store.request_reindex(&admin).await.unwrap();
        store
            .create_user(&admin, "carol", "Carol", &["author".into()])
            .await
            .unwrap();
        store
            .set_roles(&admin, "carol", &["reviewer".into()])
            .await
            .unwrap();
        store
            .create_token(&admin, "carol", "laptop", "secret-hash-value")
            .await
            .unwrap();

        let rows = store.list_audit(&AuditFilter::default()).await.unwrap();
        let actions: Vec<_> = rows
            .iter()
            .map(|e| (e.action.as_str(), e.target.as_str()))
            .collect();
        let t = format!("article:{}", a.id);
        assert_eq!(
            actions,
            vec![
                ("article.create", t.as_str()),
                ("article.update", t.as_str()),
                ("article.import", format!("article:{}", a.id + 1).as_str()),
                ("article.delete", t.as_str()),
                ("index.reindex", "index"),
                ("user.create", "user:carol"),
                ("user.set_roles", "user:carol"),
                ("token.create", "user:carol"),
            ]
        );
        assert!(rows.iter().all(|e| e.actor == "root"));
        assert_eq!(rows[0].details["slug"], "a");
        assert_eq!(rows[1].details["version"], 2);
        assert!(rows
            .iter()
            .all(|e| !e.details.to_string().contains("secret-hash-value")));
        verify_chain(&rows);

        let page = store
            .list_audit(&AuditFilter {
                after_id: 2,
                limit: 3,
            })
            .await
            .unwrap();
        assert_eq!(page, rows[2..5].to_vec());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_roles_and_tokens() {
    for_each_store(|store, _| async move {
        let admin = system();
        let roles = vec!["Author".to_string(), "auditor".into(), "author".into()];
        let u = store
            .create_user(&admin, "dana.k", "Dana K", &roles)
            .await
            .unwrap();
        assert_eq!(u.roles, vec!["auditor", "author"]);
        assert_eq!(store.get_user("dana.k").await.unwrap(), Some(u.clone()));
        assert_eq!(store.get_user("nobody").await.unwrap(), None);
        let err = store
            .create_user(&admin, "dana.k", "Again", &[])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        for bad in ["", "Dana", "a b", &"x".repeat(65)] {
            let err = store
                .create_user(&admin, bad, "Bad", &[])
                .await
                .unwrap_err();
            assert!(
                matches!(&err, Error::Invalid { field, .. } if field == "username"),
                "{bad:?}: {err:?}"
            );
        }
        let err = store
            .create_user(&admin, "eve", "Eve", &["not ok".into()])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
        store
            .create_user(&admin, "bert", "Bert", &[])
            .await
            .unwrap();
        let names: Vec<_> = store
            .list_users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.username)
            .collect();
        assert_eq!(names, vec!["bert", "dana.k"]);

        let u = store
            .set_roles(&admin, "dana.k", &["reviewer".into(), "hr".into()])
            .await
            .unwrap();
        assert_eq!(u.roles, vec!["hr", "reviewer"]);
        let err = store.set_roles(&admin, "nobody", &[]).await.unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err:?}");

        let err = store
            .create_token(&admin, "nobody", "t", "h0")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err:?}");
        store
            .create_token(&admin, "dana.k", "laptop", "h1")
            .await
            .unwrap();
        let err = store
            .create_token(&admin, "bert", "copy", "h1")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        for _ in 0..2 {
            // The second look-up skips the last-used write but finds the same.
            let p = store
                .principal_for_token("h1")
                .await
                .unwrap()
                .expect("token resolves");
            assert_eq!(p.user_id, Some(u.id));
            assert_eq!(p.username, "dana.k");
            assert_eq!(p.roles, vec!["hr", "reviewer"]);
        }
        assert_eq!(store.principal_for_token("unknown").await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_signal_fires_after_a_write() {
    for_each_store(|store, _| async move {
        let (notify, poll) = store.change_signal();
        assert!(poll > Duration::ZERO && poll <= Duration::from_secs(5));
        let writer = tokio::spawn({
            let store = store.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                store
                    .create_article(&system(), draft("signal"))
                    .await
                    .unwrap();
            }
        });
        tokio::time::timeout(Duration::from_secs(5), notify.notified())
            .await
            .expect("change signal fired after a write");
        writer.await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn other_handles_see_writes() {
    for_each_store(|store, db| async move {
        let other = db.open_again().await;
        let (notify, _) = other.change_signal();
        let a = store
            .create_article(&system(), draft("shared"))
            .await
            .unwrap();
        if let TestDb::Postgres { .. } = db {
            // Postgres relays NOTIFY to every process; SQLite followers poll.
            tokio::time::timeout(Duration::from_secs(5), notify.notified())
                .await
                .expect("listener relayed the other handle's write");
        }
        assert_eq!(other.get_article(a.id).await.unwrap(), Some(a));
        assert_eq!(
            other.outbox_head().await.unwrap(),
            store.outbox_head().await.unwrap()
        );
        close(&other).await;
    })
    .await;
}

/// Postgres only: the change listener survives losing its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_listener_reconnects() {
    let pg = PgTestDb::create("engine").await;
    let url = pg.url.clone();
    let outcome = tokio::spawn(async move {
        let db = TestDb::Postgres { url };
        let follower = db.open_again().await;
        let writer = db.open_again().await;
        let (notify, _) = follower.change_signal();
        let TestDb::Postgres { url } = &db else {
            unreachable!()
        };
        let admin = sqlx::PgPool::connect(url).await.unwrap();
        let killed: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .fetch_one(&admin)
        .await
        .unwrap();
        admin.close().await;
        assert_eq!(killed, 2, "one listener per handle");
        // Reconnecting wakes followers (announcements may have been lost).
        tokio::time::timeout(Duration::from_secs(10), notify.notified())
            .await
            .expect("listener reconnected");
        // Drain a second wake-up, if any, so the next wait proves delivery.
        let _ = tokio::time::timeout(Duration::from_millis(300), notify.notified()).await;
        writer
            .create_article(&system(), draft("after-reconnect"))
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), notify.notified())
            .await
            .expect("notification delivered after reconnecting");
        close(&follower).await;
        close(&writer).await;
    })
    .await;
    pg.drop_db().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The review flow of a new article: submit, reject, submit, approve.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_of_a_new_article() {
    for_each_store(|store, _| async move {
        let (author, reviewer) = (user("alice", "author"), user("rita", "reviewer"));
        let a = store.create_article(&author, draft("new")).await.unwrap();
        let head = store.outbox_head().await.unwrap();

        let task = store
            .submit_for_review(&author, a.id, "reviewer", None)
            .await
            .unwrap();
        assert_eq!(
            (task.kind, task.article_id, task.status),
            (TaskKind::Review, a.id, TaskStatus::Open)
        );
        assert_eq!(task.assignee_role.as_deref(), Some("reviewer"));
        assert_eq!((task.created_by.as_str(), task.closed_at), ("alice", None));
        let b = store.get_article(a.id).await.unwrap().unwrap();
        assert_eq!((b.status, b.version), (Status::InReview, 2));
        let open = store.list_tasks(&for_role("reviewer")).await.unwrap();
        assert_eq!(open, vec![task.clone()]);

        let err = store
            .submit_for_review(&author, a.id, "reviewer", None)
            .await
            .unwrap_err();
        let want = format!("article {} is already in review", a.id);
        assert!(matches!(&err, Error::Conflict(m) if *m == want), "{err:?}");

        let c = store
            .decide_review(
                &reviewer,
                a.id,
                Decision::Reject,
                Some("needs sources"),
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            (c.status, c.version, c.published_at),
            (Status::Draft, 3, None)
        );
        assert_eq!(store.get_article(a.id).await.unwrap(), Some(c.clone()));
        assert!(store
            .list_tasks(&for_role("reviewer"))
            .await
            .unwrap()
            .is_empty());
        let done = store
            .list_tasks(&TaskFilter {
                article_id: Some(a.id),
                include_done: true,
                ..TaskFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].status, TaskStatus::Done);
        assert_eq!(done[0].note.as_deref(), Some("needs sources"));
        assert_eq!(done[0].closed_by.as_deref(), Some("rita"));
        assert!(done[0].closed_at.is_some());
        let versions = store.list_versions(a.id).await.unwrap();
        let statuses: Vec<_> = versions.iter().map(|v| (v.version, v.status)).collect();
        assert_eq!(
            statuses,
            vec![
                (1, Status::Draft),
                (2, Status::InReview),
                (3, Status::Draft)
            ]
        );

        store
            .submit_for_review(&author, a.id, "reviewer", None)
            .await
            .unwrap();
        let d = store
            .decide_review(&reviewer, a.id, Decision::Approve, None, None)
            .await
            .unwrap();
        assert_eq!((d.status, d.version), (Status::Published, 5));
        assert_eq!(d.published_at, Some(d.updated_at), "published on approval");
        assert_eq!(
            (d.owner.as_str(), d.body.as_str()),
            ("alice", a.body.as_str())
        );
        assert_eq!(store.get_article(a.id).await.unwrap(), Some(d));
        let changes = store.changes_after(head, 100).await.unwrap();
        let kinds: Vec<_> = changes.iter().map(|c| (c.article_id, c.kind)).collect();
        assert_eq!(
            kinds,
            vec![(a.id, ChangeKind::Upsert); 4],
            "versions 2 to 5"
        );
        assert_eq!(
            store.list_tasks(&TaskFilter::default()).await.unwrap(),
            vec![],
            "every review task is closed"
        );

        let rows = store.list_audit(&AuditFilter::default()).await.unwrap();
        let actions: Vec<_> = rows.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            vec![
                "article.create",
                "article.submit",
                "article.reject",
                "article.submit",
                "article.approve"
            ]
        );
        assert_eq!(rows[1].details["task"], task.id);
        assert_eq!(rows[2].details["note"], "needs sources");
        assert_eq!(rows[2].details["version"], 3);
        assert_eq!(rows[4].details["slug"], "new");
        assert_chain_verifies(&store).await;
    })
    .await;
}

/// The review flow of a change to a published article: the working copy is
/// reviewed while the published version stays live.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_of_a_working_copy() {
    for_each_store(|store, _| async move {
        let (author, reviewer) = (user("alice", "author"), user("rita", "reviewer"));
        let mut d = draft("live");
        d.status = Status::Published;
        let a = store.create_article(&system(), d).await.unwrap();
        let head = store.outbox_head().await.unwrap();

        let mut edit = draft("live");
        edit.title = "Revised title".into();
        edit.body = "Revised body.".into();
        edit.tags = vec!["gamma".into()];
        edit.review_due = Some(Utc.with_ymd_and_hms(2031, 2, 3, 4, 5, 6).unwrap());
        let copy = store
            .save_working_copy(&author, a.id, edit.clone())
            .await
            .unwrap();
        assert_eq!(
            (copy.article_id, copy.status, copy.author.as_str()),
            (a.id, Status::Draft, "alice")
        );
        assert_eq!(
            (copy.title.as_str(), copy.note.as_ref()),
            ("Revised title", None)
        );
        assert_eq!(
            store.get_working_copy(a.id).await.unwrap(),
            Some(copy.clone())
        );
        assert_eq!(
            store.get_article(a.id).await.unwrap(),
            Some(a.clone()),
            "the live article is untouched"
        );
        assert_eq!(store.outbox_head().await.unwrap(), head, "nothing to index");

        let task = store
            .submit_for_review(&author, a.id, "reviewer", None)
            .await
            .unwrap();
        assert_eq!(task.status, TaskStatus::Open);
        let wc = store.get_working_copy(a.id).await.unwrap().unwrap();
        assert_eq!(wc.status, Status::InReview);
        assert_eq!(store.get_article(a.id).await.unwrap(), Some(a.clone()));
        let err = store
            .submit_for_review(&author, a.id, "reviewer", None)
            .await
            .unwrap_err();
        let want = format!("article {} is already in review", a.id);
        assert!(matches!(&err, Error::Conflict(m) if *m == want), "{err:?}");
        let err = store
            .save_working_copy(&author, a.id, edit.clone())
            .await
            .unwrap_err();
        let want = format!("article {} has changes in review", a.id);
        assert!(matches!(&err, Error::Conflict(m) if *m == want), "{err:?}");

        let b = store
            .decide_review(&reviewer, a.id, Decision::Approve, Some("thanks"), None)
            .await
            .unwrap();
        assert_eq!(
            (b.status, b.version, b.title.as_str(), b.body.as_str()),
            (Status::Published, 2, "Revised title", "Revised body.")
        );
        assert_eq!((b.slug.as_str(), b.owner.as_str()), ("live", "system"));
        assert_eq!(b.tags, vec!["gamma"]);
        assert_eq!(b.review_due, edit.review_due);
        assert_eq!(b.published_at, a.published_at, "first publication kept");
        assert_eq!(store.get_article(a.id).await.unwrap(), Some(b.clone()));
        assert_eq!(store.get_working_copy(a.id).await.unwrap(), None);
        let v = store.list_versions(a.id).await.unwrap();
        assert_eq!(
            (v[1].version, v[1].author.as_str(), v[1].status),
            (2, "alice", Status::Published),
            "the version is the copy author's"
        );
        let changes = store.changes_after(head, 100).await.unwrap();
        let kinds: Vec<_> = changes.iter().map(|c| (c.article_id, c.kind)).collect();
        assert_eq!(kinds, vec![(a.id, ChangeKind::Upsert)]);
        let tasks = store
            .list_tasks(&TaskFilter {
                include_done: true,
                ..TaskFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(tasks.len(), 1);
        assert_eq!(
            (tasks[0].status, tasks[0].note.as_deref()),
            (TaskStatus::Done, Some("thanks"))
        );

        // A rejected working copy keeps the note; the article is unchanged.
        let mut again = edit.clone();
        again.body = "Third body.".into();
        store.save_working_copy(&author, a.id, again).await.unwrap();
        store
            .submit_for_review(&author, a.id, "reviewer", None)
            .await
            .unwrap();
        let head = store.outbox_head().await.unwrap();
        let c = store
            .decide_review(&reviewer, a.id, Decision::Reject, Some("too terse"), None)
            .await
            .unwrap();
        assert_eq!(c, b, "a rejected working copy leaves the article alone");
        assert_eq!(store.get_article(a.id).await.unwrap(), Some(b.clone()));
        assert_eq!(store.outbox_head().await.unwrap(), head);
        let wc = store.get_working_copy(a.id).await.unwrap().unwrap();
        assert_eq!(
            (wc.status, wc.note.as_deref(), wc.body.as_str()),
            (Status::Draft, Some("too terse"), "Third body.")
        );
        // Saving again clears the note.
        let wc = store
            .save_working_copy(&author, a.id, edit.clone())
            .await
            .unwrap();
        assert_eq!(wc.note, None);
        assert_eq!(store.get_working_copy(a.id).await.unwrap(), Some(wc));

        let rows = store.list_audit(&AuditFilter::default()).await.unwrap();
        let actions: Vec<_> = rows.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            vec![
                "article.create",
                "article.draft_save",
                "article.submit",
                "article.approve",
                "article.draft_save",
                "article.submit",
                "article.reject",
                "article.draft_save"
            ]
        );
        assert_eq!(rows[1].details, serde_json::json!({ "slug": "live" }));
        assert_eq!(rows[1].target, format!("article:{}", a.id));
        assert_eq!(rows[6].details["version"], 2);
        assert_chain_verifies(&store).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn review_misuse_is_rejected_and_writes_nothing() {
    for_each_store(|store, _| async move {
        let author = user("alice", "author");
        let a = store.create_article(&author, draft("d")).await.unwrap();
        let mut p = draft("p");
        p.status = Status::Published;
        let p = store.create_article(&author, p).await.unwrap();
        let before = snapshot(&store).await;

        let err = store
            .save_working_copy(&author, a.id, draft("d"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, message }
                if field == "status" && message.contains("edit it directly")),
            "{err:?}"
        );
        let err = store
            .save_working_copy(&author, 999_999, draft("x"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err:?}");
        let mut bad = draft("p");
        bad.title = String::new();
        let err = store
            .save_working_copy(&author, p.id, bad)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "title"),
            "{err:?}"
        );
        for (id, decision) in [(a.id, Decision::Approve), (p.id, Decision::Reject)] {
            let err = store
                .decide_review(&author, id, decision, None, None)
                .await
                .unwrap_err();
            let want = format!("article {id} is not in review");
            assert!(matches!(&err, Error::Conflict(m) if *m == want), "{err:?}");
        }
        let err = store
            .decide_review(&author, 999_999, Decision::Approve, None, None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err:?}");
        let err = store
            .submit_for_review(&author, p.id, "reviewer", None)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, message }
                if field == "status" && message.starts_with("nothing to submit")),
            "{err:?}"
        );
        let err = store
            .submit_for_review(&author, 999_999, "reviewer", None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err:?}");

        assert_eq!(snapshot(&store).await, before, "failed calls write nothing");
        assert_eq!(store.get_working_copy(p.id).await.unwrap(), None);
        assert!(store
            .list_tasks(&TaskFilter {
                include_done: true,
                ..TaskFilter::default()
            })
            .await
            .unwrap()
            .is_empty());
        // A deleted article takes its working copy with it.
        store
            .save_working_copy(&author, p.id, draft("p"))
            .await
            .unwrap();
        store.delete_article(&system(), p.id).await.unwrap();
        assert_eq!(store.get_working_copy(p.id).await.unwrap(), None);
        assert_chain_verifies(&store).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_tasks_filters_and_orders() {
    for_each_store(|store, _| async move {
        let author = user("alice", "author");
        let mut ids = vec![];
        for slug in ["t1", "t2", "t3"] {
            let a = store.create_article(&author, draft(slug)).await.unwrap();
            ids.push(a.id);
        }
        let due = Utc.with_ymd_and_hms(2030, 6, 7, 8, 9, 10).unwrap();
        let t1 = store
            .submit_for_review(&author, ids[0], "legal", Some(due))
            .await
            .unwrap();
        assert_eq!(t1.due_at, Some(due));
        let t2 = store
            .submit_for_review(&author, ids[1], "reviewer", None)
            .await
            .unwrap();
        let t3 = store
            .submit_for_review(&author, ids[2], "reviewer", None)
            .await
            .unwrap();
        let err = store
            .submit_for_review(&author, ids[0], "Not A Role", None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
        store
            .decide_review(&author, ids[0], Decision::Reject, Some("no"), None)
            .await
            .unwrap();

        let ids_of = |tasks: Vec<Task>| tasks.into_iter().map(|t| t.id).collect::<Vec<_>>();
        let all = store.list_tasks(&TaskFilter::default()).await.unwrap();
        assert_eq!(ids_of(all), vec![t2.id, t3.id], "open only, oldest first");
        let mut both = for_role("reviewer");
        both.roles.push("legal".into());
        assert_eq!(
            ids_of(store.list_tasks(&both).await.unwrap()),
            vec![t2.id, t3.id]
        );
        assert!(store
            .list_tasks(&for_role("legal"))
            .await
            .unwrap()
            .is_empty());
        let mut legal_done = for_role("legal");
        legal_done.include_done = true;
        let got = store.list_tasks(&legal_done).await.unwrap();
        assert_eq!(ids_of(got.clone()), vec![t1.id]);
        assert_eq!(got[0].status, TaskStatus::Done);
        let by_article = TaskFilter {
            article_id: Some(ids[2]),
            ..TaskFilter::default()
        };
        assert_eq!(
            ids_of(store.list_tasks(&by_article).await.unwrap()),
            vec![t3.id]
        );
        let everything = TaskFilter {
            include_done: true,
            ..TaskFilter::default()
        };
        assert_eq!(
            ids_of(store.list_tasks(&everything).await.unwrap()),
            vec![t2.id, t3.id, t1.id],
            "open first, then done"
        );
        let nobody = TaskFilter {
            username: Some("zed".into()),
            include_done: true,
            ..TaskFilter::default()
        };
        assert!(store.list_tasks(&nobody).await.unwrap().is_empty());
    })
    .await;
}

/// Tasks assigned to a person are found by the user filter, alone or with
/// roles.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_tasks_finds_tasks_for_a_user() {
    for_each_store(|store, db| async move {
        let author = user("alice", "author");
        let a = store.create_article(&author, draft("u")).await.unwrap();
        let role_task = store
            .submit_for_review(&author, a.id, "reviewer", None)
            .await
            .unwrap();
        // No store call opens a personal task yet (update tasks come later),
        // so write one directly.
        let sql = format!(
            "INSERT INTO tasks (kind, article_id, assignee_user, status, created_by, created_at) \
             VALUES ('update', {}, 'bob', 'open', 'system', '2020-01-01 00:00:00+00:00')",
            a.id
        );
        db.execute(&sql, &sql).await;
        let mine = TaskFilter {
            username: Some("bob".into()),
            ..TaskFilter::default()
        };
        let got = store.list_tasks(&mine).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (
                got[0].kind,
                got[0].assignee_user.as_deref(),
                got[0].assignee_role.as_ref()
            ),
            (TaskKind::Update, Some("bob"), None)
        );
        let mut mine_and_role = for_role("reviewer");
        mine_and_role.username = Some("bob".into());
        let got = store.list_tasks(&mine_and_role).await.unwrap();
        let ids: Vec<_> = got.iter().map(|t| t.id).collect();
        assert_eq!(ids, vec![got[0].id, role_task.id], "oldest first");
        assert_eq!(got[0].kind, TaskKind::Update);
        // Deciding closes review tasks only.
        store
            .decide_review(&author, a.id, Decision::Approve, None, None)
            .await
            .unwrap();
        let got = store.list_tasks(&mine_and_role).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].kind, TaskKind::Update);
    })
    .await;
}

/// A rule spec with every field set, so a round trip checks them all.
fn full_spec(approver: &str, after_hours: u32) -> RuleSpec {
    RuleSpec {
        mandatory_fields: vec!["summary".into(), "tags".into()],
        min_lengths: [("title".to_string(), 5), ("body".to_string(), 200)]
            .into_iter()
            .collect(),
        review_interval_days: Some(90),
        approver_role: Some(approver.into()),
        escalation: vec![
            EscalationStep {
                after_hours,
                to_role: Some("lead".into()),
                to_user: None,
            },
            EscalationStep {
                after_hours: after_hours * 2,
                to_role: None,
                to_user: Some("boss".into()),
            },
        ],
    }
}

/// Rules are versioned per category: each save is a new version, reads
/// return the latest, history keeps them all, and every save is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn category_rules_are_versioned_and_audited() {
    for_each_store(|store, _| async move {
        let admin = user("root", "admin");
        assert_eq!(store.get_rule("tax").await.unwrap(), None);
        assert!(store.list_rules().await.unwrap().is_empty());
        assert!(store.rule_history("tax").await.unwrap().is_empty());

        let v1 = full_spec("reviewer", 24);
        let first = store.save_rule(&admin, "tax", &v1).await.unwrap();
        assert_eq!(
            (
                first.category.as_str(),
                first.version,
                first.updated_by.as_str()
            ),
            ("tax", 1, "root")
        );
        let v2 = full_spec("tax-reviewer", 48);
        let second = store.save_rule(&system(), "tax", &v2).await.unwrap();
        assert_eq!(second.version, 2);
        assert_eq!(second.spec, v2);
        // What save returns is exactly what is stored (times round-trip).
        assert_eq!(store.get_rule("tax").await.unwrap(), Some(second.clone()));
        let global = RuleSpec::default();
        let star = store.save_rule(&admin, "*", &global).await.unwrap();
        assert_eq!(star.version, 1, "versions count per category");

        assert_eq!(store.get_rule("*").await.unwrap(), Some(star.clone()));
        assert_eq!(store.get_rule("nope").await.unwrap(), None);
        assert_eq!(
            store.list_rules().await.unwrap(),
            vec![star.clone(), second.clone()],
            "latest per category, by category"
        );
        assert_eq!(
            store.rule_history("tax").await.unwrap(),
            vec![first.clone(), second.clone()]
        );
        assert!(store.rule_history("nope").await.unwrap().is_empty());

        let rows = store.list_audit(&AuditFilter::default()).await.unwrap();
        let saves: Vec<_> = rows
            .iter()
            .map(|e| (e.action.as_str(), e.target.as_str(), e.actor.as_str()))
            .collect();
        assert_eq!(
            saves,
            vec![
                ("rule.save", "rule:tax", "root"),
                ("rule.save", "rule:tax", system().username.as_str()),
                ("rule.save", "rule:*", "root"),
            ]
        );
        assert_eq!(rows[1].details["version"], 2);
        let audited: RuleSpec = serde_json::from_value(rows[1].details["spec"].clone()).unwrap();
        assert_eq!(audited, v2);
        assert_chain_verifies(&store).await;
    })
    .await;
}

/// A filter for one role's open tasks.
fn for_role(role: &str) -> TaskFilter {
    TaskFilter {
        roles: vec![role.into()],
        ..TaskFilter::default()
    }
}

/// Asserts that the whole audit chain verifies.
async fn assert_chain_verifies(store: &Store) {
    let report = engine::store::audit::verify(store).await.unwrap();
    assert_eq!(report.first_broken, None);
    assert!(report.rows > 0);
}

/// Every audit row's details, as text, for leak checks.
async fn audit_details(store: &Store) -> Vec<String> {
    let rows = store.list_audit(&AuditFilter::default()).await.unwrap();
    rows.iter().map(|e| e.details.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passwords_are_stored_and_never_audited() {
    for_each_store(|store, _| async move {
        let admin = user("root", "admin");
        let u = store
            .create_user(&admin, "pat", "Pat", &["author".into()])
            .await
            .unwrap();
        store
            .create_user(&admin, "tok", "Token Only", &[])
            .await
            .unwrap();
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$secret-password-hash";
        assert_eq!(store.password_hash("pat").await.unwrap(), None);
        store
            .set_password(&admin, "pat", "first-hash")
            .await
            .unwrap();
        store.set_password(&admin, "pat", hash).await.unwrap();
        let (p, got) = store.password_hash("pat").await.unwrap().expect("hash set");
        assert_eq!(got, hash, "the second call replaced the first");
        assert_eq!(p.user_id, Some(u.id));
        assert_eq!(p.username, "pat");
        assert_eq!(p.roles, vec!["author"]);
        assert_eq!(store.password_hash("tok").await.unwrap(), None);
        assert_eq!(store.password_hash("nobody").await.unwrap(), None);

        let before = snapshot(&store).await;
        let err = store
            .set_password(&admin, "nobody", hash)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err:?}");
        assert_eq!(
            snapshot(&store).await,
            before,
            "a failed set writes nothing"
        );

        // Users keep their shape.
        assert_eq!(store.get_user("pat").await.unwrap(), Some(u.clone()));
        assert!(store.list_users().await.unwrap().contains(&u));

        let rows = store.list_audit(&AuditFilter::default()).await.unwrap();
        let sets: Vec<_> = rows
            .iter()
            .filter(|e| e.action == "user.set_password")
            .collect();
        assert_eq!(sets.len(), 2);
        assert!(sets
            .iter()
            .all(|e| e.target == "user:pat" && e.actor == "root" && e.details == json!({})));
        for d in audit_details(&store).await {
            assert!(!d.contains("secret-password-hash") && !d.contains("first-hash"));
        }
        assert_chain_verifies(&store).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_resolve_expire_and_delete() {
    for_each_store(|store, db| async move {
        let admin = user("root", "admin");
        let u = store
            .create_user(&admin, "sam", "Sam", &["reviewer".into()])
            .await
            .unwrap();
        let sam = engine::auth::Principal {
            user_id: Some(u.id),
            username: "sam".into(),
            roles: u.roles.clone(),
        };
        let later = Utc::now() + chrono::Duration::hours(8);
        store
            .create_session(&sam, "sid-hash-live", "csrf-live", later)
            .await
            .unwrap();
        for _ in 0..2 {
            // The second look-up skips the last-seen write but finds the same.
            let (p, csrf) = store
                .session("sid-hash-live")
                .await
                .unwrap()
                .expect("session resolves");
            assert_eq!(p, sam);
            assert_eq!(csrf, "csrf-live");
        }
        assert_eq!(store.session("unknown").await.unwrap(), None);

        // An expired session is not returned, and the next sign-in of the
        // same user clears it out.
        let past = Utc::now() - chrono::Duration::minutes(5);
        store
            .create_session(&sam, "sid-hash-old", "csrf-old", past)
            .await
            .unwrap();
        assert_eq!(store.session("sid-hash-old").await.unwrap(), None);
        store
            .create_session(&sam, "sid-hash-new", "csrf-new", later)
            .await
            .unwrap();
        assert!(store.session("sid-hash-new").await.unwrap().is_some());
        let before = snapshot(&store).await;
        store.delete_session(&sam, "sid-hash-old").await.unwrap();
        assert_eq!(
            snapshot(&store).await,
            before,
            "the expired session was already gone: no audit row"
        );

        // A session needs a stored user.
        let err = store
            .create_session(&system(), "sid-y", "c", later)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
        let ghost = engine::auth::Principal {
            user_id: Some(u.id + 1000),
            username: "ghost".into(),
            roles: vec![],
        };
        let err = store
            .create_session(&ghost, "sid-z", "c", later)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err:?}");

        store.delete_session(&sam, "sid-hash-live").await.unwrap();
        assert_eq!(store.session("sid-hash-live").await.unwrap(), None);
        let before = snapshot(&store).await;
        store.delete_session(&sam, "sid-hash-live").await.unwrap();
        assert_eq!(
            snapshot(&store).await,
            before,
            "a second delete audits nothing"
        );

        let rows = store.list_audit(&AuditFilter::default()).await.unwrap();
        let sessions: Vec<_> = rows
            .iter()
            .filter(|e| e.action.starts_with("session."))
            .map(|e| (e.action.as_str(), e.actor.as_str(), e.target.as_str()))
            .collect();
        assert_eq!(
            sessions,
            vec![
                ("session.create", "sam", "user:sam"),
                ("session.create", "sam", "user:sam"),
                ("session.create", "sam", "user:sam"),
                ("session.delete", "sam", "user:sam"),
            ]
        );
        for d in audit_details(&store).await {
            assert!(!d.contains("sid-hash") && !d.contains("csrf-"), "{d}");
        }
        assert_chain_verifies(&store).await;

        // Deleting the user (no store method yet: raw SQL) removes its
        // sessions with it.
        let delete = format!("DELETE FROM users WHERE id = {}", u.id);
        db.execute(&delete, &delete).await;
        assert_eq!(store.session("sid-hash-new").await.unwrap(), None);
        // The insert fails (and `execute` panics) if any session is left.
        let none_left = "CREATE TEMP TABLE left_over (n BIGINT CHECK (n = 0)); \
                         INSERT INTO left_over SELECT COUNT(*) FROM sessions;";
        db.execute(none_left, none_left).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_events_extend_the_chain() {
    for_each_store(|store, _| async move {
        store
            .create_article(&system(), draft("before-event"))
            .await
            .unwrap();
        store
            .audit_event(
                "mallory",
                "auth.sign_in_failed",
                "user:mallory",
                json!({"ip": "10.0.0.1"}),
            )
            .await
            .unwrap();
        store
            .audit_event("root", "article.export", "articles", json!({}))
            .await
            .unwrap();
        let rows = store.list_audit(&AuditFilter::default()).await.unwrap();
        assert_eq!(rows.len(), 3);
        let last: Vec<_> = rows[1..]
            .iter()
            .map(|e| (e.actor.as_str(), e.action.as_str(), e.target.as_str()))
            .collect();
        assert_eq!(
            last,
            vec![
                ("mallory", "auth.sign_in_failed", "user:mallory"),
                ("root", "article.export", "articles"),
            ]
        );
        assert_eq!(rows[1].details, json!({"ip": "10.0.0.1"}));
        verify_chain(&rows);
        assert_chain_verifies(&store).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mark_overdue_flags_published_articles_past_review() {
    for_each_store(|store, _| async move {
        let (author, job) = (user("alice", "author"), system());
        let past = Utc.with_ymd_and_hms(2020, 1, 2, 3, 4, 5).unwrap();
        let future = Utc.with_ymd_and_hms(2099, 1, 2, 3, 4, 5).unwrap();
        let task_due = Utc.with_ymd_and_hms(2031, 3, 4, 5, 6, 7).unwrap();
        let mut created = vec![];
        for (slug, status, review_due) in [
            ("overdue", Status::Published, Some(past)),
            ("not-yet", Status::Published, Some(future)),
            ("no-date", Status::Published, None),
            ("draft-overdue", Status::Draft, Some(past)),
        ] {
            let mut d = draft(slug);
            (d.status, d.review_due) = (status, review_due);
            created.push(store.create_article(&author, d).await.unwrap());
        }
        let overdue = created[0].clone();
        let head = store.outbox_head().await.unwrap();
        let all_tasks = TaskFilter {
            include_done: true,
            ..TaskFilter::default()
        };

        let changed = store.mark_overdue(&job, Utc::now(), task_due).await;
        assert_eq!(changed.unwrap(), vec![overdue.id]);
        let a = store.get_article(overdue.id).await.unwrap().unwrap();
        assert_eq!((a.status, a.version), (Status::NeedsUpdate, 2));
        assert_eq!(
            (a.review_due, a.published_at),
            (Some(past), overdue.published_at)
        );
        for other in &created[1..] {
            let got = store.get_article(other.id).await.unwrap();
            assert_eq!(got.as_ref(), Some(other), "{} untouched", other.slug);
        }
        let versions = store.list_versions(overdue.id).await.unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(
            (
                versions[1].version,
                versions[1].status,
                versions[1].author.as_str()
            ),
            (2, Status::NeedsUpdate, "system")
        );
        let changes = store.changes_after(head, 100).await.unwrap();
        let changes: Vec<_> = changes.iter().map(|c| (c.article_id, c.kind)).collect();
        assert_eq!(changes, vec![(overdue.id, ChangeKind::Upsert)]);

        let tasks = store.list_tasks(&all_tasks).await.unwrap();
        assert_eq!(tasks.len(), 1);
        let t = &tasks[0];
        assert_eq!(
            (t.kind, t.article_id, t.status),
            (TaskKind::Update, overdue.id, TaskStatus::Open)
        );
        assert_eq!(
            (t.assignee_role.as_deref(), t.assignee_user.as_deref()),
            (None, Some("alice"))
        );
        assert_eq!(
            (t.created_by.as_str(), t.due_at),
            ("system", Some(task_due))
        );
        let mine = TaskFilter {
            username: Some("alice".into()),
            ..TaskFilter::default()
        };
        assert_eq!(store.list_tasks(&mine).await.unwrap(), tasks);

        let audit = store.list_audit(&AuditFilter::default()).await.unwrap();
        let last = audit.last().unwrap();
        assert_eq!(
            (last.actor.as_str(), last.action.as_str()),
            ("system", "article.needs_update")
        );
        assert_eq!(last.target, format!("article:{}", overdue.id));
        let want = json!({ "slug": "overdue", "version": 2, "review_due": past });
        assert_eq!(last.details, want);

        // Already needs_update: a second run changes nothing.
        let before = snapshot(&store).await;
        let again = store.mark_overdue(&job, Utc::now(), task_due).await;
        assert!(again.unwrap().is_empty());
        assert_eq!(snapshot(&store).await, before);
        assert_eq!(store.list_tasks(&all_tasks).await.unwrap(), tasks);
        assert_eq!(store.list_versions(overdue.id).await.unwrap().len(), 2);
        assert_chain_verifies(&store).await;
    })
    .await;
}

/// The given names as owned strings.
fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notifications_are_deduplicated_listed_and_marked_read() {
    for_each_store(|store, _| async move {
        assert_eq!(
            store
                .notify(&[], "approved", None, None, "x")
                .await
                .unwrap(),
            0
        );
        let to = names(&["alice", "bob", "alice"]);
        let sent = store.notify(&to, "review_requested", Some(7), Some(3), "first");
        assert_eq!(sent.await.unwrap(), 2);
        let alice_only = names(&["alice"]);
        let sent = store.notify(&alice_only, "approved", Some(7), None, "second");
        assert_eq!(sent.await.unwrap(), 1);
        let sent = store.notify(&alice_only, "rejected", None, None, "third");
        assert_eq!(sent.await.unwrap(), 1);

        // Newest first, one row per recipient.
        let alice = store.list_notifications("alice", false, 50).await.unwrap();
        let texts: Vec<&str> = alice.iter().map(|n| n.message.as_str()).collect();
        assert_eq!(texts, ["third", "second", "first"]);
        let first = &alice[2];
        assert_eq!(
            (first.recipient.as_str(), first.kind.as_str()),
            ("alice", "review_requested")
        );
        assert_eq!((first.article_id, first.task_id), (Some(7), Some(3)));
        assert_eq!(first.read_at, None);
        assert_eq!((alice[1].article_id, alice[1].task_id), (Some(7), None));
        assert_eq!((alice[0].article_id, alice[0].task_id), (None, None));
        assert!(alice.windows(2).all(|w| w[0].created_at >= w[1].created_at));
        let bob = store.list_notifications("bob", false, 50).await.unwrap();
        assert_eq!(bob.len(), 1);
        assert_eq!(bob[0].message, "first");
        // The limit is clamped to at least one.
        let one = store.list_notifications("alice", false, 0).await.unwrap();
        assert_eq!(one, alice[..1]);
        assert_eq!(store.unread_notifications("alice").await.unwrap(), 3);
        assert_eq!(store.unread_notifications("bob").await.unwrap(), 1);
        assert_eq!(store.unread_notifications("carol").await.unwrap(), 0);

        // By ids: bob's id is ignored; an empty list changes nothing.
        let ids = [alice[0].id, alice[2].id, bob[0].id];
        assert_eq!(
            store
                .mark_notifications_read("alice", Some(&ids))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store
                .mark_notifications_read("alice", Some(&[]))
                .await
                .unwrap(),
            0
        );
        assert_eq!(store.unread_notifications("alice").await.unwrap(), 1);
        assert_eq!(store.unread_notifications("bob").await.unwrap(), 1);
        let unread = store.list_notifications("alice", true, 50).await.unwrap();
        assert_eq!(unread.len(), 1);
        assert_eq!(unread[0].id, alice[1].id);
        let all = store.list_notifications("alice", false, 50).await.unwrap();
        assert!(all[0].read_at.is_some() && all[2].read_at.is_some());
        assert_eq!(all[1].read_at, None);
        // Already read: marking again changes nothing.
        let again = store.mark_notifications_read("alice", Some(&ids)).await;
        assert_eq!(again.unwrap(), 0);

        // All of them.
        assert_eq!(
            store.mark_notifications_read("alice", None).await.unwrap(),
            1
        );
        assert_eq!(
            store.mark_notifications_read("alice", None).await.unwrap(),
            0
        );
        assert_eq!(store.unread_notifications("alice").await.unwrap(), 0);
        assert!(store
            .list_notifications("alice", true, 50)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.unread_notifications("bob").await.unwrap(), 1);
        // Notifications append no audit rows.
        assert!(audit_details(&store).await.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn escalation_steps_are_sent_exactly_once() {
    for_each_store(|store, _| async move {
        let job = system();
        let to = names(&["lead", "editor", "lead"]);
        let sent = store.escalate(&job, 11, 1, &to, 5, "task 11 is overdue");
        assert!(sent.await.unwrap());
        let before = snapshot(&store).await;
        let again = store.escalate(&job, 11, 1, &to, 5, "task 11 is overdue");
        assert!(!again.await.unwrap());
        assert_eq!(snapshot(&store).await, before);

        let lead = store.list_notifications("lead", false, 50).await.unwrap();
        assert_eq!(lead.len(), 1);
        let n = &lead[0];
        assert_eq!(n.kind, "escalation");
        assert_eq!((n.article_id, n.task_id), (Some(5), Some(11)));
        assert_eq!(n.message, "task 11 is overdue");
        assert_eq!(store.unread_notifications("editor").await.unwrap(), 1);

        let audit = store.list_audit(&AuditFilter::default()).await.unwrap();
        assert_eq!(audit.len(), 1);
        let a = &audit[0];
        assert_eq!(
            (a.actor.as_str(), a.action.as_str(), a.target.as_str()),
            ("system", "task.escalate", "task:11")
        );
        assert_eq!(
            a.details,
            json!({ "step": 1, "recipients": ["lead", "editor"] })
        );

        // The next step sends again; so does the same step of another task.
        assert!(store
            .escalate(&job, 11, 2, &names(&["lead"]), 5, "still overdue")
            .await
            .unwrap());
        assert!(store
            .escalate(&job, 12, 1, &names(&["editor"]), 6, "late")
            .await
            .unwrap());
        assert_eq!(store.unread_notifications("lead").await.unwrap(), 2);
        assert_eq!(store.unread_notifications("editor").await.unwrap(), 2);
        let latest = store.list_notifications("lead", false, 50).await.unwrap();
        assert_eq!(latest[0].message, "still overdue");
        let audit = store.list_audit(&AuditFilter::default()).await.unwrap();
        let actions: Vec<_> = audit
            .iter()
            .map(|e| (e.action.as_str(), e.target.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("task.escalate", "task:11"),
                ("task.escalate", "task:11"),
                ("task.escalate", "task:12")
            ]
        );
        assert_eq!(
            audit[1].details,
            json!({ "step": 2, "recipients": ["lead"] })
        );
        assert_chain_verifies(&store).await;
    })
    .await;
}
