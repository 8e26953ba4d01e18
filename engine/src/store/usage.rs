//! [`Store`] methods for usage: events written in batches by
//! [`crate::usage::EventSink`], ratings, helpful votes, feedback, privacy
//! preferences, history, the analytics aggregates and reading assignments.
//! Kept apart from `store/mod.rs` only for length; dispatch is the same.

use chrono::{DateTime, Utc};

use super::Store;
use crate::auth::Principal;
use crate::error::Result;
use crate::model::{
    Article, ArticleId, ArticleUsage, Assignee, Assignment, AssignmentKind, BucketSize, Feedback,
    HistorySearch, HistoryView, Interaction, Metric, QueryClicks, QueryStats, RatingSummary,
    UsageEvent, UsageFilter, UsageWindow,
};

impl Store {
    /// Writes a batch of usage events in one transaction: the event rows,
    /// the per-(user, article) totals, and the read assignments the views
    /// complete. Searches and clicks keep their user id only when that user
    /// opted in to search history. Not audited, no outbox row.
    pub async fn record_usage(&self, events: &[UsageEvent]) -> Result<()> {
        dispatch!(self, s => s.record_usage(events).await)
    }

    /// Sets (or changes) a user's 1–5 star rating of an article; completes
    /// their open review assignment of it. The caller validated `stars`.
    pub async fn set_rating(&self, user_id: i64, article_id: ArticleId, stars: i32) -> Result<()> {
        dispatch!(self, s => s.set_rating(user_id, article_id, stars).await)
    }

    /// Sets (or changes) a user's helpful / not helpful vote on an article;
    /// completes their open review assignment of it.
    pub async fn set_helpful(
        &self,
        user_id: i64,
        article_id: ArticleId,
        helpful: bool,
    ) -> Result<()> {
        dispatch!(self, s => s.set_helpful(user_id, article_id, helpful).await)
    }

    /// An article's ratings and votes, with `user_id`'s own.
    pub async fn rating_summary(
        &self,
        user_id: Option<i64>,
        article_id: ArticleId,
    ) -> Result<RatingSummary> {
        dispatch!(self, s => s.rating_summary(user_id, article_id).await)
    }

    /// Stores a feedback comment and, in the same transaction, opens an
    /// `update` task for the article's owner (due `task_due`, the comment's
    /// start as its note), completes the writer's open review assignment
    /// and appends an audit row `article.feedback`.
    pub async fn add_feedback(
        &self,
        actor: &Principal,
        article: &Article,
        comment: &str,
        task_due: DateTime<Utc>,
    ) -> Result<Feedback> {
        dispatch!(self, s => s.add_feedback(actor, article, comment, task_due).await)
    }

    /// Whether the user opted in to search history (default: no).
    pub async fn keeps_search_history(&self, user_id: i64) -> Result<bool> {
        dispatch!(self, s => s.keeps_search_history(user_id).await)
    }

    /// Sets the user's search-history choice. Opting out also removes their
    /// identity from the searches and clicks already stored.
    pub async fn set_search_history(&self, user_id: i64, keep: bool) -> Result<()> {
        dispatch!(self, s => s.set_search_history(user_id, keep).await)
    }

    /// A user's views, newest first, at most `limit` (1..=1000).
    pub async fn view_history(&self, user_id: i64, limit: i64) -> Result<Vec<HistoryView>> {
        dispatch!(self, s => s.view_history(user_id, limit).await)
    }

    /// A user's stored searches (only those made while opted in), newest
    /// first, at most `limit` (1..=1000).
    pub async fn search_history(&self, user_id: i64, limit: i64) -> Result<Vec<HistorySearch>> {
        dispatch!(self, s => s.search_history(user_id, limit).await)
    }

    /// Implicit and explicit feedback per (user, article) — views, clicks,
    /// dwell, stars, helpful vote — for pairs after `after` in (user,
    /// article) order, at most `limit` (1..=1000): what a recommender
    /// trains on, one row per pair.
    pub async fn scan_interactions(
        &self,
        after: (i64, ArticleId),
        limit: i64,
    ) -> Result<Vec<Interaction>> {
        dispatch!(self, s => s.scan_interactions(after, limit).await)
    }

    /// Usage figures of every article matching the filter (any order, no
    /// read check: the caller filters).
    pub async fn article_usage(&self, filter: &UsageFilter) -> Result<Vec<ArticleUsage>> {
        dispatch!(self, s => s.article_usage(filter).await)
    }

    /// Search figures per normalised query in the window, most searched
    /// first, at most `limit` queries.
    pub async fn query_stats(&self, window: UsageWindow, limit: i64) -> Result<Vec<QueryStats>> {
        dispatch!(self, s => s.query_stats(window, limit).await)
    }

    /// Records that `user_id` asked for an article on `query_norm` (once
    /// per person and query; asking again moves the time). Returns how many
    /// people have asked for it. Not audited: a usage signal, like searches.
    pub async fn record_article_request(
        &self,
        user_id: i64,
        query_norm: &str,
        at: DateTime<Utc>,
    ) -> Result<i64> {
        dispatch!(self, s => s.record_article_request(user_id, query_norm, at).await)
    }

    /// People who asked for an article, per normalised query, among the
    /// requests made in the window.
    pub async fn article_requests(&self, window: UsageWindow) -> Result<Vec<(String, i64)>> {
        dispatch!(self, s => s.article_requests(window).await)
    }

    /// Clicks per (query, article) for searches of these normalised queries
    /// in the window.
    pub async fn query_clicks(
        &self,
        window: UsageWindow,
        queries: &[String],
    ) -> Result<Vec<QueryClicks>> {
        dispatch!(self, s => s.query_clicks(window, queries).await)
    }

    /// Counts of `metric` per UTC bucket in `[from, to)`; empty buckets are
    /// absent.
    pub async fn usage_timeseries(
        &self,
        metric: Metric,
        bucket: BucketSize,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, i64)>> {
        dispatch!(self, s => s.usage_timeseries(metric, bucket, from, to).await)
    }

    /// Assigns an article to people in one transaction (one row per person
    /// and kind; assigning again reopens a done one) with an audit row
    /// `article.assign`. Returns the rows written, by username.
    pub async fn assign(
        &self,
        actor: &Principal,
        article_id: ArticleId,
        kind: AssignmentKind,
        assignees: &[Assignee],
    ) -> Result<Vec<Assignment>> {
        dispatch!(self, s => s.assign(actor, article_id, kind, assignees).await)
    }

    /// An article's assignments, by username.
    pub async fn article_assignments(&self, article_id: ArticleId) -> Result<Vec<Assignment>> {
        dispatch!(self, s => s.article_assignments(article_id).await)
    }

    /// A user's assignments: open ones (newest first), then done ones when
    /// asked.
    pub async fn user_assignments(
        &self,
        user_id: i64,
        include_done: bool,
    ) -> Result<Vec<Assignment>> {
        dispatch!(self, s => s.user_assignments(user_id, include_done).await)
    }
}
