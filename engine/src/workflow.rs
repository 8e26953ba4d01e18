//! The review workflow: drafts of live articles, submission, approval and
//! rejection, and the tasks that carry them.
//!
//! A new article is written as a draft in place and published by approval.
//! A published article stays live while its next revision — the *working
//! copy* — is drafted and reviewed; approval writes the working copy as a
//! new published version. Reviewers may not decide their own submissions
//! (admins may). A submission must satisfy its category's rules
//! ([`crate::rules`]), whose approver role receives the review task, due in
//! [`REVIEW_DAYS`] days.

use chrono::{Duration, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::articles;
use crate::auth::{Permission, Principal};
use crate::error::{Error, Result};
use crate::model::sections::{self, Visibility};
use crate::model::{
    normalise_names, Article, ArticleDraft, ArticlePatch, Decision, Status, Task, TaskKind,
    TaskStatus, WorkingCopy,
};
use crate::notify;
use crate::rules;
use crate::store::{Store, TaskFilter};

/// Days a reviewer has for a review task.
pub const REVIEW_DAYS: i64 = 7;
/// Longest reviewer note.
const MAX_NOTE: usize = 4000;

fn draft_of(wc: &WorkingCopy, slug: &str, status: crate::model::Status) -> ArticleDraft {
    ArticleDraft {
        slug: slug.to_string(),
        title: wc.title.clone(),
        summary: wc.summary.clone(),
        body: wc.body.clone(),
        category: wc.category.clone(),
        tags: wc.tags.clone(),
        audience: wc.audience.clone(),
        status,
        review_due: wc.review_due,
    }
}

/// Saves changes to a live article as its working copy (the published
/// version stays live). Starts from the existing working copy, if any.
pub async fn save_draft(
    store: &Store,
    p: &Principal,
    key: &str,
    patch: ArticlePatch,
) -> Result<WorkingCopy> {
    let current = articles::readable(store, p, key).await?;
    if !current.status.is_live() {
        return Err(Error::invalid(
            "status",
            format!("article {key} is {} and not published: edit it directly with PUT /v1/articles/{key}", current.status),
        ));
    }
    if patch.status.is_some() || patch.slug.is_some() {
        return Err(Error::invalid(
            if patch.status.is_some() {
                "status"
            } else {
                "slug"
            },
            "a draft changes content only; status and slug change on the article itself",
        ));
    }
    let existing = store.get_working_copy(current.id).await?;
    if let Some(wc) = &existing {
        if wc.author != p.username && !p.has(Permission::ArticlePublish) {
            return Err(Error::Conflict(format!(
                "{} is editing a draft of article {key}",
                wc.author
            )));
        }
    }
    let base = match &existing {
        Some(wc) => draft_of(wc, &current.slug, current.status),
        None => ArticleDraft::from_article(&current),
    };
    let patch =
        articles::keep_hidden_sections(p, &current.owner, &base.summary, &base.body, patch)?;
    let draft = base.apply(patch)?;
    let saved = store.save_working_copy(p, current.id, draft).await?;
    Ok(copy_view(p, &current.owner, saved))
}

/// A working copy as `p` may see it (hidden sections removed).
fn copy_view(p: &Principal, owner: &str, mut wc: WorkingCopy) -> WorkingCopy {
    let v = Visibility::of(p, owner);
    if !matches!(v, Visibility::All) {
        wc.summary = sections::visible_text(&wc.summary, &v);
        wc.body = sections::visible_text(&wc.body, &v);
    }
    wc
}

/// The working copy of an article, for its author, the article's owner and
/// publishers; others are told there is none.
pub async fn get_draft(store: &Store, p: &Principal, key: &str) -> Result<WorkingCopy> {
    let current = articles::readable(store, p, key).await?;
    match store.get_working_copy(current.id).await? {
        Some(wc)
            if wc.author == p.username
                || current.owner == p.username
                || p.has(Permission::ArticlePublish) =>
        {
            Ok(copy_view(p, &current.owner, wc))
        }
        _ => Err(Error::NotFound(format!("draft of article {key}"))),
    }
}

/// Submits the article's draft (its working copy, or the article itself
/// when it has never been published) for review.
pub async fn submit(store: &Store, p: &Principal, key: &str) -> Result<Task> {
    let current = articles::readable(store, p, key).await?;
    let wc = store.get_working_copy(current.id).await?;
    let submitter_ok = current.owner == p.username
        || wc.as_ref().is_some_and(|w| w.author == p.username)
        || p.has(Permission::ArticlePublish);
    if !submitter_ok {
        return Err(Error::Forbidden(Permission::ArticlePublish.as_str()));
    }
    // The category's rules decide what must be there and who approves.
    let draft = match &wc {
        Some(w) => draft_of(w, &current.slug, current.status),
        None => ArticleDraft::from_article(&current),
    };
    let spec = rules::effective(store, &draft.category).await?;
    let faults = rules::check(&spec, &draft);
    if !faults.is_empty() {
        return Err(Error::RuleViolations(faults));
    }
    let due = Utc::now() + Duration::days(REVIEW_DAYS);
    let task = store
        .submit_for_review(p, current.id, rules::approver_role(&spec), Some(due))
        .await?;
    // Recipients are checked against the article as it is now (in review).
    let now = store.get_article(current.id).await?.unwrap_or(current);
    notify::review_requested(store, &task, &now, &p.username).await;
    Ok(task)
}

/// Approves or rejects what is in review. A rejection needs a note that
/// tells the author what to fix; nobody but an admin decides their own
/// submission.
pub async fn decide(
    store: &Store,
    p: &Principal,
    key: &str,
    decision: Decision,
    note: Option<String>,
) -> Result<Article> {
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.len() > MAX_NOTE) {
        return Err(Error::invalid(
            "note",
            format!("must be at most {MAX_NOTE} bytes"),
        ));
    }
    if decision == Decision::Reject && note.is_none() {
        return Err(Error::invalid(
            "note",
            "say why, so the author knows what to fix",
        ));
    }
    let current = articles::readable(store, p, key).await?;
    let submitter = match store.get_working_copy(current.id).await? {
        Some(wc) => wc.author,
        None => current.owner.clone(),
    };
    if submitter == p.username && !p.is_admin() {
        return Err(Error::Conflict(
            "you submitted this; another reviewer must decide it".into(),
        ));
    }
    // Approval starts the next review period of the category's rules.
    let spec = rules::effective(store, &current.category).await?;
    let next_review = spec
        .review_interval_days
        .filter(|_| decision == Decision::Approve)
        .map(|d| Utc::now() + Duration::days(i64::from(d)));
    let decided = store
        .decide_review(p, current.id, decision, note.as_deref(), next_review)
        .await?;
    notify::decided(store, &decided, &submitter, decision, note.as_deref()).await;
    Ok(sections::view_of(p, &decided))
}

