//! Store conformance, the delivery outbox (issue 4): what a notification
//! and a publication enqueue, that enqueueing is idempotent, that a claim
//! is exclusive while its lease runs, and how outcomes are recorded. Both
//! the SQLite and the Postgres store (see [`for_each_store`]).

use chrono::{Duration, Utc};
use engine::model::{Channel, Channels, Contact, Status};
use engine::store::Store;

use crate::common::{draft, for_each_store, system};
use crate::store_support::assert_chain_verifies;

async fn with_addresses(store: &Store) {
    for (name, email, hook) in [
        (
            "ann",
            Some("ann@example.org"),
            Some("http://127.0.0.1:9/ann"),
        ),
        ("bob", Some("bob@example.org"), None),
        ("cid", None, None),
    ] {
        let roles = vec!["reviewer".to_string()];
        store
            .create_user(&system(), name, name, &roles)
            .await
            .unwrap();
        let c = Contact {
            email: email.map(String::from),
            webhook_url: hook.map(String::from),
        };
        let u = store.set_contact(&system(), name, &c).await.unwrap();
        assert_eq!(u.email.as_deref(), email);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_4_notifications_enqueue_deliveries_once_per_channel() {
    for_each_store(|store, _| async move {
        with_addresses(&store).await;
        let to: Vec<String> = ["ann", "bob", "cid"].map(String::from).to_vec();
        // Channels off: in-app only.
        store
            .notify(&to, "approved", Some(1), None, "m")
            .await
            .unwrap();
        assert!(store.list_deliveries().await.unwrap().is_empty());
        let store = store.with_channels(Channels {
            email: true,
            webhook: true,
        });
        store
            .notify(&to, "approved", Some(1), None, "m")
            .await
            .unwrap();
        let mut got: Vec<(String, &str)> = store
            .list_deliveries()
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.delivery.recipient, d.delivery.channel.as_str()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("ann".to_string(), "email"),
                ("ann".to_string(), "webhook"),
                ("bob".to_string(), "email")
            ]
        );
        // An escalation step twice: its deliveries once.
        for _ in 0..2 {
            store
                .escalate(&system(), 7, 0, &to, 1, "late")
                .await
                .unwrap();
        }
        let esc: Vec<_> = store
            .list_deliveries()
            .await
            .unwrap()
            .into_iter()
            .filter(|d| d.delivery.event_key == "escalation:task:7:step:0")
            .collect();
        assert_eq!(esc.len(), 3);
        assert_eq!(esc[0].delivery.payload["step"], 1);
        assert_eq!(esc[0].delivery.payload["message"], "late");
        assert_chain_verifies(&store).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_4_publications_enqueue_per_subscription_and_claims_are_leased() {
    for_each_store(|store, _| async move {
        let hook = store
            .create_webhook(&system(), "general", "http://127.0.0.1:9/h", "s3cret")
            .await
            .unwrap();
        assert_eq!(hook.secret.as_deref(), Some("s3cret"));
        assert_eq!(
            store.webhook_secret(hook.id).await.unwrap().as_deref(),
            Some("s3cret")
        );
        // A draft notifies nobody; a published version does, per version.
        let a = store.create_article(&system(), draft("d1")).await.unwrap();
        assert!(store.list_deliveries().await.unwrap().is_empty());
        let mut d = draft("d1");
        d.status = Status::Published;
        store
            .update_article(&system(), a.id, d.clone(), None)
            .await
            .unwrap();
        store
            .update_article(&system(), a.id, d, None)
            .await
            .unwrap();
        let rows = store.list_deliveries().await.unwrap();
        let keys: Vec<&str> = rows.iter().map(|r| r.delivery.event_key.as_str()).collect();
        assert_eq!(
            keys,
            [
                format!("published:article:{}:version:2", a.id),
                format!("published:article:{}:version:3", a.id)
            ]
        );
        assert_eq!(rows[0].delivery.channel, Channel::CategoryWebhook);
        assert_eq!(rows[0].delivery.subscription_id, Some(hook.id));
        let feed = store.recently_published("general").await.unwrap();
        assert_eq!(feed.len(), 1);

        // Claims are exclusive while leased, counted, and released by outcomes.
        let now = Utc::now();
        let lease = now + Duration::seconds(60);
        let first = store.claim_deliveries(now, lease, 10).await.unwrap();
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|d| d.attempts == 1));
        assert!(store
            .claim_deliveries(now, lease, 10)
            .await
            .unwrap()
            .is_empty());
        store.delivery_done(first[0].id, now, Ok(())).await.unwrap();
        let retry_at = now + Duration::seconds(30);
        store
            .delivery_done(first[1].id, now, Err(("503", Some(retry_at))))
            .await
            .unwrap();
        let early = store.claim_deliveries(now + Duration::seconds(10), lease, 10);
        assert!(early.await.unwrap().is_empty(), "not before its retry time");
        let later = now + Duration::seconds(31);
        let again = store.claim_deliveries(later, later + Duration::seconds(60), 10);
        let again = again.await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].id, again[0].attempts), (first[1].id, 2));
        store
            .delivery_done(again[0].id, later, Err(("gone", None)))
            .await
            .unwrap();
        let states = store.list_deliveries().await.unwrap();
        assert!(states[0].delivered_at.is_some());
        assert!(states[1].failed_at.is_some());
        assert_eq!(states[1].last_error.as_deref(), Some("gone"));
        let far = now + Duration::days(9);
        assert!(store
            .claim_deliveries(far, far, 10)
            .await
            .unwrap()
            .is_empty());

        store
            .delete_webhook(&system(), "general", hook.id)
            .await
            .unwrap();
        assert!(store.list_webhooks("general").await.unwrap().is_empty());
        assert!(store
            .delete_webhook(&system(), "general", hook.id)
            .await
            .is_err());
        assert_chain_verifies(&store).await;
    })
    .await;
}
