//! Recommendations over HTTP: "recommended for you", "people who used this
//! also used", and retraining on demand.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use engine::auth::Permission;
use engine::recommend::Recommendations;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::{Auth, Params};
use crate::state::AppState;

fn limit(params: &Params) -> ApiResult<usize> {
    params.only(&["limit"])?;
    params.number("limit", 10, 1..=engine::recommend::blend::MAX_LIMIT)
}

/// Articles recommended to the signed-in caller, each with the reason it
/// was chosen: `collaborative` (people with similar ratings liked it),
/// `also_used` (used by the people who used `because`), `similar_content`
/// (close to what the caller read and rated well), `popular_in_category`
/// (cold start: much used in a category the caller's roles read) or
/// `popular`. Only articles the caller may read and has not used yet.
/// Served from the last trained model; `model` is null before the first.
#[utoipa::path(get, path = "/v1/recommendations", tag = "usage",
    params(("limit" = Option<usize>, Query, description = "1..=100, default 10")),
    responses((status = 200, body = Recommendations), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn mine(
    State(s): State<AppState>,
    Auth(p): Auth,
    params: Params,
) -> ApiResult<Json<Recommendations>> {
    let limit = limit(&params)?;
    Ok(Json(
        engine::recommend::blend::for_user(&s.store, &s.index, &s.recommender, &p, limit).await?,
    ))
}

/// People who used this article also used: nearest neighbours of its
/// collaborative-filtering factor vector, among the articles the caller
/// may read (as many as `limit` whenever that many readable ones exist).
#[utoipa::path(get, path = "/v1/articles/{id}/also-used", tag = "usage",
    params(("id" = String, Path, description = "numeric id or slug"),
        ("limit" = Option<usize>, Query, description = "1..=100, default 10")),
    responses((status = 200, body = Recommendations), (status = 404, body = crate::error::Problem)),
    security((), ("bearer" = [])))]
pub async fn also_used(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Json<Recommendations>> {
    let limit = limit(&params)?;
    Ok(Json(
        engine::recommend::blend::also_used(&s.store, &s.index, &s.recommender, &p, &id, limit)
            .await?,
    ))
}

/// A retraining was started.
#[derive(Debug, Serialize, ToSchema)]
pub struct Retrain {
    /// The first model generation that includes the data stored now;
    /// `GET /v1/recommendations` reports the generation it served.
    pub generation: u64,
}

/// Retrain the recommendation models now, in the background (answers at
/// once; requests keep being served by the previous model).
#[utoipa::path(post, path = "/v1/admin/recommendations/retrain", tag = "operations",
    responses((status = 202, body = Retrain), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn retrain(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<(StatusCode, Json<Retrain>)> {
    p.require(Permission::Import)?;
    let generation = s.recommender.request(&s.store);
    Ok((StatusCode::ACCEPTED, Json(Retrain { generation })))
}
