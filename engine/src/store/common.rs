//! Rules both stores share, kept in one place so the two backends cannot
//! drift apart: validation of drafts, batches and users; batch planning
//! (which records are new, changed or unchanged); the audit entries each
//! write appends and how they are hash-chained; the JSON row sets that the
//! set-based statements read; error mapping and messages; the review
//! workflow's rules (what a submission or a decision changes); the
//! category rules' JSON form; and the article or rule a write returns
//! without a round trip.
//!
//! What belongs here: whatever reads the same for both backends, so nothing
//! that names a SQL dialect or a pool, connection, transaction or row type
//! (the backend-neutral `sqlx::Error` is fine). The column lists are the one
//! piece of SQL here, because both schemas spell them alike. Statements, row
//! decoding, locking and the `NOTIFY` listener stay in `postgres.rs` and
//! `sqlite.rs`, as does anything only one backend needs.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::audit::{chain_hash, trunc_micros, GENESIS};
use super::UpsertOutcome;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::model::{
    limits, normalise_names, Article, ArticleDraft, ArticleId, CategoryRule, Change, ChangeKind,
    Decision, RuleSpec, Status, TaskKind, TaskStatus, WorkingCopy,
};

/// The `articles` columns, in the order both stores select them.
pub(super) const ARTICLE_COLS: &str = "id, slug, title, summary, body, category, tags, audience, \
     status, owner, version, created_at, updated_at, published_at, review_due";
/// The `users` columns, in the order both stores select them.
pub(super) const USER_COLS: &str = "id, username, display_name, roles, created_at";
/// The `article_drafts` (working copy) columns, in the order both stores
/// select them.
pub(super) const COPY_COLS: &str = "article_id, title, summary, body, category, tags, audience, \
     review_due, status, author, note, updated_at";
/// The `tasks` columns, in the order both stores select them.
pub(super) const TASK_COLS: &str = "id, kind, article_id, assignee_role, assignee_user, status, \
     note, created_by, created_at, due_at, closed_at, closed_by";
/// The `category_rules` columns, in the order both stores select them.
pub(super) const RULE_COLS: &str = "category, version, spec, updated_by, updated_at";
/// Most tasks one [`super::Store::list_tasks`] call returns.
pub(super) const TASK_LIMIT: i64 = 1000;

/// The current time at the precision both stores keep.
pub(super) fn now() -> DateTime<Utc> {
    trunc_micros(Utc::now())
}

/// Wakes every current waiter and leaves a permit for the next one, so a
/// follower between two waits does not miss the change.
pub(super) fn signal(n: &Notify) {
    n.notify_waiters();
    n.notify_one();
}

/// An outbox row read as a tuple.
pub(super) fn change((seq, article_id, kind): (i64, i64, String)) -> Result<Change> {
    let kind = ChangeKind::parse(&kind)?;
    Ok(Change {
        seq,
        article_id,
        kind,
    })
}

/// An audit row before it is chained.
pub(super) struct PendingAudit {
    at: DateTime<Utc>,
    actor: String,
    action: &'static str,
    target: String,
    details: Value,
}

impl PendingAudit {
    /// An entry by `actor` at `at`.
    pub(super) fn new(
        actor: &Principal,
        at: DateTime<Utc>,
        action: &'static str,
        target: String,
        details: Value,
    ) -> Self {
        let actor = actor.username.clone();
        PendingAudit {
            at,
            actor,
            action,
            target,
            details,
        }
    }
}

/// The audit entry of an article write.
pub(super) fn entry(
    actor: &Principal,
    at: DateTime<Utc>,
    action: &'static str,
    id: ArticleId,
    slug: &str,
    version: i32,
) -> PendingAudit {
    let details = json!({ "slug": slug, "version": version });
    PendingAudit::new(actor, at, action, format!("article:{id}"), details)
}

