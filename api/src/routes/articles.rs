//! `/v1/articles`: create, read, update, delete, list, versions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use engine::articles::ArticleView;
use engine::auth::Permission;
use engine::model::{Article, ArticlePatch, ArticleVersion, Level, NewArticle};
use engine::search::{SearchResults, Sort};

use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth, Params};
use crate::routes::search::{parse_request, run, server_timing};
use crate::state::AppState;

/// List articles the caller may read, newest first (a search without
/// text; accepts the search parameters).
#[utoipa::path(get, path = "/v1/articles", tag = "articles",
    params(("filter" = Option<Vec<String>>, Query), ("sort" = Option<String>, Query), ("limit" = Option<usize>, Query), ("offset" = Option<usize>, Query)),
    responses((status = 200, body = SearchResults)),
    security((), ("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    auth: Auth,
    params: Params,
) -> ApiResult<(axum::http::HeaderMap, Json<SearchResults>)> {
    auth.0.require(Permission::ArticleRead)?;
    let req = parse_request(&params, Sort::Updated)?;
    let res = run(&s, auth, req).await?;
    Ok((server_timing(&res), Json(res)))
}

/// Create an article (owned by the caller). Creating it directly as
/// `published` needs the publish permission.
#[utoipa::path(post, path = "/v1/articles", tag = "articles", request_body = NewArticle,
    responses((status = 201, body = Article), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(input): ApiJson<NewArticle>,
) -> ApiResult<(StatusCode, Json<Article>)> {
    p.require(Permission::ArticleWrite)?;
    let a = engine::articles::create(&s.store, &p, input).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// Read an article by id or slug: the sections the caller may see, in a
/// level (`summary` leaves the body out). Recorded as a use, in the
/// background; completes the caller's read assignment of it.
#[utoipa::path(get, path = "/v1/articles/{id}", tag = "articles",
    params(("id" = String, Path, description = "numeric id or slug"),
        ("level" = Option<String>, Query, description = "summary or detailed; default: the reader's preference, else summary for reviewers and admins and detailed for everyone else")),
    responses((status = 200, body = ArticleView), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security((), ("bearer" = [])))]
pub async fn get(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Json<ArticleView>> {
    p.require(Permission::ArticleRead)?;
    params.only(&["level"])?;
    let level = params
        .get("level")
        .map(|l| Level::parse("level", l))
        .transpose()?;
    Ok(Json(
        engine::usage::view(&s.store, &s.usage, &p, &id, level).await?,
    ))
}

/// Update an article: fields present replace the stored ones; a new
/// version is written. `expected_version` guards against lost updates.
#[utoipa::path(put, path = "/v1/articles/{id}", tag = "articles", request_body = ArticlePatch,
    params(("id" = String, Path, description = "numeric id or slug")),
    responses((status = 200, body = Article), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn update(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<ArticlePatch>,
) -> ApiResult<Json<Article>> {
    p.require(Permission::ArticleWrite)?;
    Ok(Json(
        engine::articles::update(&s.store, &p, &id, patch).await?,
    ))
}

/// Retire an article: gone from search, history kept (publishers).
#[utoipa::path(post, path = "/v1/articles/{id}/retire", tag = "articles",
    params(("id" = String, Path, description = "numeric id or slug")),
    responses((status = 200, body = Article), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn retire(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Article>> {
    p.require(Permission::ArticlePublish)?;
    Ok(Json(engine::articles::retire(&s.store, &p, &id).await?))
}

/// Delete an article (its versions and audit trail stay).
#[utoipa::path(delete, path = "/v1/articles/{id}", tag = "articles",
    params(("id" = String, Path, description = "numeric id or slug")),
    responses((status = 204), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    p.require(Permission::ArticleDelete)?;
    engine::articles::delete(&s.store, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Related articles the caller may read: nearest neighbours by meaning
/// (by the title's words when no model is loaded), never the article
/// itself.
#[utoipa::path(get, path = "/v1/articles/{id}/related", tag = "articles",
    params(("id" = String, Path, description = "numeric id or slug"), ("limit" = Option<usize>, Query, description = "1..=100, default 5")),
    responses((status = 200, body = RelatedArticles), (status = 404, body = crate::error::Problem)),
    security((), ("bearer" = [])))]
pub async fn related(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Json<RelatedArticles>> {
    p.require(Permission::ArticleRead)?;
    params.only(&["limit"])?;
    let limit = params.number("limit", 5, 1..=engine::search::MAX_LIMIT)?;
    let related = engine::articles::related(&s.store, &s.index, &p, &id, limit).await?;
    Ok(Json(RelatedArticles { related }))
}

/// Related articles.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RelatedArticles {
    /// Most related first.
    pub related: Vec<engine::search::Hit>,
}

/// Version history, oldest first.
#[utoipa::path(get, path = "/v1/articles/{id}/versions", tag = "articles",
    params(("id" = String, Path, description = "numeric id or slug")),
    responses((status = 200, body = Vec<ArticleVersion>), (status = 404, body = crate::error::Problem)),
    security((), ("bearer" = [])))]
pub async fn versions(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ArticleVersion>>> {
    p.require(Permission::ArticleRead)?;
    Ok(Json(engine::articles::versions(&s.store, &p, &id).await?))
}

/// `from`/`to` versions to compare.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct DiffParams {
    /// Older version.
    pub from: i32,
    /// Newer version.
    pub to: i32,
}

/// A readable diff between two versions: each changed field with a unified
/// line diff.
#[utoipa::path(get, path = "/v1/articles/{id}/diff", tag = "articles",
    params(("id" = String, Path, description = "numeric id or slug"), ("from" = i32, Query), ("to" = i32, Query)),
    responses((status = 200, body = engine::articles::VersionDiff), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security((), ("bearer" = [])))]
pub async fn diff(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Json<engine::articles::VersionDiff>> {
    p.require(Permission::ArticleRead)?;
    params.only(&["from", "to"])?;
    let v = |k: &str| -> ApiResult<i32> { Ok(params.number(k, 0, 1..=i32::MAX as usize)? as i32) };
    let (from, to) = (v("from")?, v("to")?);
    Ok(Json(
        engine::articles::diff(&s.store, &p, &id, from, to).await?,
    ))
}

/// Which version to restore.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertBody {
    /// The version whose content becomes the new version.
    pub version: i32,
}

/// Revert: a new version with the content of an earlier one.
#[utoipa::path(post, path = "/v1/articles/{id}/revert", tag = "articles", request_body = RevertBody,
    params(("id" = String, Path, description = "numeric id or slug")),
    responses((status = 200, body = Article), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn revert(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RevertBody>,
) -> ApiResult<Json<Article>> {
    p.require(Permission::ArticleWrite)?;
    Ok(Json(
        engine::articles::revert(&s.store, &p, &id, body.version).await?,
    ))
}
