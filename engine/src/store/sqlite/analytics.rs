//! The SQLite store: usage analytics (the per-article report, query
//! figures, time series) and reading assignments.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row as _;

use super::{list, SqliteStore};
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::model::{
    ArticleId, ArticleUsage, Assignee, Assignment, AssignmentKind, BucketSize, Metric, QueryClicks,
    QueryStats, UsageFilter, UsageWindow,
};
use crate::store::common::{
    assign_entry, assignees_json, now, parse_assignment_kind, parse_status, ASSIGNMENT_COLS,
    USAGE_PAGE,
};

const ARTICLE_USAGE: &str = include_str!("sql/article_usage.sql");
const QUERY_STATS: &str = include_str!("sql/query_stats.sql");

impl SqliteStore {
    /// See [`super::Store::article_usage`].
    pub async fn article_usage(&self, f: &UsageFilter) -> Result<Vec<ArticleUsage>> {
        let query = sqlx::query(ARTICLE_USAGE)
            .bind(f.category.as_deref())
            .bind(f.status.map(|s| s.as_str()))
            .bind(f.window.from)
            .bind(f.window.to);
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(ArticleUsage {
                    id: r.try_get("id")?,
                    slug: r.try_get("slug")?,
                    title: r.try_get("title")?,
                    category: r.try_get("category")?,
                    status: parse_status(r.try_get("status")?)?,
                    owner: r.try_get("owner")?,
                    audience: list(r.try_get("audience")?)?,
                    last_reviewed: r.try_get("last_reviewed")?,
                    review_due: r.try_get("review_due")?,
                    uses: r.try_get("uses")?,
                    unique_readers: r.try_get("unique_readers")?,
                    avg_rating: r.try_get("avg_rating")?,
                    ratings: r.try_get("ratings")?,
                    helpful_pct: r.try_get("helpful_pct")?,
                    feedback: r.try_get("feedback")?,
                })
            })
            .collect()
    }

    /// See [`super::Store::query_stats`].
    pub async fn query_stats(&self, w: UsageWindow, limit: i64) -> Result<Vec<QueryStats>> {
        let query = sqlx::query(QUERY_STATS)
            .bind(w.from)
            .bind(w.to)
            .bind(limit.max(1));
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(QueryStats {
                    query: r.try_get("query")?,
                    searches: r.try_get("searches")?,
                    zero_results: r.try_get("zero_results")?,
                    avg_results: r.try_get("avg_results")?,
                    clicked_searches: r.try_get("clicked_searches")?,
                    clicks: r.try_get("clicks")?,
                    last_at: r.try_get("last_at")?,
                })
            })
            .collect()
    }

    /// See [`super::Store::record_article_request`].
    pub async fn record_article_request(
        &self,
        user_id: i64,
        query_norm: &str,
        at: DateTime<Utc>,
    ) -> Result<i64> {
        let mut w = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO article_requests (query_norm, user_id, at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (query_norm, user_id) DO UPDATE SET at = excluded.at",
        )
        .bind(query_norm)
        .bind(user_id)
        .bind(at)
        .execute(&mut *w.tx)
        .await?;
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM article_requests WHERE query_norm = ?1")
                .bind(query_norm)
                .fetch_one(&mut *w.tx)
                .await?;
        self.finish(w, Vec::new()).await?;
        Ok(n)
    }

    /// See [`super::Store::article_requests`].
    pub async fn article_requests(&self, w: UsageWindow) -> Result<Vec<(String, i64)>> {
        let sql = "SELECT query_norm, count(*) AS requests FROM article_requests \
                   WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR at < ?2) \
                   GROUP BY query_norm";
        let rows = sqlx::query(sql)
            .bind(w.from)
            .bind(w.to)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("query_norm")?, r.try_get("requests")?)))
            .collect()
    }

    /// See [`super::Store::query_clicks`].
    pub async fn query_clicks(
        &self,
        w: UsageWindow,
        queries: &[String],
    ) -> Result<Vec<QueryClicks>> {
        let sql = "SELECT s.query_norm AS query, c.article_id, count(*) AS clicks \
                   FROM click_events c JOIN search_events s ON s.id = c.search_id \
                   WHERE (?1 IS NULL OR s.at >= ?1) AND (?2 IS NULL OR s.at < ?2) \
                     AND s.query_norm IN (SELECT value FROM json_each(?3)) \
                   GROUP BY s.query_norm, c.article_id";
        let query = sqlx::query(sql)
            .bind(w.from)
            .bind(w.to)
            .bind(serde_json::json!(queries).to_string());
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(QueryClicks {
                    query: r.try_get("query")?,
                    article_id: r.try_get("article_id")?,
                    clicks: r.try_get("clicks")?,
                })
            })
            .collect()
    }

    /// See [`super::Store::usage_timeseries`].
    pub async fn usage_timeseries(
        &self,
        metric: Metric,
        bucket: BucketSize,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, i64)>> {
        let source = match metric {
            Metric::Views => "view_events WHERE source = 'server' AND",
            Metric::Searches => "search_events WHERE",
            Metric::Clicks => "click_events WHERE",
        };
        // `strftime` reads the stored offset and answers in UTC.
        let unit = match bucket {
            BucketSize::Hour => "%Y-%m-%dT%H:00:00Z",
            BucketSize::Day => "%Y-%m-%dT00:00:00Z",
        };
        let sql = format!(
            "SELECT strftime(?1, at) AS bucket, count(*) AS n FROM {source} \
             at >= ?2 AND at < ?3 GROUP BY 1 ORDER BY 1"
        );
        let query = sqlx::query(&sql).bind(unit).bind(from).bind(to);
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let bucket: String = r.try_get("bucket")?;
                let at = DateTime::parse_from_rfc3339(&bucket)
                    .map_err(|e| Error::Corrupt(format!("time bucket {bucket:?}: {e}")))?;
                Ok((at.with_timezone(&Utc), r.try_get("n")?))
            })
            .collect()
    }

    /// See [`super::Store::assign`].
    pub async fn assign(
        &self,
        actor: &Principal,
        article_id: ArticleId,
        kind: AssignmentKind,
        assignees: &[Assignee],
    ) -> Result<Vec<Assignment>> {
        let now = now();
        let mut w = self.begin_write().await?;
        // Assigning again reopens: "read it again, it changed".
        let sql = format!(
            "INSERT INTO reading_assignments (article_id, user_id, username, kind, via_role, \
             assigned_by, assigned_at, done_at) \
             SELECT ?1, value ->> 'user_id', value ->> 'username', ?2, value ->> 'via_role', \
             ?3, ?4, NULL FROM json_each(?5) WHERE true \
             ON CONFLICT (article_id, user_id, kind) DO UPDATE SET \
             via_role = excluded.via_role, assigned_by = excluded.assigned_by, \
             assigned_at = excluded.assigned_at, done_at = NULL \
             RETURNING {ASSIGNMENT_COLS}"
        );
        let query = sqlx::query(&sql)
            .bind(article_id)
            .bind(kind.as_str())
            .bind(&actor.username)
            .bind(now)
            .bind(assignees_json(assignees));
        let rows = query.fetch_all(&mut *w.tx).await?;
        let entry = assign_entry(actor, now, article_id, kind, assignees);
        self.finish(w, vec![entry]).await?;
        let mut out: Vec<Assignment> = rows
            .iter()
            .map(assignment_from_row)
            .collect::<Result<_>>()?;
        out.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(out)
    }

    /// See [`super::Store::article_assignments`].
    pub async fn article_assignments(&self, article_id: ArticleId) -> Result<Vec<Assignment>> {
        let sql = format!(
            "SELECT {ASSIGNMENT_COLS} FROM reading_assignments WHERE article_id = ?1 \
             ORDER BY username, kind LIMIT ?2"
        );
        let query = sqlx::query(&sql).bind(article_id).bind(USAGE_PAGE);
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(assignment_from_row).collect()
    }

    /// See [`super::Store::user_assignments`].
    pub async fn user_assignments(
        &self,
        user_id: i64,
        include_done: bool,
    ) -> Result<Vec<Assignment>> {
        let sql = format!(
            "SELECT {ASSIGNMENT_COLS} FROM reading_assignments \
             WHERE user_id = ?1 AND (?2 OR done_at IS NULL) \
             ORDER BY done_at IS NOT NULL, assigned_at DESC, id DESC LIMIT ?3"
        );
        let query = sqlx::query(&sql)
            .bind(user_id)
            .bind(include_done)
            .bind(USAGE_PAGE);
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(assignment_from_row).collect()
    }
}

fn assignment_from_row(r: &SqliteRow) -> Result<Assignment> {
    Ok(Assignment {
        id: r.try_get("id")?,
        article_id: r.try_get("article_id")?,
        username: r.try_get("username")?,
        kind: parse_assignment_kind(r.try_get("kind")?)?,
        via_role: r.try_get("via_role")?,
        assigned_by: r.try_get("assigned_by")?,
        assigned_at: r.try_get("assigned_at")?,
        done_at: r.try_get("done_at")?,
    })
}