/// The audit entry of an article deletion.
pub(super) fn delete_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    id: ArticleId,
    slug: &str,
) -> PendingAudit {
    let details = json!({ "slug": slug });
    PendingAudit::new(
        actor,
        at,
        "article.delete",
        format!("article:{id}"),
        details,
    )
}

/// The audit entry of a saved working copy (its content stays out of the
/// trail, like an article write's).
pub(super) fn draft_save_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    id: ArticleId,
    slug: &str,
) -> PendingAudit {
    let (target, details) = (format!("article:{id}"), json!({ "slug": slug }));
    PendingAudit::new(actor, at, "article.draft_save", target, details)
}

/// The audit entry of a submission for review, which opened task `task`.
pub(super) fn submit_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    id: ArticleId,
    slug: &str,
    task: i64,
) -> PendingAudit {
    let (target, details) = (
        format!("article:{id}"),
        json!({ "slug": slug, "task": task }),
    );
    PendingAudit::new(actor, at, "article.submit", target, details)
}

/// The audit entry of a review decision; `version` is the article's
/// version after it (unchanged when a working copy was rejected).
pub(super) fn decision_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    decision: Decision,
    a: &Article,
    note: Option<&str>,
) -> PendingAudit {
    let action = match decision {
        Decision::Approve => "article.approve",
        Decision::Reject => "article.reject",
    };
    let details = json!({ "slug": a.slug, "version": a.version, "note": note });
    PendingAudit::new(actor, at, action, format!("article:{}", a.id), details)
}

/// The audit entry of a reindex request, whose outbox row is `seq`.
pub(super) fn reindex_entry(actor: &Principal, at: DateTime<Utc>, seq: i64) -> PendingAudit {
    let details = json!({ "seq": seq });
    PendingAudit::new(actor, at, "index.reindex", "index".into(), details)
}

/// The audit entry of a new user.
pub(super) fn user_create_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    username: &str,
    display_name: &str,
    roles: &[String],
) -> PendingAudit {
    let details = json!({ "display_name": display_name, "roles": roles });
    let target = format!("user:{username}");
    PendingAudit::new(actor, at, "user.create", target, details)
}

/// The audit entry of a change to a user's roles.
pub(super) fn set_roles_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    username: &str,
    roles: &[String],
) -> PendingAudit {
    let (target, details) = (format!("user:{username}"), json!({ "roles": roles }));
    PendingAudit::new(actor, at, "user.set_roles", target, details)
}

/// The audit entry of a new API token: its name only.
pub(super) fn token_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    username: &str,
    name: &str,
) -> PendingAudit {
    // Never the token or its hash: auditors read the trail.
    let (target, details) = (format!("user:{username}"), json!({ "name": name }));
    PendingAudit::new(actor, at, "token.create", target, details)
}

/// The audit entry of a saved rule set: its version and the whole spec
/// (`spec` as [`rule_json`] made it), so the trail shows what changed.
pub(super) fn rule_save_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    category: &str,
    version: i32,
    spec: &Value,
) -> PendingAudit {
    let (target, details) = (
        format!("rule:{category}"),
        json!({ "version": version, "spec": spec }),
    );
    PendingAudit::new(actor, at, "rule.save", target, details)
}

/// The entries chained onto `prev` (the newest stored hash, if any), as the
/// JSON array of rows that the set-based audit inserts read. Times use
/// sqlx's SQLite text format, which Postgres parses too.
pub(super) fn chained_json(prev: Option<String>, entries: &[PendingAudit]) -> String {
    let mut prev = prev.unwrap_or_else(|| GENESIS.to_string());
    let link = |e: &PendingAudit| {
        let hash = chain_hash(&prev, e.at, &e.actor, e.action, &e.target, &e.details);
        json!({
            "at": trunc_micros(e.at).to_rfc3339_opts(SecondsFormat::AutoSi, false),
            "actor": e.actor, "action": e.action, "target": e.target, "details": e.details,
            "prev_hash": std::mem::replace(&mut prev, hash.clone()), "hash": hash,
        })
    };
    Value::Array(entries.iter().map(link).collect()).to_string()
}

