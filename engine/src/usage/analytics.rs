//! Usage analytics: the director's per-article report, query figures
//! (top, no-result and no-click queries, click-through) and time series.
//!
//! Everything here is an aggregate: no one's identity appears. The article
//! report and the articles clicked from a query only ever name articles
//! the caller may read (the same rule as every read), so a restricted
//! article never shows up in someone else's analytics. The report is
//! computed by the store (one light row per article, no bodies) and
//! checked, sorted and paged here, so both stores sort alike.

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::model::{
    ArticleId, ArticleUsage, BucketSize, Metric, QueryStats, UsageFilter, UsageWindow,
};
use crate::store::Store;

/// Most rows one report page returns.
pub const MAX_REPORT_LIMIT: usize = 1000;
/// Most queries aggregated for the query report (the most searched).
pub const QUERY_SCAN: i64 = 10_000;
/// Most buckets one time series returns.
pub const MAX_BUCKETS: i64 = 10_000;
/// Clicked articles shown per top query.
const CLICKED_PER_QUERY: usize = 5;

/// A column of the report, to sort on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// Article id.
    Id,
    /// Slug.
    Slug,
    /// Title.
    Title,
    /// Category.
    Category,
    /// Status.
    Status,
    /// Last reviewed.
    LastReviewed,
    /// Next review date.
    ReviewDue,
    /// Uses.
    Uses,
    /// Unique readers.
    UniqueReaders,
    /// Mean rating.
    AvgRating,
    /// Number of ratings.
    Ratings,
    /// Helpful share.
    HelpfulPct,
    /// Feedback comments.
    Feedback,
}

impl Column {
    /// Every column, with its name in `sort=`.
    pub const ALL: [(Column, &'static str); 13] = [
        (Column::Id, "id"),
        (Column::Slug, "slug"),
        (Column::Title, "title"),
        (Column::Category, "category"),
        (Column::Status, "status"),
        (Column::LastReviewed, "last_reviewed"),
        (Column::ReviewDue, "review_due"),
        (Column::Uses, "uses"),
        (Column::UniqueReaders, "unique_readers"),
        (Column::AvgRating, "avg_rating"),
        (Column::Ratings, "ratings"),
        (Column::HelpfulPct, "helpful_pct"),
        (Column::Feedback, "feedback"),
    ];

    /// Parses a column name.
    pub fn parse(s: &str) -> Result<Column> {
        Column::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(c, _)| *c)
            .ok_or_else(|| {
                let names: Vec<_> = Column::ALL.iter().map(|(_, n)| *n).collect();
                Error::invalid(
                    "sort",
                    format!("unknown column {s:?}; use one of {}", names.join(", ")),
                )
            })
    }

    /// Compares two rows on this column; missing values compare as `None`.
    fn compare(self, a: &ArticleUsage, b: &ArticleUsage) -> Option<Ordering> {
        fn opt<T: PartialOrd>(x: &Option<T>, y: &Option<T>) -> Option<Ordering> {
            match (x, y) {
                (Some(x), Some(y)) => x.partial_cmp(y),
                _ => None,
            }
        }
        Some(match self {
            Column::Id => a.id.cmp(&b.id),
            Column::Slug => a.slug.cmp(&b.slug),
            Column::Title => a.title.to_lowercase().cmp(&b.title.to_lowercase()),
            Column::Category => a.category.cmp(&b.category),
            Column::Status => a.status.as_str().cmp(b.status.as_str()),
            Column::LastReviewed => return opt(&a.last_reviewed, &b.last_reviewed),
            Column::ReviewDue => return opt(&a.review_due, &b.review_due),
            Column::Uses => a.uses.cmp(&b.uses),
            Column::UniqueReaders => a.unique_readers.cmp(&b.unique_readers),
            Column::AvgRating => return opt(&a.avg_rating, &b.avg_rating),
            Column::Ratings => a.ratings.cmp(&b.ratings),
            Column::HelpfulPct => return opt(&a.helpful_pct, &b.helpful_pct),
            Column::Feedback => a.feedback.cmp(&b.feedback),
        })
    }

    /// Whether this row has no value in this column (sorted last either way).
    fn missing(self, a: &ArticleUsage) -> bool {
        match self {
            Column::LastReviewed => a.last_reviewed.is_none(),
            Column::ReviewDue => a.review_due.is_none(),
            Column::AvgRating => a.avg_rating.is_none(),
            Column::HelpfulPct => a.helpful_pct.is_none(),
            _ => false,
        }
    }
}

