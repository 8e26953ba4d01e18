//! Usage over HTTP: client-reported events, ratings, helpful votes,
//! feedback, the privacy choice and history.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use engine::auth::Permission;
use engine::model::{Feedback, RatingSummary};
use engine::usage::{ClientEvent, History, Privacy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth, Params};
use crate::state::AppState;

/// Events a client reports.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsBody {
    /// At most 100 events.
    pub events: Vec<ClientEvent>,
}

/// How many events were accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsAccepted {
    /// Events queued for recording.
    pub accepted: usize,
}

/// Report dwell times and clicks on search results. Every article must be
/// readable by the caller (else 404); positions count from 0; dwell is at
/// most four hours. Recorded in the background: 202.
#[utoipa::path(post, path = "/v1/events", tag = "usage", request_body = EventsBody,
    responses((status = 202, body = EventsAccepted), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security((), ("bearer" = [])))]
pub async fn events(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<EventsBody>,
) -> ApiResult<(StatusCode, Json<EventsAccepted>)> {
    p.require(Permission::ArticleRead)?;
    let accepted = engine::usage::client_events(&s.store, &s.usage, &p, body.events).await?;
    Ok((StatusCode::ACCEPTED, Json(EventsAccepted { accepted })))
}

/// An article's ratings and helpful votes, with the caller's own.
#[utoipa::path(get, path = "/v1/articles/{id}/rating", tag = "usage",
    params(("id" = String, Path, description = "numeric id or slug")),
    responses((status = 200, body = RatingSummary), (status = 404, body = crate::error::Problem)),
    security((), ("bearer" = [])))]
pub async fn ratings(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<RatingSummary>> {
    p.require(Permission::ArticleRead)?;
    Ok(Json(engine::usage::ratings(&s.store, &p, &id).await?))
}

/// Stars.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingBody {
    /// 1 to 5.
    pub stars: i32,
}

/// Rate an article 1–5 stars; one rating per user and article, changed by
/// rating again.
#[utoipa::path(put, path = "/v1/articles/{id}/rating", tag = "usage", request_body = RatingBody,
    params(("id" = String, Path, description = "numeric id or slug")),
    responses((status = 200, body = RatingSummary), (status = 401, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn rate(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RatingBody>,
) -> ApiResult<Json<RatingSummary>> {
    p.require(Permission::ArticleRead)?;
    Ok(Json(
        engine::usage::rate(&s.store, &p, &id, body.stars).await?,
    ))
}

/// Helpful or not.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HelpfulBody {
    /// `true`: helpful; `false`: not helpful.
    pub helpful: bool,
}

/// Say whether an article helped; one vote per user and article, changed
/// by voting again.
#[utoipa::path(post, path = "/v1/articles/{id}/helpful", tag = "usage", request_body = HelpfulBody,
    params(("id" = String, Path, description = "numeric id or slug")),
    responses((status = 200, body = RatingSummary), (status = 401, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn helpful(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<HelpfulBody>,
) -> ApiResult<Json<RatingSummary>> {
    p.require(Permission::ArticleRead)?;
    Ok(Json(
        engine::usage::vote(&s.store, &p, &id, body.helpful).await?,
    ))
}

/// A comment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    /// What is wrong or missing (at most 4000 bytes).
    pub comment: String,
}

/// Leave feedback on an article: opens an update task for its owner (in
/// their `GET /v1/tasks`) and notifies them.
#[utoipa::path(post, path = "/v1/articles/{id}/feedback", tag = "usage", request_body = FeedbackBody,
    params(("id" = String, Path, description = "numeric id or slug")),
    responses((status = 201, body = Feedback), (status = 401, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn feedback(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<FeedbackBody>,
) -> ApiResult<(StatusCode, Json<Feedback>)> {
    p.require(Permission::ArticleRead)?;
    let f = engine::usage::feedback(&s.store, &p, &id, &body.comment).await?;
    Ok((StatusCode::CREATED, Json(f)))
}

/// The caller's privacy choice.
#[utoipa::path(get, path = "/v1/me/privacy", tag = "usage",
    responses((status = 200, body = Privacy), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn privacy(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<Privacy>> {
    p.require(Permission::ArticleRead)?;
    Ok(Json(engine::usage::privacy(&s.store, &p).await?))
}

/// Opt in to (or out of) search history. By default searches are stored
/// without the searcher's identity; opting out forgets which stored
/// searches were the caller's.
#[utoipa::path(put, path = "/v1/me/privacy", tag = "usage", request_body = Privacy,
    responses((status = 200, body = Privacy), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn set_privacy(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<Privacy>,
) -> ApiResult<Json<Privacy>> {
    p.require(Permission::ArticleRead)?;
    Ok(Json(engine::usage::set_privacy(&s.store, &p, body).await?))
}

fn history_limit(params: &Params) -> ApiResult<i64> {
    params.only(&["limit"])?;
    Ok(params.number("limit", 100, 1..=1000)? as i64)
}

/// The caller's own history: articles read, and searches made while opted
/// in to search history.
#[utoipa::path(get, path = "/v1/me/history", tag = "usage",
    params(("limit" = Option<usize>, Query, description = "1..=1000 per list, default 100")),
    responses((status = 200, body = History), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn my_history(
    State(s): State<AppState>,
    Auth(p): Auth,
    params: Params,
) -> ApiResult<Json<History>> {
    p.require(Permission::ArticleRead)?;
    let limit = history_limit(&params)?;
    Ok(Json(
        engine::usage::history(&s.store, &p, None, limit).await?,
    ))
}

/// A user's history: the user themselves and admins only.
#[utoipa::path(get, path = "/v1/users/{username}/history", tag = "usage",
    params(("username" = String, Path), ("limit" = Option<usize>, Query, description = "1..=1000 per list, default 100")),
    responses((status = 200, body = History), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn user_history(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(username): Path<String>,
    params: Params,
) -> ApiResult<Json<History>> {
    p.require(Permission::ArticleRead)?;
    let limit = history_limit(&params)?;
    Ok(Json(
        engine::usage::history(&s.store, &p, Some(&username), limit).await?,
    ))
}