/// One article to write: `id` is 0 for a new article.
pub(super) struct ArticleRow<'a> {
    pub(super) id: ArticleId,
    pub(super) draft: &'a ArticleDraft,
    pub(super) published_at: Option<DateTime<Utc>>,
}

impl<'a> ArticleRow<'a> {
    /// The row writing `draft` as article `id` (0 for a new article).
    pub(super) fn new(
        id: ArticleId,
        draft: &'a ArticleDraft,
        published_at: Option<DateTime<Utc>>,
    ) -> Self {
        ArticleRow {
            id,
            draft,
            published_at,
        }
    }
}

/// The rows as the JSON array that the set-based article statements read.
/// Times use sqlx's SQLite text format, which Postgres parses too.
pub(super) fn rows_json(rows: &[ArticleRow<'_>]) -> String {
    let time = |t: Option<DateTime<Utc>>| {
        t.map(|t| trunc_micros(t).to_rfc3339_opts(SecondsFormat::AutoSi, false))
    };
    let row = |r: &ArticleRow<'_>| {
        let d = r.draft;
        json!({
            "id": r.id, "slug": d.slug, "title": d.title, "summary": d.summary,
            "body": d.body, "category": d.category, "tags": d.tags, "audience": d.audience,
            "status": d.status.as_str(), "published_at": time(r.published_at),
            "review_due": time(d.review_due),
        })
    };
    Value::Array(rows.iter().map(row).collect()).to_string()
}

/// What an import batch writes, decided against the stored articles.
pub(super) struct BatchPlan<'a> {
    /// Drafts with new slugs.
    pub(super) new: Vec<ArticleRow<'a>>,
    /// Drafts whose content differs from the stored article.
    pub(super) changed: Vec<ArticleRow<'a>>,
    /// Counts to report.
    pub(super) outcome: UpsertOutcome,
    /// Written drafts in batch order, with the replaced `(id, version)`.
    order: Vec<(&'a ArticleDraft, Option<(ArticleId, i32)>)>,
}

impl<'a> BatchPlan<'a> {
    /// Sorts `drafts` into new, changed and unchanged.
    pub(super) fn new(
        drafts: &'a [ArticleDraft],
        stored: Vec<Article>,
        now: DateTime<Utc>,
    ) -> Self {
        let stored: HashMap<_, _> = stored.into_iter().map(|a| (a.slug.clone(), a)).collect();
        let mut plan = BatchPlan {
            new: vec![],
            changed: vec![],
            outcome: UpsertOutcome::default(),
            order: vec![],
        };
        for d in drafts {
            match stored.get(&d.slug) {
                Some(a) if !differs(a, d) => plan.outcome.unchanged += 1,
                Some(a) => {
                    let published_at = published_at(a.published_at, d.status, now);
                    plan.changed.push(ArticleRow::new(a.id, d, published_at));
                    plan.order.push((d, Some((a.id, a.version))));
                }
                None => {
                    let published_at = published_at(None, d.status, now);
                    plan.new.push(ArticleRow::new(0, d, published_at));
                    plan.order.push((d, None));
                }
            }
        }
        plan.outcome.created = plan.new.len();
        plan.outcome.updated = plan.changed.len();
        plan
    }

    /// Ids of the written articles in batch order (so outbox rows follow the
    /// batch) and their audit entries, once new ids are known.
    pub(super) fn written(
        &self,
        new_ids: &HashMap<String, i64>,
        actor: &Principal,
        now: DateTime<Utc>,
    ) -> (Vec<ArticleId>, Vec<PendingAudit>) {
        let written = self.order.iter().map(|(d, old)| {
            let (id, version) = match old {
                Some((id, v)) => (*id, v + 1),
                None => (new_ids.get(&d.slug).copied().unwrap_or_default(), 1),
            };
            (
                id,
                entry(actor, now, "article.import", id, &d.slug, version),
            )
        });
        written.unzip()
    }
}

