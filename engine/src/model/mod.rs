//! The domain model: articles, their versions, users and changes; the
//! workflow and rule types are in `workflow`, the usage and analytics types
//! in `usage` (both re-exported here).
//!
//! Types here are plain data shared by the store, the search index and the
//! API. Validation of user input lives next to the input types so that every
//! entry point (HTTP, importer, CLI) applies the same rules.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};

mod delivery;
pub mod sections;
mod usage;
mod workflow;
pub use delivery::{
    check_url, CategoryWebhook, Channel, Channels, Contact, Delivery, DeliveryState,
};
pub use sections::{Level, SectionInfo};
pub use usage::{
    ArticleUsage, Assignee, Assignment, AssignmentKind, BucketSize, ClickEvent, Feedback,
    HistorySearch, HistoryView, Interaction, Metric, QueryClicks, QueryStats, RatingSummary,
    SearchEvent, UsageEvent, UsageFilter, UsageWindow, ViewEvent, ViewSource,
};
pub use workflow::{
    CategoryRule, Decision, EscalationStep, Notification, RuleSpec, Task, TaskKind, TaskStatus,
    WorkingCopy,
};

/// Article identifier (store-assigned, positive).
pub type ArticleId = i64;

/// The audience value meaning "anyone, even without signing in".
pub const PUBLIC: &str = "public";

/// Maximum lengths enforced on input, shared by every entry point.
pub mod limits {
    /// Longest title, in characters.
    pub const TITLE: usize = 300;
    /// Longest slug, in bytes.
    pub const SLUG: usize = 200;
    /// Longest summary, in bytes.
    pub const SUMMARY: usize = 20_000;
    /// Longest body, in bytes (2 MiB).
    pub const BODY: usize = 2 * 1024 * 1024;
    /// Most tags on one article.
    pub const TAGS: usize = 32;
    /// Most audience roles on one article.
    pub const AUDIENCE: usize = 32;
    /// Longest tag, category or role name, in bytes.
    pub const NAME: usize = 64;
}

/// Lifecycle state of an article.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being written; visible to its owner and admins.
    Draft,
    /// Submitted for review.
    InReview,
    /// Live.
    Published,
    /// Live, but its review date passed or someone asked for an update.
    NeedsUpdate,
    /// Withdrawn from search; history kept.
    Retired,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 5] = [
        Status::Draft,
        Status::InReview,
        Status::Published,
        Status::NeedsUpdate,
        Status::Retired,
    ];

    /// The stored and indexed spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::InReview => "in_review",
            Status::Published => "published",
            Status::NeedsUpdate => "needs_update",
            Status::Retired => "retired",
        }
    }

    /// Whether readers see articles in this state.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Published | Status::NeedsUpdate)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "status",
                    format!(
                        "unknown status {s:?}; expected one of draft, in_review, published, needs_update, retired"
                    ),
                )
            })
    }
}

/// A knowledge article as currently stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Article {
    /// Store-assigned id.
    pub id: ArticleId,
    /// Stable, unique, URL-safe name (the importer's source id).
    pub slug: String,
    /// Title.
    pub title: String,
    /// The short level: bullet points for experienced staff (Markdown).
    pub summary: String,
    /// The detailed level: a step-by-step script for new staff (Markdown).
    pub body: String,
    /// Category slug.
    pub category: String,
    /// Tags, lowercase, deduplicated, sorted.
    pub tags: Vec<String>,
    /// Roles allowed to read; empty means every signed-in user; `public` means anyone.
    pub audience: Vec<String>,
    /// Lifecycle state.
    pub status: Status,
    /// Username of the owner.
    pub owner: String,
    /// Version number, starting at 1, incremented by every write.
    pub version: i32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last write time.
    pub updated_at: DateTime<Utc>,
    /// First publication time.
    pub published_at: Option<DateTime<Utc>>,
    /// When the content must be reviewed again.
    pub review_due: Option<DateTime<Utc>>,
}

/// An immutable snapshot of an article, written by every change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ArticleVersion {
    /// The article.
    pub article_id: ArticleId,
    /// Version number.
    pub version: i32,
    /// Title at that version.
    pub title: String,
    /// Summary at that version.
    pub summary: String,
    /// Body at that version.
    pub body: String,
    /// Category at that version.
    pub category: String,
    /// Tags at that version.
    pub tags: Vec<String>,
    /// Audience at that version.
    pub audience: Vec<String>,
    /// Status at that version.
    pub status: Status,
    /// Who wrote this version.
    pub author: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Input for creating an article (also the importer's record).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewArticle {
    /// Slug; derived from the title when absent.
    #[serde(default)]
    pub slug: Option<String>,
    /// Title (required).
    pub title: String,
    /// Summary level.
    #[serde(default)]
    pub summary: String,
    /// Detailed level.
    #[serde(default)]
    pub body: String,
    /// Category slug (required).
    pub category: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Audience roles.
    #[serde(default)]
    pub audience: Vec<String>,
    /// Initial status: `draft` by default; `published` only for admins.
    #[serde(default)]
    pub status: Option<Status>,
    /// Review-due date.
    #[serde(default)]
    pub review_due: Option<DateTime<Utc>>,
}

