//! `GET /v1/audit`: the audit trail, for admins.

use axum::extract::State;
use axum::Json;
use engine::auth::Permission;
use engine::model::AuditEntry;
use engine::store::AuditFilter;

use crate::error::ApiResult;
use crate::extract::{Auth, Params};
use crate::state::AppState;

/// Audit rows in chain order, `limit` (1..=1000, default 100) rows after
/// `after_id` (default 0). Page by passing the last id seen.
#[utoipa::path(get, path = "/v1/audit", tag = "operations",
    params(("after_id" = Option<i64>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, body = Vec<AuditEntry>), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    params: Params,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    p.require(Permission::AuditRead)?;
    params.only(&["after_id", "limit"])?;
    let filter = AuditFilter {
        after_id: params.number("after_id", 0, 0..=i64::MAX as usize)? as i64,
        limit: params.number("limit", 100, 1..=1000)? as i64,
    };
    Ok(Json(s.store.list_audit(&filter).await?))
}
