//! The audit hash chain, shared by both stores.
//!
//! Each row's hash is SHA-256 over its canonical content and the previous
//! row's hash, so changing, removing or reordering any row breaks every hash
//! after it. The canonical form is a JSON array with a fixed field order;
//! timestamps are RFC 3339 with microseconds in UTC so that both stores
//! (which keep microsecond precision) reproduce it exactly.

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Truncates a time to microseconds, the precision both stores keep.
pub fn trunc_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// Hash of one audit row given the previous row's hash.
pub fn chain_hash(
    prev_hash: &str,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    target: &str,
    details: &serde_json::Value,
) -> String {
    let canonical = serde_json::json!([
        prev_hash,
        trunc_micros(at).to_rfc3339_opts(SecondsFormat::Micros, true),
        actor,
        action,
        target,
        details,
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_every_field() {
        let t = Utc::now();
        let d = serde_json::json!({"a": 1});
        let h = chain_hash(GENESIS, t, "u", "x", "y", &d);
        assert_eq!(h, chain_hash(GENESIS, t, "u", "x", "y", &d));
        assert_ne!(h, chain_hash(GENESIS, t, "v", "x", "y", &d));
        assert_ne!(h, chain_hash(&h, t, "u", "x", "y", &d));
    }
}

/// A row where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenRow {
    /// The row's id (for a missing row: the id that should be there).
    pub id: i64,
    /// What is wrong with it.
    pub reason: String,
}

/// Outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Rows checked.
    pub rows: u64,
    /// The first row where the chain breaks, if any.
    pub first_broken: Option<BrokenRow>,
}

/// Walks the whole audit table in id order and checks that ids are
/// contiguous from 1, each row links to the previous row's hash, and each
/// row's hash matches its content. Stops at the first broken row.
pub async fn verify(store: &super::Store) -> crate::Result<ChainReport> {
    let mut prev = GENESIS.to_string();
    let mut expected_id = 1;
    let mut rows = 0;
    loop {
        let page = store
            .list_audit(&super::AuditFilter {
                after_id: expected_id - 1,
                limit: 1000,
                ..Default::default()
            })
            .await?;
        if page.is_empty() {
            return Ok(ChainReport {
                rows,
                first_broken: None,
            });
        }
        for e in page {
            let broken = |reason: String| {
                Ok(ChainReport {
                    rows,
                    first_broken: Some(BrokenRow {
                        id: e.id.min(expected_id),
                        reason,
                    }),
                })
            };
            if e.id != expected_id {
                return broken(format!(
                    "row {expected_id} is missing (next row is {})",
                    e.id
                ));
            }
            if e.prev_hash != prev {
                return broken("prev_hash does not match the previous row's hash".into());
            }
            let want = chain_hash(
                &e.prev_hash,
                e.at,
                &e.actor,
                &e.action,
                &e.target,
                &e.details,
            );
            if e.hash != want {
                return broken("content does not match its hash (the row was changed)".into());
            }
            prev = e.hash.clone();
            expected_id += 1;
            rows += 1;
        }
    }
}
