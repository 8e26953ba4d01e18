//! Analytics and reading assignments over HTTP: the director's report,
//! query figures, time series; assigning articles to read or review.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use engine::auth::Permission;
use engine::model::{Assignment, BucketSize, Metric, UsageFilter, UsageWindow};
use engine::usage::analytics::{Column, QueryReport, ReportRequest, TimeSeries, UsageReport};
use engine::usage::assignments::{AssignOutcome, AssignRequest};
use engine::usage::parse_time;

use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth, Params};
use crate::state::AppState;

/// The `from`/`to` parameters.
fn window(params: &Params) -> ApiResult<UsageWindow> {
    let t = |k: &str| -> ApiResult<_> {
        match params.get(k) {
            None | Some("") => Ok(None),
            Some(v) => Ok(Some(parse_time(k, v)?)),
        }
    };
    Ok(UsageWindow {
        from: t("from")?,
        to: t("to")?,
    })
}

fn invalid(field: &str, message: String) -> crate::error::ApiError {
    engine::Error::invalid(field, message).into()
}

/// Usage per article the caller may read (the director's report): id,
/// slug, title, category, status, last reviewed, next review, uses, unique
/// readers, mean rating, ratings, helpful share, feedback. Sortable on
/// every column; uses, readers and feedback count events in `from`..`to`.
#[utoipa::path(get, path = "/v1/analytics/articles", tag = "analytics",
    params(
        ("sort" = Option<String>, Query, description = "id, slug, title, category, status, last_reviewed, review_due, uses (default), unique_readers, avg_rating, ratings, helpful_pct, feedback"),
        ("order" = Option<String>, Query, description = "asc or desc (default desc)"),
        ("category" = Option<String>, Query), ("status" = Option<String>, Query),
        ("from" = Option<String>, Query, description = "date or RFC 3339, inclusive"),
        ("to" = Option<String>, Query, description = "date or RFC 3339, exclusive"),
        ("limit" = Option<usize>, Query, description = "1..=1000, default 100"),
        ("offset" = Option<usize>, Query),
    ),
    responses((status = 200, body = UsageReport), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn articles(
    State(s): State<AppState>,
    Auth(p): Auth,
    params: Params,
) -> ApiResult<Json<UsageReport>> {
    p.require(Permission::AnalyticsRead)?;
    params.only(&[
        "sort", "order", "category", "status", "from", "to", "limit", "offset",
    ])?;
    let sort = match params.get("sort") {
        None | Some("") => Column::Uses,
        Some(c) => Column::parse(c)?,
    };
    let descending = match params.get("order") {
        None | Some("") | Some("desc") => true,
        Some("asc") => false,
        Some(o) => return Err(invalid("order", format!("{o:?} is not asc or desc"))),
    };
    let status = match params.get("status") {
        None | Some("") => None,
        Some(v) => Some(v.parse()?),
    };
    let req = ReportRequest {
        filter: UsageFilter {
            category: params
                .get("category")
                .filter(|c| !c.is_empty())
                .map(str::to_string),
            status,
            window: window(&params)?,
        },
        sort,
        descending,
        limit: params.number("limit", 100, 1..=1000)?,
        offset: params.number("offset", 0, 0..=1_000_000)?,
    };
    Ok(Json(
        engine::usage::analytics::report(&s.store, &p, &req).await?,
    ))
}

/// Search figures: totals and click-through rate, the most searched
/// queries (with the readable articles clicked from them), queries that
/// never matched, and queries whose results were never clicked. Queries
/// carry no identity.
#[utoipa::path(get, path = "/v1/analytics/queries", tag = "analytics",
    params(
        ("from" = Option<String>, Query), ("to" = Option<String>, Query),
        ("limit" = Option<usize>, Query, description = "rows per list, 1..=500, default 20"),
    ),
    responses((status = 200, body = QueryReport), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn queries(
    State(s): State<AppState>,
    Auth(p): Auth,
    params: Params,
) -> ApiResult<Json<QueryReport>> {
    p.require(Permission::AnalyticsRead)?;
    params.only(&["from", "to", "limit"])?;
    let limit = params.number("limit", 20, 1..=500)?;
    let w = window(&params)?;
    Ok(Json(
        engine::usage::analytics::queries(&s.store, &p, w, limit).await?,
    ))
}

/// Views, searches or clicks per hour or day (UTC), every bucket of the
/// range included.
#[utoipa::path(get, path = "/v1/analytics/timeseries", tag = "analytics",
    params(
        ("metric" = String, Query, description = "views, searches or clicks"),
        ("bucket" = Option<String>, Query, description = "day (default) or hour"),
        ("from" = Option<String>, Query, description = "default: 30 days (48 hours) before to"),
        ("to" = Option<String>, Query, description = "default: now"),
    ),
    responses((status = 200, body = TimeSeries), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn timeseries(
    State(s): State<AppState>,
    Auth(p): Auth,
    params: Params,
) -> ApiResult<Json<TimeSeries>> {
    p.require(Permission::AnalyticsRead)?;
    params.only(&["metric", "bucket", "from", "to"])?;
    let metric = match params.get("metric") {
        Some("views") => Metric::Views,
        Some("searches") => Metric::Searches,
        Some("clicks") => Metric::Clicks,
        other => {
            let msg = format!("{other:?}: use views, searches or clicks");
            return Err(invalid("metric", msg));
        }
    };
    let bucket = match params.get("bucket") {
        None | Some("") | Some("day") => BucketSize::Day,
        Some("hour") => BucketSize::Hour,
        Some(b) => return Err(invalid("bucket", format!("{b:?} is not day or hour"))),
    };
    let w = window(&params)?;
    Ok(Json(
        engine::usage::analytics::timeseries(&s.store, metric, bucket, w.from, w.to).await?,
    ))
}

/// Ask people or roles to read (or review) an article, in one call. Roles
/// are expanded to their current members; people who may not read the
/// article are skipped and listed. Assigning again reopens.
#[utoipa::path(post, path = "/v1/articles/{id}/assignments", tag = "analytics", request_body = AssignRequest,
    params(("id" = String, Path, description = "numeric id or slug")),
    responses((status = 201, body = AssignOutcome), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn assign(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AssignRequest>,
) -> ApiResult<(StatusCode, Json<AssignOutcome>)> {
    p.require(Permission::ArticleAssign)?;
    let out = engine::usage::assignments::assign(&s.store, &p, &id, body).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Who was asked to read or review an article, and when each did.
#[utoipa::path(get, path = "/v1/articles/{id}/assignments", tag = "analytics",
    params(("id" = String, Path, description = "numeric id or slug")),
    responses((status = 200, body = Vec<Assignment>), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn assignments(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Assignment>>> {
    p.require(Permission::ArticleAssign)?;
    Ok(Json(
        engine::usage::assignments::of_article(&s.store, &p, &id).await?,
    ))
}

/// The caller's reading and review assignments (open ones first; done ones
/// with `include_done=true`). Kept apart from `GET /v1/tasks`, whose items
/// are workflow tasks with another shape.
#[utoipa::path(get, path = "/v1/assignments/mine", tag = "analytics",
    params(("include_done" = Option<bool>, Query)),
    responses((status = 200, body = Vec<Assignment>), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn my_assignments(
    State(s): State<AppState>,
    Auth(p): Auth,
    params: Params,
) -> ApiResult<Json<Vec<Assignment>>> {
    p.require(Permission::ArticleRead)?;
    params.only(&["include_done"])?;
    let include_done = match params.get("include_done") {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(invalid(
                "include_done",
                format!("{v:?} is not true or false"),
            ))
        }
    };
    Ok(Json(
        engine::usage::assignments::mine(&s.store, &p, include_done).await?,
    ))
}
