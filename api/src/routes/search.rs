//! `GET /v1/search`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::Json;
use engine::auth::Permission;
use engine::search::{
    FacetField, Filter, Fusion, MatchMode, SearchMode, SearchRequest, SearchResults, Sort,
};

use crate::error::ApiResult;
use crate::extract::{Auth, Params};
use crate::state::AppState;

const PARAMS: &[&str] = &[
    "q", "filter", "facets", "sort", "limit", "offset", "match", "mode", "fusion", "explain",
];

/// Maps query parameters to a search request.
pub fn parse_request(p: &Params, default_sort: Sort) -> ApiResult<SearchRequest> {
    p.only(PARAMS)?;
    let filters = p
        .all("filter")
        .filter(|f| !f.is_empty())
        .map(Filter::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let mut facets = Vec::new();
    for v in p.all("facets") {
        for name in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let f = FacetField::parse(name)?;
            if !facets.contains(&f) {
                facets.push(f);
            }
        }
    }
    let sort = match p.get("sort") {
        None | Some("") => default_sort,
        Some("relevance") => Sort::Relevance,
        Some("updated") => Sort::Updated,
        Some("title") => Sort::Title,
        Some(other) => {
            return Err(engine::Error::invalid(
                "sort",
                format!("unknown sort {other:?}; use relevance, updated or title"),
            )
            .into())
        }
    };
    let match_mode = match p.get("match") {
        None | Some("") | Some("all") => MatchMode::All,
        Some("any") => MatchMode::Any,
        Some(other) => {
            return Err(engine::Error::invalid(
                "match",
                format!("unknown match mode {other:?}; use all or any"),
            )
            .into())
        }
    };
    let mode = match p.get("mode") {
        None | Some("") => None,
        Some(m) => Some(SearchMode::parse(m)?),
    };
    let fusion = match p.get("fusion") {
        None | Some("") => None,
        Some("rrf") => Some(Fusion::Rrf),
        Some("adaptive") => Some(Fusion::Adaptive),
        Some(other) => match other.strip_prefix("convex:").map(str::parse::<f32>) {
            Some(Ok(w)) if (0.0..=1.0).contains(&w) => Some(Fusion::Convex(w)),
            _ => {
                return Err(engine::Error::invalid(
                    "fusion",
                    format!(
                        "unknown fusion {other:?}; use adaptive, rrf or convex:W with W in 0..=1"
                    ),
                )
                .into())
            }
        },
    };
    let explain = match p.get("explain") {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(engine::Error::invalid(
                "explain",
                format!("{other:?} is not true or false"),
            )
            .into())
        }
    };
    let req = SearchRequest {
        q: p.get("q").unwrap_or("").to_string(),
        filters,
        facets,
        sort,
        limit: p.number("limit", 10, 1..=engine::search::MAX_LIMIT)?,
        offset: p.number("offset", 0, 0..=engine::search::MAX_OFFSET)?,
        match_mode,
        mode,
        fusion,
        explain,
    };
    req.validate()?;
    Ok(req)
}

/// Runs a search on a blocking thread (tantivy is CPU-bound) and records
/// it in the search metrics (failed searches are not timed).
pub async fn run(s: &AppState, auth: Auth, req: SearchRequest) -> ApiResult<SearchResults> {
    let index = s.index.clone();
    let principal = auth.0;
    let res = tokio::task::spawn_blocking(move || index.search(&principal, &req)).await??;
    s.metrics.observe_search(&res);
    Ok(res)
}

/// `Server-Timing` header from the stage timings.
pub fn server_timing(r: &SearchResults) -> HeaderMap {
    let t = &r.timings;
    let v = format!(
        "parse;dur={:.3}, embed;dur={:.3}, vector;dur={:.3}, search;dur={:.3}, facets;dur={:.3}, snippets;dur={:.3}, total;dur={:.3}",
        t.parse, t.embed, t.vector, t.search, t.facets, t.snippets, t.total
    );
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&v) {
        h.insert("server-timing", v);
    }
    h
}

/// Search articles the caller may read.
///
/// A search with words is recorded in the background (never waited for)
/// and answered with an `X-Search-Id` header; clients report clicks on its
/// results with that id (`POST /v1/events`). The query is stored without
/// the caller's identity unless they opted in to search history.
///
/// Words match title (boosted most), summary and body; `"quoted text"` is a
/// phrase; the last word also matches as a prefix; words the index does not
/// contain match near spellings. Filters: `category:X`, `tags:X`,
/// `status:X`, `audience:X`, `updated_at>=2025-01-01`, `published_at<…`;
/// the same field repeated ORs, different fields AND. Totals, facet counts
/// and snippets only ever describe articles the caller may read.
#[utoipa::path(get, path = "/v1/search", tag = "search",
    params(
        ("q" = Option<String>, Query, description = "query text"),
        ("filter" = Option<Vec<String>>, Query, description = "filters, repeatable"),
        ("facets" = Option<String>, Query, description = "comma-separated: category,tags"),
        ("sort" = Option<String>, Query, description = "relevance (default), updated, title"),
        ("limit" = Option<usize>, Query, description = "1..=100, default 10"),
        ("offset" = Option<usize>, Query, description = "0..=10000"),
        ("match" = Option<String>, Query, description = "all (default) or any"),
        ("mode" = Option<String>, Query, description = "hybrid (default with a model), lexical, semantic"),
        ("fusion" = Option<String>, Query, description = "hybrid fusion: convex:W (default: convex:0.8 with MiniLM, convex:0.5 with the static embedder), rrf, adaptive"),
        ("explain" = Option<bool>, Query, description = "per-hit lexical score, similarity and fused score"),
    ),
    responses((status = 200, body = SearchResults), (status = 400, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security((), ("bearer" = [])))]
pub async fn search(
    State(s): State<AppState>,
    auth: Auth,
    params: Params,
) -> ApiResult<(HeaderMap, Json<SearchResults>)> {
    auth.0.require(Permission::ArticleRead)?;
    let req = parse_request(&params, Sort::Relevance)?;
    let p = auth.0.clone();
    let res = run(&s, auth, req.clone()).await?;
    let mut headers = server_timing(&res);
    if let Some(id) = engine::usage::searched(&s.usage, &p, &req, &res) {
        if let Ok(v) = HeaderValue::from_str(&id) {
            headers.insert("x-search-id", v);
        }
    }
    Ok((headers, Json(res)))
}