/// A partial update: absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticlePatch {
    /// New slug.
    #[serde(default)]
    pub slug: Option<String>,
    /// New title.
    #[serde(default)]
    pub title: Option<String>,
    /// New summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// New body.
    #[serde(default)]
    pub body: Option<String>,
    /// New category.
    #[serde(default)]
    pub category: Option<String>,
    /// New tags (replaces the list).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// New audience (replaces the list).
    #[serde(default)]
    pub audience: Option<Vec<String>>,
    /// New status.
    #[serde(default)]
    pub status: Option<Status>,
    /// New review-due date.
    #[serde(default)]
    pub review_due: Option<DateTime<Utc>>,
    /// Optimistic concurrency: fail with 409 unless the stored version is this.
    #[serde(default)]
    pub expected_version: Option<i32>,
}

/// The validated, normalised content of an article, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ArticleDraft {
    /// Slug.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Summary.
    pub summary: String,
    /// Body.
    pub body: String,
    /// Category.
    pub category: String,
    /// Tags, normalised.
    pub tags: Vec<String>,
    /// Audience, normalised.
    pub audience: Vec<String>,
    /// Status.
    pub status: Status,
    /// Review date.
    pub review_due: Option<DateTime<Utc>>,
}

impl NewArticle {
    /// Validates and normalises the input.
    pub fn into_draft(self) -> Result<ArticleDraft> {
        let title = self.title.trim().to_string();
        let slug = match self.slug {
            Some(s) => s.trim().to_string(),
            None => slugify(&title),
        };
        let draft = ArticleDraft {
            slug,
            title,
            summary: self.summary,
            body: self.body,
            category: self.category.trim().to_lowercase(),
            tags: normalise_names("tags", self.tags, limits::TAGS)?,
            audience: normalise_names("audience", self.audience, limits::AUDIENCE)?,
            status: self.status.unwrap_or(Status::Draft),
            review_due: self.review_due,
        };
        draft.validate()?;
        Ok(draft)
    }
}

impl ArticleDraft {
    /// The draft of an existing article.
    pub fn from_article(a: &Article) -> Self {
        ArticleDraft {
            slug: a.slug.clone(),
            title: a.title.clone(),
            summary: a.summary.clone(),
            body: a.body.clone(),
            category: a.category.clone(),
            tags: a.tags.clone(),
            audience: a.audience.clone(),
            status: a.status,
            review_due: a.review_due,
        }
    }

    /// Applies a patch, validating the result.
    pub fn apply(mut self, p: ArticlePatch) -> Result<Self> {
        if p.expected_version.is_some_and(|v| v < 1) {
            return Err(Error::invalid("expected_version", "must be at least 1"));
        }
        if let Some(v) = p.slug {
            self.slug = v.trim().to_string();
        }
        if let Some(v) = p.title {
            self.title = v.trim().to_string();
        }
        if let Some(v) = p.summary {
            self.summary = v;
        }
        if let Some(v) = p.body {
            self.body = v;
        }
        if let Some(v) = p.category {
            self.category = v.trim().to_lowercase();
        }
        if let Some(v) = p.tags {
            self.tags = normalise_names("tags", v, limits::TAGS)?;
        }
        if let Some(v) = p.audience {
            self.audience = normalise_names("audience", v, limits::AUDIENCE)?;
        }
        if let Some(v) = p.status {
            self.status = v;
        }
        if p.review_due.is_some() {
            self.review_due = p.review_due;
        }
        self.validate()?;
        Ok(self)
    }

    /// Checks every field; the first fault is returned.
    pub fn validate(&self) -> Result<()> {
        if self.title.is_empty() {
            return Err(Error::invalid("title", "must not be empty"));
        }
        if self.title.chars().count() > limits::TITLE {
            return Err(Error::invalid(
                "title",
                format!("must be at most {} characters", limits::TITLE),
            ));
        }
        validate_slug(&self.slug)?;
        validate_name("category", &self.category)?;
        if self.summary.len() > limits::SUMMARY {
            return Err(Error::invalid(
                "summary",
                format!("must be at most {} bytes", limits::SUMMARY),
            ));
        }
        if self.body.len() > limits::BODY {
            return Err(Error::invalid(
                "body",
                format!("must be at most {} bytes", limits::BODY),
            ));
        }
        sections::check_article(&self.summary, &self.body)
    }
}

