//! Shared state of the HTTP server.

use std::sync::Arc;

use engine::search::SearchIndex;
use engine::store::Store;
use indexer::FollowerStatus;

use crate::limit::SignInLimiter;
use crate::metrics::Metrics;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The system of record.
    pub store: Store,
    /// The search index (read side).
    pub index: SearchIndex,
    /// The in-process follower's status (readiness, lag).
    pub follower: Arc<FollowerStatus>,
    /// The embedding worker's status (semantic search on or off, and why).
    pub embedding: Arc<indexer::embedder::EmbedStatus>,
    /// Index snapshots: restored from, newest known.
    pub snapshots: Arc<indexer::snapshot::SnapshotStatus>,
    /// Request and search metrics, rendered by `GET /metrics`.
    pub metrics: Arc<Metrics>,
    /// Usage events (views, searches, clicks), written in batches off the
    /// request path.
    pub usage: engine::usage::EventSink,
    /// The last trained recommendation models (trained in this process).
    pub recommender: Arc<engine::recommend::Recommender>,
    /// Failed sign-ins, for rate limiting.
    pub sign_ins: Arc<SignInLimiter>,
    /// Mark session cookies `Secure` (served over TLS, directly or behind a
    /// proxy); also set per request when `X-Forwarded-Proto` is https.
    pub cookie_secure: bool,
    /// Set when shutdown began: `/readyz` answers 503 so load balancers
    /// stop sending requests while in-flight and late ones are still served.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}