/// A report request.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRequest {
    /// Which articles, and the window events are counted in.
    pub filter: UsageFilter,
    /// Sort column.
    pub sort: Column,
    /// Largest first.
    pub descending: bool,
    /// Page size, 1..=1000.
    pub limit: usize,
    /// Rows skipped.
    pub offset: usize,
}

/// One page of the report.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UsageReport {
    /// Readable articles matching the filters.
    pub total: usize,
    /// This page.
    pub rows: Vec<ArticleUsage>,
}

/// The director's report: usage of the articles the caller may read,
/// sorted on any column (ties by id; missing values last), one page.
pub async fn report(store: &Store, p: &Principal, req: &ReportRequest) -> Result<UsageReport> {
    let mut rows = store.article_usage(&req.filter).await?;
    rows.retain(|r| p.can_read_parts(&r.audience, r.status, &r.owner));
    let (col, desc) = (req.sort, req.descending);
    if col == Column::Title {
        // Lower-cases each title once rather than per comparison.
        if desc {
            rows.sort_by_cached_key(|r| (std::cmp::Reverse(r.title.to_lowercase()), r.id));
        } else {
            rows.sort_by_cached_key(|r| (r.title.to_lowercase(), r.id));
        }
    } else {
        rows.sort_by(|a, b| {
            match (col.missing(a), col.missing(b)) {
                (true, false) => return Ordering::Greater,
                (false, true) => return Ordering::Less,
                _ => {}
            }
            let o = col.compare(a, b).unwrap_or(Ordering::Equal);
            let o = if desc { o.reverse() } else { o };
            o.then(a.id.cmp(&b.id))
        });
    }
    let total = rows.len();
    let rows = rows
        .into_iter()
        .skip(req.offset)
        .take(req.limit.clamp(1, MAX_REPORT_LIMIT))
        .collect();
    Ok(UsageReport { total, rows })
}

/// An article clicked from a query.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ClickedArticle {
    /// Article id.
    pub id: ArticleId,
    /// Slug.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Clicks from this query.
    pub clicks: i64,
}

/// One query's figures.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QueryRow {
    /// The query, normalised (lower case, single spaces).
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
    /// Click-through rate: clicked searches / searches.
    pub ctr: f64,
    /// The latest search.
    pub last_at: DateTime<Utc>,
    /// The most clicked articles the caller may read (top queries only).
    pub clicked_articles: Vec<ClickedArticle>,
}

impl QueryRow {
    fn new(s: QueryStats) -> QueryRow {
        QueryRow {
            ctr: ratio(s.clicked_searches, s.searches),
            query: s.query,
            searches: s.searches,
            zero_results: s.zero_results,
            avg_results: s.avg_results,
            clicked_searches: s.clicked_searches,
            clicks: s.clicks,
            last_at: s.last_at,
            clicked_articles: vec![],
        }
    }
}

/// Totals over every query in the window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct QueryTotals {
    /// Searches.
    pub searches: i64,
    /// Searches that matched nothing.
    pub zero_results: i64,
    /// Searches with at least one click.
    pub clicked_searches: i64,
    /// Clicks.
    pub clicks: i64,
    /// Click-through rate: clicked searches / searches.
    pub ctr: f64,
}

/// The query report.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QueryReport {
    /// Totals.
    pub overall: QueryTotals,
    /// Most searched queries.
    pub top: Vec<QueryRow>,
    /// Queries that never matched anything, most searched first.
    pub no_results: Vec<QueryRow>,
    /// Queries that matched but whose results were never clicked, most
    /// searched first.
    pub poor_results: Vec<QueryRow>,
}

