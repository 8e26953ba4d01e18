//! [`S3Target`]: shipped audit objects in an S3 bucket, through aws-sdk-s3.
//!
//! The HTTP client is the SDK's hyper client with rustls on *ring* (the
//! SDK's default client builds aws-lc, a C library we do not need).
//! Credentials are static, from the standard `AWS_*` variables; with an
//! endpoint (an S3-compatible server) requests are path-style. Timeouts are
//! short so an unreachable bucket fails a round quickly and the shipper's
//! own backoff takes over; the SDK retries a request once more itself.

use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::{ByteStream, DateTime as SdkDateTime};
use aws_sdk_s3::types::ObjectLockMode;
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

use super::{object_key, LockMode, ObjectLock, S3Config};
use crate::error::{Error, Result};

/// Objects in an S3 bucket under a prefix.
#[derive(Debug, Clone)]
pub struct S3Target {
    client: Client,
    bucket: String,
    prefix: String,
    lock: Option<ObjectLock>,
}

/// The error of an SDK call, with the service's code and message when it
/// answered (the SDK's `Display` says only "service error").
fn sdk_error<E, R>(what: &str, e: aws_sdk_s3::error::SdkError<E, R>) -> Error
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let detail = match e.as_service_error() {
        Some(s) => format!(
            "{}: {}",
            s.code().unwrap_or("unknown"),
            s.message().unwrap_or("")
        ),
        None => aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
    };
    Error::ShipTarget(format!("{what}: {detail}"))
}

impl S3Target {
    /// A client for `cfg` (nothing is contacted yet).
    pub fn new(cfg: &S3Config) -> Result<S3Target> {
        if cfg.bucket.is_empty() {
            return Err(Error::invalid("audit bucket", "no bucket name"));
        }
        let (Some(key_id), Some(secret)) = (&cfg.access_key_id, &cfg.secret_access_key) else {
            return Err(Error::invalid(
                "audit bucket",
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set",
            ));
        };
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let creds = Credentials::new(
            key_id,
            secret,
            cfg.session_token.clone(),
            None,
            "kmt-environment",
        );
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(30))
            .operation_timeout(Duration::from_secs(70))
            .build();
        let mut b = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .credentials_provider(creds)
            .http_client(http)
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(2));
        if let Some(endpoint) = &cfg.endpoint {
            b = b.endpoint_url(endpoint).force_path_style(true);
        }
        Ok(S3Target {
            client: Client::from_conf(b.build()),
            bucket: cfg.bucket.clone(),
            prefix: cfg.prefix.trim_matches('/').to_string(),
            lock: cfg.object_lock,
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `s3://bucket/prefix`.
    pub fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// PUTs the object, with Object Lock retention headers when configured
    /// (retain-until counted from now).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            // Not `Content-Encoding: gzip`: readers must get the stored
            // bytes, whose SHA-256 is recorded, not a decompressed body.
            .content_type("application/gzip")
            .body(ByteStream::from(bytes));
        if let Some(lock) = self.lock {
            let until = chrono::Utc::now() + chrono::Duration::days(i64::from(lock.days));
            let mode = match lock.mode {
                LockMode::Governance => ObjectLockMode::Governance,
                LockMode::Compliance => ObjectLockMode::Compliance,
            };
            req = req
                .object_lock_mode(mode)
                .object_lock_retain_until_date(SdkDateTime::from_secs(until.timestamp()));
        }
        req.send()
            .await
            .map_err(|e| sdk_error(&format!("putting {key}"), e))?;
        Ok(())
    }

    /// GETs the object; `None` when the bucket has no such key.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(sdk_error(&format!("getting {key}"), e)),
        };
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| Error::ShipTarget(format!("reading {key}: {e}")))?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    /// Every key under `<prefix>/audit/`, sorted.
    pub async fn list(&self) -> Result<Vec<String>> {
        // The directory part of any object key.
        let dir = object_key(&self.prefix, 0, 0);
        self.list_under(&dir[..dir.rfind('/').map_or(0, |i| i + 1)])
            .await
    }

    /// DELETEs the object (S3 answers success for a missing key too).
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("deleting {key}"), e))?;
        Ok(())
    }

    /// Every key starting with `dir`, sorted.
    pub async fn list_under(&self, dir: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let mut req = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(dir);
            if let Some(t) = token.take() {
                req = req.continuation_token(t);
            }
            let page = req
                .send()
                .await
                .map_err(|e| sdk_error(&format!("listing {dir}"), e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(String::from)),
            );
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }
}
