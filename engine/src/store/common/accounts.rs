//! User, token and session rules: username and role validation, the
//! principals that token, password and session look-ups return, and when a
//! token's last use or a session's last sight is recorded.

use chrono::{DateTime, Utc};

use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::model::{limits, normalise_names};

/// Checks a username: 1–64 characters of `a-z 0-9 . _ -`.
pub(in crate::store) fn validate_username(u: &str) -> Result<()> {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
    if u.is_empty() || u.len() > 64 || !u.chars().all(ok) {
        let message = format!("{u:?} must be 1-64 characters of a-z, 0-9, '.', '_' or '-'");
        return Err(Error::invalid("username", message));
    }
    Ok(())
}

/// Normalises a role list with the same rules as audiences.
pub(in crate::store) fn normalise_roles(roles: &[String]) -> Result<Vec<String>> {
    normalise_names("roles", roles.to_vec(), limits::AUDIENCE)
}

/// Whether a token's last use (or a session's last sight) is worth
/// recording (at most once a minute).
pub(in crate::store) fn last_use_is_stale(last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last.is_none_or(|t| t < last_use_cutoff(now))
}

/// Uses recorded before this time are stale (see [`last_use_is_stale`]);
/// the stores' conditional `UPDATE`s compare against it too.
pub(in crate::store) fn last_use_cutoff(now: DateTime<Utc>) -> DateTime<Utc> {
    now - chrono::Duration::minutes(1)
}

/// The principal an API token row names: its user, signed in by token.
pub(in crate::store) fn token_principal(
    user_id: i64,
    username: String,
    roles: Vec<String>,
) -> Principal {
    Principal {
        user_id: Some(user_id),
        username,
        roles,
    }
}

/// The principal a password or session look-up names: the user itself.
pub(in crate::store) fn user_principal(
    user_id: i64,
    username: String,
    roles: Vec<String>,
) -> Principal {
    token_principal(user_id, username, roles)
}

/// The user id of the principal a session is made for: `Invalid` (field
/// `user`) for a principal that is not a stored user.
pub(in crate::store) fn session_user_id(user: &Principal) -> Result<i64> {
    user.user_id
        .ok_or_else(|| Error::invalid("user", "a session needs a stored user"))
}

/// Checks a password hash before it is stored: never empty.
pub(in crate::store) fn check_password_hash(hash: &str) -> Result<()> {
    if hash.is_empty() {
        return Err(Error::invalid("password_hash", "must not be empty"));
    }
    Ok(())
}