/// `n / d`, 0 when `d` is 0.
pub fn ratio(n: i64, d: i64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// Query figures over the window, `limit` rows per list.
pub async fn queries(
    store: &Store,
    p: &Principal,
    window: UsageWindow,
    limit: usize,
) -> Result<QueryReport> {
    let stats = store.query_stats(window, QUERY_SCAN).await?;
    let mut overall = QueryTotals {
        searches: 0,
        zero_results: 0,
        clicked_searches: 0,
        clicks: 0,
        ctr: 0.0,
    };
    for s in &stats {
        overall.searches += s.searches;
        overall.zero_results += s.zero_results;
        overall.clicked_searches += s.clicked_searches;
        overall.clicks += s.clicks;
    }
    overall.ctr = ratio(overall.clicked_searches, overall.searches);
    let rows: Vec<QueryRow> = stats.into_iter().map(QueryRow::new).collect();
    let no_results: Vec<QueryRow> = rows
        .iter()
        .filter(|r| r.zero_results == r.searches)
        .take(limit)
        .cloned()
        .collect();
    let poor_results: Vec<QueryRow> = rows
        .iter()
        .filter(|r| r.zero_results < r.searches && r.clicked_searches == 0)
        .take(limit)
        .cloned()
        .collect();
    let mut top: Vec<QueryRow> = rows.into_iter().take(limit).collect();
    attach_clicked(store, p, window, &mut top).await?;
    Ok(QueryReport {
        overall,
        top,
        no_results,
        poor_results,
    })
}

/// Fills in the most clicked readable articles of each row.
async fn attach_clicked(
    store: &Store,
    p: &Principal,
    window: UsageWindow,
    rows: &mut [QueryRow],
) -> Result<()> {
    let queries: Vec<String> = rows.iter().map(|r| r.query.clone()).collect();
    if queries.is_empty() {
        return Ok(());
    }
    let clicks = store.query_clicks(window, &queries).await?;
    let mut ids: Vec<ArticleId> = clicks.iter().map(|c| c.article_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let readable: HashMap<ArticleId, _> = store
        .get_articles(&ids)
        .await?
        .into_iter()
        .filter(|a| p.can_read(a))
        .map(|a| (a.id, a))
        .collect();
    for r in rows.iter_mut() {
        let mut list: Vec<ClickedArticle> = clicks
            .iter()
            .filter(|c| c.query == r.query)
            .filter_map(|c| {
                let a = readable.get(&c.article_id)?;
                Some(ClickedArticle {
                    id: a.id,
                    slug: a.slug.clone(),
                    title: a.title.clone(),
                    clicks: c.clicks,
                })
            })
            .collect();
        list.sort_by(|a, b| b.clicks.cmp(&a.clicks).then(a.id.cmp(&b.id)));
        list.truncate(CLICKED_PER_QUERY);
        r.clicked_articles = list;
    }
    Ok(())
}

/// One bucket of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct Point {
    /// Start of the bucket (UTC).
    pub at: DateTime<Utc>,
    /// Events in it.
    pub count: i64,
}

/// A time series for dashboards: every bucket of the range, empty ones
/// included.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TimeSeries {
    /// What is counted.
    pub metric: Metric,
    /// Bucket width.
    pub bucket: BucketSize,
    /// Start of the first bucket.
    pub from: DateTime<Utc>,
    /// End of the range (exclusive).
    pub to: DateTime<Utc>,
    /// One point per bucket, oldest first.
    pub points: Vec<Point>,
}

/// Counts of `metric` per bucket over `[from, to)` (defaults: up to now,
/// the last 30 days by day or the last 48 hours by hour). Counts cover all
/// articles and name none.
pub async fn timeseries(
    store: &Store,
    metric: Metric,
    bucket: BucketSize,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<TimeSeries> {
    let step = match bucket {
        BucketSize::Hour => Duration::hours(1),
        BucketSize::Day => Duration::days(1),
    };
    let to = to.unwrap_or_else(Utc::now);
    let from = from.unwrap_or(match bucket {
        BucketSize::Hour => to - Duration::hours(48),
        BucketSize::Day => to - Duration::days(30),
    });
    let from = from
        .duration_trunc(step)
        .map_err(|e| Error::invalid("from", e.to_string()))?;
    if from >= to {
        return Err(Error::invalid("from", "must be before to"));
    }
    let buckets = (to - from).num_seconds() / step.num_seconds() + 1;
    if buckets > MAX_BUCKETS {
        let msg = format!("at most {MAX_BUCKETS} buckets; use a shorter range or bucket=day");
        return Err(Error::invalid("from", msg));
    }
    let counts: HashMap<DateTime<Utc>, i64> = store
        .usage_timeseries(metric, bucket, from, to)
        .await?
        .into_iter()
        .collect();
    let mut points = Vec::with_capacity(buckets as usize);
    let mut at = from;
    while at < to {
        let count = counts.get(&at).copied().unwrap_or(0);
        points.push(Point { at, count });
        at += step;
    }
    Ok(TimeSeries {
        metric,
        bucket,
        from,
        to,
        points,
    })
}
