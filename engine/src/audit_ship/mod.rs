//! Audit shipping: copies the audit trail, in batches, to a separate bucket
//! (S3 or an S3-compatible server) or a local directory, for safe keeping.
//!
//! A batch is a contiguous range of audit ids, at most
//! [`ShipConfig::batch_rows`] rows, starting right after the last range
//! recorded in `audit_shipments`. Its object is the rows exactly as stored
//! (including `prev_hash` and `hash`), one JSON object per line, gzipped,
//! under a key derived from the range alone ([`object_key`]):
//! `<prefix>/audit/<first_id>-<last_id>.jsonl.gz`, ids zero-padded to 12
//! digits. The range is recorded *before* the object is written
//! ([`crate::store::AuditShipment`]), so a shipper that died after writing
//! retries the same range, producing the same bytes under the same key: a
//! retry overwrites itself and never duplicates rows under another key.
//! Nothing is ever deleted from the audit table; an unreachable target only
//! delays shipping ([`run`] retries with exponential backoff).
//!
//! Only committed rows are shipped: writers are serialised and append their
//! audit rows last, so ids commit in order and a visible row means every
//! smaller id is committed (or was rolled back for good).
//!
//! [`verify_shipped`] checks every recorded object against its SHA-256, the
//! chain inside and across objects, and the store's rows.

mod s3;
mod ship;
mod target;
mod verify;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::AuditEntry;

pub use s3::S3Target;
pub use ship::{plan_next, run, ship_once, ship_planned, ShipOutcome};
pub use target::{DirTarget, ShipTarget};
pub use verify::{verify_shipped, BrokenObject, ShippedReport};

/// Rows per batch by default.
pub const DEFAULT_BATCH_ROWS: i64 = 1000;

/// Where shipped batches go.
#[derive(Debug, Clone)]
pub enum TargetConfig {
    /// A local directory (objects are files under it).
    Dir(PathBuf),
    /// An S3 bucket.
    S3(S3Config),
}

/// An S3 (or S3-compatible) bucket.
#[derive(Clone, Default)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix (no leading or trailing slash needed).
    pub prefix: String,
    /// Endpoint URL of an S3-compatible server; path-style addressing is
    /// used when set. `None`: AWS's endpoint for the region.
    pub endpoint: Option<String>,
    /// Region (signing and endpoint).
    pub region: String,
    /// Static credentials (the standard `AWS_*` variables).
    pub access_key_id: Option<String>,
    /// Secret of `access_key_id`.
    pub secret_access_key: Option<String>,
    /// Session token of temporary credentials.
    pub session_token: Option<String>,
    /// Object Lock retention to request on every object.
    pub object_lock: Option<ObjectLock>,
}

impl std::fmt::Debug for S3Config {
    // Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("object_lock", &self.object_lock)
            .finish_non_exhaustive()
    }
}

/// S3 Object Lock retention for shipped objects (the bucket must have
/// Object Lock enabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLock {
    /// `GOVERNANCE` (privileged users may shorten it) or `COMPLIANCE`
    /// (nobody may).
    pub mode: LockMode,
    /// Days from the upload that the object may not be deleted or changed.
    pub days: u32,
}

/// S3 Object Lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Privileged users may remove the retention.
    Governance,
    /// Nobody may, not even the account's root user.
    Compliance,
}

impl std::str::FromStr for LockMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "governance" => Ok(LockMode::Governance),
            "compliance" => Ok(LockMode::Compliance),
            _ => Err(format!("{s:?}: expected GOVERNANCE or COMPLIANCE")),
        }
    }
}

/// How the shipper runs.
#[derive(Debug, Clone)]
pub struct ShipConfig {
    /// Where batches go.
    pub target: TargetConfig,
    /// Most rows per batch (object).
    pub batch_rows: i64,
    /// Time between shipping rounds when all went well.
    pub interval: Duration,
    /// Longest wait between retries while the target fails (the wait
    /// doubles from one second up to this).
    pub max_backoff: Duration,
}

/// The deterministic key of the batch covering `first..=last`.
pub fn object_key(prefix: &str, first: i64, last: i64) -> String {
    let name = format!("audit/{first:012}-{last:012}.jsonl.gz");
    match prefix.trim_matches('/') {
        "" => name,
        p => format!("{p}/{name}"),
    }
}

/// The object of a batch: one JSON line per row, gzipped. The same rows
/// always give the same bytes (fixed field order, no gzip time stamp), so a
/// retried batch has the same SHA-256.
pub fn encode_batch(rows: &[AuditEntry]) -> Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    for row in rows {
        let line = serde_json::to_vec(row)
            .map_err(|e| Error::Corrupt(format!("audit row {}: {e}", row.id)))?;
        gz.write_all(&line)?;
        gz.write_all(b"\n")?;
    }
    Ok(gz.finish()?)
}

/// The rows of an object made by [`encode_batch`]. A line that is not a row
/// is an error naming its line number.
pub fn decode_object(bytes: &[u8]) -> std::result::Result<Vec<AuditEntry>, String> {
    let mut text = String::new();
    GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .map_err(|e| format!("not gzipped JSON Lines: {e}"))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| format!("line {}: not an audit row: {e}", i + 1))
        })
        .collect()
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_range_and_take_the_prefix() {
        assert_eq!(
            object_key("", 1, 1000),
            "audit/000000000001-000000001000.jsonl.gz"
        );
        assert_eq!(
            object_key("/kmt/prod/", 1001, 1500),
            "kmt/prod/audit/000000001001-000000001500.jsonl.gz"
        );
    }

    #[test]
    fn batches_round_trip_with_stable_bytes() {
        let row = AuditEntry {
            id: 1,
            at: chrono::Utc::now(),
            actor: "system".into(),
            action: "user.create".into(),
            target: "user:vera".into(),
            details: serde_json::json!({"roles": ["viewer"], "a": 1}),
            prev_hash: "0".repeat(64),
            hash: "1".repeat(64),
        };
        let a = encode_batch(std::slice::from_ref(&row)).unwrap();
        let b = encode_batch(std::slice::from_ref(&row)).unwrap();
        assert_eq!(a, b);
        assert_eq!(decode_object(&a).unwrap(), vec![row]);
        assert!(decode_object(b"nope").is_err());
    }
}
