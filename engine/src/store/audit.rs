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
