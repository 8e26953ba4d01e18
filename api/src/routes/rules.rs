//! `/v1/rules`: category rules (mandatory fields, minimum lengths, review
//! interval, approver role, escalation path), versioned.

use axum::extract::{Path, State};
use axum::Json;
use engine::auth::Permission;
use engine::model::{CategoryRule, RuleSpec};

use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth};
use crate::state::AppState;

fn require_signed_in(p: &engine::auth::Principal) -> ApiResult<()> {
    if p.is_signed_in() {
        Ok(())
    } else {
        Err(engine::Error::Unauthenticated.into())
    }
}

/// The latest rules of every category (`*` is the global default).
#[utoipa::path(get, path = "/v1/rules", tag = "rules",
    responses((status = 200, body = Vec<CategoryRule>), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<Vec<CategoryRule>>> {
    require_signed_in(&p)?;
    Ok(Json(s.store.list_rules().await?))
}

/// The rules that apply to a category: its own, else the global default.
#[utoipa::path(get, path = "/v1/rules/{category}", tag = "rules",
    params(("category" = String, Path)),
    responses((status = 200, body = RuleSpec), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn effective(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(category): Path<String>,
) -> ApiResult<Json<RuleSpec>> {
    require_signed_in(&p)?;
    Ok(Json(engine::rules::effective(&s.store, &category).await?))
}

/// Every version of a category's rules, oldest first.
#[utoipa::path(get, path = "/v1/rules/{category}/history", tag = "rules",
    params(("category" = String, Path)),
    responses((status = 200, body = Vec<CategoryRule>), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn history(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(category): Path<String>,
) -> ApiResult<Json<Vec<CategoryRule>>> {
    p.require(Permission::RuleAdmin)?;
    Ok(Json(engine::rules::history(&s.store, &category).await?))
}

/// Save a new version of a category's rules (`*` for the global default).
#[utoipa::path(put, path = "/v1/rules/{category}", tag = "rules", request_body = RuleSpec,
    params(("category" = String, Path)),
    responses((status = 200, body = CategoryRule), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn save(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(category): Path<String>,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> ApiResult<Json<CategoryRule>> {
    p.require(Permission::RuleAdmin)?;
    Ok(Json(
        engine::rules::save(&s.store, &p, &category, spec).await?,
    ))
}
