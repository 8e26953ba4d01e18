//! Usage (issue 5) against both stores: the batching sink, privacy of
//! stored searches, per-(user, article) interactions for trainers, ratings
//! and read assignments completed by views.

use std::time::Duration;

use chrono::{Duration as Span, Utc};
use engine::auth::Principal;
use engine::model::{
    Assignee, AssignmentKind, ClickEvent, SearchEvent, Status, UsageEvent, UsageFilter, ViewEvent,
    ViewSource,
};
use engine::usage::{EventSink, SinkConfig};

use crate::common::{draft, for_each_store, system};

fn view(user: Option<i64>, article: i64, at: chrono::DateTime<Utc>) -> UsageEvent {
    UsageEvent::View(ViewEvent {
        at,
        user_id: user,
        article_id: article,
        source: ViewSource::Server,
        dwell_ms: None,
    })
}

fn search(id: &str, user: Option<i64>, q: &str) -> UsageEvent {
    UsageEvent::Search(SearchEvent {
        id: id.into(),
        at: Utc::now(),
        user_id: user,
        query: q.into(),
        filters: vec!["category:collections".into()],
        mode: "lexical".into(),
        result_count: 3,
        latency_ms: 1.5,
    })
}

async fn published(store: &engine::store::Store, slug: &str) -> i64 {
    let mut d = draft(slug);
    d.status = Status::Published;
    store.create_article(&system(), d).await.unwrap().id
}

/// Events beyond the queue are dropped and counted, never waited for;
/// every accepted event is stored, in batches, by the time shutdown
/// returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_5_sink_drops_when_full_and_shutdown_loses_nothing_accepted() {
    for_each_store(|store, _| async move {
        let id = published(&store, "levy").await;
        let config = SinkConfig {
            queue: 50,
            batch: 7,
            flush_interval: Duration::from_secs(3600),
        };
        let (sink, writer) = EventSink::new(config);
        // The writer is not running yet: the channel fills up.
        let accepted = (0..60)
            .filter(|_| sink.record(view(None, id, Utc::now())))
            .count();
        assert_eq!(accepted, 50);
        assert_eq!(
            sink.stats()
                .dropped
                .load(std::sync::atomic::Ordering::Relaxed),
            10
        );
        assert_eq!(sink.queued(), 50);
        tokio::spawn(writer.unwrap().run(store.clone()));
        sink.shutdown().await;
        let stats = sink.stats();
        assert_eq!(
            stats.recorded.load(std::sync::atomic::Ordering::Relaxed),
            50
        );
        assert_eq!(stats.failed.load(std::sync::atomic::Ordering::Relaxed), 0);
        let rows = store.article_usage(&UsageFilter::default()).await.unwrap();
        assert_eq!(rows[0].uses, 50);
        assert!(
            !sink.record(view(None, id, Utc::now())),
            "stopped sinks accept nothing"
        );
        // A running sink flushes on demand.
        let sink = EventSink::start(store.clone(), config);
        assert!(sink.record(view(None, id, Utc::now())));
        sink.flush().await;
        let rows = store.article_usage(&UsageFilter::default()).await.unwrap();
        assert_eq!(rows[0].uses, 51);
        // A disabled sink records nothing.
        assert!(!EventSink::disabled().record(view(None, id, Utc::now())));
    })
    .await;
}

