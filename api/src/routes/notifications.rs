//! `/v1/notifications`: the signed-in user's in-app notifications.

use axum::extract::State;
use axum::Json;
use engine::model::Notification;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth, Params};
use crate::state::AppState;

/// A page of notifications and the unread count.
#[derive(Debug, Serialize, ToSchema)]
pub struct Inbox {
    /// Unread notifications in all.
    pub unread: i64,
    /// Newest first.
    pub items: Vec<Notification>,
}

fn signed_in(p: &engine::auth::Principal) -> ApiResult<()> {
    if p.is_signed_in() {
        Ok(())
    } else {
        Err(engine::Error::Unauthenticated.into())
    }
}

/// The caller's notifications (`unread=true` for unread only; `limit`
/// 1..=500, default 50) and unread count.
#[utoipa::path(get, path = "/v1/notifications", tag = "workflow",
    params(("unread" = Option<bool>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, body = Inbox), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    params: Params,
) -> ApiResult<Json<Inbox>> {
    signed_in(&p)?;
    params.only(&["unread", "limit"])?;
    let unread_only = match params.get("unread") {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(
                engine::Error::invalid("unread", format!("{v:?} is not true or false")).into(),
            )
        }
    };
    let limit = params.number("limit", 50, 1..=500)? as i64;
    let items = s
        .store
        .list_notifications(&p.username, unread_only, limit)
        .await?;
    let unread = s.store.unread_notifications(&p.username).await?;
    Ok(Json(Inbox { unread, items }))
}

/// Which notifications to mark read.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// These ids; all of the caller's when absent.
    #[serde(default)]
    pub ids: Option<Vec<i64>>,
}

/// Mark notifications read; returns how many changed.
#[utoipa::path(post, path = "/v1/notifications/read", tag = "workflow", request_body = MarkRead,
    responses((status = 200, description = "{\"marked\": n}"), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn mark_read(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<MarkRead>,
) -> ApiResult<Json<serde_json::Value>> {
    signed_in(&p)?;
    let n = s
        .store
        .mark_notifications_read(&p.username, body.ids.as_deref())
        .await?;
    Ok(Json(serde_json::json!({ "marked": n })))
}
