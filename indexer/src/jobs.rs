//! The scheduler of background jobs (review dates, escalations): runs
//! each job every `interval` until shutdown; failures are logged and retried
//! at the next tick.

use std::sync::Arc;
use std::time::Duration;

use engine::jobs::Clock;
use engine::store::Store;
use tokio::sync::watch;

/// How often jobs run by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// Runs the jobs every `interval` until `shutdown` turns true.
pub async fn run(
    store: Store,
    clock: Arc<dyn Clock>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        let now = clock.now();
        if let Err(e) = engine::jobs::review_dates(&store, now).await {
            tracing::warn!(error = %e, "review-date job failed; retrying at the next tick");
        }
        if let Err(e) = engine::notify::escalate_overdue(&store, now).await {
            tracing::warn!(error = %e, "escalation job failed; retrying at the next tick");
        }
    }
}
