//! Workflow and rule types: working copies of live articles, tasks, review
//! decisions, and versioned category rules.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ArticleId, Status};

/// A pending revision of a live article: edits to a published article are
/// saved here and reviewed while the published version stays live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkingCopy {
    /// The live article this revises.
    pub article_id: ArticleId,
    /// Proposed title.
    pub title: String,
    /// Proposed summary.
    pub summary: String,
    /// Proposed body.
    pub body: String,
    /// Proposed category.
    pub category: String,
    /// Proposed tags.
    pub tags: Vec<String>,
    /// Proposed audience.
    pub audience: Vec<String>,
    /// Proposed review date.
    pub review_due: Option<DateTime<Utc>>,
    /// `draft` (being edited) or `in_review` (submitted).
    pub status: Status,
    /// Who last saved it.
    pub author: String,
    /// The last reviewer's note (set by a rejection).
    pub note: Option<String>,
    /// Last save.
    pub updated_at: DateTime<Utc>,
}

/// What a task asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Review a submitted article or revision.
    Review,
    /// Update an article (review date passed, feedback).
    Update,
}

impl TaskKind {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Review => "review",
            TaskKind::Update => "update",
        }
    }
}

/// Whether a task is still to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// To do.
    Open,
    /// Done (decided, or made moot).
    Done,
}

impl TaskStatus {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Done => "done",
        }
    }
}

/// A unit of work for a role or a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Task {
    /// Store-assigned id.
    pub id: i64,
    /// What to do.
    pub kind: TaskKind,
    /// The article concerned.
    pub article_id: ArticleId,
    /// The role whose members may do it.
    pub assignee_role: Option<String>,
    /// The person who must do it.
    pub assignee_user: Option<String>,
    /// Open or done.
    pub status: TaskStatus,
    /// The note left when it was closed (a rejection's reason).
    pub note: Option<String>,
    /// Who opened it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it is due.
    pub due_at: Option<DateTime<Utc>>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Who closed it.
    pub closed_by: Option<String>,
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Publish the submission.
    Approve,
    /// Send it back to its author.
    Reject,
}

/// One step of an escalation path: when a task is still open `after_hours`
/// after it was due, notify `to_role` and/or `to_user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationStep {
    /// Hours past the due time.
    pub after_hours: u32,
    /// Role to notify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_role: Option<String>,
    /// User to notify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_user: Option<String>,
}

/// The rules of a category (or, for category `*`, the global default), as
/// an admin writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Fields that must be filled before submission: any of `summary`,
    /// `body`, `tags`, `audience`, `review_due`.
    #[serde(default)]
    pub mandatory_fields: Vec<String>,
    /// Minimum lengths in characters, by field (`title`, `summary`, `body`).
    #[serde(default)]
    pub min_lengths: std::collections::BTreeMap<String, u32>,
    /// Days between reviews of a published article.
    #[serde(default)]
    pub review_interval_days: Option<u32>,
    /// Role whose members review submissions (default `reviewer`).
    #[serde(default)]
    pub approver_role: Option<String>,
    /// Who is notified, and when, about overdue tasks.
    #[serde(default)]
    pub escalation: Vec<EscalationStep>,
}

/// A stored, versioned rule set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CategoryRule {
    /// Category slug, or `*` for the global default.
    pub category: String,
    /// Version, from 1; every save writes a new one.
    pub version: i32,
    /// The rules.
    pub spec: RuleSpec,
    /// Who saved this version.
    pub updated_by: String,
    /// When.
    pub updated_at: DateTime<Utc>,
}

/// A message to one user, shown in the application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    /// Store-assigned id.
    pub id: i64,
    /// The user it is for.
    pub recipient: String,
    /// What happened: `review_requested`, `approved`, `rejected`,
    /// `escalation`, `update_needed`.
    pub kind: String,
    /// The article concerned, if any.
    pub article_id: Option<ArticleId>,
    /// The task concerned, if any.
    pub task_id: Option<i64>,
    /// Human-readable text.
    pub message: String,
    /// When it was sent.
    pub created_at: DateTime<Utc>,
    /// When the recipient marked it read.
    pub read_at: Option<DateTime<Utc>>,
}
