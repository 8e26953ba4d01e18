//! The review workflow end to end over HTTP.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Backend, TestServer};

async fn search_total(s: &TestServer, user: &str, q: &str) -> u64 {
    s.get_json(&format!("/v1/search?q={q}"), Some(user)).await.1["total"]
        .as_u64()
        .unwrap_or(0)
}

async fn wait_total(s: &TestServer, user: &str, q: &str, want: u64) {
    let t0 = Instant::now();
    while search_total(s, user, q).await != want {
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "{q:?} never reached {want} hits for {user}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// submit → reject with note → resubmit → approve → searchable; the
/// published version stays live while the next draft is reviewed.
async fn workflow(backend: Backend) {
    let mut s = TestServer::start(backend).await;
    s.add_user("rex", &["reviewer"]).await;
    s.add_user("rita", &["reviewer"]).await;
    let a = "/v1/articles/garnish-guide";
    let (code, v) = s
        .call(
            Method::POST,
            "/v1/articles",
            "alice",
            Some(json!({
        "slug": "garnish-guide", "title": "Wage garnishment guide", "category": "collections",
        "body": "Send the employer the order."})),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["status"], "draft");
    // Authors cannot skip review.
    let (code, _) = s
        .call(
            Method::PUT,
            a,
            "alice",
            Some(json!({"status": "published"})),
        )
        .await;
    assert_eq!(code, 403);
    let (code, task) = s
        .call(Method::POST, &format!("{a}/submit"), "alice", None)
        .await;
    assert_eq!(code, 201, "{task}");
    assert_eq!(
        (task["kind"].as_str(), task["assignee_role"].as_str()),
        (Some("review"), Some("reviewer"))
    );
    let (code, _) = s
        .call(Method::POST, &format!("{a}/submit"), "alice", None)
        .await;
    assert_eq!(code, 409, "already in review");
    // The reviewer sees the task; viewers see neither task nor article.
    let (_, tasks) = s.call(Method::GET, "/v1/tasks", "rex", None).await;
    assert_eq!(tasks.as_array().unwrap().len(), 1, "{tasks}");
    let (_, tasks) = s.call(Method::GET, "/v1/tasks", "vera", None).await;
    assert_eq!(tasks, json!([]));
    assert_eq!(search_total(&s, "vera", "garnishment").await, 0);
    // Reject needs a note; the author cannot decide.
    let (code, _) = s
        .call(Method::POST, &format!("{a}/reject"), "rex", Some(json!({})))
        .await;
    assert_eq!(code, 422);
    let (code, _) = s
        .call(Method::POST, &format!("{a}/approve"), "alice", None)
        .await;
    assert_eq!(code, 403);
    let (code, v) = s
        .call(
            Method::POST,
            &format!("{a}/reject"),
            "rex",
            Some(json!({"note": "name the form number"})),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "draft");
    let (_, done) = s
        .call(Method::GET, "/v1/tasks?include_done=true", "alice", None)
        .await;
    let _ = done;
    let (_, all) = s
        .call(Method::GET, "/v1/tasks?include_done=true", "admin", None)
        .await;
    assert_eq!(all[0]["note"], "name the form number", "{all}");
    // Fix, resubmit, approve: published and searchable.
    let (code, _) = s
        .call(
            Method::PUT,
            a,
            "alice",
            Some(json!({"body": "Send the employer Form WR-420."})),
        )
        .await;
    assert_eq!(code, 200);
    let (code, _) = s
        .call(Method::POST, &format!("{a}/submit"), "alice", None)
        .await;
    assert_eq!(code, 201);
    let (code, v) = s
        .call(Method::POST, &format!("{a}/approve"), "rex", None)
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "published");
    wait_total(&s, "vera", "wr-420", 1).await;

    // Editing the published article: the live version stays until approval.
    let (code, v) = s
        .call(
            Method::PUT,
            a,
            "alice",
            Some(json!({"body": "Use Form WR-777."})),
        )
        .await;
    assert_eq!(
        code, 409,
        "content edits of live articles go through a draft: {v}"
    );
    let (code, wc) = s
        .call(
            Method::PUT,
            &format!("{a}/draft"),
            "alice",
            Some(json!({"body": "Use Form WR-777 now."})),
        )
        .await;
    assert_eq!(code, 200, "{wc}");
    assert_eq!(wc["status"], "draft");
    let (_, live) = s.get_json(a, Some("vera")).await;
    assert!(live["body"].as_str().unwrap().contains("WR-420"));
    let (code, _) = s
        .call(Method::GET, &format!("{a}/draft"), "vera", None)
        .await;
    assert_eq!(code, 403, "viewers cannot see drafts");
    let (code, _) = s
        .call(Method::POST, &format!("{a}/submit"), "alice", None)
        .await;
    assert_eq!(code, 201);
    assert_eq!(search_total(&s, "vera", "wr-777").await, 0);
    assert_eq!(
        search_total(&s, "vera", "wr-420").await,
        1,
        "the published version stays live in review"
    );
    let (code, v) = s
        .call(
            Method::POST,
            &format!("{a}/approve"),
            "rita",
            Some(json!({"note": "thanks"})),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert!(v["body"].as_str().unwrap().contains("WR-777"));
    wait_total(&s, "vera", "wr-777", 1).await;
    wait_total(&s, "vera", "wr-420", 0).await;
    let (code, _) = s
        .call(Method::GET, &format!("{a}/draft"), "alice", None)
        .await;
    assert_eq!(code, 404, "the draft was consumed");
    let (_, versions) = s.get_json(&format!("{a}/versions"), Some("vera")).await;
    let statuses: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        vec![
            "draft",
            "in_review",
            "draft",
            "draft",
            "in_review",
            "published",
            "published"
        ]
    );
    let (_, tasks) = s.call(Method::GET, "/v1/tasks", "rex", None).await;
    assert_eq!(tasks, json!([]), "decided tasks are closed");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_review_workflow_sqlite() {
    workflow(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_review_workflow_postgres() {
    workflow(Backend::Postgres).await;
}

/// Category rules: a submission missing two mandatory fields (and too
/// short a body) gets all three named; the category's approver role gets
/// the task; rules are versioned and only admins write them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_submissions_follow_category_rules() {
    let mut s = TestServer::start(Backend::Sqlite).await;
    s.add_user("paula", &["reviewer", "program_specialist"])
        .await;
    let spec = json!({
        "mandatory_fields": ["summary", "tags"],
        "min_lengths": {"body": 20},
        "review_interval_days": 180,
        "approver_role": "program_specialist",
        "escalation": [{"after_hours": 24, "to_role": "reviewer"}, {"after_hours": 72, "to_user": "admin"}]
    });
    let (code, r) = s
        .call(
            Method::PUT,
            "/v1/rules/collections",
            "alice",
            Some(spec.clone()),
        )
        .await;
    assert_eq!(code, 403, "{r}");
    let (code, r) = s
        .call(
            Method::PUT,
            "/v1/rules/collections",
            "admin",
            Some(spec.clone()),
        )
        .await;
    assert_eq!((code, r["version"].as_i64()), (200, Some(1)), "{r}");
    let (code, r) = s
        .call(
            Method::PUT,
            "/v1/rules/collections",
            "admin",
            Some(spec.clone()),
        )
        .await;
    assert_eq!((code, r["version"].as_i64()), (200, Some(2)), "{r}");
    let (code, r) = s
        .call(
            Method::PUT,
            "/v1/rules/*",
            "admin",
            Some(json!({"mandatory_fields": ["body"]})),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    let (code, bad) = s
        .call(
            Method::PUT,
            "/v1/rules/collections",
            "admin",
            Some(json!({
        "mandatory_fields": ["colour"], "escalation": [{"after_hours": 5}]})),
        )
        .await;
    assert_eq!(code, 422, "{bad}");
    assert_eq!(bad["errors"].as_array().unwrap().len(), 2, "{bad}");
    let (_, eff) = s
        .call(Method::GET, "/v1/rules/collections", "alice", None)
        .await;
    assert_eq!(eff, spec);
    let (_, eff) = s.call(Method::GET, "/v1/rules/audits", "alice", None).await;
    assert_eq!(
        eff["mandatory_fields"],
        json!(["body"]),
        "the global default applies"
    );
    let (_, hist) = s
        .call(Method::GET, "/v1/rules/collections/history", "admin", None)
        .await;
    assert_eq!(hist.as_array().unwrap().len(), 2);

    let (code, _) = s.call(Method::POST, "/v1/articles", "alice", Some(json!({
        "slug": "levy-appeal", "title": "Appealing a levy", "category": "collections", "body": "Too short."}))).await;
    assert_eq!(code, 201);
    let (code, p) = s
        .call(
            Method::POST,
            "/v1/articles/levy-appeal/submit",
            "alice",
            None,
        )
        .await;
    assert_eq!(code, 422, "{p}");
    let mut fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(fields, vec!["body", "summary", "tags"], "{p}");
    let (_, tasks) = s
        .call(Method::GET, "/v1/tasks?include_done=true", "admin", None)
        .await;
    assert_eq!(tasks, json!([]), "a refused submission opens no task");
    let (code, _) = s.call(Method::PUT, "/v1/articles/levy-appeal", "alice", Some(json!({
        "summary": "- file within 30 days", "tags": ["levy"], "body": "Send Form WR-12 within thirty days of the notice."}))).await;
    assert_eq!(code, 200);
    let (code, t) = s
        .call(
            Method::POST,
            "/v1/articles/levy-appeal/submit",
            "alice",
            None,
        )
        .await;
    assert_eq!(code, 201, "{t}");
    assert_eq!(t["assignee_role"], "program_specialist");
    let (_, mine) = s.call(Method::GET, "/v1/tasks", "paula", None).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    // Approval starts the category's next review period (180 days).
    let (code, v) = s
        .call(
            Method::POST,
            "/v1/articles/levy-appeal/approve",
            "paula",
            None,
        )
        .await;
    assert_eq!(code, 200, "{v}");
    let due: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(v["review_due"].clone()).unwrap();
    let days = (due - chrono::Utc::now()).num_days();
    assert!((179..=180).contains(&days), "review due in {days} days");
    s.stop().await;
}

/// Issue 4: when an article's review date passes it becomes `needs_update`
/// (still readable and searchable) and its owner gets an update task —
/// driven with an explicit clock, not sleeps; running the job again does
/// nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_review_interval_creates_update_task() {
    let s = TestServer::start(Backend::Sqlite).await;
    let due = chrono::Utc::now() + chrono::Duration::days(30);
    let (code, a) = s
        .call(
            Method::POST,
            "/v1/articles",
            "admin",
            Some(json!({
        "slug": "nexus-survey", "title": "Nexus questionnaire", "category": "audits",
        "body": "Send the nexus questionnaire.", "status": "published", "review_due": due})),
        )
        .await;
    assert_eq!(code, 201, "{a}");
    let store = &s.ts.store;
    // A day before the review date: nothing happens.
    let flagged = engine::jobs::review_dates(store, due - chrono::Duration::days(1))
        .await
        .unwrap();
    assert!(flagged.is_empty());
    // A day after: flagged, with a task for its owner.
    let flagged = engine::jobs::review_dates(store, due + chrono::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(flagged.len(), 1);
    let (_, v) = s.get_json("/v1/articles/nexus-survey", Some("vera")).await;
    assert_eq!(v["status"], "needs_update", "{v}");
    wait_total(&s, "vera", "nexus", 1).await;
    let (_, tasks) = s.call(Method::GET, "/v1/tasks", "admin", None).await;
    let update: Vec<&Value> = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "update")
        .collect();
    assert_eq!(update.len(), 1, "{tasks}");
    assert_eq!(update[0]["assignee_user"], "admin");
    let again = engine::jobs::review_dates(store, due + chrono::Duration::days(2))
        .await
        .unwrap();
    assert!(again.is_empty());
    let (_, tasks) = s.call(Method::GET, "/v1/tasks", "admin", None).await;
    assert_eq!(
        tasks
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"] == "update")
            .count(),
        1
    );
    s.stop().await;
}

/// A review task never reveals an article its assignee may not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_do_not_leak_restricted_articles() {
    let mut s = TestServer::start(Backend::Sqlite).await;
    s.add_user("rex", &["reviewer"]).await;
    s.add_user("hana", &["author", "hearing_officer"]).await;
    s.add_user("rhea", &["reviewer", "hearing_officer"]).await;
    let (code, _) = s
        .call(
            Method::POST,
            "/v1/articles",
            "hana",
            Some(json!({
        "slug": "recusal", "title": "Hearing recusal", "category": "appeals",
        "audience": ["hearing_officer"], "body": "Brambleton rule."})),
        )
        .await;
    assert_eq!(code, 201);
    let (code, _) = s
        .call(Method::POST, "/v1/articles/recusal/submit", "hana", None)
        .await;
    assert_eq!(code, 201);
    let (_, tasks) = s.call(Method::GET, "/v1/tasks", "rex", None).await;
    assert_eq!(tasks, json!([]), "rex may not read the article, so no task");
    let (_, tasks) = s.call(Method::GET, "/v1/tasks", "rhea", None).await;
    assert_eq!(tasks.as_array().unwrap().len(), 1);
    let (code, _) = s
        .call(Method::POST, "/v1/articles/recusal/approve", "rex", None)
        .await;
    assert_eq!(code, 404, "nor can he act on it");
    let (code, _) = s
        .call(Method::POST, "/v1/articles/recusal/approve", "rhea", None)
        .await;
    assert_eq!(code, 200);
    s.stop().await;
}

/// Issue 4: an escalation path with two steps notifies the right
/// recipients at the right times (driven by an explicit clock), never twice;
/// workflow events notify reviewers and authors in the application.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_4_escalations_and_notifications() {
    let mut s = TestServer::start(Backend::Sqlite).await;
    s.add_user("rex", &["reviewer"]).await;
    s.add_user("dora", &["viewer", "director"]).await;
    let (code, _) = s.call(Method::PUT, "/v1/rules/collections", "admin", Some(json!({
        "escalation": [{"after_hours": 24, "to_role": "reviewer"}, {"after_hours": 72, "to_user": "dora"}]}))).await;
    assert_eq!(code, 200);
    let (code, _) = s.call(Method::POST, "/v1/articles", "alice", Some(json!({
        "slug": "lien-release", "title": "Releasing a tax lien", "category": "collections", "body": "File the release."}))).await;
    assert_eq!(code, 201);
    let (code, task) = s
        .call(
            Method::POST,
            "/v1/articles/lien-release/submit",
            "alice",
            None,
        )
        .await;
    assert_eq!(code, 201);
    // The submission itself notifies reviewers (not the submitter).
    let (_, inbox) = s.call(Method::GET, "/v1/notifications", "rex", None).await;
    assert_eq!(inbox["unread"], 1, "{inbox}");
    assert_eq!(inbox["items"][0]["kind"], "review_requested");
    let (_, inbox) = s
        .call(Method::GET, "/v1/notifications", "alice", None)
        .await;
    assert_eq!(inbox["unread"], 0);

    let due: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(task["due_at"].clone()).unwrap();
    let store = &s.ts.store;
    let h = chrono::Duration::hours;
    assert_eq!(
        engine::notify::escalate_overdue(store, due - h(1))
            .await
            .unwrap(),
        0,
        "not yet due"
    );
    assert_eq!(
        engine::notify::escalate_overdue(store, due + h(23))
            .await
            .unwrap(),
        0,
        "before step 1"
    );
    assert_eq!(
        engine::notify::escalate_overdue(store, due + h(25))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        engine::notify::escalate_overdue(store, due + h(26))
            .await
            .unwrap(),
        0,
        "a rerun sends nothing twice"
    );
    let (_, inbox) = s
        .call(Method::GET, "/v1/notifications?unread=true", "rex", None)
        .await;
    let kinds: Vec<&str> = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["escalation", "review_requested"], "{inbox}");
    let (_, inbox) = s.call(Method::GET, "/v1/notifications", "dora", None).await;
    assert_eq!(inbox["unread"], 0, "step 2 has not come yet");
    // Step 2, and a "restart" (another run at a later time) re-sends neither step.
    assert_eq!(
        engine::notify::escalate_overdue(store, due + h(73))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        engine::notify::escalate_overdue(store, due + h(100))
            .await
            .unwrap(),
        0
    );
    let (_, inbox) = s.call(Method::GET, "/v1/notifications", "dora", None).await;
    assert_eq!(
        inbox["unread"], 0,
        "dora (a viewer) may not read an article in review, so she is not told about it: {inbox}"
    );
    let (_, inbox) = s.call(Method::GET, "/v1/notifications", "rex", None).await;
    assert_eq!(inbox["unread"], 2);
    // Reading.
    let first = inbox["items"][0]["id"].as_i64().unwrap();
    let (_, r) = s
        .call(
            Method::POST,
            "/v1/notifications/read",
            "rex",
            Some(json!({"ids": [first]})),
        )
        .await;
    assert_eq!(r["marked"], 1);
    let (_, r) = s
        .call(
            Method::POST,
            "/v1/notifications/read",
            "rex",
            Some(json!({})),
        )
        .await;
    assert_eq!(r["marked"], 1);
    // A decision notifies the author.
    let (code, _) = s
        .call(
            Method::POST,
            "/v1/articles/lien-release/reject",
            "rex",
            Some(json!({"note": "cite the form"})),
        )
        .await;
    assert_eq!(code, 200);
    let (_, inbox) = s
        .call(Method::GET, "/v1/notifications", "alice", None)
        .await;
    assert_eq!(inbox["items"][0]["kind"], "rejected");
    assert!(inbox["items"][0]["message"]
        .as_str()
        .unwrap()
        .contains("cite the form"));
    let (_, audit) = s.get_json("/v1/audit?limit=1000", Some("admin")).await;
    let escalations = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "task.escalate")
        .count();
    assert_eq!(escalations, 2);
    let r = s
        .req(Method::GET, "/v1/notifications", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    s.stop().await;
}
