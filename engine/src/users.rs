//! User, role and token operations with their access rules, shared by the
//! API and the CLI. The endpoint has checked its permission against the
//! role table; these add the per-target rules.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{new_token, Permission, Principal, ROLE_PERMISSIONS};
use crate::error::{Error, Result};
use crate::model::{Contact, Level, Preferences, User};
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

/// A built-in role or a custom group, with what it grants and who holds it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoleInfo {
    /// Name users hold.
    pub name: String,
    /// `role` (built in, grants permissions) or `group` (custom, widens
    /// audiences only).
    pub kind: &'static str,
    /// What it is for.
    pub description: String,
    /// Permissions the role table grants (none for groups).
    pub permissions: Vec<&'static str>,
    /// Usernames holding it.
    pub members: Vec<String>,
}

/// Input for defining a custom group.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    /// Name (1–64 of a-z 0-9 - _), not a built-in role.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
}

/// Every built-in role and custom group (defined ones and those only held
/// by users) with their permissions and members.
pub async fn roles(store: &Store) -> Result<Vec<RoleInfo>> {
    let users = store.list_users().await?;
    let members = |name: &str| -> Vec<String> {
        users
            .iter()
            .filter(|u| u.roles.iter().any(|r| r == name))
            .map(|u| u.username.clone())
            .collect()
    };
    let mut out: Vec<RoleInfo> = ROLE_PERMISSIONS
        .iter()
        .map(|(name, perms)| RoleInfo {
            name: name.to_string(),
            kind: "role",
            description: String::new(),
            permissions: perms.iter().map(|p| p.as_str()).collect(),
            members: members(name),
        })
        .collect();
    let mut groups: std::collections::BTreeMap<String, String> = store
        .list_groups()
        .await?
        .into_iter()
        .map(|g| (g.name, g.description))
        .collect();
    for u in &users {
        for r in &u.roles {
            if !crate::auth::roles::BUILT_IN.contains(&r.as_str()) {
                groups.entry(r.clone()).or_default();
            }
        }
    }
    out.extend(groups.into_iter().map(|(name, description)| RoleInfo {
        members: members(&name),
        name,
        kind: "group",
        description,
        permissions: Vec::new(),
    }));
    Ok(out)
}

/// Defines a custom group.
pub async fn create_group(store: &Store, p: &Principal, g: NewGroup) -> Result<RoleInfo> {
    let name = g.name.trim().to_lowercase();
    crate::model::validate_name("name", &name)?;
    if crate::auth::roles::BUILT_IN.contains(&name.as_str()) || name == crate::model::PUBLIC {
        return Err(Error::invalid(
            "name",
            format!("{name:?} is a built-in role"),
        ));
    }
    if g.description.len() > 2000 {
        return Err(Error::invalid("description", "must be at most 2000 bytes"));
    }
    let created = store.create_group(p, &name, g.description.trim()).await?;
    let members = store
        .list_users()
        .await?
        .into_iter()
        .filter(|u| u.roles.contains(&created.name))
        .map(|u| u.username)
        .collect();
    Ok(RoleInfo {
        name: created.name,
        kind: "group",
        description: created.description,
        permissions: Vec::new(),
        members,
    })
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