/// Checks a username: 1–64 characters of `a-z 0-9 . _ -`.
pub(super) fn validate_username(u: &str) -> Result<()> {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
    if u.is_empty() || u.len() > 64 || !u.chars().all(ok) {
        let message = format!("{u:?} must be 1-64 characters of a-z, 0-9, '.', '_' or '-'");
        return Err(Error::invalid("username", message));
    }
    Ok(())
}

/// Normalises a role list with the same rules as audiences.
pub(super) fn normalise_roles(roles: &[String]) -> Result<Vec<String>> {
    normalise_names("roles", roles.to_vec(), limits::AUDIENCE)
}

/// Validates every draft and rejects a slug that appears twice: both copies
/// would target the same row and the outcome would depend on order.
pub(super) fn check_batch(drafts: &[ArticleDraft]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(drafts.len());
    for d in drafts {
        d.validate()?;
        if !seen.insert(d.slug.as_str()) {
            let message = format!("{:?} appears more than once in the batch", d.slug);
            return Err(Error::invalid("slug", message));
        }
    }
    Ok(())
}

/// Whether storing `d` over `a` would change its content.
pub(super) fn differs(a: &Article, d: &ArticleDraft) -> bool {
    a.title != d.title
        || a.summary != d.summary
        || a.body != d.body
        || a.category != d.category
        || a.tags != d.tags
        || a.audience != d.audience
        || a.status != d.status
        || a.review_due != d.review_due.map(trunc_micros)
}

/// The first publication time: kept once set, else now if `status` is live.
pub(super) fn published_at(
    prev: Option<DateTime<Utc>>,
    status: Status,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    prev.or(status.is_live().then_some(now))
}

/// Fails with `Conflict` unless the article is at the expected version.
pub(super) fn check_version(a: &Article, expected: Option<i32>) -> Result<()> {
    match expected {
        Some(v) if v != a.version => {
            let (id, at) = (a.id, a.version);
            Err(Error::Conflict(format!(
                "article {id} is at version {at}, not {v}"
            )))
        }
        _ => Ok(()),
    }
}

/// Fails with `Invalid` unless the article is live: only a live article
/// needs a working copy (any other is edited directly).
pub(super) fn check_live(a: &Article) -> Result<()> {
    if a.status.is_live() {
        return Ok(());
    }
    let message = format!("article {} is {}: edit it directly", a.id, a.status);
    Err(Error::invalid("status", message))
}

/// Fails with `Conflict` when the working copy is in review: saving over it
/// would change what the reviewer is deciding on.
pub(super) fn check_copy_editable(id: ArticleId, copy: Option<&WorkingCopy>) -> Result<()> {
    match copy {
        Some(c) if c.status == Status::InReview => Err(Error::Conflict(format!(
            "article {id} has changes in review"
        ))),
        _ => Ok(()),
    }
}

/// What a submission for review changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Submission {
    /// The working copy goes `in_review`; the live article is untouched.
    Copy,
    /// The article itself goes `in_review` as a new version.
    Article,
}

/// Decides what submitting `a` (with its working copy, if any) changes.
pub(super) fn plan_submission(a: &Article, copy: Option<&WorkingCopy>) -> Result<Submission> {
    let already = || Error::Conflict(format!("article {} is already in review", a.id));
    match (copy.map(|c| c.status), a.status) {
        (Some(Status::InReview), _) => Err(already()),
        (Some(_), _) => Ok(Submission::Copy),
        (None, Status::Draft) => Ok(Submission::Article),
        (None, Status::InReview) => Err(already()),
        (None, s) => {
            let message = format!(
                "nothing to submit: article {} is {s} with no pending changes",
                a.id
            );
            Err(Error::invalid("status", message))
        }
    }
}

