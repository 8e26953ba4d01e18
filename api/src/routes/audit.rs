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
/// `after_id` (default 0), optionally only those by `actor`, with `action`,
/// about `target`, at or after `since` and before `until` (RFC 3339 times or
/// `YYYY-MM-DD` dates, UTC). Page by passing the last id seen.
#[utoipa::path(get, path = "/v1/audit", tag = "operations",
    params(("after_id" = Option<i64>, Query), ("limit" = Option<usize>, Query),
        ("actor" = Option<String>, Query, description = "username, e.g. `admin`"),
        ("action" = Option<String>, Query, description = "e.g. `article.create`"),
        ("target" = Option<String>, Query, description = "e.g. `article:42`, `user:vera`"),
        ("since" = Option<String>, Query, description = "RFC 3339 time or date, inclusive"),
        ("until" = Option<String>, Query, description = "RFC 3339 time or date, exclusive")),
    responses((status = 200, body = Vec<AuditEntry>), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    params: Params,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    p.require(Permission::AuditRead)?;
    params.only(&[
        "after_id", "limit", "actor", "action", "target", "since", "until",
    ])?;
    let filter = AuditFilter {
        after_id: params.number("after_id", 0, 0..=i64::MAX as usize)? as i64,
        limit: params.number("limit", 100, 1..=1000)? as i64,
        actor: params.text("actor"),
        action: params.text("action"),
        target: params.text("target"),
        since: params.time("since")?,
        until: params.time("until")?,
    };
    Ok(Json(s.store.list_audit(&filter).await?))
}