/// Open tasks for the caller: those of their roles and their own; admins
/// see every task.
pub async fn tasks(store: &Store, p: &Principal, include_done: bool) -> Result<Vec<Task>> {
    let filter = if p.is_admin() {
        TaskFilter {
            include_done,
            ..Default::default()
        }
    } else {
        TaskFilter {
            roles: p.roles.clone(),
            username: Some(p.username.clone()),
            article_id: None,
            include_done,
        }
    };
    let tasks = store.list_tasks(&filter).await?;
    // A task must not reveal an article its assignee may not read (an
    // approver role outside a restricted article's audience, say).
    let mut ids: Vec<_> = tasks.iter().map(|t| t.article_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let readable: std::collections::HashSet<_> = store
        .get_articles(&ids)
        .await?
        .into_iter()
        .filter(|a| p.can_read(a))
        .map(|a| a.id)
        .collect();
    Ok(tasks
        .into_iter()
        .filter(|t| readable.contains(&t.article_id))
        .collect())
}

/// Decides review task `task_id` (approve or reject its article's
/// submission). Tasks of articles the caller may not read are reported as
/// missing.
pub async fn decide_task(
    store: &Store,
    p: &Principal,
    task_id: i64,
    decision: Decision,
    note: Option<String>,
) -> Result<Article> {
    let missing = || Error::NotFound(format!("task {task_id}"));
    let task = store.get_task(task_id).await?.ok_or_else(missing)?;
    match store.get_article(task.article_id).await? {
        Some(a) if p.can_read(&a) => {}
        _ => return Err(missing()),
    }
    if task.kind != TaskKind::Review {
        return Err(Error::invalid(
            "task",
            format!(
                "task {task_id} asks for an update, not a review: update the article and submit it"
            ),
        ));
    }
    if task.status != TaskStatus::Open {
        return Err(Error::Conflict(format!("task {task_id} is already closed")));
    }
    decide(store, p, &task.article_id.to_string(), decision, note).await
}

/// Most assignees of one update request.
const MAX_ASSIGNEES: usize = 100;

/// "Send this article to staff for update": who should update it, and why.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// Users asked to update it.
    #[serde(default)]
    pub users: Vec<String>,
    /// Roles or groups asked to update it (one task each, for whoever in
    /// the role takes it).
    #[serde(default)]
    pub roles: Vec<String>,
    /// What needs updating.
    #[serde(default)]
    pub note: Option<String>,
    /// Days until the tasks are due (1–365, default 14).
    #[serde(default)]
    pub due_days: Option<u32>,
}

