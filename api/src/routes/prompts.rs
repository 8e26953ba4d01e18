//! Knowledge-development prompts over HTTP: gaps to write (and readers'
//! explicit requests for an article), articles to update, the likely
//! category and tags of a new draft.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{Duration, Utc};
use engine::auth::Permission;
use engine::model::UsageWindow;
use engine::prompts::{
    ArticleRequest, Classification, DraftText, Gap, NewArticleRequest, UpdatePrompt,
};

use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth, Params};
use crate::state::AppState;

/// Searches that went unanswered (nothing found, or nothing clicked),
/// grouped by meaning: each group is a suggested new article with its
/// example queries, how often they were asked and a likely category.
/// Queries asked once are left out.
#[utoipa::path(get, path = "/v1/prompts/gaps", tag = "analytics",
    params(("days" = Option<i64>, Query, description = "window in days, 1..=365, default 30"),
        ("limit" = Option<usize>, Query, description = "1..=100, default 20")),
    responses((status = 200, body = Vec<Gap>), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn gaps(
    State(s): State<AppState>,
    Auth(p): Auth,
    params: Params,
) -> ApiResult<Json<Vec<Gap>>> {
    p.require(Permission::ArticleWrite)?;
    params.only(&["days", "limit"])?;
    let days = params.number("days", 30, 1..=365)? as i64;
    let limit = params.number("limit", 20, 1..=100)?;
    let window = UsageWindow {
        from: Some(Utc::now() - Duration::days(days)),
        to: None,
    };
    Ok(Json(
        engine::prompts::gaps(&s.store, &s.index, &p, window, limit).await?,
    ))
}

/// Live articles that need an update — past their review date, rated low,
/// voted unhelpful, given feedback, or used less and less — by impact.
/// Analytics readers see every article they may read; others their own.
#[utoipa::path(get, path = "/v1/prompts/updates", tag = "analytics",
    params(("days" = Option<i64>, Query, description = "window in days, 1..=365, default 30 (falling use compares it with the window before)"),
        ("limit" = Option<usize>, Query, description = "1..=500, default 50")),
    responses((status = 200, body = Vec<UpdatePrompt>), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn updates(
    State(s): State<AppState>,
    Auth(p): Auth,
    params: Params,
) -> ApiResult<Json<Vec<UpdatePrompt>>> {
    p.require(Permission::ArticleRead)?;
    params.only(&["days", "limit"])?;
    let days = params.number("days", 30, 1..=365)? as i64;
    let limit = params.number("limit", 50, 1..=500)?;
    Ok(Json(
        engine::prompts::updates(&s.store, &p, days, limit).await?,
    ))
}

/// The category and tags a new draft most likely has: the category from
/// the record-type classifier (trained with the recommendation models),
/// the tags from its nearest readable published articles.
#[utoipa::path(post, path = "/v1/prompts/classify", tag = "analytics", request_body = DraftText,
    responses((status = 200, body = Classification), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn classify(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(draft): ApiJson<DraftText>,
) -> ApiResult<Json<Classification>> {
    p.require(Permission::ArticleWrite)?;
    let models = s.recommender.models();
    let model = models.as_deref().and_then(|m| m.category_model.as_ref());
    Ok(Json(
        engine::prompts::classify(&s.index, model, &p, draft).await?,
    ))
}

/// "Ask for an article on this": a signed-in reader asks for an article on
/// what they searched for. Counted once per person and query; the query
/// shows up in the writers' gaps at once, without the reader's name.
#[utoipa::path(post, path = "/v1/prompts/requests", tag = "analytics", request_body = NewArticleRequest,
    responses((status = 201, body = ArticleRequest), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn request_article(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<NewArticleRequest>,
) -> ApiResult<(StatusCode, Json<ArticleRequest>)> {
    p.require(Permission::ArticleRead)?;
    let r = engine::prompts::request_article(&s.store, &p, req).await?;
    Ok((StatusCode::CREATED, Json(r)))
}
