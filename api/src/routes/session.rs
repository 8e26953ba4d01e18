//! `/v1/session`: password sign-in and sign-out with a session cookie;
//! `PUT /v1/users/{username}/password`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::sessions::SESSION_HOURS;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{session_cookie, ApiJson, Auth, SESSION_COOKIE};
use crate::state::AppState;

/// Credentials.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The signed-in session, as the browser needs it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// Username.
    pub username: String,
    /// Roles and groups.
    pub roles: Vec<String>,
    /// Send this in `X-CSRF-Token` with every write.
    pub csrf_token: String,
}

fn cookie(s: &AppState, headers: &HeaderMap, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = s.cookie_secure
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let c = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&c).ok()
}

/// Sign in with a password. Sets an HttpOnly session cookie (a new session
/// id every time) and returns the CSRF token for writes. Failed attempts
/// are limited per account and per address (429 with `Retry-After`).
#[utoipa::path(post, path = "/v1/session", tag = "users", request_body = SignIn,
    responses((status = 200, body = SessionInfo), (status = 401, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn sign_in(
    State(s): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> ApiResult<Response> {
    let keys = vec![
        format!("user:{}", body.username),
        format!("addr:{}", addr.ip()),
    ];
    if let Some(wait) = s.sign_ins.blocked(&keys) {
        return Err(ApiError::TooManyAttempts(wait.as_secs().max(1)));
    }
    let from = addr.ip().to_string();
    let result = engine::sessions::sign_in(&s.store, &body.username, &body.password, &from).await;
    let session = match result {
        Ok(session) => session,
        Err(engine::Error::Unauthenticated) => {
            s.sign_ins.failed(&keys);
            return Err(ApiError::Engine(engine::Error::Unauthenticated));
        }
        Err(e) => return Err(e.into()),
    };
    s.sign_ins.succeeded(&keys[0]);
    // A session the browser still carries is ended: one session per sign-in.
    if let Some(old) = session_cookie(&headers) {
        let _ = engine::sessions::sign_out(&s.store, &session.principal, &old).await;
    }
    let info = SessionInfo {
        username: session.principal.username.clone(),
        roles: session.principal.roles.clone(),
        csrf_token: session.csrf_token.clone(),
    };
    let mut resp = Json(info).into_response();
    if let Some(c) = cookie(&s, &headers, &session.id, SESSION_HOURS * 3600) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The current session (to recover the CSRF token after a page load).
#[utoipa::path(get, path = "/v1/session", tag = "users",
    responses((status = 200, body = SessionInfo), (status = 401, body = crate::error::Problem)))]
pub async fn current(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<SessionInfo>> {
    let cookie =
        session_cookie(&headers).ok_or(ApiError::Engine(engine::Error::Unauthenticated))?;
    match engine::sessions::lookup(&s.store, &cookie).await? {
        Some((p, csrf)) => Ok(Json(SessionInfo {
            username: p.username,
            roles: p.roles,
            csrf_token: csrf,
        })),
        None => Err(ApiError::Engine(engine::Error::Unauthenticated)),
    }
}

/// Sign out: ends the session and clears the cookie.
#[utoipa::path(delete, path = "/v1/session", tag = "users", responses((status = 204)))]
pub async fn sign_out(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(c) = session_cookie(&headers) {
        engine::sessions::sign_out(&s.store, &p, &c).await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Some(c) = cookie(&s, &headers, "", 0) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(resp)
}

/// A new password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    /// The new password (at least 10 characters).
    pub password: String,
    /// The current password (when changing one's own).
    #[serde(default)]
    pub current_password: Option<String>,
}

/// Set a password: admins for anyone; users for themselves with their
/// current password.
#[utoipa::path(put, path = "/v1/users/{username}/password", tag = "users", request_body = PasswordBody,
    params(("username" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn set_password(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<StatusCode> {
    if !p.is_signed_in() {
        return Err(engine::Error::Unauthenticated.into());
    }
    engine::sessions::set_password(
        &s.store,
        &p,
        &username,
        &body.password,
        body.current_password.as_deref(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sign in with a password (the same as `POST /v1/session`).
#[utoipa::path(post, path = "/v1/auth/login", tag = "users", request_body = SignIn,
    responses((status = 200, body = SessionInfo), (status = 401, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn login(
    state: State<AppState>,
    addr: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: ApiJson<SignIn>,
) -> ApiResult<Response> {
    sign_in(state, addr, headers, body).await
}

/// Sign out (the same as `DELETE /v1/session`).
#[utoipa::path(post, path = "/v1/auth/logout", tag = "users", responses((status = 204)))]
pub async fn logout(state: State<AppState>, auth: Auth, headers: HeaderMap) -> ApiResult<Response> {
    sign_out(state, auth, headers).await
}
