//! The Postgres store: reader preferences (one row per user who chose).

use crate::auth::Principal;
use crate::error::Result;
use crate::model::{Level, Preferences};
use crate::store::common::{event_entry, now};

use super::PgStore;

impl PgStore {
    /// See [`super::Store::get_preferences`].
    pub async fn get_preferences(&self, user_id: i64) -> Result<Preferences> {
        let level: Option<Option<String>> =
            sqlx::query_scalar("SELECT level FROM user_preferences WHERE user_id = $1")
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
        let sql = "INSERT INTO user_preferences (user_id, level, updated_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (user_id) DO UPDATE SET level = excluded.level, updated_at = excluded.updated_at";
        sqlx::query(sql)
            .bind(user_id)
            .bind(prefs.level.map(Level::as_str))
            .bind(at)
            .execute(&mut *w)
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
}
