//! User, role and token operations with their access rules, shared by the
//! API and the CLI. The endpoint has checked its permission against the
//! role table; these add the per-target rules.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{new_token, Permission, Principal, ROLE_PERMISSIONS};
use crate::error::{Error, Result};
use crate::model::{Level, Preferences, User};
use crate::store::Store;

/// Input for creating a user.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Unique sign-in name (1–64 of a-z 0-9 . _ -).
    pub username: String,
    /// Name shown to people (defaults to the username).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Roles and groups.
    pub roles: Vec<String>,
}

/// A new API token: shown once, stored only as a hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuedToken {
    /// Owner of the token.
    pub username: String,
    /// The label given to it.
    pub name: String,
    /// The bearer token itself; it cannot be retrieved again.
    pub token: String,
}

/// What the caller is and may do.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Me {
    /// Username (`anonymous` when not signed in).
    pub username: String,
    /// Roles and groups.
    pub roles: Vec<String>,
    /// Permissions granted by the role table.
    pub permissions: Vec<&'static str>,
}

/// A user's reader preferences and what they amount to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PreferencesView {
    /// What the user chose.
    #[serde(flatten)]
    pub chosen: Preferences,
    /// The level articles open in for them (their choice, else the
    /// default for their roles).
    pub effective_level: Level,
}

fn signed_in_user(p: &Principal) -> Result<i64> {
    p.user_id.ok_or(Error::Unauthenticated)
}

/// The caller's reader preferences (signed-in users only).
pub async fn preferences(store: &Store, p: &Principal) -> Result<PreferencesView> {
    let chosen = store.get_preferences(signed_in_user(p)?).await?;
    Ok(PreferencesView {
        effective_level: chosen.level.unwrap_or_else(|| Level::default_for(p)),
        chosen,
    })
}

/// Saves the caller's reader preferences.
pub async fn set_preferences(
    store: &Store,
    p: &Principal,
    prefs: Preferences,
) -> Result<PreferencesView> {
    store.put_preferences(p, signed_in_user(p)?, &prefs).await?;
    preferences(store, p).await
}

/// Describes the caller.
pub fn me(p: &Principal) -> Me {
    let mut permissions: Vec<&'static str> = ROLE_PERMISSIONS
        .iter()
        .flat_map(|(_, perms)| perms.iter())
        .filter(|perm| p.has(**perm))
        .map(|perm| perm.as_str())
        .collect();
    if !permissions.contains(&Permission::ArticleRead.as_str()) {
        permissions.push(Permission::ArticleRead.as_str());
    }
    permissions.sort_unstable();
    permissions.dedup();
    Me {
        username: p.username.clone(),
        roles: p.roles.clone(),
        permissions,
    }
}

/// Creates a user.
pub async fn create(store: &Store, p: &Principal, input: NewUser) -> Result<User> {
    if input.roles.is_empty() {
        return Err(Error::invalid(
            "roles",
            "give at least one role (e.g. viewer)",
        ));
    }
    let display = input
        .display_name
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| input.username.clone());
    store
        .create_user(p, &input.username, display.trim(), &input.roles)
        .await
}

/// Issues a token for `username`: admins for anyone, others for themselves.
pub async fn issue_token(
    store: &Store,
    p: &Principal,
    username: &str,
    name: &str,
) -> Result<IssuedToken> {
    if p.username != username && !p.has(Permission::UserAdmin) {
        return Err(Error::Forbidden(Permission::UserAdmin.as_str()));
    }
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(Error::invalid("name", "must be 1-100 characters"));
    }
    let (token, hash) = new_token();
    store.create_token(p, username, name, &hash).await?;
    Ok(IssuedToken {
        username: username.to_string(),
        name: name.to_string(),
        token,
    })
}
