//! The API's error type and its problem+json rendering (RFC 9457).
//!
//! One table ([`status_of`]) maps error kinds to HTTP status codes. Bodies
//! of 5xx responses hide internals; the cause is logged once, here.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::ErrorKind;
use serde::Serialize;
use utoipa::ToSchema;

/// Errors a handler can return.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An engine error (user or internal).
    #[error(transparent)]
    Engine(#[from] engine::Error),
    /// The request could not be decoded (bad JSON, bad query string).
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
        /// The offending field or parameter, when known.
        field: Option<String>,
    },
    /// A background task failed.
    #[error("internal task failed")]
    Task(#[from] tokio::task::JoinError),
    /// A cookie-authenticated write without the session's CSRF token.
    #[error("missing or wrong X-CSRF-Token header for a request signed in with a session cookie")]
    Csrf,
    /// Too many failed sign-ins; retry after the given seconds.
    #[error("too many failed sign-ins; try again in {0} seconds")]
    TooManyAttempts(u64),
    /// The client sent requests faster than its rate limit.
    #[error("too many requests; try again in {0} seconds")]
    RateLimited(u64),
    /// The request body is larger than the limit (bytes).
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
}

impl ApiError {
    /// A 400 naming a parameter.
    pub fn bad_param(field: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            field: Some(field.to_string()),
        }
    }
}

/// The problem document returned for every error.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, human-readable summary of the type.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The offending field, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every field at fault, when several are (rule violations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<engine::error::FieldFault>>,
}

/// The one table from error kind to HTTP status.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Builds a problem response.
pub fn problem(status: StatusCode, detail: String, field: Option<String>) -> Response {
    problem_with(status, detail, field, None)
}

/// Builds a problem response listing several faulty fields.
pub fn problem_with(
    status: StatusCode,
    detail: String,
    field: Option<String>,
    errors: Option<Vec<engine::error::FieldFault>>,
) -> Response {
    let title = status.canonical_reason().unwrap_or("Error").to_string();
    let slug = title.to_lowercase().replace(' ', "-");
    let body = Problem {
        kind: format!("https://kmt.dev/problems/{slug}"),
        title,
        status: status.as_u16(),
        detail,
        field,
        errors,
    };
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::BadRequest { message, field } => {
                problem(StatusCode::BAD_REQUEST, message, field)
            }
            ApiError::Engine(e) => {
                let status = status_of(e.kind());
                if status.is_server_error() {
                    tracing::error!(error = %e, source = ?std::error::Error::source(&e), "request failed");
                    let detail = if status == StatusCode::SERVICE_UNAVAILABLE {
                        e.to_string()
                    } else {
                        "internal error; the server log has the details".to_string()
                    };
                    return problem(status, detail, None);
                }
                let field = match &e {
                    engine::Error::Invalid { field, .. } => Some(field.clone()),
                    _ => None,
                };
                let errors = match &e {
                    engine::Error::RuleViolations(f) => Some(f.clone()),
                    _ => None,
                };
                problem_with(status, e.to_string(), field, errors)
            }
            ApiError::TooLarge(_) => problem(StatusCode::PAYLOAD_TOO_LARGE, self.to_string(), None),
            ApiError::Csrf => problem(
                StatusCode::FORBIDDEN,
                self.to_string(),
                Some("x-csrf-token".into()),
            ),
            ApiError::TooManyAttempts(secs) | ApiError::RateLimited(secs) => {
                let mut r = problem(StatusCode::TOO_MANY_REQUESTS, self.to_string(), None);
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
            ApiError::Task(e) => {
                tracing::error!(error = %e, "request task failed");
                problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; the server log has the details".into(),
                    None,
                )
            }
        }
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
