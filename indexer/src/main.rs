//! `kmt-indexer`: follows the outbox and maintains the search index.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use engine::search::SearchIndex;
use engine::store::Store;
use indexer::Follower;

/// Configuration of `kmt-indexer`.
#[derive(Debug, Parser)]
#[command(
    name = "kmt-indexer",
    version,
    about = "Follows the KMT outbox and maintains the search index"
)]
struct Config {
    /// PostgreSQL URL of the system of record; without it, the embedded
    /// SQLite store in `--data` is used.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Data directory of the embedded store (and default index location).
    #[arg(long = "data", env = "KMT_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Index directory (default: `<data>/index`).
    #[arg(long, env = "KMT_INDEX_DIR")]
    index_dir: Option<PathBuf>,
    /// Outbox rows applied per index commit.
    #[arg(long, env = "KMT_INDEXER_BATCH", default_value_t = indexer::follower::DEFAULT_BATCH)]
    batch: i64,
    /// Catch up once and exit instead of following.
    #[arg(long)]
    once: bool,
    /// Embedding model settings (semantic search).
    #[command(flatten)]
    embed: indexer::embedder::EmbedArgs,
    /// Audit shipping settings.
    #[command(flatten)]
    audit_ship: indexer::audit_ship::AuditShipArgs,
    /// Index snapshots: where they go and how often.
    #[command(flatten)]
    snapshot: indexer::snapshot::SnapshotArgs,
    /// Notification channels (e-mail, webhooks) the scheduler delivers to.
    #[command(flatten)]
    notify: indexer::jobs::NotifyArgs,
    /// Log format: `text` or `json`.
    #[arg(long, env = "KMT_LOG_FORMAT", default_value = "text")]
    log_format: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tantivy=warn".into());
    if cfg.log_format == "json" {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        // A closed log pipe must not take the process down: by default the
        // subscriber reports write failures with eprintln!, which panics.
        tracing_subscriber::fmt()
            .log_internal_errors(false)
            .with_env_filter(filter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init();
    }
    let delivery = cfg.notify.config();
    let store = Store::open(cfg.database_url.as_deref(), &cfg.data_dir)
        .await
        .context("opening the store")?
        .with_channels(delivery.channels());
    // One indexer leads (a PostgreSQL advisory lock); others stand by and
    // take over when the leader's connection dies.
    let mut leadership = store
        .lead(std::time::Duration::from_secs(1))
        .await
        .context("waiting for indexer leadership")?;
    tracing::info!("leading");
    let index_dir = cfg.index_dir.unwrap_or_else(|| cfg.data_dir.join("index"));
    let snapshots = cfg.snapshot.config(&cfg.audit_ship.target);
    let snapshot_status = std::sync::Arc::new(indexer::snapshot::SnapshotStatus::default());
    if let Some(snap) = &snapshots {
        // A new (or wiped) indexer starts from the newest snapshot rather
        // than replaying the whole outbox.
        indexer::snapshot::restore_if_empty(snap, &index_dir, &snapshot_status).await;
    }
    let index = SearchIndex::open(&index_dir).context("opening the index")?;
    let mut follower = Follower::new(store.clone(), index.clone(), cfg.batch)
        .context("taking the index writer")?;
    // Embeddings: computed here once and stored by content hash, so API
    // replicas following the same store reuse them instead of embedding.
    let (embedding, _) = indexer::embedder::setup(&cfg.embed, &store, &index);
    tracing::info!(index = %index_dir.display(), checkpoint = follower.status().checkpoint.load(std::sync::atomic::Ordering::Relaxed), "indexer started");
    let audit_ship = cfg.audit_ship.config(&cfg.data_dir);
    if cfg.once {
        let n = follower.catch_up().await?;
        tracing::info!(applied = n, "caught up");
        if let Some(ship) = &audit_ship {
            let target = engine::audit_ship::ShipTarget::open(&ship.target).await?;
            let out = engine::audit_ship::ship_once(&store, &target, ship.batch_rows).await?;
            tracing::info!(batches = out.batches, rows = out.rows, "audit shipped");
        }
        if let Some((mut worker, _)) = embedding {
            let n = worker.sync_all().await?;
            worker.save_index();
            tracing::info!(articles = n, "vectors in step");
        }
        if let Some(snap) = snapshots.filter(|s| s.interval.is_some()) {
            let target = engine::audit_ship::ShipTarget::open(&snap.target).await?;
            engine::snapshot::publish(&index, &target, snap.keep).await?;
        }
        return Ok(());
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    let embed_task = match embedding {
        Some((worker, queue)) => {
            follower = follower.with_embedding(queue);
            Some(tokio::spawn(worker.run(rx.clone())))
        }
        None => None,
    };
    // Shipping runs only here, under the leadership, so one process ships
    // per database.
    let shipper = audit_ship.map(|ship| {
        tracing::info!(audit_target = ?ship.target, "shipping the audit trail");
        tokio::spawn(engine::audit_ship::run(store.clone(), ship, rx.clone()))
    });
    // Snapshots, like shipping, only under the leadership.
    let publisher = snapshots.map(|snap| {
        tokio::spawn(indexer::snapshot::run_publisher(
            index.clone(),
            snap,
            follower.status(),
            snapshot_status,
            rx.clone(),
        ))
    });
    let clock = std::sync::Arc::new(engine::jobs::SystemClock);
    let deliverer = engine::notify::deliver::Deliverer::new(store.clone(), clock.clone(), delivery)
        .context("configuring notification delivery")?;
    let jobs = tokio::spawn(indexer::jobs::run(
        store,
        clock,
        indexer::jobs::DEFAULT_INTERVAL,
        Some(std::sync::Arc::new(deliverer)),
        rx.clone(),
    ));
    let lost = tx.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = tx.send(true);
    });
    // Losing the lock's connection means another indexer may lead now:
    // stop, and let the orchestrator restart this one as a standby.
    let watch = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            if lost.is_closed() {
                return false;
            }
            if !leadership.still_held().await {
                tracing::error!("lost indexer leadership; stopping");
                let _ = lost.send(true);
                return true;
            }
        }
    });
    follower.run(rx).await;
    let lost_leadership = watch.is_finished() && watch.await.unwrap_or(false);
    let _ = jobs.await;
    if let Some(t) = shipper {
        let _ = t.await;
    }
    if let Some(t) = embed_task {
        let _ = t.await;
    }
    if let Some(t) = publisher {
        let _ = t.await;
    }
    anyhow::ensure!(!lost_leadership, "lost indexer leadership");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
