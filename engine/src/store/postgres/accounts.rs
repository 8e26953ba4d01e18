//! The PostgreSQL store: users, API tokens, passwords, sessions and the
//! audit trail (listing and standalone events).

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::Row;

use super::PgStore;
use crate::auth::Principal;
use crate::error::Result;
use crate::model::{AuditEntry, User};
use crate::store::audit::trunc_micros;
use crate::store::common::{
    audit_limit, check_password_hash, event_entry, last_use_cutoff, last_use_is_stale,
    normalise_roles, now, session_conflict_or, session_create_entry, session_delete_entry,
    session_user_id, set_password_entry, set_roles_entry, token_conflict_or, token_entry,
    token_principal, user_create_entry, user_not_found, user_principal, username_conflict_or,
    validate_username, USER_COLS,
};
use crate::store::AuditFilter;

impl PgStore {
    /// See [`super::Store::create_user`].
    pub async fn create_user(
        &self,
        actor: &Principal,
        username: &str,
        display_name: &str,
        roles: &[String],
    ) -> Result<User> {
        validate_username(username)?;
        let roles = normalise_roles(roles)?;
        let now = now();
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "INSERT INTO users (username, display_name, roles, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING {USER_COLS}"
        );
        let query = sqlx::query(&sql)
            .bind(username)
            .bind(display_name)
            .bind(&roles)
            .bind(now);
        let row = query.fetch_one(&mut *tx).await;
        let row = row.map_err(|e| username_conflict_or(e, username))?;
        let user = user_from_row(&row)?;
        let entry = user_create_entry(actor, now, username, display_name, &roles);
        self.finish(tx, vec![entry]).await?;
        Ok(user)
    }

    /// See [`super::Store::get_user`].
    pub async fn get_user(&self, username: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE username = $1");
        let row = sqlx::query(&sql)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// See [`super::Store::list_users`].
    pub async fn list_users(&self) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users ORDER BY username");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(user_from_row).collect()
    }

    /// See [`super::Store::set_roles`].
    pub async fn set_roles(
        &self,
        actor: &Principal,
        username: &str,
        roles: &[String],
    ) -> Result<User> {
        let roles = normalise_roles(roles)?;
        let now = now();
        let mut tx = self.begin_write().await?;
        let sql = format!("UPDATE users SET roles = $2 WHERE username = $1 RETURNING {USER_COLS}");
        let query = sqlx::query(&sql).bind(username).bind(&roles);
        let row = query.fetch_optional(&mut *tx).await?;
        let row = row.ok_or_else(|| user_not_found(username))?;
        let user = user_from_row(&row)?;
        let entry = set_roles_entry(actor, now, username, &roles);
        self.finish(tx, vec![entry]).await?;
        Ok(user)
    }

    /// See [`super::Store::create_token`].
    pub async fn create_token(
        &self,
        actor: &Principal,
        username: &str,
        name: &str,
        token_hash: &str,
    ) -> Result<()> {
        let now = now();
        let mut tx = self.begin_write().await?;
        let query = sqlx::query_scalar("SELECT id FROM users WHERE username = $1").bind(username);
        let user_id: Option<i64> = query.fetch_optional(&mut *tx).await?;
        let user_id = user_id.ok_or_else(|| user_not_found(username))?;
        let sql = "INSERT INTO api_tokens (user_id, name, token_hash, created_at) \
                   VALUES ($1, $2, $3, $4)";
        let query = sqlx::query(sql)
            .bind(user_id)
            .bind(name)
            .bind(token_hash)
            .bind(now);
        let done = query.execute(&mut *tx).await;
        done.map_err(token_conflict_or)?;
        let entry = token_entry(actor, now, username, name);
        self.finish(tx, vec![entry]).await
    }

    /// See [`super::Store::principal_for_token`].
    pub async fn principal_for_token(&self, token_hash: &str) -> Result<Option<Principal>> {
        // Token id, last use, user id, username, roles.
        type TokenRow = (i64, Option<DateTime<Utc>>, i64, String, Vec<String>);
        let sql = "SELECT t.id, t.last_used_at, u.id, u.username, u.roles \
                   FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1";
        let row: Option<TokenRow> = sqlx::query_as(sql)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        let Some((token_id, last_used, user_id, username, roles)) = row else {
            return Ok(None);
        };
        let now = now();
        if last_use_is_stale(last_used, now) {
            // The WHERE clause repeats the check so concurrent requests write once.
            let sql = "UPDATE api_tokens SET last_used_at = $2 \
                       WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)";
            let cutoff = last_use_cutoff(now);
            let query = sqlx::query(sql).bind(token_id).bind(now).bind(cutoff);
            query.execute(&self.pool).await?;
        }
        Ok(Some(token_principal(user_id, username, roles)))
    }

    /// See [`super::Store::set_password`].
    pub async fn set_password(&self, actor: &Principal, username: &str, hash: &str) -> Result<()> {
        check_password_hash(hash)?;
        let now = now();
        let mut tx = self.begin_write().await?;
        let sql = "UPDATE users SET password_hash = $2 WHERE username = $1";
        let query = sqlx::query(sql).bind(username).bind(hash);
        let done = query.execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(user_not_found(username));
        }
        let entry = set_password_entry(actor, now, username);
        self.finish(tx, vec![entry]).await
    }

    /// See [`super::Store::password_hash`].
    pub async fn password_hash(&self, username: &str) -> Result<Option<(Principal, String)>> {
        let sql = "SELECT id, username, roles, password_hash FROM users \
                   WHERE username = $1 AND password_hash IS NOT NULL";
        let row: Option<(i64, String, Vec<String>, String)> = sqlx::query_as(sql)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        let Some((user_id, username, roles, hash)) = row else {
            return Ok(None);
        };
        Ok(Some((user_principal(user_id, username, roles), hash)))
    }

    /// See [`super::Store::create_session`]. Also deletes the user's expired
    /// sessions, so they do not pile up.
    pub async fn create_session(
        &self,
        user: &Principal,
        id_hash: &str,
        csrf_token: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let user_id = session_user_id(user)?;
        let (now, expires_at) = (now(), trunc_micros(expires_at));
        let mut tx = self.begin_write().await?;
        let sql = "DELETE FROM sessions WHERE user_id = $1 AND expires_at <= $2";
        let query = sqlx::query(sql).bind(user_id).bind(now);
        query.execute(&mut *tx).await?;
        let sql = "INSERT INTO sessions \
                   (id_hash, user_id, csrf_token, created_at, expires_at, last_seen_at) \
                   VALUES ($1, $2, $3, $4, $5, $4)";
        let query = sqlx::query(sql)
            .bind(id_hash)
            .bind(user_id)
            .bind(csrf_token)
            .bind(now)
            .bind(expires_at);
        let done = query.execute(&mut *tx).await;
        done.map_err(|e| session_conflict_or(e, &user.username))?;
        let entry = session_create_entry(user, now);
        self.finish(tx, vec![entry]).await
    }

    /// See [`super::Store::session`].
    pub async fn session(&self, id_hash: &str) -> Result<Option<(Principal, String)>> {
        // Last seen, CSRF token, user id, username, roles.
        type SessionRow = (DateTime<Utc>, String, i64, String, Vec<String>);
        let now = now();
        let sql = "SELECT s.last_seen_at, s.csrf_token, u.id, u.username, u.roles \
                   FROM sessions s JOIN users u ON u.id = s.user_id \
                   WHERE s.id_hash = $1 AND s.expires_at > $2";
        let row: Option<SessionRow> = sqlx::query_as(sql)
            .bind(id_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        let Some((last_seen, csrf_token, user_id, username, roles)) = row else {
            return Ok(None);
        };
        if last_use_is_stale(Some(last_seen), now) {
            // The WHERE clause repeats the check so concurrent requests write once.
            let sql = "UPDATE sessions SET last_seen_at = $2 \
                       WHERE id_hash = $1 AND last_seen_at < $3";
            let cutoff = last_use_cutoff(now);
            let query = sqlx::query(sql).bind(id_hash).bind(now).bind(cutoff);
            query.execute(&self.pool).await?;
        }
        Ok(Some((user_principal(user_id, username, roles), csrf_token)))
    }

    /// See [`super::Store::delete_session`].
    pub async fn delete_session(&self, actor: &Principal, id_hash: &str) -> Result<()> {
        let now = now();
        let mut tx = self.begin_write().await?;
        let sql = "DELETE FROM sessions s USING users u \
                   WHERE s.id_hash = $1 AND u.id = s.user_id RETURNING u.username";
        let query = sqlx::query_scalar(sql).bind(id_hash);
        let username: Option<String> = query.fetch_optional(&mut *tx).await?;
        // Nothing deleted: nothing to audit.
        let entries = username
            .map(|name| vec![session_delete_entry(actor, now, &name)])
            .unwrap_or_default();
        self.finish(tx, entries).await
    }

    /// See [`super::Store::audit_event`].
    pub async fn audit_event(
        &self,
        actor: &str,
        action: &'static str,
        target: &str,
        details: serde_json::Value,
    ) -> Result<()> {
        let now = now();
        let tx = self.begin_write().await?;
        let entry = event_entry(actor, now, action, target, details);
        self.finish(tx, vec![entry]).await
    }

    /// See [`super::Store::list_audit`].
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        // Unset conditions bind NULL and drop out.
        let sql = "SELECT id, at, actor, action, target, details, prev_hash, hash FROM audit \
                   WHERE id > $1 AND ($3::text IS NULL OR actor = $3) \
                   AND ($4::text IS NULL OR action = $4) AND ($5::text IS NULL OR target = $5) \
                   AND ($6::timestamptz IS NULL OR at >= $6) \
                   AND ($7::timestamptz IS NULL OR at < $7) \
                   ORDER BY id LIMIT $2";
        let query = sqlx::query(sql)
            .bind(filter.after_id)
            .bind(audit_limit(filter.limit))
            .bind(&filter.actor)
            .bind(&filter.action)
            .bind(&filter.target)
            .bind(filter.since)
            .bind(filter.until);
        let rows = query.fetch_all(&self.pool).await?;
        let entry = |r: &PgRow| -> Result<AuditEntry> {
            Ok(AuditEntry {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                details: r.try_get("details")?,
                prev_hash: r.try_get("prev_hash")?,
                hash: r.try_get("hash")?,
            })
        };
        rows.iter().map(entry).collect()
    }
}

pub(super) fn user_from_row(r: &PgRow) -> Result<User> {
    type Cols = (
        i64,
        String,
        String,
        Vec<String>,
        DateTime<Utc>,
        Option<String>,
        Option<String>,
    );
    let (id, username, display_name, roles, created_at, email, webhook_url): Cols =
        sqlx::FromRow::from_row(r)?;
    Ok(User {
        id,
        username,
        display_name,
        roles,
        created_at,
        email,
        webhook_url,
    })
}