/// What a review decision changes.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Outcome {
    /// This working copy's content becomes a new published version and the
    /// working copy is removed. Boxed: the other outcomes are a byte.
    PublishCopy(Box<WorkingCopy>),
    /// The working copy goes back to `draft`, keeping the note; the article
    /// is untouched.
    ReturnCopy,
    /// The article itself takes this status as a new version.
    SetStatus(Status),
}

/// Decides what `decision` on `a` (with its working copy, if any) changes.
/// A working copy in review takes precedence: it is what was submitted.
pub(super) fn plan_decision(
    a: &Article,
    copy: Option<WorkingCopy>,
    decision: Decision,
) -> Result<Outcome> {
    let in_review = copy.filter(|c| c.status == Status::InReview);
    match (decision, in_review) {
        (Decision::Approve, Some(c)) => Ok(Outcome::PublishCopy(Box::new(c))),
        (Decision::Reject, Some(_)) => Ok(Outcome::ReturnCopy),
        _ if a.status != Status::InReview => Err(Error::Conflict(format!(
            "article {} is not in review",
            a.id
        ))),
        (Decision::Approve, None) => Ok(Outcome::SetStatus(Status::Published)),
        (Decision::Reject, None) => Ok(Outcome::SetStatus(Status::Draft)),
    }
}

/// The article `a` with the working copy's content, published. The slug
/// stays: a working copy revises content, not the article's address.
pub(super) fn copy_draft(a: &Article, c: &WorkingCopy) -> ArticleDraft {
    ArticleDraft {
        slug: a.slug.clone(),
        title: c.title.clone(),
        summary: c.summary.clone(),
        body: c.body.clone(),
        category: c.category.clone(),
        tags: c.tags.clone(),
        audience: c.audience.clone(),
        status: Status::Published,
        review_due: c.review_due,
    }
}

/// The article `a` unchanged but for its status.
pub(super) fn status_draft(a: &Article, status: Status) -> ArticleDraft {
    ArticleDraft {
        status,
        ..ArticleDraft::from_article(a)
    }
}

/// The working copy just saved from `d`, built without a round trip. The
/// draft's slug and status are not kept (see [`copy_draft`]).
pub(super) fn stored_copy(
    id: ArticleId,
    d: ArticleDraft,
    author: &str,
    updated_at: DateTime<Utc>,
) -> WorkingCopy {
    WorkingCopy {
        article_id: id,
        title: d.title,
        summary: d.summary,
        body: d.body,
        category: d.category,
        tags: d.tags,
        audience: d.audience,
        review_due: d.review_due.map(trunc_micros),
        status: Status::Draft,
        author: author.to_string(),
        note: None,
        updated_at,
    }
}

/// Whether a task query filters by assignee: with no roles and no user it
/// returns every task (see [`super::TaskFilter`]).
pub(super) fn filters_assignee(f: &super::TaskFilter) -> bool {
    !f.roles.is_empty() || f.username.is_some()
}

/// Whether a token's last use is worth recording (at most once a minute).
pub(super) fn last_use_is_stale(last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last.is_none_or(|t| t < last_use_cutoff(now))
}

/// Uses recorded before this time are stale (see [`last_use_is_stale`]);
/// the stores' conditional `UPDATE`s compare against it too.
pub(super) fn last_use_cutoff(now: DateTime<Utc>) -> DateTime<Utc> {
    now - chrono::Duration::minutes(1)
}

/// The principal an API token row names: its user, signed in by token.
pub(super) fn token_principal(user_id: i64, username: String, roles: Vec<String>) -> Principal {
    Principal {
        user_id: Some(user_id),
        username,
        roles,
    }
}

/// The effective audit page size: `limit <= 0` means 1000.
pub(super) fn audit_limit(limit: i64) -> i64 {
    if limit <= 0 {
        1000
    } else {
        limit
    }
}

/// Maps a unique violation to `Conflict(msg())`, anything else to a
/// database error.
fn unique_or(e: sqlx::Error, msg: impl FnOnce() -> String) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict(msg()),
        _ => e.into(),
    }
}

