//! Verifying shipped objects against their records, the hash chain and the
//! store (the second half of `kmt audit verify`).

use std::collections::HashSet;

use super::{decode_object, sha256_hex, ShipTarget};
use crate::error::Result;
use crate::model::AuditEntry;
use crate::store::audit::{chain_hash, GENESIS};
use crate::store::{AuditFilter, AuditShipment, Store};

/// Where the shipped copy breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenObject {
    /// The object's key.
    pub key: String,
    /// The first bad row, when one row is to blame (`None`: the object as
    /// a whole, e.g. its bytes differ but every row is intact).
    pub id: Option<i64>,
    /// What is wrong.
    pub reason: String,
}

/// Outcome of [`verify_shipped`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShippedReport {
    /// Objects checked.
    pub objects: u64,
    /// Rows in them.
    pub rows: u64,
    /// The first object (in id order) that fails, if any.
    pub first_broken: Option<BrokenObject>,
    /// Objects under the audit prefix that no shipment record names (a
    /// shipment written twice under different keys would show up here).
    pub unrecorded: Vec<String>,
}

/// Checks every shipped batch in id order: its object exists, its SHA-256
/// is the recorded one, its rows chain from the previous object's last row
/// (the first from the genesis hash), each row's hash matches its content,
/// and the rows are exactly the store's rows of that range. Stops at the
/// first broken object. Then lists the target for objects no record names.
pub async fn verify_shipped(store: &Store, target: &ShipTarget) -> Result<ShippedReport> {
    let mut report = ShippedReport::default();
    let mut prev = GENESIS.to_string();
    let mut expected_first = 1;
    let mut after = 0;
    let mut recorded = HashSet::new();
    'pages: loop {
        let page = store.list_audit_shipments(after, 100).await?;
        if page.is_empty() {
            break;
        }
        for s in page {
            after = s.first_id;
            recorded.insert(s.object_key.clone());
            if s.shipped_at.is_none() {
                // Planned, not yet stored: the last record, if any.
                break 'pages;
            }
            let broken = |id: Option<i64>, reason: String| BrokenObject {
                key: s.object_key.clone(),
                id,
                reason,
            };
            if s.first_id != expected_first {
                let reason = format!(
                    "the shipment records skip from row {expected_first} to row {}",
                    s.first_id
                );
                report.first_broken = Some(broken(Some(expected_first), reason));
                return Ok(report);
            }
            let Some(bytes) = target.get(&s.object_key).await? else {
                let reason = "the object is missing".to_string();
                report.first_broken = Some(broken(Some(s.first_id), reason));
                return Ok(report);
            };
            let rows = match decode_object(&bytes) {
                Ok(rows) => rows,
                Err(e) => {
                    let reason = format!("the object is unreadable: {e}");
                    report.first_broken = Some(broken(Some(s.first_id), reason));
                    return Ok(report);
                }
            };
            let stored = stored_rows(store, &s).await?;
            if let Some((id, reason)) = check_rows(&rows, &stored, &mut prev) {
                report.first_broken = Some(broken(Some(id), reason));
                return Ok(report);
            }
            if sha256_hex(&bytes) != s.sha256 {
                let reason = "its sha256 differs from the recorded one".to_string();
                report.first_broken = Some(broken(None, reason));
                return Ok(report);
            }
            expected_first = s.last_id + 1;
            report.objects += 1;
            report.rows += rows.len() as u64;
        }
    }
    report.unrecorded = target
        .list()
        .await?
        .into_iter()
        .filter(|k| !recorded.contains(k))
        .collect();
    Ok(report)
}

/// The store's rows of `s`'s range.
async fn stored_rows(store: &Store, s: &AuditShipment) -> Result<Vec<AuditEntry>> {
    let filter = AuditFilter {
        after_id: s.first_id - 1,
        limit: s.last_id - s.first_id + 1,
        ..Default::default()
    };
    let mut rows = store.list_audit(&filter).await?;
    rows.retain(|r| r.id <= s.last_id);
    Ok(rows)
}

/// The first bad row of an object (its id and why), chaining from `prev`,
/// which is left at the object's last hash.
fn check_rows(
    rows: &[AuditEntry],
    stored: &[AuditEntry],
    prev: &mut String,
) -> Option<(i64, String)> {
    for i in 0..rows.len().max(stored.len()) {
        let (r, st) = match (rows.get(i), stored.get(i)) {
            (Some(r), Some(st)) => (r, st),
            (None, Some(st)) => return Some((st.id, "the row is missing from the object".into())),
            (Some(r), None) => {
                return Some((r.id, "the object has a row the store has not".into()))
            }
            (None, None) => unreachable!("i is below one of the lengths"),
        };
        if r.id > st.id {
            return Some((st.id, "the row is missing from the object".into()));
        }
        if r.id < st.id {
            return Some((r.id, "the object has a row the store has not".into()));
        }
        if r.prev_hash != *prev {
            let reason = "prev_hash does not match the previous shipped row's hash";
            return Some((r.id, reason.into()));
        }
        let want = chain_hash(
            &r.prev_hash,
            r.at,
            &r.actor,
            &r.action,
            &r.target,
            &r.details,
        );
        if r.hash != want {
            let reason = "content does not match its hash (the shipped row was changed)";
            return Some((r.id, reason.into()));
        }
        if r != st {
            return Some((r.id, "the shipped row differs from the store's row".into()));
        }
        prev.clone_from(&r.hash);
    }
    None
}
