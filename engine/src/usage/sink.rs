//! The event sink: usage events go into a bounded channel and a background
//! writer stores them in batches, so no request waits for its event.
//!
//! The writer flushes when a batch is full ([`SinkConfig::batch`] events)
//! or when the oldest queued event is [`SinkConfig::flush_interval`] old,
//! and on [`EventSink::flush`] and [`EventSink::shutdown`]. When the channel
//! is full an event is dropped, never waited for: the request path must not
//! slow down because the database did. Drops are counted
//! ([`SinkStats::dropped`], `kmt_usage_events_total{outcome="dropped"}`)
//! and logged as a warning at most once per [`WARN_EVERY`]. A batch the
//! store refuses is retried once, then counted as `failed` and logged.
//! Every event [`EventSink::record`] accepted is stored by the time
//! [`EventSink::shutdown`] returns (unless the store itself fails).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::model::UsageEvent;
use crate::store::Store;

/// Shortest time between two "events dropped" warnings.
pub const WARN_EVERY: Duration = Duration::from_secs(60);
/// Pause before the one retry of a batch the store refused.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// Sizes and timings of the sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkConfig {
    /// Events the channel holds before new ones are dropped (0 turns
    /// recording off).
    pub queue: usize,
    /// Events per write.
    pub batch: usize,
    /// Longest time an event waits in the writer before it is written.
    pub flush_interval: Duration,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            queue: 10_000,
            batch: 500,
            flush_interval: Duration::from_secs(1),
        }
    }
}

/// What the sink did, for `/metrics`.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Events stored.
    pub recorded: AtomicU64,
    /// Events dropped because the channel was full (or the sink stopped).
    pub dropped: AtomicU64,
    /// Events lost because the store refused their batch twice.
    pub failed: AtomicU64,
}

enum Msg {
    Event(UsageEvent),
    Flush(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
}

/// The sending side, cheap to clone into every handler.
#[derive(Clone)]
pub struct EventSink {
    tx: Option<mpsc::Sender<Msg>>,
    stats: Arc<SinkStats>,
    last_warning: Arc<Mutex<Option<Instant>>>,
}

/// The writing side: run it on a task with [`SinkWriter::run`].
pub struct SinkWriter {
    rx: mpsc::Receiver<Msg>,
    config: SinkConfig,
    stats: Arc<SinkStats>,
}

impl EventSink {
    /// A sink and its writer, not yet running (tests fill the channel
    /// before starting the writer). A zero queue gives a disabled sink and
    /// no writer.
    pub fn new(config: SinkConfig) -> (EventSink, Option<SinkWriter>) {
        let stats = Arc::new(SinkStats::default());
        if config.queue == 0 {
            return (EventSink::disabled_with(stats), None);
        }
        let (tx, rx) = mpsc::channel(config.queue);
        let writer = SinkWriter {
            rx,
            config: SinkConfig {
                batch: config.batch.max(1),
                ..config
            },
            stats: stats.clone(),
        };
        let sink = EventSink {
            tx: Some(tx),
            stats,
            last_warning: Default::default(),
        };
        (sink, Some(writer))
    }

    /// A sink whose writer runs on a new task, writing to `store`.
    pub fn start(store: Store, config: SinkConfig) -> EventSink {
        let (sink, writer) = EventSink::new(config);
        if let Some(w) = writer {
            tokio::spawn(w.run(store));
        }
        sink
    }

    /// A sink that records nothing (every event counts as dropped).
    pub fn disabled() -> EventSink {
        EventSink::disabled_with(Default::default())
    }

    fn disabled_with(stats: Arc<SinkStats>) -> EventSink {
        EventSink {
            tx: None,
            stats,
            last_warning: Default::default(),
        }
    }

    /// Whether events are recorded at all.
    pub fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Counters.
    pub fn stats(&self) -> &SinkStats {
        &self.stats
    }

    /// Events waiting in the channel.
    pub fn queued(&self) -> usize {
        self.tx
            .as_ref()
            .map_or(0, |tx| tx.max_capacity() - tx.capacity())
    }

