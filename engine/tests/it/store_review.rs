//! Store conformance, review: submitting and deciding new articles and
//! working copies, and rejecting misuse. Every behaviour is checked against
//! both the SQLite and the Postgres store (see [`for_each_store`]).

use chrono::{TimeZone, Utc};
use engine::error::Error;
use engine::model::{ChangeKind, Decision, Status, TaskKind, TaskStatus};
use engine::store::{AuditFilter, TaskFilter};

use crate::common::{draft, for_each_store, system, user};
use crate::store_support::{assert_chain_verifies, for_role, snapshot};

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
