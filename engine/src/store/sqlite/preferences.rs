//! The Sqlite store: reader preferences (one row per user who
//! chose) and admin-defined custom groups.

use crate::auth::Principal;
use crate::error::Result;
use sqlx::Row as _;

use crate::model::{Group, Level, Preferences};
use crate::store::common::{event_entry, now, unique_or};

use super::SqliteStore;

impl SqliteStore {
    /// See [`super::Store::get_preferences`].
    pub async fn get_preferences(&self, user_id: i64) -> Result<Preferences> {
        let level: Option<Option<String>> =
            sqlx::query_scalar("SELECT level FROM user_preferences WHERE user_id = ?1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(Preferences {
            level: level
                .flatten()
                .map(|l| Level::parse("level", &l))
                .transpose()?,
        })
    }

    /// See [`super::Store::put_preferences`].
    pub async fn put_preferences(
        &self,
        actor: &Principal,
        user_id: i64,
        prefs: &Preferences,
    ) -> Result<()> {
        let at = now();
        let mut w = self.begin_write().await?;
        let sql = "INSERT INTO user_preferences (user_id, level, updated_at) VALUES (?1, ?2, ?3) \
                   ON CONFLICT (user_id) DO UPDATE SET level = excluded.level, updated_at = excluded.updated_at";
        sqlx::query(sql)
            .bind(user_id)
            .bind(prefs.level.map(Level::as_str))
            .bind(at)
            .execute(&mut *w.tx)
            .await?;
        let entry = event_entry(
            &actor.username,
            at,
            "user.preferences",
            &format!("user:{user_id}"),
            serde_json::json!({ "level": prefs.level }),
        );
        self.finish(w, vec![entry]).await
    }

    /// See [`super::Store::list_groups`].
    pub async fn list_groups(&self) -> Result<Vec<Group>> {
        let sql = "SELECT name, description, created_by, created_at FROM groups ORDER BY name";
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r: &sqlx::sqlite::SqliteRow| {
                Ok(Group {
                    name: r.try_get("name")?,
                    description: r.try_get("description")?,
                    created_by: r.try_get("created_by")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// See [`super::Store::create_group`].
    pub async fn create_group(
        &self,
        actor: &Principal,
        name: &str,
        description: &str,
    ) -> Result<Group> {
        let at = now();
        let mut w = self.begin_write().await?;
        let sql = "INSERT INTO groups (name, description, created_by, created_at) \
                   VALUES (?1, ?2, ?3, ?4)";
        sqlx::query(sql)
            .bind(name)
            .bind(description)
            .bind(&actor.username)
            .bind(at)
            .execute(&mut *w.tx)
            .await
            .map_err(|e| unique_or(e, || format!("group {name:?} already exists")))?;
        let entry = event_entry(
            &actor.username,
            at,
            "group.create",
            &format!("group:{name}"),
            serde_json::json!({ "description": description }),
        );
        self.finish(w, vec![entry]).await?;
        Ok(Group {
            name: name.to_string(),
            description: description.to_string(),
            created_by: actor.username.clone(),
            created_at: at,
        })
    }
}