/// Maps a unique violation on an article write to the slug conflict.
pub(super) fn conflict_or(e: sqlx::Error, slug: &str) -> Error {
    unique_or(e, || format!("slug {slug:?} is already used"))
}

/// Maps a unique violation on an import batch's writes to the slug conflict
/// (which slug is not known).
pub(super) fn batch_conflict_or(e: sqlx::Error) -> Error {
    unique_or(e, || "a slug in the batch is already used".into())
}

/// Maps a unique violation on a user insert to the username conflict.
pub(super) fn username_conflict_or(e: sqlx::Error, username: &str) -> Error {
    unique_or(e, || format!("username {username:?} is already used"))
}

/// Maps a unique violation on a token insert to the token conflict.
pub(super) fn token_conflict_or(e: sqlx::Error) -> Error {
    unique_or(e, || "this token is already registered".into())
}

/// A rule spec as the JSON both stores keep (and the audit entry shows).
pub(super) fn rule_json(spec: &RuleSpec) -> Result<Value> {
    serde_json::to_value(spec).map_err(|e| Error::Corrupt(format!("rule spec: {e}")))
}

/// Parses a stored rule spec read as JSON (Postgres `JSONB`).
pub(super) fn rule_spec_from_value(spec: Value) -> Result<RuleSpec> {
    serde_json::from_value(spec).map_err(|e| Error::Corrupt(format!("stored rule spec: {e}")))
}

/// Parses a stored rule spec read as JSON text (SQLite `TEXT`).
pub(super) fn rule_spec_from_str(spec: &str) -> Result<RuleSpec> {
    serde_json::from_str(spec)
        .map_err(|e| Error::Corrupt(format!("stored rule spec {spec:?}: {e}")))
}

/// The rule set just saved, built without a round trip.
pub(super) fn stored_rule(
    category: &str,
    version: i32,
    spec: &RuleSpec,
    updated_by: &str,
    updated_at: DateTime<Utc>,
) -> CategoryRule {
    CategoryRule {
        category: category.to_string(),
        version,
        spec: spec.clone(),
        updated_by: updated_by.to_string(),
        updated_at,
    }
}

/// `NotFound` for an article id.
pub(super) fn article_not_found(id: ArticleId) -> Error {
    Error::NotFound(format!("article {id}"))
}

/// `NotFound` for a username.
pub(super) fn user_not_found(username: &str) -> Error {
    Error::NotFound(format!("user {username}"))
}

/// The error for an insert that returned no id (never expected).
pub(super) fn no_id() -> Error {
    Error::Corrupt("insert returned no id".into())
}

/// Parses a stored status.
pub(super) fn parse_status(s: &str) -> Result<Status> {
    s.parse()
        .map_err(|_| Error::Corrupt(format!("unknown stored status {s:?}")))
}

/// Parses a stored task kind.
pub(super) fn parse_task_kind(s: &str) -> Result<TaskKind> {
    [TaskKind::Review, TaskKind::Update]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| Error::Corrupt(format!("unknown stored task kind {s:?}")))
}

/// Parses a stored task status.
pub(super) fn parse_task_status(s: &str) -> Result<TaskStatus> {
    [TaskStatus::Open, TaskStatus::Done]
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| Error::Corrupt(format!("unknown stored task status {s:?}")))
}

/// The stored article just written from `d`, built without a round trip.
pub(super) fn stored(
    id: ArticleId,
    d: ArticleDraft,
    owner: &str,
    version: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    published_at: Option<DateTime<Utc>>,
) -> Article {
    Article {
        id,
        slug: d.slug,
        title: d.title,
        summary: d.summary,
        body: d.body,
        category: d.category,
        tags: d.tags,
        audience: d.audience,
        status: d.status,
        owner: owner.to_string(),
        version,
        created_at,
        updated_at,
        published_at,
        review_due: d.review_due.map(trunc_micros),
    }
}
