//! The review workflow over HTTP: drafts of live articles, submit,
//! approve, reject, tasks.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use engine::auth::Permission;
use engine::model::{Article, ArticlePatch, Decision, Task, WorkingCopy};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth, Params};
use crate::state::AppState;

/// The pending draft (working copy) of a published article.
#[utoipa::path(get, path = "/v1/articles/{id}/draft", tag = "workflow",
    params(("id" = String, Path, description = "numeric id or slug")),
    responses((status = 200, body = WorkingCopy), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_draft(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<WorkingCopy>> {
    p.require(Permission::ArticleWrite)?;
    Ok(Json(engine::workflow::get_draft(&s.store, &p, &id).await?))
}

/// Save changes to a published article as its draft; the published version
/// stays live until the draft is approved.
#[utoipa::path(put, path = "/v1/articles/{id}/draft", tag = "workflow", request_body = ArticlePatch,
    params(("id" = String, Path, description = "numeric id or slug")),
    responses((status = 200, body = WorkingCopy), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn save_draft(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<ArticlePatch>,
) -> ApiResult<Json<WorkingCopy>> {
    p.require(Permission::ArticleWrite)?;
    Ok(Json(
        engine::workflow::save_draft(&s.store, &p, &id, patch).await?,
    ))
}

/// Submit the draft for review: opens a review task for reviewers.
#[utoipa::path(post, path = "/v1/articles/{id}/submit", tag = "workflow",
    params(("id" = String, Path, description = "numeric id or slug")),
    responses((status = 201, body = Task), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn submit(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Task>)> {
    p.require(Permission::ArticleWrite)?;
    let t = engine::workflow::submit(&s.store, &p, &id).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// A reviewer's note.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// Why (required to reject).
    #[serde(default)]
    pub note: Option<String>,
}

async fn decide(
    s: &AppState,
    p: &engine::auth::Principal,
    id: &str,
    d: Decision,
    note: Option<String>,
) -> ApiResult<Json<Article>> {
    p.require(Permission::ArticlePublish)?;
    Ok(Json(
        engine::workflow::decide(&s.store, p, id, d, note).await?,
    ))
}

/// Approve what is in review: it is published (immediately searchable).
#[utoipa::path(post, path = "/v1/articles/{id}/approve", tag = "workflow", request_body = DecisionBody,
    params(("id" = String, Path, description = "numeric id or slug")),
    responses((status = 200, body = Article), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn approve(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Article>> {
    let note = optional_note(&body)?;
    decide(&s, &p, &id, Decision::Approve, note).await
}

/// Reject what is in review, with a note for its author.
#[utoipa::path(post, path = "/v1/articles/{id}/reject", tag = "workflow", request_body = DecisionBody,
    params(("id" = String, Path, description = "numeric id or slug")),
    responses((status = 200, body = Article), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn reject(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> ApiResult<Json<Article>> {
    decide(&s, &p, &id, Decision::Reject, body.note).await
}

/// Approve the submission review task `id` is about (the same as
/// `POST /v1/articles/{article}/approve`).
#[utoipa::path(post, path = "/v1/tasks/{id}/approve", tag = "workflow", request_body = DecisionBody,
    params(("id" = i64, Path, description = "task id")),
    responses((status = 200, body = Article), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn approve_task(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Article>> {
    p.require(Permission::ArticlePublish)?;
    let note = optional_note(&body)?;
    Ok(Json(
        engine::workflow::decide_task(&s.store, &p, id, Decision::Approve, note).await?,
    ))
}

/// Reject the submission review task `id` is about, with a note.
#[utoipa::path(post, path = "/v1/tasks/{id}/reject", tag = "workflow", request_body = DecisionBody,
    params(("id" = i64, Path, description = "task id")),
    responses((status = 200, body = Article), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn reject_task(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> ApiResult<Json<Article>> {
    p.require(Permission::ArticlePublish)?;
    Ok(Json(
        engine::workflow::decide_task(&s.store, &p, id, Decision::Reject, body.note).await?,
    ))
}

/// Send an article to staff for update: one update task per user and role
/// named; the article becomes `needs_update` (still searchable) and the
/// assignees are notified.
#[utoipa::path(post, path = "/v1/articles/{id}/request-update", tag = "workflow", request_body = engine::workflow::UpdateRequest,
    params(("id" = String, Path, description = "numeric id or slug")),
    responses((status = 201, body = Vec<Task>), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn request_update(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<engine::workflow::UpdateRequest>,
) -> ApiResult<(StatusCode, Json<Vec<Task>>)> {
    p.require(Permission::ArticleAssign)?;
    let tasks = engine::workflow::request_update(&s.store, &p, &id, body).await?;
    Ok((StatusCode::CREATED, Json(tasks)))
}

/// An optional JSON `{"note"}` body: an approval needs no note.
fn optional_note(body: &[u8]) -> ApiResult<Option<String>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Ok(crate::extract::json_body::<DecisionBody>(body)?.note)
}

/// Tasks for the caller (their roles' and their own; admins: all).
#[utoipa::path(get, path = "/v1/tasks", tag = "workflow",
    params(("include_done" = Option<bool>, Query)),
    responses((status = 200, body = Vec<Task>), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn tasks(
    State(s): State<AppState>,
    Auth(p): Auth,
    params: Params,
) -> ApiResult<Json<Vec<Task>>> {
    if !p.is_signed_in() {
        return Err(engine::Error::Unauthenticated.into());
    }
    params.only(&["include_done"])?;
    let include_done = match params.get("include_done") {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(engine::Error::invalid(
                "include_done",
                format!("{v:?} is not true or false"),
            )
            .into())
        }
    };
    Ok(Json(
        engine::workflow::tasks(&s.store, &p, include_done).await?,
    ))
}
