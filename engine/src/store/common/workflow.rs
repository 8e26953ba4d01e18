//! Review workflow and category rule helpers: what a submission or a
//! decision changes, working copies, task filters and the rules' JSON form.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{
    Article, ArticleDraft, ArticleId, CategoryRule, Decision, RuleSpec, Status, WorkingCopy,
};
use crate::store::audit::trunc_micros;

/// Fails with `Conflict` when the working copy is in review: saving over it
/// would change what the reviewer is deciding on.
pub(in crate::store) fn check_copy_editable(
    id: ArticleId,
    copy: Option<&WorkingCopy>,
) -> Result<()> {
    match copy {
        Some(c) if c.status == Status::InReview => Err(Error::Conflict(format!(
            "article {id} has changes in review"
        ))),
        _ => Ok(()),
    }
}

/// What a submission for review changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum Submission {
    /// The working copy goes `in_review`; the live article is untouched.
    Copy,
    /// The article itself goes `in_review` as a new version.
    Article,
}

/// Decides what submitting `a` (with its working copy, if any) changes.
pub(in crate::store) fn plan_submission(
    a: &Article,
    copy: Option<&WorkingCopy>,
) -> Result<Submission> {
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
pub(in crate::store) enum Outcome {
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
pub(in crate::store) fn plan_decision(
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
pub(in crate::store) fn copy_draft(a: &Article, c: &WorkingCopy) -> ArticleDraft {
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
pub(in crate::store) fn status_draft(a: &Article, status: Status) -> ArticleDraft {
    ArticleDraft {
        status,
        ..ArticleDraft::from_article(a)
    }
}

/// The working copy just saved from `d`, built without a round trip. The
/// draft's slug and status are not kept (see [`copy_draft`]).
pub(in crate::store) fn stored_copy(
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
pub(in crate::store) fn filters_assignee(f: &super::TaskFilter) -> bool {
    !f.roles.is_empty() || f.username.is_some()
}

/// A rule spec as the JSON both stores keep (and the audit entry shows).
pub(in crate::store) fn rule_json(spec: &RuleSpec) -> Result<Value> {
    serde_json::to_value(spec).map_err(|e| Error::Corrupt(format!("rule spec: {e}")))
}

/// Parses a stored rule spec read as JSON (Postgres `JSONB`).
pub(in crate::store) fn rule_spec_from_value(spec: Value) -> Result<RuleSpec> {
    serde_json::from_value(spec).map_err(|e| Error::Corrupt(format!("stored rule spec: {e}")))
}

/// Parses a stored rule spec read as JSON text (SQLite `TEXT`).
pub(in crate::store) fn rule_spec_from_str(spec: &str) -> Result<RuleSpec> {
    serde_json::from_str(spec)
        .map_err(|e| Error::Corrupt(format!("stored rule spec {spec:?}: {e}")))
}

/// The rule set just saved, built without a round trip.
pub(in crate::store) fn stored_rule(
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
