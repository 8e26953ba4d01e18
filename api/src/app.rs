//! The router, its middleware and the server loop.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use engine::search::SearchIndex;
use engine::store::Store;
use indexer::Follower;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use utoipa::OpenApi;

use crate::error::problem;
use crate::metrics;
use crate::ratelimit::{Limiter, RateLimit};
use crate::routes::{
    analytics, articles, audit, channels, health, notifications, prompts, recommend, rules, search,
    session, usage, users, workflow,
};
use crate::state::AppState;

/// Largest accepted request body (an article body may be 2 MiB).
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The OpenAPI document, generated from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(title = "KMT", description = "Knowledge-management service API"),
    paths(
        health::healthz, health::readyz, search::search, crate::routes::suggest::suggest,
        articles::list, articles::create, articles::get, articles::update, articles::delete, articles::versions, articles::related, articles::diff, articles::revert, articles::retire,
        workflow::get_draft, workflow::save_draft, workflow::submit, workflow::approve, workflow::reject, workflow::tasks, workflow::approve_task, workflow::reject_task, workflow::request_update,
        notifications::list, notifications::mark_read,
        rules::list, rules::effective, rules::history, rules::save,
        usage::events, usage::ratings, usage::rate, usage::helpful, usage::feedback, usage::privacy, usage::set_privacy, usage::my_history, usage::user_history,
        prompts::gaps, prompts::updates, prompts::classify, prompts::request_article, analytics::articles, analytics::queries, analytics::timeseries, analytics::assign, analytics::assignments, analytics::my_assignments,
        channels::create_webhook, channels::list_webhooks, channels::delete_webhook, channels::feed,
        audit::list, session::sign_in, session::current, session::sign_out, session::login, session::logout, session::set_password, users::me, users::preferences, users::set_preferences, users::roles, users::create_group, users::list, users::create, users::set_roles, users::set_contact, users::create_token, users::reindex,
        recommend::mine, recommend::also_used, recommend::retrain,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerAuth),
    tags((name = "search"), (name = "articles"), (name = "workflow"), (name = "rules"), (name = "usage"), (name = "analytics"), (name = "users"), (name = "operations")),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn not_found() -> impl IntoResponse {
    problem(StatusCode::NOT_FOUND, "no such endpoint".into(), None)
}

/// Headers every response carries: no sniffing, no framing, no referrer
/// leaks, and a content security policy that allows only our own scripts.
fn security_headers() -> [(HeaderName, HeaderValue); 4] {
    [
        (
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ),
        (
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ),
        (
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ),
        (
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(
                "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
            ),
        ),
    ]
}

