//! Issue 4: notifications outside the application — e-mail and users'
//! webhooks (SMS gateways) — delivered exactly once per (task, step,
//! recipient, channel), across retries, restarts and two schedulers. Real
//! receivers on loopback ports (`receivers.rs`); time comes from a test
//! clock, never from sleeping. Publication channels are in `promote.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use engine::auth::Principal;
use engine::model::{ArticleDraft, Channel, Channels, Contact, RuleSpec, Status, User};
use engine::notify::deliver::{Deliverer, DeliveryConfig, RunReport};
use engine::store::Store;
use serde_json::json;

use crate::harness::{Backend, TestStore};
use crate::receivers::{SmtpSink, TestClock, WebhookReceiver};

pub(crate) const SECRET: &str = "server-wide-test-secret";

pub(crate) fn h(n: i64) -> Duration {
    Duration::hours(n)
}

pub(crate) fn principal(u: &User) -> Principal {
    Principal {
        user_id: Some(u.id),
        username: u.username.clone(),
        roles: u.roles.clone(),
    }
}

pub(crate) fn config(smtp: Option<&SmtpSink>) -> DeliveryConfig {
    DeliveryConfig {
        smtp_url: smtp.map(SmtpSink::url),
        smtp_from: "kmt@example.org".into(),
        webhook_secret: Some(SECRET.into()),
        max_attempts: 5,
        timeout: std::time::Duration::from_secs(5),
    }
}

pub(crate) fn deliverer(store: &Store, clock: &Arc<TestClock>, cfg: DeliveryConfig) -> Deliverer {
    Deliverer::new(store.clone(), clock.clone(), cfg).unwrap()
}

/// Creates a user with optional addresses.
pub(crate) async fn user(
    store: &Store,
    name: &str,
    roles: &[&str],
    email: bool,
    hook: Option<String>,
) -> User {
    let system = Principal::system();
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    store
        .create_user(&system, name, name, &roles)
        .await
        .unwrap();
    let contact = Contact {
        email: email.then(|| format!("{name}@example.org")),
        webhook_url: hook,
    };
    store.set_contact(&system, name, &contact).await.unwrap()
}

pub(crate) fn draft(
    slug: &str,
    title: &str,
    category: &str,
    audience: &[&str],
    status: Status,
) -> ArticleDraft {
    ArticleDraft {
        slug: slug.into(),
        title: title.into(),
        summary: format!("summary of {title}"),
        body: "Body text long enough to be an article.".into(),
        category: category.into(),
        tags: vec![],
        audience: audience.iter().map(|a| a.to_string()).collect(),
        status,
        review_due: None,
    }
}

/// An author's article in `collections` submitted for review, with a
/// two-step escalation path: after 24 h to role `reviewer`, after 72 h to
/// user `carl`. Returns the review task's due time.
async fn overdue_review(store: &Store) -> DateTime<Utc> {
    let system = Principal::system();
    let spec: RuleSpec = serde_json::from_value(json!({"escalation": [
        {"after_hours": 24, "to_role": "reviewer"},
        {"after_hours": 72, "to_user": "carl"}]}))
    .unwrap();
    store
        .save_rule(&system, "collections", &spec)
        .await
        .unwrap();
    let alice = user(store, "alice", &["author"], false, None).await;
    let alice = principal(&alice);
    let d = draft(
        "lien-release",
        "Releasing a lien",
        "collections",
        &[],
        Status::Draft,
    );
    store.create_article(&alice, d).await.unwrap();
    let task = engine::workflow::submit(store, &alice, "lien-release")
        .await
        .unwrap();
    task.due_at.unwrap()
}

/// Runs the worker until nothing is due, summing its reports.
pub(crate) async fn drain(d: &Deliverer) -> RunReport {
    d.run_once().await.unwrap()
}

