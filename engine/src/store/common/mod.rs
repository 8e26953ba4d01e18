//! Rules both stores share, kept in one place so the two backends cannot
//! drift apart: validation of drafts, batches and users; batch planning
//! (which records are new, changed or unchanged); the audit entries each
//! write appends and how they are hash-chained; the JSON row sets that the
//! set-based statements read; error mapping and messages; the review
//! workflow's rules (what a submission or a decision changes); the
//! category rules' JSON form; notification recipients and page size; the
//! delivery outbox's event keys and documents; usage event row sets; and
//! the article or rule a write returns without a round trip.
//!
//! What belongs here: whatever reads the same for both backends, so nothing
//! that names a SQL dialect or a pool, connection, transaction or row type
//! (the backend-neutral `sqlx::Error` is fine). The column lists are the one
//! piece of SQL here, because both schemas spell them alike. Statements, row
//! decoding, locking and the `NOTIFY` listener stay in `postgres/` and
//! `sqlite/`, as does anything only one backend needs.

mod accounts;
mod articles;
mod audit_entries;
mod deliveries;
mod embeddings;
mod errors;
mod notifications;
mod usage;
mod workflow;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::audit::trunc_micros;
// `workflow` names it as `super::TaskFilter`.
use super::TaskFilter;
use crate::error::Result;
use crate::model::{Change, ChangeKind};

pub(super) use self::accounts::{
    check_password_hash, last_use_cutoff, last_use_is_stale, normalise_roles, session_user_id,
    token_principal, user_principal, validate_username,
};
pub(super) use self::articles::{
    check_batch, check_live, check_version, published_at, rows_json, stored, ArticleRow, BatchPlan,
};
pub(super) use self::audit_entries::{
    audit_limit, chained_json, decision_entry, delete_entry, draft_save_entry, entry, event_entry,
    needs_update_entry, reindex_entry, rule_save_entry, session_create_entry, session_delete_entry,
    set_password_entry, set_roles_entry, submit_entry, task_escalate_entry, token_entry,
    user_create_entry, PendingAudit,
};
pub(super) use self::deliveries::{
    channel_names, notice_rows, publication_key, publication_payload, set_contact_entry,
    webhook_entry, NoticeEvent, DELIVERY_COLS, FEED_SCAN, WEBHOOK_COLS,
};
pub(super) use self::embeddings::check_embeddings;
pub(super) use self::errors::{
    article_not_found, batch_conflict_or, conflict_or, no_id, parse_status, parse_task_kind,
    parse_task_status, session_conflict_or, token_conflict_or, unique_or, user_not_found,
    username_conflict_or,
};
pub(super) use self::notifications::{
    dedupe_recipients, notification_limit, Outgoing, ESCALATION_KIND,
};
pub(super) use self::usage::{
    assign_entry, assignees_json, event_rows, feedback_entry, feedback_note, parse_assignment_kind,
    ASSIGNMENT_COLS, USAGE_PAGE,
};
pub(super) use self::workflow::{
    check_copy_editable, copy_draft, filters_assignee, plan_decision, plan_submission, rule_json,
    rule_spec_from_str, rule_spec_from_value, status_draft, stored_copy, stored_rule, Outcome,
    Submission,
};

/// The `articles` columns, in the order both stores select them.
pub(super) const ARTICLE_COLS: &str = "id, slug, title, summary, body, category, tags, audience, \
     status, owner, version, created_at, updated_at, published_at, review_due";
/// The `users` columns, in the order both stores select them.
pub(super) const USER_COLS: &str =
    "id, username, display_name, roles, created_at, email, webhook_url";
/// The `article_drafts` (working copy) columns, in the order both stores
/// select them.
pub(super) const COPY_COLS: &str = "article_id, title, summary, body, category, tags, audience, \
     review_due, status, author, note, updated_at";
/// The `tasks` columns, in the order both stores select them.
pub(super) const TASK_COLS: &str = "id, kind, article_id, assignee_role, assignee_user, status, \
     note, created_by, created_at, due_at, closed_at, closed_by";
/// The `category_rules` columns, in the order both stores select them.
pub(super) const RULE_COLS: &str = "category, version, spec, updated_by, updated_at";
/// The `notifications` columns, in the order both stores select them.
pub(super) const NOTIFICATION_COLS: &str =
    "id, recipient, kind, article_id, task_id, message, created_at, read_at";
/// Most tasks one [`super::Store::list_tasks`] call returns.
pub(super) const TASK_LIMIT: i64 = 1000;
/// Most articles one [`super::Store::mark_overdue`] call changes; the job
/// calls it again to pick up the rest.
pub(super) const OVERDUE_LIMIT: i64 = 1000;

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
