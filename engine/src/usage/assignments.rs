//! Reading assignments: a director or reviewer asks people or roles to
//! read (or review) an article in one call, and sees who did and when.
//!
//! A role is expanded to its members when the assignment is made (one row
//! per person, so "who has read it" is a plain list; people who join the
//! role later are not included). People who may not read the article are
//! skipped and named in the answer. A read assignment is done by the
//! assignee's first view after it was made (the event writer marks it); a
//! review assignment by their rating, vote or feedback. Assigning again
//! reopens a done assignment. Assignees see theirs in
//! `GET /v1/assignments/mine` and get a notification.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::articles;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::model::{validate_name, Assignee, Assignment, AssignmentKind};
use crate::store::Store;

/// Most users plus roles one assignment names.
pub const MAX_ASSIGNEES: usize = 500;

/// Whom to ask, and to do what.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// Usernames.
    #[serde(default)]
    pub users: Vec<String>,
    /// Roles or groups, expanded to their current members.
    #[serde(default)]
    pub roles: Vec<String>,
    /// `read` (default) or `review`.
    #[serde(default = "read")]
    pub kind: AssignmentKind,
}

fn read() -> AssignmentKind {
    AssignmentKind::Read
}

/// What an assignment did.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AssignOutcome {
    /// The assignments made (or reopened), by username.
    pub assigned: Vec<Assignment>,
    /// People named (directly or through a role) who may not read the
    /// article, so were not assigned.
    pub skipped: Vec<String>,
}

/// Assigns the article at `key` to the request's people and roles.
pub async fn assign(
    store: &Store,
    p: &Principal,
    key: &str,
    req: AssignRequest,
) -> Result<AssignOutcome> {
    if req.users.is_empty() && req.roles.is_empty() {
        return Err(Error::invalid("users", "name at least one user or role"));
    }
    if req.users.len() + req.roles.len() > MAX_ASSIGNEES {
        let msg = format!("at most {MAX_ASSIGNEES} users and roles together");
        return Err(Error::invalid("users", msg));
    }
    for (i, r) in req.roles.iter().enumerate() {
        validate_name(&format!("roles[{i}]"), r)?;
    }
    let article = articles::get(store, p, key).await?;
    let users = store.list_users().await?;
    let mut chosen: Vec<(Principal, Option<String>)> = Vec::new();
    for (i, name) in req.users.iter().enumerate() {
        let u = users
            .iter()
            .find(|u| &u.username == name)
            .ok_or_else(|| Error::invalid(format!("users[{i}]"), format!("no user {name:?}")))?;
        chosen.push((principal(u), None));
    }
    for role in &req.roles {
        for u in users.iter().filter(|u| u.roles.contains(role)) {
            if !chosen.iter().any(|(c, _)| c.username == u.username) {
                chosen.push((principal(u), Some(role.clone())));
            }
        }
    }
    let (ok, skipped): (Vec<_>, Vec<_>) =
        chosen.into_iter().partition(|(u, _)| u.can_read(&article));
    let mut skipped: Vec<String> = skipped.into_iter().map(|(u, _)| u.username).collect();
    skipped.sort();
    let assignees: Vec<Assignee> = ok
        .into_iter()
        .filter_map(|(u, via_role)| {
            Some(Assignee {
                user_id: u.user_id?,
                username: u.username,
                via_role,
            })
        })
        .collect();
    if assignees.is_empty() {
        return Ok(AssignOutcome {
            assigned: vec![],
            skipped,
        });
    }
    let assigned = store.assign(p, article.id, req.kind, &assignees).await?;
    let to: Vec<String> = assigned
        .iter()
        .map(|a| a.username.clone())
        .filter(|u| *u != p.username)
        .collect();
    crate::notify::assigned(store, &article, &to, &p.username, req.kind.as_str()).await;
    Ok(AssignOutcome { assigned, skipped })
}

fn principal(u: &crate::model::User) -> Principal {
    Principal {
        user_id: Some(u.id),
        username: u.username.clone(),
        roles: u.roles.clone(),
    }
}

/// Who was asked to read or review the article at `key`, and when they did.
pub async fn of_article(store: &Store, p: &Principal, key: &str) -> Result<Vec<Assignment>> {
    let article = articles::get(store, p, key).await?;
    store.article_assignments(article.id).await
}

/// The caller's assignments (open ones; done ones too when asked), only of
/// articles they may still read.
pub async fn mine(store: &Store, p: &Principal, include_done: bool) -> Result<Vec<Assignment>> {
    let Some(uid) = p.user_id else {
        return Err(Error::Unauthenticated);
    };
    let mut list = store.user_assignments(uid, include_done).await?;
    let mut ids: Vec<_> = list.iter().map(|a| a.article_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let readable: std::collections::HashSet<_> = store
        .get_articles(&ids)
        .await?
        .into_iter()
        .filter(|a| p.can_read(a))
        .map(|a| a.id)
        .collect();
    list.retain(|a| readable.contains(&a.article_id));
    Ok(list)
}
