//! Leadership: at most one process does the work that must not run twice
//! (the standalone indexer). With PostgreSQL it is a session-level advisory
//! lock held on a dedicated connection: when the leader dies, its
//! connection closes, the lock frees, and a waiting standby takes over.
//! The embedded store is used by one server only, so there is nothing to
//! elect.

use std::time::Duration;

use sqlx::{Connection, PgConnection};

use super::Store;
use crate::error::Result;

/// Advisory lock key of the indexer's leadership ("KMT-IDX").
const INDEXER_LOCK: i64 = 0x004B_4D54_5F49_4458;

/// Held while leading; dropping it (or dying) gives leadership up.
pub struct Leadership {
    conn: Option<PgConnection>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("postgres", &self.conn.is_some())
            .finish()
    }
}

impl Leadership {
    /// Whether the lock is still held (the connection is alive).
    pub async fn still_held(&mut self) -> bool {
        match &mut self.conn {
            Some(c) => c.ping().await.is_ok(),
            None => true,
        }
    }
}

impl Store {
    /// Tries once to become the indexer leader.
    pub async fn try_lead(&self) -> Result<Option<Leadership>> {
        let Store::Postgres(pg) = self else {
            return Ok(Some(Leadership { conn: None }));
        };
        // A connection of its own, outside the pool: the lock lives as long
        // as this connection, and the pool must never hand it to others.
        let mut conn = pg.pool().acquire().await?.detach();
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(INDEXER_LOCK)
            .fetch_one(&mut conn)
            .await?;
        if got {
            Ok(Some(Leadership { conn: Some(conn) }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Waits until this process leads, trying every `every`.
    pub async fn lead(&self, every: Duration) -> Result<Leadership> {
        let mut said = false;
        loop {
            if let Some(l) = self.try_lead().await? {
                return Ok(l);
            }
            if !said {
                tracing::info!("another indexer leads; standing by");
                said = true;
            }
            tokio::time::sleep(every).await;
        }
    }
}
