//! Liveness and readiness probes.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "alive")))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness details.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, `starting` (catching up) or `draining` (shutting down:
    /// still serving, but take it out of rotation).
    pub status: &'static str,
    /// `postgres` or `sqlite`.
    pub store: &'static str,
    /// Documents in the search index.
    pub index_documents: u64,
    /// Index generation (increases with each full rebuild).
    pub index_generation: u64,
    /// Outbox sequence the index covers.
    pub checkpoint: i64,
    /// Outbox rows not yet indexed.
    pub lag: i64,
    /// The follower's last error, if the last catch-up failed.
    pub last_error: Option<String>,
    /// Semantic search: on or off, and why.
    pub semantic: SemanticReadiness,
    /// Outbox sequence of the snapshot this index was restored from at
    /// start (absent: it was not; the follower replays only what came
    /// after this sequence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_from_seq: Option<i64>,
    /// Name of that snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<String>,
}

/// State of semantic search.
#[derive(Debug, Serialize, ToSchema)]
pub struct SemanticReadiness {
    /// `on` or `off`.
    pub status: &'static str,
    /// Why it is off (search is lexical only meanwhile).
    pub reason: Option<String>,
    /// The embedding model.
    pub model: Option<String>,
    /// Articles with vectors.
    pub articles: usize,
    /// Passage vectors.
    pub vectors: usize,
    /// Articles waiting to be embedded.
    pub queue: u64,
    /// The vector index has been compared with every article since start.
    pub synced: bool,
    /// The embedding worker's last error.
    pub last_error: Option<String>,
}

/// Readiness: 200 once the index has caught up with the store, else 503;
/// 503 again from the shutdown signal on, while requests are still served.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let draining = s.draining.load(Ordering::Relaxed);
    let ready = s.follower.ready.load(Ordering::Relaxed) && !draining;
    let body = Readiness {
        status: if draining {
            "draining"
        } else if ready {
            "ready"
        } else {
            "starting"
        },
        store: s.store.backend(),
        index_documents: s.index.num_docs(),
        index_generation: s.index.generation(),
        checkpoint: s.follower.checkpoint.load(Ordering::Relaxed),
        lag: s.follower.lag(),
        last_error: s.follower.last_error.lock().ok().and_then(|e| e.clone()),
        semantic: semantic_readiness(&s),
        restored_from_seq: s.snapshots.restored_seq(),
        restored_from: s
            .snapshots
            .restored_from
            .lock()
            .ok()
            .and_then(|r| r.clone()),
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

fn semantic_readiness(s: &AppState) -> SemanticReadiness {
    let e = &s.embedding;
    let sem = s.index.semantic();
    let stats = sem.as_ref().map(|x| x.vectors.stats()).unwrap_or_default();
    SemanticReadiness {
        status: if sem.is_some() { "on" } else { "off" },
        reason: e.off_reason.lock().ok().and_then(|r| r.clone()),
        model: sem.map(|x| x.embedder.embedder().model_id().to_string()),
        articles: stats.articles,
        vectors: stats.vectors,
        queue: e.queue.load(Ordering::Relaxed),
        synced: e.synced.load(Ordering::Relaxed),
        last_error: e.last_error.lock().ok().and_then(|r| r.clone()),
    }
}