/// Builds the router with its middleware.
pub fn router(state: AppState, request_timeout: Duration, rate_limit: Option<RateLimit>) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    let request_metrics = state.metrics.clone();
    let app = Router::new()
        .route("/", get(crate::web::home))
        .route("/assets/{*name}", get(crate::web::asset))
        .route("/{page}", get(crate::web::page))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::scrape))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/search", get(search::search))
        .route("/v1/suggest", get(crate::routes::suggest::suggest))
        .route("/v1/articles", get(articles::list).post(articles::create))
        .route(
            "/v1/articles/{id}",
            get(articles::get)
                .put(articles::update)
                .delete(articles::delete),
        )
        .route("/v1/articles/{id}/versions", get(articles::versions))
        .route("/v1/articles/{id}/related", get(articles::related))
        .route("/v1/articles/{id}/diff", get(articles::diff))
        .route("/v1/articles/{id}/revert", post(articles::revert))
        .route(
            "/v1/articles/{id}/draft",
            get(workflow::get_draft).put(workflow::save_draft),
        )
        .route("/v1/articles/{id}/submit", post(workflow::submit))
        .route("/v1/articles/{id}/approve", post(workflow::approve))
        .route("/v1/articles/{id}/reject", post(workflow::reject))
        .route("/v1/tasks", get(workflow::tasks))
        .route("/v1/tasks/{id}/approve", post(workflow::approve_task))
        .route("/v1/tasks/{id}/reject", post(workflow::reject_task))
        .route("/v1/articles/{id}/retire", post(articles::retire))
        .route(
            "/v1/articles/{id}/request-update",
            post(workflow::request_update),
        )
        .route("/v1/auth/login", post(session::login))
        .route("/v1/auth/logout", post(session::logout))
        .route("/v1/notifications", get(notifications::list))
        .route("/v1/notifications/read", post(notifications::mark_read))
        .route("/v1/rules", get(rules::list))
        .route(
            "/v1/rules/{category}",
            get(rules::effective).put(rules::save),
        )
        .route("/v1/rules/{category}/history", get(rules::history))
        .route("/v1/events", post(usage::events))
        .route(
            "/v1/articles/{id}/rating",
            get(usage::ratings).put(usage::rate),
        )
        .route("/v1/articles/{id}/helpful", post(usage::helpful))
        .route("/v1/articles/{id}/feedback", post(usage::feedback))
        .route(
            "/v1/articles/{id}/assignments",
            get(analytics::assignments).post(analytics::assign),
        )
        .route("/v1/assignments/mine", get(analytics::my_assignments))
        .route(
            "/v1/me/privacy",
            get(usage::privacy).put(usage::set_privacy),
        )
        .route("/v1/me/history", get(usage::my_history))
        .route("/v1/users/{username}/history", get(usage::user_history))
        .route("/v1/analytics/articles", get(analytics::articles))
        .route("/v1/prompts/gaps", get(prompts::gaps))
        .route("/v1/prompts/updates", get(prompts::updates))
        .route("/v1/prompts/classify", post(prompts::classify))
        .route("/v1/prompts/requests", post(prompts::request_article))
        .route("/v1/analytics/queries", get(analytics::queries))
        .route("/v1/analytics/timeseries", get(analytics::timeseries))
        .route(
            "/v1/categories/{category}/webhooks",
            get(channels::list_webhooks).post(channels::create_webhook),
        )
        .route(
            "/v1/categories/{category}/webhooks/{id}",
            axum::routing::delete(channels::delete_webhook),
        )
        .route("/v1/categories/{category}/feed.atom", get(channels::feed))
        .route("/v1/audit", get(audit::list))
        .route("/v1/me", get(users::me))
        .route(
            "/v1/me/preferences",
            get(users::preferences).put(users::set_preferences),
        )
        .route(
            "/v1/session",
            post(session::sign_in)
                .get(session::current)
                .delete(session::sign_out),
        )
        .route("/v1/users/{username}/password", put(session::set_password))
        .route("/v1/users", get(users::list).post(users::create))
        .route("/v1/roles", get(users::roles).post(users::create_group))
        .route("/v1/users/{username}/roles", put(users::set_roles))
        .route("/v1/users/{username}/contact", put(users::set_contact))
        .route("/v1/users/{username}/tokens", post(users::create_token))
        .route("/v1/admin/reindex", post(users::reindex))
        .route("/v1/recommendations", get(recommend::mine))
        .route("/v1/articles/{id}/also-used", get(recommend::also_used))
        .route(
            "/v1/admin/recommendations/retrain",
            post(recommend::retrain),
        )
        .fallback(not_found)
        .with_state(state);
    // Per-client rate limiting runs inside the metrics and trace layers, so
    // refused requests are counted and logged like others.
    let app = match rate_limit {
        Some(limit) => app.layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::new(Limiter::new(limit)),
            crate::ratelimit::limit,
        )),
        None => app,
    };
    let app = app
        // axum's extractors have their own 2 MB default; one limit for all.
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        // Query-length and NUL guards, and problem+json for every error
        // answer, including those of the layers above.
        .layer(axum::middleware::from_fn(crate::guard::guard))
        // Outside the timeout, so requests it cuts off are counted (as 503);
        // a router layer, so the matched route template is known.
        .layer(axum::middleware::from_fn_with_state(
            request_metrics,
            metrics::track_http,
        ))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)).make_span_with(|req: &axum::http::Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid));
    security_headers()
        .into_iter()
        .fold(app, |app, (name, value)| {
            app.layer(SetResponseHeaderLayer::if_not_present(name, value))
        })
}

