//! The delivery worker: works off the delivery outbox.
//!
//! Each run claims due rows with a lease ([`Store::claim_deliveries`]),
//! sends them concurrently (each bounded by the timeout, so the lease —
//! longer than the timeout — cannot run out while a send is in flight),
//! and records each outcome: sent, a retry after exponential backoff with
//! jitter, or — after `max_attempts` — failed, logged once. Time comes from
//! the injected [`Clock`], so tests drive backoff and leases without
//! sleeping.
//!
//! Delivery is at least once, and exactly once unless a worker dies
//! between a successful send and recording it: then the lease runs out
//! and another run sends again, with the same `X-KMT-Delivery` id (and
//! e-mail Message-ID) so receivers can drop the repeat.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

use super::send::{self, Mailer};
use crate::error::{Error, Result};
use crate::jobs::Clock;
use crate::model::{Channel, Channels, Delivery};
use crate::store::Store;

/// Default attempts before a delivery is given up.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// Default timeout of one send.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows claimed (and sent concurrently) per batch.
const BATCH: i64 = 16;
/// Delay before the first retry; doubles per attempt.
const BASE_BACKOFF_SECS: i64 = 30;
/// Longest delay between attempts.
const MAX_BACKOFF_SECS: i64 = 3600;

/// Settings of the external channels.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// SMTP server (`smtp://host:port`); e-mail is off without it.
    pub smtp_url: Option<String>,
    /// Sender address of e-mails.
    pub smtp_from: String,
    /// Secret signing webhooks to users' own URLs (SMS gateways); those
    /// are off without it.
    pub webhook_secret: Option<String>,
    /// Attempts before a delivery is marked failed.
    pub max_attempts: u32,
    /// Timeout of one send.
    pub timeout: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            smtp_url: None,
            smtp_from: "kmt@localhost".into(),
            webhook_secret: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl DeliveryConfig {
    /// The per-user channels this configuration turns on.
    pub fn channels(&self) -> Channels {
        Channels {
            email: self.smtp_url.is_some(),
            webhook: self.webhook_secret.is_some(),
        }
    }

    /// The lease of a claim: a send's timeout plus room for recording it.
    pub fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.timeout * 2).unwrap_or(chrono::Duration::minutes(1))
            + chrono::Duration::seconds(30)
    }
}

/// Counters of the scheduler's notifications, by channel (for `/metrics`).
#[derive(Debug, Default)]
pub struct NotifyStats {
    /// Escalation steps recorded.
    pub escalations: AtomicU64,
    sent: [AtomicU64; 3],
    retried: [AtomicU64; 3],
    failed: [AtomicU64; 3],
}

fn slot(c: Channel) -> usize {
    match c {
        Channel::Email => 0,
        Channel::Webhook => 1,
        Channel::CategoryWebhook => 2,
    }
}

impl NotifyStats {
    /// Deliveries sent on `c`.
    pub fn sent(&self, c: Channel) -> u64 {
        self.sent[slot(c)].load(Ordering::Relaxed)
    }
    /// Failed attempts on `c` that will be retried.
    pub fn retried(&self, c: Channel) -> u64 {
        self.retried[slot(c)].load(Ordering::Relaxed)
    }
    /// Deliveries on `c` given up after their last attempt.
    pub fn failed(&self, c: Channel) -> u64 {
        self.failed[slot(c)].load(Ordering::Relaxed)
    }
}

/// What one [`Deliverer::run_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Sent.
    pub sent: usize,
    /// Failed and scheduled again.
    pub retried: usize,
    /// Failed for good.
    pub failed: usize,
}

/// Sends due deliveries.
pub struct Deliverer {
    store: Store,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    mailer: Option<Mailer>,
    cfg: DeliveryConfig,
    stats: Arc<NotifyStats>,
}

