//! The Postgres store: bookkeeping of shipped audit batches (see
//! [`crate::store::AuditShipment`]). Plain autocommit statements outside the
//! writers' lock: they change no article, outbox or audit row.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::Row as _;

use super::PgStore;
use crate::error::Result;
use crate::store::{AuditShipStatus, AuditShipment};

/// The `audit_shipments` columns an [`AuditShipment`] is read from.
const COLS: &str = "first_id, last_id, row_count, object_key, sha256, planned_at, shipped_at";

impl PgStore {
    /// See [`crate::store::Store::pending_audit_shipment`].
    pub async fn pending_audit_shipment(&self) -> Result<Option<AuditShipment>> {
        let sql = format!(
            "SELECT {COLS} FROM audit_shipments WHERE shipped_at IS NULL \
             ORDER BY first_id LIMIT 1"
        );
        let row = sqlx::query(&sql).fetch_optional(&self.pool).await?;
        row.as_ref().map(shipment_from_row).transpose()
    }

    /// See [`crate::store::Store::audit_planned_through`].
    pub async fn audit_planned_through(&self) -> Result<i64> {
        let sql = "SELECT COALESCE(MAX(last_id), 0) FROM audit_shipments";
        Ok(sqlx::query_scalar(sql).fetch_one(&self.pool).await?)
    }

    /// See [`crate::store::Store::plan_audit_shipment`].
    pub async fn plan_audit_shipment(&self, s: &AuditShipment) -> Result<bool> {
        // The NOT EXISTS makes an overlapping range a no-op too, not only a
        // range with the same start.
        let sql = "INSERT INTO audit_shipments \
                   (first_id, last_id, row_count, object_key, sha256, planned_at) \
                   SELECT $1, $2, $3, $4, $5, $6 \
                   WHERE NOT EXISTS (SELECT 1 FROM audit_shipments WHERE last_id >= $1) \
                   ON CONFLICT (first_id) DO NOTHING";
        let done = sqlx::query(sql)
            .bind(s.first_id)
            .bind(s.last_id)
            .bind(s.row_count)
            .bind(&s.object_key)
            .bind(&s.sha256)
            .bind(s.planned_at)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// See [`crate::store::Store::mark_audit_shipped`].
    pub async fn mark_audit_shipped(&self, first_id: i64, at: DateTime<Utc>) -> Result<()> {
        let sql = "UPDATE audit_shipments SET shipped_at = $2 \
                   WHERE first_id = $1 AND shipped_at IS NULL";
        let query = sqlx::query(sql).bind(first_id).bind(at);
        query.execute(&self.pool).await?;
        Ok(())
    }

    /// See [`crate::store::Store::list_audit_shipments`].
    pub async fn list_audit_shipments(&self, after: i64, limit: i64) -> Result<Vec<AuditShipment>> {
        let sql = format!(
            "SELECT {COLS} FROM audit_shipments WHERE first_id > $1 ORDER BY first_id LIMIT $2"
        );
        let query = sqlx::query(&sql).bind(after).bind(limit.max(0));
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(shipment_from_row).collect()
    }

    /// See [`crate::store::Store::audit_ship_status`].
    pub async fn audit_ship_status(&self) -> Result<AuditShipStatus> {
        // Shipped ranges are a prefix of the id space (a batch is planned
        // only when none is pending), so one maximum bounds them.
        let sql = "WITH s AS (SELECT COALESCE(MAX(last_id), 0) AS through, \
                       MAX(shipped_at) AS at FROM audit_shipments WHERE shipped_at IS NOT NULL) \
                   SELECT (SELECT COUNT(*) FROM audit WHERE id > s.through), s.through, s.at \
                   FROM s";
        let (unshipped_rows, shipped_through, last_shipped_at) =
            sqlx::query_as(sql).fetch_one(&self.pool).await?;
        Ok(AuditShipStatus {
            unshipped_rows,
            shipped_through,
            last_shipped_at,
        })
    }
}

fn shipment_from_row(r: &PgRow) -> Result<AuditShipment> {
    Ok(AuditShipment {
        first_id: r.try_get("first_id")?,
        last_id: r.try_get("last_id")?,
        row_count: r.try_get("row_count")?,
        object_key: r.try_get("object_key")?,
        sha256: r.try_get("sha256")?,
        planned_at: r.try_get("planned_at")?,
        shipped_at: r.try_get("shipped_at")?,
    })
}
