//! Usage types: the events the sink batches, ratings and helpful votes,
//! feedback, privacy preferences, reading assignments, and the rows the
//! analytics queries return.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ArticleId, Status};

/// Where a view was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ViewSource {
    /// The API served the article (`GET /v1/articles/{id}`): one use.
    Server,
    /// The client reported how long the article was on screen.
    Client,
}

impl ViewSource {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ViewSource::Server => "server",
            ViewSource::Client => "client",
        }
    }
}

/// An article was read.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// The reader (`None`: anonymous).
    pub user_id: Option<i64>,
    /// The article.
    pub article_id: ArticleId,
    /// Served or client-reported.
    pub source: ViewSource,
    /// Time on screen, when the client reported it.
    pub dwell_ms: Option<i64>,
}

/// A search was run.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchEvent {
    /// The search id returned to the client (clicks refer to it).
    pub id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Who searched. The writer keeps it only for users who opted in to
    /// search history; it is never stored otherwise.
    pub user_id: Option<i64>,
    /// The query as typed.
    pub query: String,
    /// The filters, as given.
    pub filters: Vec<String>,
    /// `lexical`, `semantic` or `hybrid`.
    pub mode: String,
    /// Matching readable articles.
    pub result_count: i64,
    /// Engine time.
    pub latency_ms: f64,
}

/// A search result was opened.
#[derive(Debug, Clone, PartialEq)]
pub struct ClickEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// Who clicked; kept under the same opt-in as searches (counted in the
    /// per-user totals regardless).
    pub user_id: Option<i64>,
    /// The search the result came from.
    pub search_id: Option<String>,
    /// The article opened.
    pub article_id: ArticleId,
    /// Its position in the results, from 0.
    pub position: i32,
}

/// One event for the batching sink.
#[derive(Debug, Clone, PartialEq)]
pub enum UsageEvent {
    /// An article view or a reported dwell time.
    View(ViewEvent),
    /// A search.
    Search(SearchEvent),
    /// A click on a search result.
    Click(ClickEvent),
}

/// Ratings and helpful votes of an article, with the caller's own.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RatingSummary {
    /// The article.
    pub article_id: ArticleId,
    /// The caller's stars, if they rated it.
    pub your_stars: Option<i32>,
    /// The caller's helpful vote, if any.
    pub your_helpful: Option<bool>,
    /// Mean stars (none without ratings).
    pub average: Option<f64>,
    /// Number of ratings.
    pub ratings: i64,
    /// "Helpful" votes.
    pub helpful: i64,
    /// "Not helpful" votes.
    pub not_helpful: i64,
}

/// A feedback comment and the task it opened for the article's owner.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Feedback {
    /// Store-assigned id.
    pub id: i64,
    /// The article.
    pub article_id: ArticleId,
    /// Who wrote it.
    pub username: String,
    /// The comment.
    pub comment: String,
    /// The update task opened for the owner.
    pub task_id: i64,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// What an assignment asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentKind {
    /// Read the article; done by viewing it.
    Read,
    /// Review the article; done by rating it, voting on it or leaving
    /// feedback.
    Review,
}

impl AssignmentKind {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentKind::Read => "read",
            AssignmentKind::Review => "review",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<AssignmentKind> {
        [AssignmentKind::Read, AssignmentKind::Review]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One person asked to read or review one article.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Assignment {
    /// Store-assigned id.
    pub id: i64,
    /// The article.
    pub article_id: ArticleId,
    /// The assignee.
    pub username: String,
    /// Read or review.
    pub kind: AssignmentKind,
    /// The role the assignee was reached through, when assigned by role.
    pub via_role: Option<String>,
    /// Who assigned it.
    pub assigned_by: String,
    /// When (the latest assignment, if it was repeated).
    pub assigned_at: DateTime<Utc>,
    /// When the assignee read (or reviewed) it; `None` while open.
    pub done_at: Option<DateTime<Utc>>,
}

/// A person to assign, resolved from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignee {
    /// Their user id.
    pub user_id: i64,
    /// Their username.
    pub username: String,
    /// The role that named them, if not named directly.
    pub via_role: Option<String>,
}

/// One entry of a user's view history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HistoryView {
    /// The article.
    pub article_id: ArticleId,
    /// When.
    pub at: DateTime<Utc>,
    /// Reported time on screen (client events).
    pub dwell_ms: Option<i64>,
}

/// One entry of a user's search history (only while opted in).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HistorySearch {
    /// The search id.
    pub id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The query.
    pub query: String,
    /// How many articles matched.
    pub result_count: i64,
}

/// A time window for usage figures; open ends are unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageWindow {
    /// From this instant (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Until this instant (exclusive).
    pub to: Option<DateTime<Utc>>,
}

/// Which articles the usage report covers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageFilter {
    /// Only this category.
    pub category: Option<String>,
    /// Only this status.
    pub status: Option<Status>,
    /// Events counted.
    pub window: UsageWindow,
}

/// One article's usage figures, as the store aggregates them. The owner and
/// audience are there for the permission check and are never serialised.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ArticleUsage {
    /// Article id.
    pub id: ArticleId,
    /// Slug.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Category (the topic).
    pub category: String,
    /// Status.
    pub status: Status,
    /// Owner (for the read check only).
    #[serde(skip)]
    pub owner: String,
    /// Audience (for the read check only).
    #[serde(skip)]
    pub audience: Vec<String>,
    /// When a review was last decided (else when it was first published).
    pub last_reviewed: Option<DateTime<Utc>>,
    /// Next review date.
    pub review_due: Option<DateTime<Utc>>,
    /// Views served in the window.
    pub uses: i64,
    /// Distinct signed-in readers in the window.
    pub unique_readers: i64,
    /// Mean stars (all time).
    pub avg_rating: Option<f64>,
    /// Number of ratings (all time).
    pub ratings: i64,
    /// Share of helpful votes, 0–100 (all time; none without votes).
    pub helpful_pct: Option<f64>,
    /// Feedback comments in the window.
    pub feedback: i64,
}

/// Search figures of one normalised query.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QueryStats {
    /// The query, lower-cased with spaces collapsed.
    pub query: String,
    /// Searches.
    pub searches: i64,
    /// Searches that matched nothing.
    pub zero_results: i64,
    /// Mean matching articles.
    pub avg_results: f64,
    /// Searches with at least one click.
    pub clicked_searches: i64,
    /// Clicks.
    pub clicks: i64,
    /// The latest search.
    pub last_at: DateTime<Utc>,
}

/// Clicks from one query onto one article.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryClicks {
    /// The normalised query.
    pub query: String,
    /// The article clicked.
    pub article_id: ArticleId,
    /// Clicks.
    pub clicks: i64,
}

/// What a time series counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Articles served.
    Views,
    /// Searches.
    Searches,
    /// Clicks on results.
    Clicks,
}

/// Width of a time-series bucket (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BucketSize {
    /// Whole hours.
    Hour,
    /// Whole days.
    Day,
}

/// A (user, article) pair's implicit and explicit feedback, for trainers.
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    /// The user.
    pub user_id: i64,
    /// The article.
    pub article_id: ArticleId,
    /// Views served.
    pub views: i64,
    /// Clicks from search results.
    pub clicks: i64,
    /// Total reported time on screen.
    pub dwell_ms: i64,
    /// Stars, if rated.
    pub stars: Option<i32>,
    /// Helpful vote, if any.
    pub helpful: Option<bool>,
    /// The latest event.
    pub last_at: DateTime<Utc>,
}
