//! Password sign-in and sessions.
//!
//! Passwords are hashed with Argon2id (the `argon2` crate's defaults: 19 MiB,
//! 2 passes) into PHC strings. A session is a random 256-bit id handed to
//! the browser in an HttpOnly cookie and stored only as its SHA-256, with a
//! per-session CSRF token that cookie-authenticated writes must echo. Every
//! sign-in makes a new session id (no fixation). Hashing is deliberately
//! slow, so it runs on blocking threads.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;

use crate::auth::{hash_token, Principal};
use crate::error::{Error, Result};
use crate::store::Store;

/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;
/// Shortest accepted password.
pub const MIN_PASSWORD: usize = 10;
/// Longest accepted password (Argon2 cost grows with it).
pub const MAX_PASSWORD: usize = 1024;

/// A session just created: the cookie value is shown to the browser once.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The signed-in user.
    pub principal: Principal,
    /// Cookie value (random, 64 hex characters).
    pub id: String,
    /// Token the browser must send in `X-CSRF-Token` with writes.
    pub csrf_token: String,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Hashes a password (Argon2id, random salt) after checking its length.
pub fn hash_password(password: &str) -> Result<String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(Error::invalid(
            "password",
            format!("must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        ));
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| Error::Corrupt(format!("password salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Corrupt(format!("password hash: {e}")))
}

/// A hash of a password nobody has, verified against for unknown users so
/// that "no such user" and "wrong password" take the same time.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that matches nothing").unwrap_or_default())
}

fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// Signs a user in: on success a new session; on any failure
/// `Unauthenticated`, the same for an unknown user and a wrong password.
/// Failures are audited (`session.failed`, without the password).
pub async fn sign_in(
    store: &Store,
    username: &str,
    password: &str,
    from: &str,
) -> Result<NewSession> {
    let found = store.password_hash(username).await?;
    // Argon2 is deliberately slow: run it on a blocking thread.
    let (pw, phc, known) = match &found {
        Some((_, phc)) => (password.to_string(), phc.clone(), true),
        None => (password.to_string(), decoy_hash().to_string(), false),
    };
    let ok = tokio::task::spawn_blocking(move || verify(&pw, &phc))
        .await
        .map_err(|e| Error::Unavailable(format!("password check: {e}")))?
        && known;
    let principal = match (ok, found) {
        (true, Some((p, _))) => p,
        _ => {
            store
                .audit_event(
                    username,
                    "session.failed",
                    &format!("user:{username}"),
                    serde_json::json!({ "from": from }),
                )
                .await?;
            return Err(Error::Unauthenticated);
        }
    };
    let id = random_hex();
    let csrf_token = random_hex();
    let expires_at = Utc::now() + Duration::hours(SESSION_HOURS);
    store
        .create_session(&principal, &hash_token(&id), &csrf_token, expires_at)
        .await?;
    Ok(NewSession {
        principal,
        id,
        csrf_token,
        expires_at,
    })
}

/// The session behind a cookie value, if it is valid.
pub async fn lookup(store: &Store, cookie: &str) -> Result<Option<(Principal, String)>> {
    if cookie.len() != 64 || !cookie.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    store.session(&hash_token(cookie)).await
}

/// Ends the session behind a cookie value.
pub async fn sign_out(store: &Store, p: &Principal, cookie: &str) -> Result<()> {
    store.delete_session(p, &hash_token(cookie)).await
}

/// Sets a password: admins for anyone; users for themselves, proving the
/// current one.
pub async fn set_password(
    store: &Store,
    p: &Principal,
    username: &str,
    new_password: &str,
    current_password: Option<&str>,
) -> Result<()> {
    if p.username != username || !p.is_signed_in() {
        p.require(crate::auth::Permission::UserAdmin)?;
    } else if !p.is_admin() {
        let ok = match (store.password_hash(username).await?, current_password) {
            (Some((_, phc)), Some(cur)) => {
                let cur = cur.to_string();
                tokio::task::spawn_blocking(move || verify(&cur, &phc))
                    .await
                    .map_err(|e| Error::Unavailable(format!("password check: {e}")))?
            }
            (None, _) => true, // no password yet: a token-authenticated user may set one
            _ => false,
        };
        if !ok {
            return Err(Error::invalid("current_password", "does not match"));
        }
    }
    let pw = new_password.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| Error::Unavailable(format!("password hash: {e}")))??;
    store.set_password(p, username, &hash).await
}

/// Constant-time comparison of a presented CSRF token with the session's.
pub fn csrf_matches(presented: &str, expected: &str) -> bool {
    let (a, b) = (presented.as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("wrong horse battery", &h));
        assert_ne!(h, hash_password("correct horse battery").unwrap(), "salted");
        assert!(hash_password("short").is_err());
        assert!(!verify("x", "not a phc string"));
    }

    #[test]
    fn csrf_comparison() {
        assert!(csrf_matches("abc", "abc"));
        assert!(!csrf_matches("abd", "abc"));
        assert!(!csrf_matches("ab", "abc"));
    }
}