/// Receipts of escalation deliveries, by (step, recipient, channel).
fn escalation_receipts(
    hooks: &WebhookReceiver,
    smtp: &SmtpSink,
) -> HashMap<(i64, String, &'static str), usize> {
    let mut seen = HashMap::new();
    for hit in hooks.hits() {
        let body = hit.json();
        if body["event"] == "escalation" && (200..300).contains(&hit.status) {
            let key = (
                body["step"].as_i64().unwrap(),
                body["recipient"].as_str().unwrap().to_string(),
                "webhook",
            );
            *seen.entry(key).or_default() += 1;
        }
    }
    for mail in smtp.mails() {
        // The body names the step on a line of its own.
        let Some(i) = mail.data.find("Escalation step: ") else {
            continue;
        };
        let step: i64 = mail.data[i + 17..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap();
        for to in &mail.to {
            let name = to.split('@').next().unwrap().to_string();
            *seen.entry((step, name, "email")).or_default() += 1;
        }
    }
    seen
}

fn expect(entries: &[(i64, &str, &'static str)]) -> HashMap<(i64, String, &'static str), usize> {
    entries
        .iter()
        .map(|(s, r, c)| ((*s, r.to_string(), *c), 1))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_escalation_two_steps_reach_right_recipients_by_channel() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let ts = TestStore::new(backend).await;
        let (hooks, smtp) = (WebhookReceiver::start().await, SmtpSink::start().await);
        let store = ts.store.clone().with_channels(Channels {
            email: true,
            webhook: true,
        });
        // rex: reviewer by e-mail and SMS gateway; rita: reviewer by
        // e-mail only; carl: an admin (step 2), both; vera: no role on the path.
        user(
            &store,
            "rex",
            &["reviewer"],
            true,
            Some(hooks.url("/sms/rex")),
        )
        .await;
        user(&store, "rita", &["reviewer"], true, None).await;
        user(
            &store,
            "carl",
            &["admin"],
            true,
            Some(hooks.url("/sms/carl")),
        )
        .await;
        user(
            &store,
            "vera",
            &["viewer"],
            true,
            Some(hooks.url("/sms/vera")),
        )
        .await;
        let due = overdue_review(&store).await;
        let clock = TestClock::at(due - h(1));
        let worker = deliverer(&store, &clock, config(Some(&smtp)));
        // The submission told the reviewers (by every channel they have).
        drain(&worker).await;
        assert_eq!(smtp.to("rex@example.org").len(), 1);
        assert_eq!(
            hooks.accepted("/sms/rex")[0].json()["event"],
            "review_requested"
        );

        for (at, steps) in [(due - h(1), 0), (due + h(23), 0)] {
            clock.set(at);
            assert_eq!(
                engine::notify::escalate_overdue(&store, at).await.unwrap(),
                steps
            );
            drain(&worker).await;
            assert!(
                escalation_receipts(&hooks, &smtp).is_empty(),
                "nothing before its time"
            );
        }
        clock.set(due + h(25));
        assert_eq!(
            engine::notify::escalate_overdue(&store, due + h(25))
                .await
                .unwrap(),
            1
        );
        assert_eq!(drain(&worker).await.sent, 3);
        let step1 = [
            (1, "rex", "email"),
            (1, "rex", "webhook"),
            (1, "rita", "email"),
        ];
        assert_eq!(
            escalation_receipts(&hooks, &smtp),
            expect(&step1),
            "{backend:?}"
        );
        // In-app too.
        let inbox = store.list_notifications("rita", true, 50).await.unwrap();
        assert_eq!(inbox[0].kind, "escalation");
        // Between the steps nothing new, however often the jobs run.
        for at in [due + h(26), due + h(71)] {
            clock.set(at);
            assert_eq!(
                engine::notify::escalate_overdue(&store, at).await.unwrap(),
                0
            );
            assert_eq!(drain(&worker).await, RunReport::default());
        }
        clock.set(due + h(73));
        assert_eq!(
            engine::notify::escalate_overdue(&store, due + h(73))
                .await
                .unwrap(),
            1
        );
        assert_eq!(drain(&worker).await.sent, 2);
        let mut both = step1.to_vec();
        both.extend([(2, "carl", "email"), (2, "carl", "webhook")]);
        assert_eq!(
            escalation_receipts(&hooks, &smtp),
            expect(&both),
            "{backend:?}"
        );
        let mail = &smtp.to("carl@example.org")[0];
        assert_eq!(mail.from, "kmt@example.org");
        assert!(
            mail.data.contains("Subject: KMT: overdue review task"),
            "{}",
            mail.data
        );
        assert!(hooks.accepted("/sms/vera").is_empty());
        ts.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_restart_mid_escalation_sends_no_duplicates() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let ts = TestStore::new(backend).await;
        let (hooks, smtp) = (WebhookReceiver::start().await, SmtpSink::start().await);
        let channels = Channels {
            email: true,
            webhook: true,
        };
        let first = ts.store.clone().with_channels(channels);
        user(
            &first,
            "rex",
            &["reviewer"],
            true,
            Some(hooks.url("/sms/rex")),
        )
        .await;
        user(
            &first,
            "rita",
            &["reviewer"],
            true,
            Some(hooks.url("/sms/rita")),
        )
        .await;
        user(
            &first,
            "carl",
            &["admin"],
            true,
            Some(hooks.url("/sms/carl")),
        )
        .await;
        let due = overdue_review(&first).await;
        let clock = TestClock::at(due + h(25));
        // The first process escalates step 1 and claims one of its
        // deliveries, then dies before sending or recording it.
        let a = deliverer(&first, &clock, config(Some(&smtp)));
        drain(&a).await; // the review request, before the escalation
        let before = escalation_receipts(&hooks, &smtp);
        assert!(before.is_empty());
        assert_eq!(
            engine::notify::escalate_overdue(&first, due + h(25))
                .await
                .unwrap(),
            1
        );
        let now = due + h(25);
        let claimed = first
            .claim_deliveries(now, now + Duration::minutes(2), 1)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        drop(a);
        match &first {
            Store::Postgres(s) => s.close().await,
            Store::Sqlite(s) => s.close().await,
        }
        // A new process on the same database reruns everything.
        let url = ts.pg_url();
        let second = Store::open(url.as_deref(), ts.dir.path())
            .await
            .unwrap()
            .with_channels(channels);
        let b = deliverer(&second, &clock, config(Some(&smtp)));
        assert_eq!(
            engine::notify::escalate_overdue(&second, now)
                .await
                .unwrap(),
            0,
            "step 1 is recorded"
        );
        assert_eq!(
            drain(&b).await.sent,
            3,
            "the claimed one waits for its lease"
        );
        clock.advance(Duration::minutes(3));
        assert_eq!(drain(&b).await.sent, 1, "the lease ran out: sent now");
        assert_eq!(drain(&b).await, RunReport::default());
        // Step 2 after the restart, then more reruns.
        clock.set(due + h(73));
        assert_eq!(
            engine::notify::escalate_overdue(&second, due + h(73))
                .await
                .unwrap(),
            1
        );
        drain(&b).await;
        clock.set(due + h(200));
        assert_eq!(
            engine::notify::escalate_overdue(&second, due + h(200))
                .await
                .unwrap(),
            0
        );
        assert_eq!(drain(&b).await, RunReport::default());
        let expected = [
            (1, "rex", "email"),
            (1, "rex", "webhook"),
            (1, "rita", "email"),
            (1, "rita", "webhook"),
            (2, "carl", "email"),
            (2, "carl", "webhook"),
        ];
        // Raw receipts, not deduplicated by delivery id.
        assert_eq!(
            escalation_receipts(&hooks, &smtp),
            expect(&expected),
            "{backend:?}"
        );
        match &second {
            Store::Postgres(s) => s.close().await,
            Store::Sqlite(s) => s.close().await,
        }
        ts.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_4_two_schedulers_deliver_once() {
    // PostgreSQL is the deployment with several scheduler processes; the
    // embedded file is checked too (two processes on one file are possible).
    for backend in [Backend::Postgres, Backend::Sqlite] {
        two_schedulers(backend).await;
    }
}

async fn two_schedulers(backend: Backend) {
    let ts = TestStore::new(backend).await;
    let (hooks, smtp) = (WebhookReceiver::start().await, SmtpSink::start().await);
    let channels = Channels {
        email: true,
        webhook: true,
    };
    let one = ts.store.clone().with_channels(channels);
    let url = ts.pg_url();
    let two = Store::open(url.as_deref(), ts.dir.path())
        .await
        .unwrap()
        .with_channels(channels);
    for name in ["r1", "r2", "r3", "r4", "r5"] {
        user(
            &one,
            name,
            &["reviewer"],
            true,
            Some(hooks.url(&format!("/sms/{name}"))),
        )
        .await;
    }
    user(&one, "carl", &["admin"], true, Some(hooks.url("/sms/carl"))).await;
    let due = overdue_review(&one).await;
    // Many plain notifications too, so the two workers overlap.
    let many: Vec<String> = ["r1", "r2", "r3", "r4", "r5"].map(String::from).to_vec();
    for i in 0..6 {
        one.notify(&many, "approved", None, None, &format!("note {i}"))
            .await
            .unwrap();
    }
    let clock = TestClock::at(due + h(80));
    let (a, b) = (
        deliverer(&one, &clock, config(Some(&smtp))),
        deliverer(&two, &clock, config(Some(&smtp))),
    );
    // Both schedulers run the escalation job and the worker at once.
    let now = due + h(80);
    let (ea, eb) = tokio::join!(
        engine::notify::escalate_overdue(&one, now),
        engine::notify::escalate_overdue(&two, now)
    );
    assert_eq!(
        ea.unwrap() + eb.unwrap(),
        2,
        "each step once between the two"
    );
    let (ra, rb) = tokio::join!(a.run_once(), b.run_once());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let total = store_total(&one).await;
    assert_eq!(ra.sent + rb.sent, total, "{ra:?} {rb:?}");
    // 5 reviewers × (1 review request + 6 notes + step 1) × 2 channels,
    // carl × step 2 × 2 channels.
    assert_eq!(total, 5 * 8 * 2 + 2);
    assert_eq!(
        hooks.hits().len() + smtp.mails().len(),
        total,
        "every delivery once"
    );
    let ids: std::collections::HashSet<String> = hooks
        .hits()
        .iter()
        .map(|h| h.header("x-kmt-delivery").to_string())
        .collect();
    assert_eq!(ids.len(), hooks.hits().len());
    let steps = [
        (1, "r1"),
        (1, "r2"),
        (1, "r3"),
        (1, "r4"),
        (1, "r5"),
        (2, "carl"),
    ];
    let expected: Vec<(i64, &str, &str)> = steps
        .iter()
        .flat_map(|(s, r)| [(*s, *r, "email"), (*s, *r, "webhook")])
        .collect();
    assert_eq!(escalation_receipts(&hooks, &smtp), expect(&expected));
    match &two {
        Store::Postgres(s) => s.close().await,
        Store::Sqlite(s) => s.close().await,
    }
    ts.cleanup().await;
}

async fn store_total(store: &Store) -> usize {
    let all = store.list_deliveries().await.unwrap();
    assert!(all.iter().all(|d| d.delivered_at.is_some()), "all sent");
    all.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_down_receiver_is_retried_then_delivered() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let ts = TestStore::new(backend).await;
        let hooks = WebhookReceiver::start().await;
        // The SMTP server is not listening at first.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let smtp_addr = port.local_addr().unwrap();
        drop(port);
        let store = ts.store.clone().with_channels(Channels {
            email: true,
            webhook: true,
        });
        user(
            &store,
            "rex",
            &["reviewer"],
            true,
            Some(hooks.url("/sms/rex")),
        )
        .await;
        hooks.answer(503);
        store
            .notify(&["rex".into()], "approved", None, None, "hello")
            .await
            .unwrap();
        let t0 = Utc::now();
        let clock = TestClock::at(t0);
        let mut cfg = config(None);
        cfg.smtp_url = Some(format!("smtp://{smtp_addr}"));
        let worker = deliverer(&store, &clock, cfg);
        let r = drain(&worker).await;
        assert_eq!((r.sent, r.retried), (0, 2), "{backend:?}");
        assert_eq!(hooks.hits().len(), 1, "the webhook was tried once");
        let states = store.list_deliveries().await.unwrap();
        assert!(states
            .iter()
            .all(|s| s.last_error.is_some() && s.delivered_at.is_none()));
        // Backoff: the first retry comes 30–37.5 s later, not sooner.
        clock.set(t0 + Duration::seconds(29));
        assert_eq!(drain(&worker).await, RunReport::default());
        assert_eq!(hooks.hits().len(), 1);
        // Still down at the second attempt: the next delay doubles.
        clock.set(t0 + Duration::seconds(38));
        assert_eq!(drain(&worker).await.retried, 2);
        assert_eq!(hooks.hits().len(), 2);
        clock.set(t0 + Duration::seconds(38 + 59));
        assert_eq!(drain(&worker).await, RunReport::default());
        // Both come back up.
        hooks.answer(200);
        let smtp = SmtpSink::on(smtp_addr).await;
        clock.set(t0 + Duration::seconds(38 + 76));
        assert_eq!(drain(&worker).await.sent, 2);
        clock.advance(Duration::hours(5));
        assert_eq!(drain(&worker).await, RunReport::default());
        assert_eq!(
            hooks.accepted("/sms/rex").len(),
            1,
            "delivered exactly once"
        );
        assert_eq!(
            hooks.hits().len(),
            3,
            "two refused attempts and the delivery"
        );
        assert_eq!(smtp.to("rex@example.org").len(), 1);
        let stats = worker.stats();
        assert_eq!(stats.sent(Channel::Webhook), 1);
        assert_eq!(stats.retried(Channel::Webhook), 2);
        assert_eq!(stats.sent(Channel::Email), 1);
        ts.cleanup().await;
    }
}

/// Gives up after the configured attempts, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_delivery_gives_up_after_max_attempts() {
    let ts = TestStore::new(Backend::Sqlite).await;
    let hooks = WebhookReceiver::start().await;
    hooks.answer(500);
    let store = ts.store.clone().with_channels(Channels {
        email: false,
        webhook: true,
    });
    user(&store, "rex", &["reviewer"], false, Some(hooks.url("/x"))).await;
    store
        .notify(&["rex".into()], "approved", None, None, "hello")
        .await
        .unwrap();
    let clock = TestClock::at(Utc::now());
    let worker = deliverer(&store, &clock, config(None)); // 5 attempts
    let mut failed = 0;
    for _ in 0..8 {
        failed += drain(&worker).await.failed;
        clock.advance(Duration::hours(2));
    }
    assert_eq!(failed, 1);
    assert_eq!(hooks.hits().len(), 5);
    let s = &store.list_deliveries().await.unwrap()[0];
    assert!(s.failed_at.is_some() && s.delivered_at.is_none());
    assert_eq!(worker.stats().failed(Channel::Webhook), 1);
    ts.cleanup().await;
}
