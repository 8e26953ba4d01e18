//! `/v1/me`, `/v1/users`: who am I, users, roles and API tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use engine::auth::Permission;
use engine::model::{Contact, Preferences, User};
use engine::users::{IssuedToken, Me, NewGroup, NewUser, PreferencesView, RoleInfo};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth};
use crate::state::AppState;

/// The caller: username, roles and the permissions the role table grants.
#[utoipa::path(get, path = "/v1/me", tag = "users",
    responses((status = 200, body = Me)), security((), ("bearer" = [])))]
pub async fn me(Auth(p): Auth) -> Json<Me> {
    Json(engine::users::me(&p))
}

/// The caller's reader preferences (the level articles open in).
#[utoipa::path(get, path = "/v1/me/preferences", tag = "users",
    responses((status = 200, body = PreferencesView), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn preferences(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<PreferencesView>> {
    Ok(Json(engine::users::preferences(&s.store, &p).await?))
}

/// Saves the caller's reader preferences.
#[utoipa::path(put, path = "/v1/me/preferences", tag = "users", request_body = Preferences,
    responses((status = 200, body = PreferencesView), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn set_preferences(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(prefs): ApiJson<Preferences>,
) -> ApiResult<Json<PreferencesView>> {
    Ok(Json(
        engine::users::set_preferences(&s.store, &p, prefs).await?,
    ))
}

/// Built-in roles (with the permissions the role table grants) and custom
/// groups, with their members.
#[utoipa::path(get, path = "/v1/roles", tag = "users",
    responses((status = 200, body = Vec<RoleInfo>), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn roles(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<Vec<RoleInfo>>> {
    p.require(Permission::UserAdmin)?;
    Ok(Json(engine::users::roles(&s.store).await?))
}

/// Define a custom group (users then hold it like a role).
#[utoipa::path(post, path = "/v1/roles", tag = "users", request_body = NewGroup,
    responses((status = 201, body = RoleInfo), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create_group(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(g): ApiJson<NewGroup>,
) -> ApiResult<(StatusCode, Json<RoleInfo>)> {
    p.require(Permission::UserAdmin)?;
    let r = engine::users::create_group(&s.store, &p, g).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// Every user.
#[utoipa::path(get, path = "/v1/users", tag = "users",
    responses((status = 200, body = Vec<User>), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<Vec<User>>> {
    p.require(Permission::UserAdmin)?;
    Ok(Json(s.store.list_users().await?))
}

/// Create a user with roles and groups.
#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = User), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(input): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    p.require(Permission::UserAdmin)?;
    let u = engine::users::create(&s.store, &p, input).await?;
    Ok((StatusCode::CREATED, Json(u)))
}

/// Set a user's notification addresses (e-mail, webhook URL; both
/// replaced, absent or blank clears): admins for anyone, users for
/// themselves.
#[utoipa::path(put, path = "/v1/users/{username}/contact", tag = "users", request_body = Contact,
    params(("username" = String, Path)),
    responses((status = 200, body = User), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn set_contact(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<Contact>,
) -> ApiResult<Json<User>> {
    if !p.is_signed_in() {
        return Err(engine::Error::Unauthenticated.into());
    }
    Ok(Json(
        engine::users::set_contact(&s.store, &p, &username, body).await?,
    ))
}

/// New roles for a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesBody {
    /// The complete list of roles and groups.
    pub roles: Vec<String>,
}

/// Replace a user's roles and groups.
#[utoipa::path(put, path = "/v1/users/{username}/roles", tag = "users", request_body = RolesBody,
    params(("username" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn set_roles(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<RolesBody>,
) -> ApiResult<Json<User>> {
    p.require(Permission::UserAdmin)?;
    Ok(Json(s.store.set_roles(&p, &username, &body.roles).await?))
}

/// A label for a new token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// What the token is for.
    pub name: String,
}

/// Issue an API token (shown once). Admins for anyone; users for themselves.
#[utoipa::path(post, path = "/v1/users/{username}/tokens", tag = "users", request_body = TokenBody,
    params(("username" = String, Path)),
    responses((status = 201, body = IssuedToken), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create_token(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<TokenBody>,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    if p.username != username {
        p.require(Permission::UserAdmin)?;
    } else if !p.is_signed_in() {
        return Err(engine::Error::Unauthenticated.into());
    }
    let t = engine::users::issue_token(&s.store, &p, &username, &body.name).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// Ask every server to rebuild its index from the store (queries keep
/// being answered; the new index is swapped in when complete).
#[utoipa::path(post, path = "/v1/admin/reindex", tag = "operations",
    responses((status = 202, description = "rebuild requested; body holds the outbox sequence"), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn reindex(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    p.require(Permission::Import)?;
    let seq = s.store.request_reindex(&p).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "seq": seq })),
    ))
}
