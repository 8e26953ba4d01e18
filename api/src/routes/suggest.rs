//! `GET /v1/suggest`: as-you-type suggestions.

use axum::extract::State;
use axum::Json;
use engine::auth::Permission;
use engine::search::{Suggestion, MAX_SUGGEST_LIMIT, MAX_SUGGEST_QUERY_BYTES};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::{Auth, Params};
use crate::state::AppState;

const PARAMS: &[&str] = &["q", "limit"];
/// Suggestions returned when `limit` is not given.
const DEFAULT_LIMIT: usize = 8;

/// Suggestions for what the caller is typing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Suggestions {
    /// Best first.
    pub suggestions: Vec<Suggestion>,
}

/// Suggest completions of the query being typed.
///
/// Titles of articles the caller may read with a word starting with the last
/// word typed (and containing the other words), and the query with its last
/// word completed to words of readable articles, most frequent first; near
/// spellings of the last word (4+ characters) follow exact prefixes. Nothing
/// from an article the caller may not read is ever suggested.
#[utoipa::path(get, path = "/v1/suggest", tag = "search",
    params(
        ("q" = String, Query, description = "the text typed so far, 1..=100 bytes"),
        ("limit" = Option<usize>, Query, description = "1..=20, default 8"),
    ),
    responses((status = 200, body = Suggestions), (status = 400, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security((), ("bearer" = [])))]
pub async fn suggest(
    State(s): State<AppState>,
    auth: Auth,
    params: Params,
) -> ApiResult<Json<Suggestions>> {
    auth.0.require(Permission::ArticleRead)?;
    params.only(PARAMS)?;
    let q = params.get("q").unwrap_or("").to_string();
    if q.trim().is_empty() || q.len() > MAX_SUGGEST_QUERY_BYTES {
        return Err(engine::Error::invalid(
            "q",
            format!("must be 1..={MAX_SUGGEST_QUERY_BYTES} bytes of text"),
        )
        .into());
    }
    let limit = params.number("limit", DEFAULT_LIMIT, 1..=MAX_SUGGEST_LIMIT)?;
    let index = s.index.clone();
    let principal = auth.0;
    // Map searches and verification queries are CPU-bound.
    let suggestions =
        tokio::task::spawn_blocking(move || index.suggest(&principal, &q, limit)).await??;
    Ok(Json(Suggestions { suggestions }))
}