/// Checks a slug: 1–200 bytes of `a-z 0-9 - _ .`, starting with a letter or digit.
pub fn validate_slug(slug: &str) -> Result<()> {
    if slug.is_empty() {
        return Err(Error::invalid("slug", "must not be empty"));
    }
    if slug.len() > limits::SLUG {
        return Err(Error::invalid(
            "slug",
            format!("must be at most {} bytes", limits::SLUG),
        ));
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !slug.chars().all(ok_char) || !slug.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(Error::invalid(
            "slug",
            format!("{slug:?} may hold only letters, digits, '-', '_' and '.', and must start with a letter or digit"),
        ));
    }
    Ok(())
}

/// Checks a category, tag or role name: 1–64 bytes of `a-z 0-9 - _`.
pub fn validate_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if name.len() > limits::NAME
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(Error::invalid(
            field,
            format!(
                "{name:?} must be 1-{} characters of a-z, 0-9, '-' or '_'",
                limits::NAME
            ),
        ));
    }
    Ok(())
}

/// Lowercases, trims, deduplicates and sorts a list of names, validating each.
pub fn normalise_names(field: &str, names: Vec<String>, max: usize) -> Result<Vec<String>> {
    let mut out: Vec<String> = names.into_iter().map(|n| n.trim().to_lowercase()).collect();
    for (i, n) in out.iter().enumerate() {
        validate_name(&format!("{field}[{i}]"), n)?;
    }
    out.sort();
    out.dedup();
    if out.len() > max {
        return Err(Error::invalid(field, format!("at most {max} entries")));
    }
    Ok(out)
}

/// Derives a slug from a title: lowercase ASCII words joined by `-`.
pub fn slugify(title: &str) -> String {
    let mut s = String::with_capacity(title.len());
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    let s = s.trim_end_matches('-');
    s.chars()
        .take(80)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

/// What happened to an article, as recorded in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Created or updated: reindex the article from the store.
    Upsert,
    /// Deleted: remove it from the indexes.
    Delete,
    /// Rebuild every index from the store (requested by `kmt reindex`).
    Reindex,
}

impl ChangeKind {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Upsert => "upsert",
            ChangeKind::Delete => "delete",
            ChangeKind::Reindex => "reindex",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "upsert" => Ok(ChangeKind::Upsert),
            "delete" => Ok(ChangeKind::Delete),
            "reindex" => Ok(ChangeKind::Reindex),
            other => Err(Error::Corrupt(format!("unknown outbox kind {other:?}"))),
        }
    }
}

/// One row of the outbox: a change the indexes must apply, in commit order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Monotonic sequence number (commit order).
    pub seq: i64,
    /// The article (0 for [`ChangeKind::Reindex`]).
    pub article_id: ArticleId,
    /// What happened.
    pub kind: ChangeKind,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// Store-assigned id.
    pub id: i64,
    /// Unique sign-in name.
    pub username: String,
    /// Name shown to people.
    pub display_name: String,
    /// Roles and groups, sorted.
    pub roles: Vec<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// E-mail address for notifications, if any.
    #[serde(default)]
    pub email: Option<String>,
    /// Webhook URL for notifications (an SMS gateway), if any.
    #[serde(default)]
    pub webhook_url: Option<String>,
}

/// A custom group: a name users hold like a role, widening article and
/// section audiences without granting permissions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Group {
    /// Name (a-z 0-9 - _).
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Who defined it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A user's reader preferences.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// The level articles open in; `null` means the default for the
    /// user's roles (summary for reviewers and admins, else detailed).
    #[serde(default)]
    pub level: Option<Level>,
}

/// One audit-trail row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Position in the chain (1-based).
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Username of the actor (`system` for the demo loader and migrations).
    pub actor: String,
    /// What was done, e.g. `article.create`.
    pub action: String,
    /// What it was done to, e.g. `article:42`.
    pub target: String,
    /// Details (JSON).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// Hash of the previous row (hex).
    pub prev_hash: String,
    /// Hash of this row's canonical content and `prev_hash` (hex).
    pub hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugify_makes_urls() {
        assert_eq!(
            slugify("Offer in Compromise: How-To!"),
            "offer-in-compromise-how-to"
        );
        assert_eq!(slugify("  --  "), "");
    }

    #[test]
    fn names_are_normalised_and_checked() {
        let v = normalise_names("tags", vec!["B".into(), " a ".into(), "b".into()], 5).unwrap();
        assert_eq!(v, vec!["a", "b"]);
        let e = normalise_names("tags", vec!["ok".into(), "not ok".into()], 5).unwrap_err();
        assert!(matches!(e, Error::Invalid { ref field, .. } if field == "tags[1]"));
    }

    #[test]
    fn status_round_trips() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
        }
        assert!("live".parse::<Status>().is_err());
    }
}
