//! User, role and token operations with their access rules, shared by the
//! API and the CLI. The endpoint has checked its permission against the
//! role table; these add the per-target rules.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{new_token, Permission, Principal, ROLE_PERMISSIONS};
use crate::error::{Error, Result};
use crate::model::{Contact, User};
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
    /// E-mail address for notifications (optional).
    #[serde(default)]
    pub email: Option<String>,
    /// Webhook URL for notifications, e.g. an SMS gateway (optional).
    #[serde(default)]
    pub webhook_url: Option<String>,
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
    let contact = Contact {
        email: input.email,
        webhook_url: input.webhook_url,
    }
    .normalised()?;
    let user = store
        .create_user(p, &input.username, display.trim(), &input.roles)
        .await?;
    // Addresses are a second write: a user without them is complete, and
    // the contact change is audited on its own like later ones.
    if contact == Contact::default() {
        return Ok(user);
    }
    store.set_contact(p, &user.username, &contact).await
}

/// Sets a user's notification addresses: admins for anyone; others for
/// themselves, and only their e-mail. The server POSTs to a webhook URL, so
/// letting anyone choose one would let them aim the server at internal
/// addresses: admins set those.
pub async fn set_contact(
    store: &Store,
    p: &Principal,
    username: &str,
    contact: Contact,
) -> Result<User> {
    let admin = p.has(Permission::UserAdmin);
    if p.username != username && !admin {
        return Err(Error::Forbidden(Permission::UserAdmin.as_str()));
    }
    let contact = contact.normalised()?;
    if !admin {
        let current = store
            .get_user(username)
            .await?
            .ok_or_else(|| Error::NotFound(format!("user {username}")))?;
        if current.webhook_url != contact.webhook_url {
            return Err(Error::Forbidden(Permission::UserAdmin.as_str()));
        }
    }
    store.set_contact(p, username, &contact).await
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
