//! Request extractors that answer rejections with our problem responses:
//! [`ApiJson`] for bodies, [`Params`] for query strings (repeated keys
//! allowed), and [`Auth`] for the caller.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use engine::auth::{hash_token, Principal};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// JSON body extractor with problem+json rejections.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !crate::guard::is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::BadRequest {
                message: "expected a request with `Content-Type: application/json`".into(),
                field: None,
            });
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rej| {
                if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::TooLarge(crate::app::BODY_LIMIT)
                } else {
                    ApiError::BadRequest {
                        message: rej.body_text(),
                        field: None,
                    }
                }
            })?;
        json_body(&bytes).map(ApiJson)
    }
}

/// Decodes a JSON request body, which must be an object (every body the
/// API takes is one; serde would otherwise read `[]` as a struct with all
/// fields left out), refusing NUL characters in its text (no field may
/// hold one, and PostgreSQL cannot store them).
pub fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::BadRequest {
            message: "the request body must be a JSON object".into(),
            field: None,
        });
    }
    if crate::guard::json_has_nul(bytes) {
        return Err(ApiError::BadRequest {
            message: "text must not contain NUL characters (\\u0000)".into(),
            field: None,
        });
    }
    match axum::Json::<T>::from_bytes(bytes) {
        Ok(axum::Json(v)) => Ok(v),
        Err(rej) => Err(ApiError::BadRequest {
            message: rej.body_text(),
            field: None,
        }),
    }
}

/// The query string as (key, value) pairs, keys possibly repeated.
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Fails on any key not in `allowed` (typos should not be ignored silently).
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        for (k, _) in &self.0 {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::bad_param(
                    k,
                    format!(
                        "unknown parameter {k:?}; expected one of {}",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `key` parsed as a number within `range`, or `default`.
    pub fn number(
        &self,
        key: &str,
        default: usize,
        range: std::ops::RangeInclusive<usize>,
    ) -> Result<usize, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if range.contains(&n) => Ok(n),
                _ => Err(ApiError::Engine(engine::Error::invalid(
                    key,
                    format!(
                        "{v:?} is not a number in {}..={}",
                        range.start(),
                        range.end()
                    ),
                ))),
            },
        }
    }
}

impl Params {
    /// `key` as a time: RFC 3339 (`2025-01-31T12:00:00Z`) or a date
    /// (`2025-01-31`, meaning its midnight UTC); `None` when absent.
    pub fn time(&self, key: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
        let Some(v) = self.get(key).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
            return Ok(Some(t.with_timezone(&chrono::Utc)));
        }
        match chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
            Ok(d) => Ok(Some(d.and_time(chrono::NaiveTime::MIN).and_utc())),
            Err(_) => Err(ApiError::Engine(engine::Error::invalid(
                key,
                format!("{v:?} is not an RFC 3339 time or a YYYY-MM-DD date"),
            ))),
        }
    }

    /// `key` as a non-empty string; `None` when absent or empty.
    pub fn text(&self, key: &str) -> Option<String> {
        self.get(key).filter(|v| !v.is_empty()).map(String::from)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let mut pairs = Vec::new();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = crate::guard::decode_component(k).map_err(|why| {
                ApiError::bad_param("query", format!("a parameter name is {why}"))
            })?;
            let value = crate::guard::decode_component(v).map_err(|why| {
                ApiError::bad_param(&key, format!("the value of {key:?} is {why}"))
            })?;
            pairs.push((key, value));
        }
        Ok(Params(pairs))
    }
}

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "kmt_session";
/// Header carrying the CSRF token on cookie-authenticated writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of the session cookie, if the request carries one.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The authenticated caller: a Bearer token's user, else a session
/// cookie's user, else anonymous. Cookie-authenticated writes must carry the
/// session's CSRF token in `X-CSRF-Token` (a cross-site form cannot read
/// it); token-authenticated requests need none (browsers never attach
/// bearer tokens by themselves).
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(h) = parts.headers.get(header::AUTHORIZATION) {
            let token = h
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
                .ok_or(ApiError::Engine(engine::Error::Unauthenticated))?;
            return match state.store.principal_for_token(&hash_token(token)).await? {
                Some(p) => Ok(Auth(p)),
                None => Err(ApiError::Engine(engine::Error::Unauthenticated)),
            };
        }
        let Some(cookie) = session_cookie(&parts.headers) else {
            return Ok(Auth(Principal::anonymous()));
        };
        // An unknown or expired session is simply not signed in.
        let Some((p, csrf)) = engine::sessions::lookup(&state.store, &cookie).await? else {
            return Ok(Auth(Principal::anonymous()));
        };
        if !parts.method.is_safe() {
            let presented = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !engine::sessions::csrf_matches(presented, &csrf) {
                return Err(ApiError::Csrf);
            }
        }
        Ok(Auth(p))
    }
}
