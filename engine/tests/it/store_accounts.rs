//! Store conformance, accounts and audit: users, roles, tokens, passwords,
//! sessions, and the audit chain. Every behaviour is checked against both
//! the SQLite and the Postgres store (see [`for_each_store`]).

use chrono::Utc;
use engine::error::Error;
use engine::store::AuditFilter;
use serde_json::json;

use crate::common::{draft, for_each_store, system, user};
use crate::store_support::{assert_chain_verifies, audit_details, snapshot, verify_chain};

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
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page, rows[2..5].to_vec());
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