    /// Queues an event without waiting. Returns whether it was accepted;
    /// a full channel drops it (counted, warned about at most once a
    /// minute).
    pub fn record(&self, event: UsageEvent) -> bool {
        let Some(tx) = &self.tx else {
            return false;
        };
        match tx.try_send(Msg::Event(event)) {
            Ok(()) => true,
            Err(_) => {
                let dropped = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                self.warn_dropped(dropped);
                false
            }
        }
    }

    fn warn_dropped(&self, dropped: u64) {
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                dropped_total = dropped,
                "usage event queue full: dropping events (the store is slower than the traffic)"
            );
        }
    }

    /// Waits until every event accepted before this call is written.
    pub async fn flush(&self) {
        self.ask(Msg::Flush).await;
    }

    /// Writes everything accepted so far and stops the writer; later
    /// events are dropped. Returns once the last batch is stored.
    pub async fn shutdown(&self) {
        self.ask(Msg::Stop).await;
    }

    async fn ask(&self, msg: fn(oneshot::Sender<()>) -> Msg) {
        let Some(tx) = &self.tx else { return };
        let (ack, done) = oneshot::channel();
        // Waits for room: a flush is not on a request's hot path.
        if tx.send(msg(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

impl SinkWriter {
    /// Writes batches until [`EventSink::shutdown`] or until every sender
    /// is gone, then writes what is left.
    pub async fn run(mut self, store: Store) {
        let mut buf: Vec<UsageEvent> = Vec::with_capacity(self.config.batch);
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let msg = match deadline {
                Some(d) => tokio::select! {
                    m = self.rx.recv() => m,
                    _ = tokio::time::sleep_until(d) => {
                        self.write(&store, &mut buf).await;
                        deadline = None;
                        continue;
                    }
                },
                None => self.rx.recv().await,
            };
            match msg {
                Some(Msg::Event(e)) => {
                    if buf.is_empty() {
                        deadline = Some(tokio::time::Instant::now() + self.config.flush_interval);
                    }
                    buf.push(e);
                    if buf.len() >= self.config.batch {
                        self.write(&store, &mut buf).await;
                        deadline = None;
                    }
                }
                Some(Msg::Flush(ack)) => {
                    self.write(&store, &mut buf).await;
                    deadline = None;
                    let _ = ack.send(());
                }
                Some(Msg::Stop(ack)) => {
                    self.drain(&store, &mut buf, ack).await;
                    return;
                }
                None => {
                    self.write(&store, &mut buf).await;
                    return;
                }
            }
        }
    }

    /// Closes the channel and writes every event still in it.
    async fn drain(&mut self, store: &Store, buf: &mut Vec<UsageEvent>, ack: oneshot::Sender<()>) {
        self.rx.close();
        let mut acks = vec![ack];
        while let Some(m) = self.rx.recv().await {
            match m {
                Msg::Event(e) => {
                    buf.push(e);
                    if buf.len() >= self.config.batch {
                        self.write(store, buf).await;
                    }
                }
                Msg::Flush(a) | Msg::Stop(a) => acks.push(a),
            }
        }
        self.write(store, buf).await;
        for a in acks {
            let _ = a.send(());
        }
        tracing::debug!(
            recorded = self.stats.recorded.load(Ordering::Relaxed),
            "usage event writer stopped"
        );
    }

    async fn write(&self, store: &Store, buf: &mut Vec<UsageEvent>) {
        if buf.is_empty() {
            return;
        }
        let n = buf.len() as u64;
        let mut result = store.record_usage(buf).await;
        if let Err(e) = &result {
            tracing::warn!(error = %e, events = n, "writing usage events failed; retrying once");
            tokio::time::sleep(RETRY_AFTER).await;
            result = store.record_usage(buf).await;
        }
        match result {
            Ok(()) => self.stats.recorded.fetch_add(n, Ordering::Relaxed),
            Err(e) => {
                tracing::error!(error = %e, events = n, "usage events lost: the store refused them twice");
                self.stats.failed.fetch_add(n, Ordering::Relaxed)
            }
        };
        buf.clear();
    }
}