/// Options of a running server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Index directory.
    pub index_dir: std::path::PathBuf,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Time between the shutdown signal and closing the listener, with
    /// `/readyz` answering 503 meanwhile (zero: close at once).
    pub shutdown_drain: Duration,
    /// Outbox rows per index commit.
    pub index_batch: i64,
    /// Mark session cookies `Secure`.
    pub cookie_secure: bool,
    /// Per-client request rate limit (`None`: unlimited).
    pub rate_limit: Option<RateLimit>,
    /// Embedding model settings.
    pub embed: indexer::embedder::EmbedArgs,
    /// Usage event recording (queue, batch, flush interval).
    pub usage: engine::usage::SinkConfig,
    /// Audit shipping (`None`: off). Used on the embedded store only; with
    /// PostgreSQL, `kmt-indexer` ships.
    pub audit_ship: Option<engine::audit_ship::ShipConfig>,
    /// Notification channels outside the application (e-mail, webhooks).
    pub delivery: engine::notify::deliver::DeliveryConfig,
    /// Index snapshots (`None`: off): an empty index is restored from the
    /// newest one; on the embedded store this process also publishes them.
    pub snapshot: Option<indexer::snapshot::SnapshotConfig>,
    /// Time between two trainings of the recommendation models.
    pub recommend_interval: Duration,
}

/// Opens the index, starts the in-process follower and serves until
/// SIGINT/SIGTERM, then drains in-flight requests and stops the follower.
/// `on_listening` is called with the bound address (the demo prints it).
pub async fn serve(
    store: Store,
    opts: ServeOptions,
    on_listening: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| anyhow::anyhow!("binding {}: {e}", opts.listen))?;
    serve_on(store, opts, listener, on_listening, shutdown_signal()).await
}