/// Opens an update task for each user and role named, marks the article
/// `needs_update` (it stays searchable) and notifies the assignees.
pub async fn request_update(
    store: &Store,
    p: &Principal,
    key: &str,
    req: UpdateRequest,
) -> Result<Vec<Task>> {
    if req.users.is_empty() && req.roles.is_empty() {
        return Err(Error::invalid("users", "name at least one user or role"));
    }
    if req.users.len() + req.roles.len() > MAX_ASSIGNEES {
        return Err(Error::invalid(
            "users",
            format!("at most {MAX_ASSIGNEES} users and roles in all"),
        ));
    }
    let note = req
        .note
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.len() > MAX_NOTE) {
        return Err(Error::invalid(
            "note",
            format!("must be at most {MAX_NOTE} bytes"),
        ));
    }
    let days = req.due_days.unwrap_or(crate::jobs::UPDATE_TASK_DAYS as u32);
    if !(1..=365).contains(&days) {
        return Err(Error::invalid("due_days", "must be between 1 and 365"));
    }
    let roles = normalise_names("roles", req.roles, MAX_ASSIGNEES)?;
    let a = articles::readable(store, p, key).await?;
    if !a.status.is_live() {
        return Err(Error::Conflict(format!(
            "article {key} is {}: only published articles are sent for update",
            a.status
        )));
    }
    let known = store.list_users().await?;
    let mut users: Vec<String> = Vec::new();
    for (i, u) in req.users.iter().enumerate() {
        let u = u.trim();
        if !known.iter().any(|k| k.username == u) {
            return Err(Error::invalid(
                format!("users[{i}]"),
                format!("no user named {u:?}"),
            ));
        }
        if !users.iter().any(|x| x == u) {
            users.push(u.to_string());
        }
    }
    let assignees: Vec<(Option<String>, Option<String>)> = roles
        .into_iter()
        .map(|r| (Some(r), None))
        .chain(users.into_iter().map(|u| (None, Some(u))))
        .collect();
    let due = Utc::now() + Duration::days(i64::from(days));
    let tasks = store
        .open_tasks(p, a.id, TaskKind::Update, &assignees, note.as_deref(), due)
        .await?;
    let mut current = a;
    if current.status == Status::Published {
        let mut draft = ArticleDraft::from_article(&current);
        draft.status = Status::NeedsUpdate;
        current = store
            .update_article(p, current.id, draft, Some(current.version))
            .await?;
    }
    notify::update_requested(store, &tasks, &current, &p.username).await;
    Ok(tasks)
}
