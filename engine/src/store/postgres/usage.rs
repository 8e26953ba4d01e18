//! The PostgreSQL store: usage events, ratings, helpful votes, feedback,
//! privacy preferences and history.
//!
//! Event batches, ratings and votes are not part of the outbox or the audit
//! chain, so they run in plain transactions without the writers' lock:
//! usage never queues behind article writes. Feedback opens a task and is
//! audited, so it takes the lock like every workflow write.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::Row as _;

use super::{PgStore, Tx};
use crate::auth::Principal;
use crate::error::Result;
use crate::model::{
    Article, ArticleId, AssignmentKind, Feedback, HistorySearch, HistoryView, Interaction,
    RatingSummary, TaskKind, TaskStatus, UsageEvent,
};
use crate::store::audit::trunc_micros;
use crate::store::common::{event_rows, feedback_entry, feedback_note, now, USAGE_PAGE};

const RECORD: &str = include_str!("sql/record_usage.sql");

impl PgStore {
    /// See [`super::Store::record_usage`].
    pub async fn record_usage(&self, events: &[UsageEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let rows = event_rows(events);
        let sets = [
            &rows.views,
            &rows.searches,
            &rows.clicks,
            &rows.totals,
            &rows.reads,
        ];
        let mut tx = self.pool.begin().await?;
        for (sql, set) in RECORD.split("-- split --").zip(sets) {
            if set.as_str() != "[]" {
                sqlx::query(sql).bind(set).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// See [`super::Store::set_rating`].
    pub async fn set_rating(&self, user_id: i64, article_id: ArticleId, stars: i32) -> Result<()> {
        let now = now();
        let mut tx = self.pool.begin().await?;
        let sql = "INSERT INTO ratings (user_id, article_id, stars, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $4) ON CONFLICT (user_id, article_id) \
                   DO UPDATE SET stars = EXCLUDED.stars, updated_at = EXCLUDED.updated_at";
        let query = sqlx::query(sql)
            .bind(user_id)
            .bind(article_id)
            .bind(stars as i16)
            .bind(now);
        query.execute(&mut *tx).await?;
        touch(&mut tx, user_id, article_id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// See [`super::Store::set_helpful`].
    pub async fn set_helpful(
        &self,
        user_id: i64,
        article_id: ArticleId,
        helpful: bool,
    ) -> Result<()> {
        let now = now();
        let mut tx = self.pool.begin().await?;
        let sql = "INSERT INTO helpful_votes (user_id, article_id, helpful, at) \
                   VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, article_id) \
                   DO UPDATE SET helpful = EXCLUDED.helpful, at = EXCLUDED.at";
        let query = sqlx::query(sql)
            .bind(user_id)
            .bind(article_id)
            .bind(helpful)
            .bind(now);
        query.execute(&mut *tx).await?;
        touch(&mut tx, user_id, article_id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// See [`super::Store::rating_summary`].
    pub async fn rating_summary(
        &self,
        user_id: Option<i64>,
        article_id: ArticleId,
    ) -> Result<RatingSummary> {
        let sql = "SELECT \
             (SELECT stars::int FROM ratings WHERE user_id = $1 AND article_id = $2) AS mine, \
             (SELECT helpful FROM helpful_votes WHERE user_id = $1 AND article_id = $2) AS vote, \
             (SELECT avg(stars)::float8 FROM ratings WHERE article_id = $2) AS average, \
             (SELECT count(*) FROM ratings WHERE article_id = $2) AS ratings, \
             (SELECT count(*) FILTER (WHERE helpful) FROM helpful_votes WHERE article_id = $2) AS yes, \
             (SELECT count(*) FILTER (WHERE NOT helpful) FROM helpful_votes WHERE article_id = $2) AS no";
        let r = sqlx::query(sql)
            .bind(user_id)
            .bind(article_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(RatingSummary {
            article_id,
            your_stars: r.try_get("mine")?,
            your_helpful: r.try_get("vote")?,
            average: r.try_get("average")?,
            ratings: r.try_get("ratings")?,
            helpful: r.try_get("yes")?,
            not_helpful: r.try_get("no")?,
        })
    }

    /// See [`super::Store::add_feedback`].
    pub async fn add_feedback(
        &self,
        actor: &Principal,
        article: &Article,
        comment: &str,
        task_due: DateTime<Utc>,
    ) -> Result<Feedback> {
        let now = now();
        let mut tx = self.begin_write().await?;
        let sql = "INSERT INTO tasks (kind, article_id, assignee_role, assignee_user, status, \
                   note, created_by, created_at, due_at) \
                   VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, $8) RETURNING id";
        let query = sqlx::query_scalar(sql)
            .bind(TaskKind::Update.as_str())
            .bind(article.id)
            .bind(&article.owner)
            .bind(TaskStatus::Open.as_str())
            .bind(feedback_note(&actor.username, comment))
            .bind(&actor.username)
            .bind(now)
            .bind(trunc_micros(task_due));
        let task_id: i64 = query.fetch_one(&mut *tx).await?;
        let sql = "INSERT INTO feedback (article_id, user_id, username, comment, task_id, \
                   created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
        let query = sqlx::query_scalar(sql)
            .bind(article.id)
            .bind(actor.user_id)
            .bind(&actor.username)
            .bind(comment)
            .bind(task_id)
            .bind(now);
        let id: i64 = query.fetch_one(&mut *tx).await?;
        if let Some(user_id) = actor.user_id {
            review_done(&mut tx, user_id, article.id, now).await?;
        }
        let entry = feedback_entry(actor, now, article.id, id, task_id);
        self.finish(tx, vec![entry]).await?;
        Ok(Feedback {
            id,
            article_id: article.id,
            username: actor.username.clone(),
            comment: comment.to_string(),
            task_id,
            created_at: now,
        })
    }

    /// See [`super::Store::keeps_search_history`].
    pub async fn keeps_search_history(&self, user_id: i64) -> Result<bool> {
        let sql = "SELECT keep_search_history FROM usage_prefs WHERE user_id = $1";
        let query = sqlx::query_scalar(sql).bind(user_id);
        Ok(query.fetch_optional(&self.pool).await?.unwrap_or(false))
    }

    /// See [`super::Store::set_search_history`].
    pub async fn set_search_history(&self, user_id: i64, keep: bool) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let sql = "INSERT INTO usage_prefs (user_id, keep_search_history, updated_at) \
                   VALUES ($1, $2, $3) ON CONFLICT (user_id) DO UPDATE SET \
                   keep_search_history = EXCLUDED.keep_search_history, \
                   updated_at = EXCLUDED.updated_at";
        let query = sqlx::query(sql).bind(user_id).bind(keep).bind(now());
        query.execute(&mut *tx).await?;
        if !keep {
            // Opting out forgets which searches were theirs.
            for sql in [
                "UPDATE search_events SET user_id = NULL WHERE user_id = $1",
                "UPDATE click_events SET user_id = NULL WHERE user_id = $1",
            ] {
                sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// See [`super::Store::view_history`].
    pub async fn view_history(&self, user_id: i64, limit: i64) -> Result<Vec<HistoryView>> {
        let sql = "SELECT article_id, at, dwell_ms FROM view_events WHERE user_id = $1 \
                   ORDER BY at DESC, id DESC LIMIT $2";
        let query = sqlx::query(sql)
            .bind(user_id)
            .bind(limit.clamp(1, USAGE_PAGE));
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryView {
                    article_id: r.try_get("article_id")?,
                    at: r.try_get("at")?,
                    dwell_ms: r.try_get("dwell_ms")?,
                })
            })
            .collect()
    }

    /// See [`super::Store::search_history`].
    pub async fn search_history(&self, user_id: i64, limit: i64) -> Result<Vec<HistorySearch>> {
        let sql = "SELECT id, at, query, result_count FROM search_events WHERE user_id = $1 \
                   ORDER BY at DESC, id LIMIT $2";
        let query = sqlx::query(sql)
            .bind(user_id)
            .bind(limit.clamp(1, USAGE_PAGE));
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(HistorySearch {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    query: r.try_get("query")?,
                    result_count: r.try_get("result_count")?,
                })
            })
            .collect()
    }

    /// See [`super::Store::scan_interactions`].
    pub async fn scan_interactions(
        &self,
        after: (i64, ArticleId),
        limit: i64,
    ) -> Result<Vec<Interaction>> {
        let sql = "SELECT u.user_id, u.article_id, u.views, u.clicks, u.dwell_ms, \
                   r.stars::int AS stars, h.helpful, u.last_at \
                   FROM user_article_usage u \
                   LEFT JOIN ratings r ON r.user_id = u.user_id AND r.article_id = u.article_id \
                   LEFT JOIN helpful_votes h \
                     ON h.user_id = u.user_id AND h.article_id = u.article_id \
                   WHERE (u.user_id, u.article_id) > ($1, $2) \
                   ORDER BY u.user_id, u.article_id LIMIT $3";
        let query = sqlx::query(sql)
            .bind(after.0)
            .bind(after.1)
            .bind(limit.clamp(1, USAGE_PAGE));
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(interaction_from_row).collect()
    }
}

/// Makes sure the (user, article) pair has a totals row, so trainers find
/// pairs that only have a rating or a vote.
async fn touch(tx: &mut Tx, user_id: i64, article_id: ArticleId, now: DateTime<Utc>) -> Result<()> {
    let sql = "INSERT INTO user_article_usage (user_id, article_id, last_at) VALUES ($1, $2, $3) \
               ON CONFLICT (user_id, article_id) DO UPDATE SET \
               last_at = GREATEST(user_article_usage.last_at, EXCLUDED.last_at)";
    let query = sqlx::query(sql).bind(user_id).bind(article_id).bind(now);
    query.execute(&mut **tx).await?;
    review_done(tx, user_id, article_id, now).await
}

/// Completes the user's open review assignment of the article: rating it,
/// voting on it or leaving feedback is the review's answer.
async fn review_done(
    tx: &mut Tx,
    user_id: i64,
    article_id: ArticleId,
    now: DateTime<Utc>,
) -> Result<()> {
    let sql = "UPDATE reading_assignments SET done_at = $3 \
               WHERE user_id = $1 AND article_id = $2 AND kind = $4 AND done_at IS NULL";
    let query = sqlx::query(sql)
        .bind(user_id)
        .bind(article_id)
        .bind(now)
        .bind(AssignmentKind::Review.as_str());
    query.execute(&mut **tx).await?;
    Ok(())
}

fn interaction_from_row(r: &PgRow) -> Result<Interaction> {
    Ok(Interaction {
        user_id: r.try_get("user_id")?,
        article_id: r.try_get("article_id")?,
        views: r.try_get("views")?,
        clicks: r.try_get("clicks")?,
        dwell_ms: r.try_get("dwell_ms")?,
        stars: r.try_get("stars")?,
        helpful: r.try_get("helpful")?,
        last_at: r.try_get("last_at")?,
    })
}
