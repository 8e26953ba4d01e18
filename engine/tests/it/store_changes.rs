//! Store conformance, change propagation: the outbox, concurrent writers,
//! and the change signal seen by this and other handles. Every behaviour is
//! checked against both the SQLite and the Postgres store (see
//! [`for_each_store`]).

use std::collections::HashSet;
use std::time::Duration;

use engine::model::ChangeKind;
use engine::store::AuditFilter;
use engine::testutil::PgTestDb;

use crate::common::{close, draft, for_each_store, system, TestDb};
use crate::store_support::verify_chain;

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
