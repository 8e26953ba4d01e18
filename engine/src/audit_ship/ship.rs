//! Shipping rounds: plan the next batch, write its object, record it; and
//! the loop that runs rounds on an interval with backoff on failure.
//!
//! Concurrency: `kmt-indexer` ships only while it holds the indexer
//! leadership, and the embedded store has one server, so normally one
//! shipper runs per database. Two at once are still harmless: planning is
//! an insert keyed by the range's first id (the loser's is a no-op and it
//! ships the winner's range), and both write identical bytes under the
//! same key.

use std::time::Duration;

use tokio::sync::watch;

use super::{encode_batch, object_key, sha256_hex, ShipConfig, ShipTarget};
use crate::error::{Error, Result};
use crate::store::{AuditFilter, AuditShipment, Store};

/// First wait after a failed round; it doubles up to the configured cap.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Most batches per round, so a long backlog still lets shutdown in.
const BATCHES_PER_ROUND: usize = 100;

/// What one round shipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShipOutcome {
    /// Objects written.
    pub batches: usize,
    /// Audit rows in them.
    pub rows: i64,
    /// Whether every committed row is now shipped.
    pub caught_up: bool,
}

/// The batch to ship next: the pending one if a batch was planned and not
/// stored (a retry ships exactly that range), else a new one of at most
/// `batch_rows` rows after the last recorded range, planned now. `None`
/// when every row is shipped.
pub async fn plan_next(
    store: &Store,
    prefix: &str,
    batch_rows: i64,
) -> Result<Option<AuditShipment>> {
    if let Some(pending) = store.pending_audit_shipment().await? {
        return Ok(Some(pending));
    }
    let after = store.audit_planned_through().await?;
    let filter = AuditFilter {
        after_id: after,
        limit: batch_rows.max(1),
        ..Default::default()
    };
    let rows = store.list_audit(&filter).await?;
    let Some(last) = rows.last() else {
        return Ok(None);
    };
    // The range starts right after the previous one, so ranges tile the id
    // space even where the table has gaps.
    let (first_id, last_id) = (after + 1, last.id);
    let bytes = encode_batch(&rows)?;
    let planned = AuditShipment {
        first_id,
        last_id,
        row_count: rows.len() as i64,
        object_key: object_key(prefix, first_id, last_id),
        sha256: sha256_hex(&bytes),
        planned_at: chrono::Utc::now(),
        shipped_at: None,
    };
    if !store.plan_audit_shipment(&planned).await? {
        tracing::debug!(first_id, "another shipper planned this batch first");
    }
    // Ours or the other shipper's: whichever is recorded is what ships.
    store.pending_audit_shipment().await
}

/// Writes the object of planned batch `s` and records it as shipped. The
/// rows are read again and must give the bytes recorded at planning: rows
/// changed in between are an error, and nothing is shipped.
pub async fn ship_planned(store: &Store, target: &ShipTarget, s: &AuditShipment) -> Result<()> {
    let filter = AuditFilter {
        after_id: s.first_id - 1,
        limit: s.last_id - s.first_id + 1,
        ..Default::default()
    };
    let mut rows = store.list_audit(&filter).await?;
    rows.retain(|r| r.id <= s.last_id);
    let bytes = encode_batch(&rows)?;
    if sha256_hex(&bytes) != s.sha256 {
        return Err(Error::Corrupt(format!(
            "audit rows {}..={} changed after their batch was planned; run kmt audit verify",
            s.first_id, s.last_id
        )));
    }
    target.put(&s.object_key, bytes).await?;
    store
        .mark_audit_shipped(s.first_id, chrono::Utc::now())
        .await?;
    tracing::info!(
        first_id = s.first_id,
        last_id = s.last_id,
        rows = s.row_count,
        key = %s.object_key,
        "audit batch shipped"
    );
    Ok(())
}

/// Ships batches until every committed row is shipped (or
/// [`BATCHES_PER_ROUND`] were written). Stops at the first failure; what was
/// shipped before it stays recorded.
pub async fn ship_once(store: &Store, target: &ShipTarget, batch_rows: i64) -> Result<ShipOutcome> {
    let mut out = ShipOutcome::default();
    while out.batches < BATCHES_PER_ROUND {
        let Some(s) = plan_next(store, target.prefix(), batch_rows).await? else {
            out.caught_up = true;
            return Ok(out);
        };
        ship_planned(store, target, &s).await?;
        out.batches += 1;
        out.rows += s.row_count;
    }
    Ok(out)
}

/// Ships every `cfg.interval` until `shutdown` changes. A failed round
/// (target unreachable, store down) keeps every row and is retried after a
/// wait that doubles from one second up to `cfg.max_backoff`; the first
/// round after recovery ships the whole backlog.
pub async fn run(store: Store, cfg: ShipConfig, mut shutdown: watch::Receiver<bool>) {
    let mut target: Option<ShipTarget> = None;
    let first_backoff = FIRST_BACKOFF.min(cfg.max_backoff);
    let mut backoff = first_backoff;
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        let round = async {
            if target.is_none() {
                target = Some(ShipTarget::open(&cfg.target).await?);
            }
            let t = target.as_ref().expect("opened above");
            ship_once(&store, t, cfg.batch_rows).await
        };
        match round.await {
            Ok(out) => {
                if backoff > first_backoff {
                    tracing::info!(batches = out.batches, "audit shipping recovered");
                }
                backoff = first_backoff;
                wait = if out.caught_up {
                    cfg.interval
                } else {
                    Duration::ZERO
                };
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    retry_in_ms = backoff.as_millis() as u64,
                    "audit shipping failed; rows are kept and retried"
                );
                wait = backoff;
                backoff = (backoff * 2).min(cfg.max_backoff);
            }
        }
    }
}
