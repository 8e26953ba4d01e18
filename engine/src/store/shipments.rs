//! Bookkeeping of shipped audit batches (`audit_shipments`), for the
//! shipper in [`crate::audit_ship`].
//!
//! A batch is a contiguous range of audit ids. It is *planned* (a row with
//! no `shipped_at`) before its object is written and *completed* after, so
//! a shipper that dies in between retries exactly the same range under the
//! same key. Ranges tile the id space: each starts right after the previous
//! one's end, and `first_id` is the primary key, so two shippers planning at
//! once cannot record overlapping ranges (the second insert is a no-op).
//! These rows are bookkeeping, not domain changes: no audit or outbox row.

use chrono::{DateTime, Utc};

use super::Store;
use crate::error::Result;

/// One shipped (or planned) batch of audit rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditShipment {
    /// First audit id of the range.
    pub first_id: i64,
    /// Last audit id of the range (inclusive).
    pub last_id: i64,
    /// Rows in the object (fewer than the range's width only where the
    /// table has gaps).
    pub row_count: i64,
    /// Object key in the audit bucket (or path under the audit directory).
    pub object_key: String,
    /// SHA-256 (hex) of the object's bytes.
    pub sha256: String,
    /// When the batch was planned.
    pub planned_at: DateTime<Utc>,
    /// When its object was stored; `None` while planned.
    pub shipped_at: Option<DateTime<Utc>>,
}

/// How far shipping has come, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditShipStatus {
    /// Audit rows after the last shipped range.
    pub unshipped_rows: i64,
    /// Last audit id of the shipped ranges (0 when none).
    pub shipped_through: i64,
    /// When the newest batch was stored.
    pub last_shipped_at: Option<DateTime<Utc>>,
}

impl Store {
    /// The oldest planned batch whose object is not yet stored.
    pub async fn pending_audit_shipment(&self) -> Result<Option<AuditShipment>> {
        match self {
            Store::Postgres(s) => s.pending_audit_shipment().await,
            Store::Sqlite(s) => s.pending_audit_shipment().await,
        }
    }

    /// Last audit id covered by any batch, planned or shipped (0 if none):
    /// the next batch starts after it.
    pub async fn audit_planned_through(&self) -> Result<i64> {
        match self {
            Store::Postgres(s) => s.audit_planned_through().await,
            Store::Sqlite(s) => s.audit_planned_through().await,
        }
    }

    /// Records a planned batch (`shipped_at` is ignored). Returns `false`,
    /// writing nothing, when a batch starting at the same id exists or the
    /// range overlaps a recorded one (another shipper planned first).
    pub async fn plan_audit_shipment(&self, s: &AuditShipment) -> Result<bool> {
        match self {
            Store::Postgres(p) => p.plan_audit_shipment(s).await,
            Store::Sqlite(p) => p.plan_audit_shipment(s).await,
        }
    }

    /// Marks the batch starting at `first_id` as stored at `at` (a batch
    /// already marked keeps its first time).
    pub async fn mark_audit_shipped(&self, first_id: i64, at: DateTime<Utc>) -> Result<()> {
        match self {
            Store::Postgres(s) => s.mark_audit_shipped(first_id, at).await,
            Store::Sqlite(s) => s.mark_audit_shipped(first_id, at).await,
        }
    }

    /// Batches with `first_id > after`, in id order, at most `limit`.
    pub async fn list_audit_shipments(&self, after: i64, limit: i64) -> Result<Vec<AuditShipment>> {
        match self {
            Store::Postgres(s) => s.list_audit_shipments(after, limit).await,
            Store::Sqlite(s) => s.list_audit_shipments(after, limit).await,
        }
    }

    /// Unshipped rows and the time of the last shipment.
    pub async fn audit_ship_status(&self) -> Result<AuditShipStatus> {
        match self {
            Store::Postgres(s) => s.audit_ship_status().await,
            Store::Sqlite(s) => s.audit_ship_status().await,
        }
    }
}