impl Deliverer {
    /// A worker over `store` with `cfg`. Fails on a bad SMTP URL or sender.
    pub fn new(store: Store, clock: Arc<dyn Clock>, cfg: DeliveryConfig) -> Result<Deliverer> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| Error::Delivery(format!("http client: {e}")))?;
        let mailer = cfg
            .smtp_url
            .as_deref()
            .map(|url| Mailer::new(url, &cfg.smtp_from, cfg.timeout))
            .transpose()?;
        Ok(Deliverer {
            store,
            clock,
            http,
            mailer,
            cfg,
            stats: Arc::default(),
        })
    }

    /// The counters this worker updates.
    pub fn stats(&self) -> Arc<NotifyStats> {
        self.stats.clone()
    }

    /// Claims and sends due deliveries until none are left as of the
    /// clock's now.
    pub async fn run_once(&self) -> Result<RunReport> {
        let mut report = RunReport::default();
        loop {
            let now = self.clock.now();
            let batch = self
                .store
                .claim_deliveries(now, now + self.cfg.lease(), BATCH)
                .await?;
            if batch.is_empty() {
                return Ok(report);
            }
            let results =
                futures::future::join_all(batch.iter().map(|d| self.attempt(d, now))).await;
            for (d, r) in batch.iter().zip(results) {
                self.record(d, r, &mut report).await?;
            }
        }
    }

    /// One send, bounded by the timeout.
    async fn attempt(&self, d: &Delivery, now: DateTime<Utc>) -> Result<(), Failure> {
        let send = async {
            match d.channel {
                Channel::Email => match &self.mailer {
                    Some(m) => m.send(d).await.map_err(Failure::retry),
                    None => Err(Failure::permanent(
                        "e-mail is not configured (KMT_SMTP_URL)",
                    )),
                },
                Channel::Webhook => match &self.cfg.webhook_secret {
                    Some(secret) => send::webhook(&self.http, d, secret, now.timestamp())
                        .await
                        .map_err(Failure::retry),
                    None => Err(Failure::permanent("KMT_WEBHOOK_SECRET is not set")),
                },
                Channel::CategoryWebhook => {
                    let id = d.subscription_id.unwrap_or_default();
                    match self
                        .store
                        .webhook_secret(id)
                        .await
                        .map_err(Failure::retry)?
                    {
                        Some(secret) => send::webhook(&self.http, d, &secret, now.timestamp())
                            .await
                            .map_err(Failure::retry),
                        None => Err(Failure::permanent("the webhook was deleted")),
                    }
                }
            }
        };
        match tokio::time::timeout(self.cfg.timeout, send).await {
            Ok(r) => r,
            Err(_) => Err(Failure::retry(Error::Delivery("timed out".into()))),
        }
    }

    /// Records the outcome of one attempt.
    async fn record(
        &self,
        d: &Delivery,
        r: Result<(), Failure>,
        report: &mut RunReport,
    ) -> Result<()> {
        let now = self.clock.now();
        let c = slot(d.channel);
        match r {
            Ok(()) => {
                self.store.delivery_done(d.id, now, Ok(())).await?;
                self.stats.sent[c].fetch_add(1, Ordering::Relaxed);
                report.sent += 1;
            }
            Err(f) => {
                let error = f.error;
                let retry = (!f.permanent && d.attempts < self.cfg.max_attempts as i32)
                    .then(|| now + backoff(d.attempts));
                self.store
                    .delivery_done(d.id, now, Err((&error, retry)))
                    .await?;
                match retry {
                    Some(at) => {
                        tracing::debug!(delivery = d.id, channel = d.channel.as_str(), attempts = d.attempts, error = %error, retry_at = %at, "delivery failed; will retry");
                        self.stats.retried[c].fetch_add(1, Ordering::Relaxed);
                        report.retried += 1;
                    }
                    None => {
                        tracing::warn!(delivery = d.id, channel = d.channel.as_str(), event = %d.event_key, attempts = d.attempts, error = %error, "delivery failed for good");
                        self.stats.failed[c].fetch_add(1, Ordering::Relaxed);
                        report.failed += 1;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Why an attempt failed, and whether trying again could help.
struct Failure {
    error: String,
    permanent: bool,
}

impl Failure {
    fn retry(e: Error) -> Failure {
        Failure {
            error: e.to_string(),
            permanent: false,
        }
    }

    /// Nothing a retry could change: the channel is off or the
    /// subscription is gone.
    fn permanent(why: &str) -> Failure {
        Failure {
            error: why.to_string(),
            permanent: true,
        }
    }
}

/// The delay after attempt `attempts` (1-based) failed: 30 s doubling per
/// attempt up to an hour, plus up to a quarter more at random so that
/// deliveries failing together do not retry together.
pub fn backoff(attempts: i32) -> chrono::Duration {
    let exp = (attempts - 1).clamp(0, 20) as u32;
    let base = BASE_BACKOFF_SECS
        .saturating_mul(1i64 << exp)
        .min(MAX_BACKOFF_SECS);
    let jitter = rand::rng().random_range(0..=base / 4);
    chrono::Duration::seconds(base + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_bounded_jitter_and_a_cap() {
        for (attempt, base) in [(1, 30), (2, 60), (3, 120), (8, 3600), (30, 3600)] {
            let d = backoff(attempt).num_seconds();
            assert!((base..=base + base / 4).contains(&d), "{attempt}: {d}");
        }
    }
}
