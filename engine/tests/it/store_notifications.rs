//! Store conformance, notifications: deduplicated delivery, listing and
//! read marks, and escalation steps sent exactly once. Every behaviour is
//! checked against both the SQLite and the Postgres store (see
//! [`for_each_store`]).

use engine::store::AuditFilter;
use serde_json::json;

use crate::common::{for_each_store, system};
use crate::store_support::{assert_chain_verifies, audit_details, snapshot};

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