/// Searches and clicks keep their user only for users who opted in;
/// opting out forgets; the per-(user, article) totals count everyone's
/// views, clicks and dwell, joined with ratings and votes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_5_store_keeps_queries_without_identity_unless_opted_in() {
    for_each_store(|store, _| async move {
        let sys = system();
        let alice = store
            .create_user(&sys, "alice", "Alice", &["viewer".into()])
            .await
            .unwrap();
        let bob = store
            .create_user(&sys, "bob", "Bob", &["viewer".into()])
            .await
            .unwrap();
        let id = published(&store, "levy").await;
        assert!(
            !store.keeps_search_history(alice.id).await.unwrap(),
            "off by default"
        );
        store.set_search_history(alice.id, true).await.unwrap();
        let now = Utc::now();
        let dwell = UsageEvent::View(ViewEvent {
            at: now,
            user_id: Some(bob.id),
            article_id: id,
            source: ViewSource::Client,
            dwell_ms: Some(4000),
        });
        let click = |sid: &str, user: i64| {
            UsageEvent::Click(ClickEvent {
                at: now,
                user_id: Some(user),
                search_id: Some(sid.into()),
                article_id: id,
                position: 0,
            })
        };
        let events = vec![
            search("s1", Some(alice.id), "Levy  Notice"),
            search("s2", Some(bob.id), "levy notice"),
            click("s1", alice.id),
            click("s2", bob.id),
            view(Some(bob.id), id, now),
            dwell,
        ];
        store.record_usage(&events).await.unwrap();
        let mine = store.search_history(alice.id, 10).await.unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].query, "Levy  Notice");
        assert!(store.search_history(bob.id, 10).await.unwrap().is_empty());
        let stats = store.query_stats(Default::default(), 10).await.unwrap();
        assert_eq!(stats.len(), 1, "normalised together: {stats:?}");
        assert_eq!(
            (
                stats[0].searches,
                stats[0].clicked_searches,
                stats[0].clicks
            ),
            (2, 2, 2)
        );
        store.set_rating(bob.id, id, 4).await.unwrap();
        store.set_rating(bob.id, id, 2).await.unwrap();
        store.set_helpful(alice.id, id, true).await.unwrap();
        let pairs = store.scan_interactions((0, 0), 100).await.unwrap();
        let got: Vec<_> = pairs
            .iter()
            .map(|i| (i.user_id, i.views, i.clicks, i.dwell_ms, i.stars, i.helpful))
            .collect();
        assert_eq!(
            got,
            vec![
                (alice.id, 0, 1, 0, None, Some(true)),
                (bob.id, 1, 1, 4000, Some(2), None),
            ]
        );
        let summary = store.rating_summary(Some(bob.id), id).await.unwrap();
        assert_eq!(
            (summary.your_stars, summary.ratings, summary.average),
            (Some(2), 1, Some(2.0))
        );
        // Opting out removes her identity from what was stored.
        store.set_search_history(alice.id, false).await.unwrap();
        assert!(store.search_history(alice.id, 10).await.unwrap().is_empty());
        assert_eq!(
            store.query_stats(Default::default(), 10).await.unwrap()[0].searches,
            2
        );
    })
    .await;
}

/// A read assignment is completed by a view made after it, not before;
/// assigning again reopens it; feedback opens the owner's update task.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_5_store_read_assignment_done_by_a_later_view() {
    for_each_store(|store, _| async move {
        let sys = system();
        let vera = store
            .create_user(&sys, "vera", "Vera", &["viewer".into()])
            .await
            .unwrap();
        let id = published(&store, "levy").await;
        let before = Utc::now() - Span::minutes(5);
        let who = [Assignee {
            user_id: vera.id,
            username: "vera".into(),
            via_role: None,
        }];
        let rows = store
            .assign(&sys, id, AssignmentKind::Read, &who)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].done_at.is_none());
        store
            .record_usage(&[view(Some(vera.id), id, before)])
            .await
            .unwrap();
        let rows = store.article_assignments(id).await.unwrap();
        assert!(
            rows[0].done_at.is_none(),
            "a view before the assignment does not count"
        );
        let at = Utc::now() + Span::seconds(1);
        store
            .record_usage(&[view(Some(vera.id), id, at)])
            .await
            .unwrap();
        let rows = store.article_assignments(id).await.unwrap();
        assert!(rows[0].done_at.is_some());
        assert!(store
            .user_assignments(vera.id, false)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store.user_assignments(vera.id, true).await.unwrap().len(),
            1
        );
        store
            .assign(&sys, id, AssignmentKind::Read, &who)
            .await
            .unwrap();
        assert_eq!(
            store.user_assignments(vera.id, false).await.unwrap().len(),
            1,
            "reopened"
        );

        let article = store.get_article(id).await.unwrap().unwrap();
        let p = Principal {
            user_id: Some(vera.id),
            username: "vera".into(),
            roles: vec!["viewer".into()],
        };
        let f = store
            .add_feedback(&p, &article, "outdated", Utc::now() + Span::days(14))
            .await
            .unwrap();
        let tasks = store
            .list_tasks(&engine::store::TaskFilter {
                username: Some(article.owner.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        let task = tasks.iter().find(|t| t.id == f.task_id).unwrap();
        assert_eq!(task.kind, engine::model::TaskKind::Update);
        assert_eq!(task.note.as_deref(), Some("feedback from vera: outdated"));
        let report = store.article_usage(&UsageFilter::default()).await.unwrap();
        assert_eq!(
            (report[0].uses, report[0].unique_readers, report[0].feedback),
            (2, 1, 1)
        );
    })
    .await;
}
