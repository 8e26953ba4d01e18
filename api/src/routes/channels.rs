//! `/v1/categories/{category}/…`: a category's promotion channels —
//! webhook subscriptions (admins) and the Atom feed (anyone; each caller
//! sees only what they may read).

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use engine::auth::Permission;
use engine::model::CategoryWebhook;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth};
use crate::state::AppState;

/// A webhook to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where to POST (http or https).
    pub url: String,
}

/// Register a webhook for the category's publications. The response
/// carries the signing secret, which is never shown again: verify
/// `X-KMT-Signature` as `sha256=` hex HMAC-SHA256(secret, `X-KMT-Timestamp`
/// + "." + body).
#[utoipa::path(post, path = "/v1/categories/{category}/webhooks", tag = "rules", request_body = NewWebhook,
    params(("category" = String, Path)),
    responses((status = 201, body = CategoryWebhook), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create_webhook(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(category): Path<String>,
    ApiJson(body): ApiJson<NewWebhook>,
) -> ApiResult<(StatusCode, Json<CategoryWebhook>)> {
    p.require(Permission::RuleAdmin)?;
    let hook =
        engine::notify::channels::register_webhook(&s.store, &p, &category, &body.url).await?;
    Ok((StatusCode::CREATED, Json(hook)))
}

/// The category's webhooks (without secrets).
#[utoipa::path(get, path = "/v1/categories/{category}/webhooks", tag = "rules",
    params(("category" = String, Path)),
    responses((status = 200, body = Vec<CategoryWebhook>), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_webhooks(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(category): Path<String>,
) -> ApiResult<Json<Vec<CategoryWebhook>>> {
    p.require(Permission::RuleAdmin)?;
    Ok(Json(
        engine::notify::channels::webhooks(&s.store, &category).await?,
    ))
}

/// Delete one of the category's webhooks.
#[utoipa::path(delete, path = "/v1/categories/{category}/webhooks/{id}", tag = "rules",
    params(("category" = String, Path), ("id" = i64, Path)),
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn delete_webhook(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((category, id)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    p.require(Permission::RuleAdmin)?;
    engine::notify::channels::delete_webhook(&s.store, &p, &category, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Atom feed of the category's most recently published articles that the
/// caller may read (anonymous callers: public articles only).
#[utoipa::path(get, path = "/v1/categories/{category}/feed.atom", tag = "articles",
    params(("category" = String, Path)),
    responses((status = 200, content_type = "application/atom+xml", body = String), (status = 422, body = crate::error::Problem)),
    security((), ("bearer" = [])))]
pub async fn feed(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(category): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let xml = engine::notify::channels::feed(&s.store, &p, &category).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        xml,
    ))
}
