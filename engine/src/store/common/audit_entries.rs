//! The audit entries each write appends, and how they are hash-chained
//! into the JSON rows the set-based audit inserts read.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::model::{Article, ArticleId, Decision};
use crate::store::audit::{chain_hash, trunc_micros, GENESIS};

/// An audit row before it is chained.
pub(in crate::store) struct PendingAudit {
    at: DateTime<Utc>,
    actor: String,
    action: &'static str,
    target: String,
    details: Value,
}

impl PendingAudit {
    /// An entry by `actor` at `at`.
    pub(in crate::store) fn new(
        actor: &Principal,
        at: DateTime<Utc>,
        action: &'static str,
        target: String,
        details: Value,
    ) -> Self {
        Self::by_name(&actor.username, at, action, target, details)
    }

    /// An entry by the user named `actor` at `at` (for events whose actor
    /// is known only by name).
    pub(in crate::store) fn by_name(
        actor: &str,
        at: DateTime<Utc>,
        action: &'static str,
        target: String,
        details: Value,
    ) -> Self {
        PendingAudit {
            at,
            actor: actor.to_string(),
            action,
            target,
            details,
        }
    }
}

/// The audit entry of an article write.
pub(in crate::store) fn entry(
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
pub(in crate::store) fn delete_entry(
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
pub(in crate::store) fn draft_save_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    id: ArticleId,
    slug: &str,
) -> PendingAudit {
    let (target, details) = (format!("article:{id}"), json!({ "slug": slug }));
    PendingAudit::new(actor, at, "article.draft_save", target, details)
}

/// The audit entry of a submission for review, which opened task `task`.
pub(in crate::store) fn submit_entry(
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
pub(in crate::store) fn decision_entry(
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

/// The audit entry of an article the review-date job marked
/// `needs_update`: `a` is the article after it (its new version and the
/// `review_due` that had passed).
pub(in crate::store) fn needs_update_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    a: &Article,
) -> PendingAudit {
    let details = json!({ "slug": a.slug, "version": a.version, "review_due": a.review_due });
    let target = format!("article:{}", a.id);
    PendingAudit::new(actor, at, "article.needs_update", target, details)
}

/// The audit entry of a reindex request, whose outbox row is `seq`.
pub(in crate::store) fn reindex_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    seq: i64,
) -> PendingAudit {
    let details = json!({ "seq": seq });
    PendingAudit::new(actor, at, "index.reindex", "index".into(), details)
}

/// The audit entry of a new user.
pub(in crate::store) fn user_create_entry(
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
pub(in crate::store) fn set_roles_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    username: &str,
    roles: &[String],
) -> PendingAudit {
    let (target, details) = (format!("user:{username}"), json!({ "roles": roles }));
    PendingAudit::new(actor, at, "user.set_roles", target, details)
}

/// The audit entry of a new API token: its name only.
pub(in crate::store) fn token_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    username: &str,
    name: &str,
) -> PendingAudit {
    // Never the token or its hash: auditors read the trail.
    let (target, details) = (format!("user:{username}"), json!({ "name": name }));
    PendingAudit::new(actor, at, "token.create", target, details)
}

/// The audit entry of a new or replaced password: no details at all.
pub(in crate::store) fn set_password_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    username: &str,
) -> PendingAudit {
    // Never the hash: auditors read the trail.
    let target = format!("user:{username}");
    PendingAudit::new(actor, at, "user.set_password", target, json!({}))
}

/// The audit entry of a new session, by the user who signed in.
pub(in crate::store) fn session_create_entry(user: &Principal, at: DateTime<Utc>) -> PendingAudit {
    // Never the session id, its hash or the CSRF token.
    let target = format!("user:{}", user.username);
    PendingAudit::new(user, at, "session.create", target, json!({}))
}

/// The audit entry of a deleted session of user `username`.
pub(in crate::store) fn session_delete_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    username: &str,
) -> PendingAudit {
    let target = format!("user:{username}");
    PendingAudit::new(actor, at, "session.delete", target, json!({}))
}

/// The audit entry of an event that changes nothing else (a failed
/// sign-in, an export), as the caller describes it.
pub(in crate::store) fn event_entry(
    actor: &str,
    at: DateTime<Utc>,
    action: &'static str,
    target: &str,
    details: Value,
) -> PendingAudit {
    PendingAudit::by_name(actor, at, action, target.to_string(), details)
}

/// The audit entry of a saved rule set: its version and the whole spec
/// (`spec` as [`rule_json`] made it), so the trail shows what changed.
pub(in crate::store) fn rule_save_entry(
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

/// The audit entry of escalation step `step` of task `task_id`, sent to
/// `recipients` (deduplicated).
pub(in crate::store) fn task_escalate_entry(
    actor: &Principal,
    at: DateTime<Utc>,
    task_id: i64,
    step: i32,
    recipients: &[String],
) -> PendingAudit {
    let (target, details) = (
        format!("task:{task_id}"),
        json!({ "step": step, "recipients": recipients }),
    );
    PendingAudit::new(actor, at, "task.escalate", target, details)
}

/// The entries chained onto `prev` (the newest stored hash, if any), as the
/// JSON array of rows that the set-based audit inserts read. Times use
/// sqlx's SQLite text format, which Postgres parses too.
pub(in crate::store) fn chained_json(prev: Option<String>, entries: &[PendingAudit]) -> String {
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

/// The effective audit page size: `limit <= 0` means 1000.
pub(in crate::store) fn audit_limit(limit: i64) -> i64 {
    if limit <= 0 {
        1000
    } else {
        limit
    }
}
