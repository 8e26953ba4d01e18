//! Settings of audit shipping ([`engine::audit_ship`]), shared by
//! `kmt-indexer` (which ships with PostgreSQL), `kmt serve` (which ships
//! in-process on the embedded store) and `kmt audit verify` (which reads
//! the shipped objects back).

use std::path::{Path, PathBuf};
use std::time::Duration;

use engine::audit_ship::{LockMode, ObjectLock, S3Config, ShipConfig, TargetConfig};

/// Where shipped audit batches go: a local directory unless a bucket is
/// named.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditTargetArgs {
    /// Directory for shipped audit batches when no bucket is set (default
    /// `<data>/shipped`).
    #[arg(long, env = "KMT_AUDIT_DIR")]
    pub audit_dir: Option<PathBuf>,
    /// S3 bucket for shipped audit batches (instead of the directory).
    #[arg(long, env = "KMT_AUDIT_S3_BUCKET")]
    pub audit_s3_bucket: Option<String>,
    /// Key prefix in the bucket.
    #[arg(long, env = "KMT_AUDIT_S3_PREFIX", default_value = "")]
    pub audit_s3_prefix: String,
    /// Endpoint URL of an S3-compatible server (path-style requests);
    /// unset: AWS.
    #[arg(long, env = "KMT_AUDIT_S3_ENDPOINT")]
    pub audit_s3_endpoint: Option<String>,
    /// Region of the bucket.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub audit_s3_region: String,
    /// Access key id for the bucket.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub aws_access_key_id: Option<String>,
    /// Secret access key for the bucket.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub aws_secret_access_key: Option<String>,
    /// Session token of temporary credentials.
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
    pub aws_session_token: Option<String>,
    /// Ask S3 Object Lock to retain each object this many days (the bucket
    /// must have Object Lock enabled); unset: no retention headers.
    #[arg(long, env = "KMT_AUDIT_OBJECT_LOCK_DAYS")]
    pub audit_object_lock_days: Option<u32>,
    /// Object Lock mode: `COMPLIANCE` or `GOVERNANCE`.
    #[arg(long, env = "KMT_AUDIT_OBJECT_LOCK_MODE", default_value = "COMPLIANCE")]
    pub audit_object_lock_mode: LockMode,
}

/// How and how often audit batches are shipped.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditShipArgs {
    /// Where batches go.
    #[command(flatten)]
    pub target: AuditTargetArgs,
    /// Seconds between shipping rounds (0 turns shipping off).
    #[arg(long, env = "KMT_AUDIT_SHIP_INTERVAL_SECS", default_value_t = 30.0)]
    pub audit_ship_interval_secs: f64,
    /// Most audit rows per shipped object.
    #[arg(long, env = "KMT_AUDIT_SHIP_BATCH", default_value_t = engine::audit_ship::DEFAULT_BATCH_ROWS)]
    pub audit_ship_batch: i64,
    /// Longest wait, in seconds, between retries while the target fails.
    #[arg(long, env = "KMT_AUDIT_SHIP_MAX_BACKOFF_SECS", default_value_t = 300.0)]
    pub audit_ship_max_backoff_secs: f64,
}

impl AuditTargetArgs {
    /// The target, with the directory defaulting to `<data_dir>/audit`.
    pub fn config(&self, data_dir: &Path) -> TargetConfig {
        let Some(bucket) = &self.audit_s3_bucket else {
            let dir = self
                .audit_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("shipped"));
            return TargetConfig::Dir(dir);
        };
        TargetConfig::S3(S3Config {
            bucket: bucket.clone(),
            prefix: self.audit_s3_prefix.clone(),
            endpoint: self.audit_s3_endpoint.clone(),
            region: self.audit_s3_region.clone(),
            access_key_id: self.aws_access_key_id.clone(),
            secret_access_key: self.aws_secret_access_key.clone(),
            session_token: self.aws_session_token.clone(),
            object_lock: self.audit_object_lock_days.map(|days| ObjectLock {
                mode: self.audit_object_lock_mode,
                days,
            }),
        })
    }
}

impl AuditShipArgs {
    /// The shipper's settings, or `None` when shipping is off.
    pub fn config(&self, data_dir: &Path) -> Option<ShipConfig> {
        let secs = |s: f64| Duration::from_secs_f64(s.clamp(0.0, 86_400.0));
        (self.audit_ship_interval_secs > 0.0).then(|| ShipConfig {
            target: self.target.config(data_dir),
            batch_rows: self.audit_ship_batch.max(1),
            interval: secs(self.audit_ship_interval_secs),
            max_backoff: secs(self.audit_ship_max_backoff_secs).max(Duration::from_millis(10)),
        })
    }
}
