//! In-app notifications and the escalation of overdue tasks.
//!
//! Notifications follow workflow events (a review requested, a decision,
//! an update needed, feedback, a reading assignment) and escalations. A
//! notification never names an article its recipient may not read:
//! recipients are filtered by the same rule as every read. Sending is best-effort after the event's own transaction:
//! a failure is logged, never turned into a failed request. Escalations are
//! exactly-once per (task, step) because the store records each step in the
//! same transaction as its notifications.
//!
//! Every notification also enqueues, in its own transaction, one row of the
//! delivery outbox per external channel its recipient can be reached on
//! (e-mail, the user's webhook); publishing a version enqueues one per
//! webhook subscribed to its category ([`channels`]). The worker in
//! [`deliver`] sends them ([`send`]), retrying with backoff.

pub mod channels;
pub mod deliver;
pub mod send;

use chrono::{DateTime, Duration, Utc};

use crate::auth::Principal;
use crate::error::Result;
use crate::model::{Article, Decision, Task};
use crate::rules;
use crate::store::{Store, TaskFilter};

/// Every user as a principal (for recipient filtering).
async fn principals(store: &Store) -> Result<Vec<Principal>> {
    Ok(store
        .list_users()
        .await?
        .into_iter()
        .map(|u| Principal {
            user_id: Some(u.id),
            username: u.username,
            roles: u.roles,
        })
        .collect())
}

/// Among `users`, those who hold `role` or are named `user`, and may read
/// `article` (but not `except`).
fn select(
    users: &[Principal],
    role: Option<&str>,
    user: Option<&str>,
    article: &Article,
    except: Option<&str>,
) -> Vec<String> {
    users
        .iter()
        .filter(|p| role.is_some_and(|r| p.has_role(r)) || user == Some(p.username.as_str()))
        .filter(|p| p.can_read(article) && Some(p.username.as_str()) != except)
        .map(|p| p.username.clone())
        .collect()
}

/// [`select`] over every user, for one-off notifications.
async fn recipients(
    store: &Store,
    role: Option<&str>,
    user: Option<&str>,
    article: &Article,
    except: Option<&str>,
) -> Result<Vec<String>> {
    Ok(select(
        &principals(store).await?,
        role,
        user,
        article,
        except,
    ))
}

async fn send(
    store: &Store,
    to: &[String],
    kind: &str,
    article: &Article,
    task: Option<i64>,
    message: &str,
) {
    if let Err(e) = store
        .notify(to, kind, Some(article.id), task, message)
        .await
    {
        tracing::warn!(error = %e, kind, article = article.id, "could not send notifications");
    }
}

/// Tells the approver role that a review is waiting.
pub async fn review_requested(store: &Store, task: &Task, article: &Article, submitter: &str) {
    match recipients(
        store,
        task.assignee_role.as_deref(),
        None,
        article,
        Some(submitter),
    )
    .await
    {
        Ok(to) => {
            let msg = format!("review requested: \"{}\" by {submitter}", article.title);
            send(store, &to, "review_requested", article, Some(task.id), &msg).await;
        }
        Err(e) => tracing::warn!(error = %e, "could not find reviewers to notify"),
    }
}

/// Tells the author how their submission was decided.
pub async fn decided(
    store: &Store,
    article: &Article,
    author: &str,
    decision: Decision,
    note: Option<&str>,
) {
    let (kind, msg) = match decision {
        Decision::Approve => (
            "approved",
            format!("\"{}\" was approved and published", article.title),
        ),
        Decision::Reject => (
            "rejected",
            format!(
                "\"{}\" was sent back: {}",
                article.title,
                note.unwrap_or("")
            ),
        ),
    };
    match recipients(store, None, Some(author), article, None).await {
        Ok(to) => send(store, &to, kind, article, None, &msg).await,
        Err(e) => tracing::warn!(error = %e, "could not notify the author"),
    }
}

/// Tells owners that their articles need an update.
pub async fn update_needed(store: &Store, articles: &[Article]) {
    let users = match principals(store).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "could not notify owners");
            return;
        }
    };
    for a in articles {
        let msg = format!(
            "\"{}\" is past its review date and needs an update",
            a.title
        );
        let to = select(&users, None, Some(&a.owner), a, None);
        send(store, &to, "update_needed", a, None, &msg).await;
    }
}

/// Tells an article's owner about new feedback (the task it opened is in
/// their task list).
pub async fn feedback_received(store: &Store, article: &Article, f: &crate::model::Feedback) {
    match recipients(
        store,
        None,
        Some(&article.owner),
        article,
        Some(&f.username),
    )
    .await
    {
        Ok(to) => {
            let msg = format!("feedback on \"{}\" from {}", article.title, f.username);
            send(store, &to, "feedback", article, Some(f.task_id), &msg).await;
        }
        Err(e) => tracing::warn!(error = %e, "could not notify the owner about feedback"),
    }
}

/// Tells the assignees of update tasks opened on request ("send this
/// article to staff for update"); each task's role or user, readers of
/// the article only.
pub async fn update_requested(store: &Store, tasks: &[Task], article: &Article, by: &str) {
    let users = match principals(store).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "could not notify about an update request");
            return;
        }
    };
    let msg = format!("{by} asks for an update of \"{}\"", article.title);
    for t in tasks {
        let to = select(
            &users,
            t.assignee_role.as_deref(),
            t.assignee_user.as_deref(),
            article,
            Some(by),
        );
        send(store, &to, "update_requested", article, Some(t.id), &msg).await;
    }
}

/// Tells people they were asked to read or review an article (they were
/// checked against the article's audience when assigned).
pub async fn assigned(store: &Store, article: &Article, to: &[String], by: &str, what: &str) {
    let msg = format!("{by} asks you to {what} \"{}\"", article.title);
    send(store, to, "assignment", article, None, &msg).await;
}

/// Escalates open tasks that are overdue, along their category's
/// escalation path, as of `now`. Each (task, step) is sent once, however
/// often this runs. Returns the steps sent now.
pub async fn escalate_overdue(store: &Store, now: DateTime<Utc>) -> Result<usize> {
    let tasks = store.list_tasks(&TaskFilter::default()).await?;
    if !tasks.iter().any(|t| t.due_at.is_some_and(|d| d < now)) {
        return Ok(0);
    }
    // Every user once per run, not once per task and step.
    let users = principals(store).await?;
    let system = Principal::system();
    let mut sent = 0;
    for task in tasks {
        let Some(due) = task.due_at.filter(|d| *d < now) else {
            continue;
        };
        let Some(article) = store.get_article(task.article_id).await? else {
            continue;
        };
        let spec = rules::effective(store, &article.category).await?;
        for (i, step) in spec.escalation.iter().enumerate() {
            if now < due + Duration::hours(i64::from(step.after_hours)) {
                break;
            }
            let to = select(
                &users,
                step.to_role.as_deref(),
                step.to_user.as_deref(),
                &article,
                None,
            );
            let msg = format!(
                "overdue {} task for \"{}\" (due {}), escalation step {}",
                task.kind.as_str(),
                article.title,
                due.format("%Y-%m-%d %H:%M UTC"),
                i + 1
            );
            if store
                .escalate(&system, task.id, i as i32, &to, article.id, &msg)
                .await?
            {
                sent += 1;
            }
        }
    }
    if sent > 0 {
        tracing::info!(steps = sent, "overdue tasks escalated");
    }
    Ok(sent)
}
