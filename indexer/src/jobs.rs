//! The scheduler of background jobs (review dates, escalations, delivery
//! of notifications outside the application): runs the review-date and
//! escalation jobs every `interval` and the delivery worker every
//! [`DELIVERY_INTERVAL`] (and right after each escalation run), until
//! shutdown; failures are logged and retried at the next tick.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use engine::jobs::Clock;
use engine::notify::deliver::{Deliverer, DeliveryConfig, DEFAULT_MAX_ATTEMPTS};
use engine::store::Store;
use tokio::sync::watch;

/// How often jobs run by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// How often the delivery worker looks for due deliveries.
pub const DELIVERY_INTERVAL: Duration = Duration::from_secs(5);

/// Settings of the notification channels outside the application (e-mail,
/// webhooks), shared by `kmt serve` and `kmt-indexer`: every process that
/// writes notifications enqueues by them, the scheduler sends by them.
#[derive(Debug, Clone, clap::Args)]
pub struct NotifyArgs {
    /// SMTP server for e-mail notifications: `smtp://host:port` (plain),
    /// `smtp://host:587?tls=required` (STARTTLS) or `smtps://host` (TLS),
    /// credentials as `smtp://user:pass@host`. E-mail is off when unset.
    #[arg(long, env = "KMT_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Sender address of e-mail notifications.
    #[arg(long, env = "KMT_SMTP_FROM", default_value = "kmt@localhost")]
    pub smtp_from: String,
    /// Secret signing webhooks to users' own URLs (SMS gateways and the
    /// like); those are off when unset.
    #[arg(long, env = "KMT_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Attempts before a delivery is given up.
    #[arg(long, env = "KMT_DELIVERY_MAX_ATTEMPTS", default_value_t = DEFAULT_MAX_ATTEMPTS)]
    pub delivery_max_attempts: u32,
    /// Timeout of one webhook or SMTP send, in seconds.
    #[arg(long, env = "KMT_DELIVERY_TIMEOUT_SECS", default_value_t = 10)]
    pub delivery_timeout_secs: u64,
}

impl NotifyArgs {
    /// The delivery worker's configuration.
    pub fn config(&self) -> DeliveryConfig {
        DeliveryConfig {
            smtp_url: self.smtp_url.clone().filter(|s| !s.trim().is_empty()),
            smtp_from: self.smtp_from.clone(),
            webhook_secret: self.webhook_secret.clone().filter(|s| !s.is_empty()),
            max_attempts: self.delivery_max_attempts.max(1),
            timeout: Duration::from_secs(self.delivery_timeout_secs.max(1)),
        }
    }
}

/// Runs the jobs until `shutdown` turns true: review dates and escalations
/// every `interval`, deliveries (when `deliverer` is given) every
/// [`DELIVERY_INTERVAL`] or `interval`, whichever is shorter.
pub async fn run(
    store: Store,
    clock: Arc<dyn Clock>,
    interval: Duration,
    deliverer: Option<Arc<Deliverer>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut deliver_tick = tokio::time::interval(DELIVERY_INTERVAL.min(interval));
    deliver_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let jobs_due = tokio::select! {
            _ = tick.tick() => true,
            _ = deliver_tick.tick() => false,
            _ = shutdown.changed() => break,
        };
        if *shutdown.borrow() {
            break;
        }
        if jobs_due {
            let now = clock.now();
            if let Err(e) = engine::jobs::review_dates(&store, now).await {
                tracing::warn!(error = %e, "review-date job failed; retrying at the next tick");
            }
            match engine::notify::escalate_overdue(&store, now).await {
                Ok(n) => {
                    if let Some(d) = &deliverer {
                        d.stats().escalations.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "escalation job failed; retrying at the next tick")
                }
            }
        }
        if let Some(d) = &deliverer {
            if let Err(e) = d.run_once().await {
                tracing::warn!(error = %e, "delivery run failed; retrying at the next tick");
            }
        }
    }
}
