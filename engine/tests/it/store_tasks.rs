//! Store conformance, tasks and rules: task lists and their filters,
//! versioned category rules, and the review-date job. Every behaviour is
//! checked against both the SQLite and the Postgres store (see
//! [`for_each_store`]).

use chrono::{TimeZone, Utc};
use engine::error::Error;
use engine::model::{
    ChangeKind, Decision, EscalationStep, RuleSpec, Status, Task, TaskKind, TaskStatus,
};
use engine::store::{AuditFilter, TaskFilter};
use serde_json::json;

use crate::common::{draft, for_each_store, system, user};
use crate::store_support::{assert_chain_verifies, for_role, snapshot};

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