/// [`serve`] on a bound listener, until `shutdown` resolves (tests pass
/// their own).
pub async fn serve_on(
    store: Store,
    opts: ServeOptions,
    listener: tokio::net::TcpListener,
    on_listening: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Every process that writes notifications enqueues their deliveries.
    let store = store.with_channels(opts.delivery.channels());
    let snapshots = std::sync::Arc::new(indexer::snapshot::SnapshotStatus::default());
    if let Some(snap) = &opts.snapshot {
        // A new replica boots from the newest snapshot and replays only the
        // outbox after it; /readyz stays 503 until that catch-up is done.
        indexer::snapshot::restore_if_empty(snap, &opts.index_dir, &snapshots).await;
    }
    let index = open_index(&opts.index_dir)?;
    let follower = Follower::new(store.clone(), index.clone(), opts.index_batch).map_err(|e| {
        anyhow::anyhow!(
            "{e}: is another kmt server or kmt-indexer using {}?",
            opts.index_dir.display()
        )
    })?;
    let status = follower.status();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Snapshots: the embedded store has no kmt-indexer, so this process
    // publishes; every process watches the store to report the newest
    // snapshot's age.
    let snapshot_tasks = opts.snapshot.clone().map(|snap| {
        let publisher = matches!(store, Store::Sqlite(_)).then(|| {
            tokio::spawn(indexer::snapshot::run_publisher(
                index.clone(),
                snap.clone(),
                status.clone(),
                snapshots.clone(),
                stop_rx.clone(),
            ))
        });
        let watcher = tokio::spawn(indexer::snapshot::watch_store(
            snap,
            snapshots.clone(),
            Duration::from_secs(30),
            stop_rx.clone(),
        ));
        (publisher, watcher)
    });
    let (embedding, embed_status) = indexer::embedder::setup(&opts.embed, &store, &index);
    let (follower, embed_task) = match embedding {
        Some((worker, queue)) => (
            follower.with_embedding(queue),
            Some(tokio::spawn(worker.run(stop_rx.clone()))),
        ),
        None => (follower, None),
    };
    let (store_for_jobs, jobs_stop) = (store.clone(), stop_rx.clone());
    let follower_task = {
        // If the follower ever dies (a panic), say so in /readyz instead of
        // serving an index that silently stopped following the store.
        let status = status.clone();
        let run = tokio::spawn(follower.run(stop_rx));
        tokio::spawn(async move {
            if let Err(e) = run.await {
                tracing::error!(error = %e, "index follower died");
                status
                    .ready
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                if let Ok(mut last) = status.last_error.lock() {
                    *last = Some(format!("index follower died: {e}"));
                }
            }
        })
    };
    let usage = engine::usage::EventSink::start(store.clone(), opts.usage);
    let clock: std::sync::Arc<dyn engine::jobs::Clock> =
        std::sync::Arc::new(engine::jobs::SystemClock);
    let deliverer =
        engine::notify::deliver::Deliverer::new(store.clone(), clock.clone(), opts.delivery)
            .map_err(|e| anyhow::anyhow!("configuring notification delivery: {e}"))?;
    let draining = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::default());
    metrics.set_notify_stats(deliverer.stats());
    // Recommendation models train in this process, off the runtime's
    // workers, and are swapped in when done (engine::recommend::serve).
    let recommender = engine::recommend::Recommender::new();
    let recommend_task = tokio::spawn(recommender.clone().run(
        store.clone(),
        opts.recommend_interval,
        jobs_stop.clone(),
    ));
    let state = AppState {
        recommender,
        usage: usage.clone(),
        store,
        index,
        follower: status,
        embedding: embed_status,
        snapshots,
        metrics,
        sign_ins: Default::default(),
        cookie_secure: opts.cookie_secure,
        draining: draining.clone(),
    };
    // Scheduled jobs and notification delivery: the embedded store has no
    // separate kmt-indexer, so its server runs them; with PostgreSQL the
    // indexer does.
    let jobs = matches!(store_for_jobs, Store::Sqlite(_)).then(|| {
        tokio::spawn(indexer::jobs::run(
            store_for_jobs.clone(),
            clock,
            indexer::jobs::DEFAULT_INTERVAL,
            Some(std::sync::Arc::new(deliverer)),
            jobs_stop.clone(),
        ))
    });
    // The audit shipper, likewise: in-process on the embedded store.
    let shipper = match (&store_for_jobs, opts.audit_ship.clone()) {
        (Store::Sqlite(_), Some(cfg)) => Some(tokio::spawn(engine::audit_ship::run(
            store_for_jobs.clone(),
            cfg,
            jobs_stop.clone(),
        ))),
        _ => None,
    };
    let app = router(state, opts.request_timeout, opts.rate_limit);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    on_listening(addr);
    // Shutdown: first report not ready while still serving (a balancer that
    // polls /readyz stops routing here), then stop accepting and finish the
    // requests in flight. Closing at once would fail requests a balancer
    // sends before its next check.
    let drain = opts.shutdown_drain;
    let shutdown = async move {
        shutdown.await;
        draining.store(true, std::sync::atomic::Ordering::Relaxed);
        if !drain.is_zero() {
            tracing::info!(
                drain_secs = drain.as_secs_f64(),
                "draining: /readyz answers 503 until the listener closes"
            );
            tokio::time::sleep(drain).await;
        }
    };
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    // Requests are drained, so no event comes after this: write them all.
    usage.shutdown().await;
    tracing::info!("http server drained; stopping the index follower");
    let _ = stop_tx.send(true);
    let _ = follower_task.await;
    if let Some(t) = embed_task {
        let _ = t.await;
    }
    let _ = recommend_task.await;
    if let Some(j) = jobs {
        let _ = j.await;
    }
    if let Some(s) = shipper {
        let _ = s.await;
    }
    if let Some((publisher, watcher)) = snapshot_tasks {
        if let Some(p) = publisher {
            let _ = p.await;
        }
        let _ = watcher.await;
    }
    Ok(())
}

fn open_index(dir: &Path) -> anyhow::Result<SearchIndex> {
    SearchIndex::open(dir)
        .map_err(|e| anyhow::anyhow!("opening the index in {}: {e}", dir.display()))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown signal received; draining");
}
