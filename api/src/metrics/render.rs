//! The text exposition: every series of [`super::Metrics`] plus the gauges
//! read from the index, follower, embedding worker, audit shipper,
//! snapshots and notification scheduler when scraped, and the format's
//! escaping rules.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::*;
/// The whole exposition; `index_size` is the live generation's bytes,
/// `audit` the audit shipping status (left out when the store failed).
pub fn render(
    s: &AppState,
    index_size: u64,
    audit: Option<engine::store::AuditShipStatus>,
) -> String {
    let mut out = String::with_capacity(16 * 1024);
    s.metrics.write_recorded(&mut out);
    if let Some(a) = audit {
        write_audit(&mut out, a);
    }
    write_notify(&mut out, s.metrics.notify.get().map(|n| &**n));
    write_snapshot(&mut out, &s.snapshots);

    gauge(
        &mut out,
        "kmt_index_documents",
        "Documents in the live index generation.",
        s.index.num_docs(),
    );
    gauge(
        &mut out,
        "kmt_index_generation",
        "Id of the live index generation (increases with each full rebuild).",
        s.index.generation(),
    );
    gauge(
        &mut out,
        "kmt_index_size_bytes",
        "Bytes on disk of the live index generation (0 in memory).",
        index_size,
    );

    let e = &s.embedding;
    let stats = s
        .index
        .semantic()
        .map(|x| x.vectors.stats())
        .unwrap_or_default();
    gauge(
        &mut out,
        "kmt_semantic_enabled",
        "1 when an embedding model is loaded (semantic and hybrid search on).",
        u64::from(s.index.semantic().is_some()),
    );
    gauge(
        &mut out,
        "kmt_embedding_queue",
        "Articles waiting to be embedded.",
        e.queue.load(Ordering::Relaxed),
    );
    gauge(
        &mut out,
        "kmt_vector_articles",
        "Articles with passage vectors.",
        stats.articles as u64,
    );
    gauge(
        &mut out,
        "kmt_vector_passages",
        "Live passage vectors in the vector index.",
        stats.vectors as u64,
    );
    gauge(
        &mut out,
        "kmt_vector_tombstones",
        "Replaced vectors still in the graph (compacted away periodically).",
        stats.tombstones as u64,
    );
    gauge(
        &mut out,
        "kmt_vector_orphans",
        "Live vectors the graph cannot reach, scanned exactly by every search.",
        stats.orphans as u64,
    );
    header(
        &mut out,
        "kmt_embedded_articles_total",
        "counter",
        "Articles embedded by the model (computed) or taken from the store (reused).",
    );
    out.push_str(&format!(
        "kmt_embedded_articles_total{{source=\"computed\"}} {}\nkmt_embedded_articles_total{{source=\"reused\"}} {}\n",
        e.embedded.load(Ordering::Relaxed),
        e.reused.load(Ordering::Relaxed)
    ));
    header(
        &mut out,
        "kmt_embedded_passages_total",
        "counter",
        "Passages the model embedded.",
    );
    out.push_str(&format!(
        "kmt_embedded_passages_total {}\n",
        e.passages.load(Ordering::Relaxed)
    ));

    let u = s.usage.stats();
    header(
        &mut out,
        "kmt_usage_events_total",
        "counter",
        "Usage events (views, searches, clicks) stored, dropped because the queue was full, or lost to a failing store.",
    );
    for (outcome, n) in [
        ("recorded", &u.recorded),
        ("dropped", &u.dropped),
        ("failed", &u.failed),
    ] {
        sample(
            &mut out,
            "kmt_usage_events_total",
            &[("outcome", outcome)],
            n.load(Ordering::Relaxed),
        );
    }
    gauge(
        &mut out,
        "kmt_usage_queue",
        "Usage events waiting to be written.",
        s.usage.queued() as u64,
    );

    let t = crate::otlp::stats();
    header(
        &mut out,
        "kmt_otlp_spans_total",
        "counter",
        "Trace spans exported to the OTLP collector, dropped because its queue was full, or lost to a failed export (all 0 when export is off).",
    );
    for (outcome, n) in [
        ("exported", &t.exported),
        ("dropped", &t.dropped),
        ("failed", &t.failed),
    ] {
        sample(
            &mut out,
            "kmt_otlp_spans_total",
            &[("outcome", outcome)],
            n.load(Ordering::Relaxed),
        );
    }

    let f = &s.follower;
    let checkpoint = f.checkpoint.load(Ordering::Relaxed);
    let head = f.head.load(Ordering::Relaxed);
    gauge(
        &mut out,
        "kmt_indexer_checkpoint",
        "Outbox sequence the index covers.",
        checkpoint,
    );
    gauge(
        &mut out,
        "kmt_indexer_head",
        "Highest outbox sequence the follower has seen in the store.",
        head,
    );
    // From the two values just rendered, so the three lines agree.
    gauge(
        &mut out,
        "kmt_indexer_lag",
        "Outbox rows not yet indexed (head - checkpoint).",
        (head - checkpoint).max(0),
    );
    gauge(
        &mut out,
        "kmt_indexer_ready",
        "1 once the index has caught up with the store, else 0.",
        u8::from(f.ready.load(Ordering::Relaxed)),
    );
    header(
        &mut out,
        "kmt_indexer_batches_total",
        "counter",
        "Outbox batches applied to the index since start.",
    );
    sample(
        &mut out,
        "kmt_indexer_batches_total",
        &[],
        f.batches.load(Ordering::Relaxed),
    );
    header(
        &mut out,
        "kmt_indexer_rebuilds_total",
        "counter",
        "Full index rebuilds since start.",
    );
    sample(
        &mut out,
        "kmt_indexer_rebuilds_total",
        &[],
        f.rebuilds.load(Ordering::Relaxed),
    );
    header(
        &mut out,
        "kmt_indexer_batch_duration_seconds",
        "histogram",
        "Time to load, apply and commit one outbox batch.",
    );
    write_histogram(
        &mut out,
        "kmt_indexer_batch_duration_seconds",
        &[],
        &indexer::follower::BATCH_BUCKETS,
        &f.batch_durations.counts(),
        f.batch_durations.sum_seconds(),
    );
    out
}

/// Snapshots: the newest known one's age and sequence, and the sequence
/// this index was restored from; only the series that are known.
pub(super) fn write_snapshot(out: &mut String, s: &indexer::snapshot::SnapshotStatus) {
    if let Some(age) = s.age_seconds() {
        gauge(
            out,
            "kmt_snapshot_age_seconds",
            "Seconds since the newest known index snapshot was taken.",
            age,
        );
        gauge(
            out,
            "kmt_snapshot_seq",
            "Outbox sequence of the newest known index snapshot.",
            s.newest_seq.load(Ordering::Relaxed),
        );
    }
    if let Some(seq) = s.restored_seq() {
        gauge(
            out,
            "kmt_snapshot_restored_seq",
            "Outbox sequence of the snapshot this index was restored from at start.",
            seq,
        );
    }
}

/// Audit shipping: the backlog and the last shipment's time and age.
pub(super) fn write_audit(out: &mut String, a: engine::store::AuditShipStatus) {
    gauge(
        out,
        "kmt_audit_unshipped_rows",
        "Audit rows not yet shipped to the audit bucket.",
        a.unshipped_rows,
    );
    gauge(
        out,
        "kmt_audit_shipped_through_id",
        "Last audit row id shipped (0 before the first shipment).",
        a.shipped_through,
    );
    let at = a.last_shipped_at;
    gauge(
        out,
        "kmt_audit_last_shipment_timestamp_seconds",
        "Unix time of the last audit shipment (0 = never).",
        at.map_or(0, |t| t.timestamp()),
    );
    if let Some(t) = at {
        let age = (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0;
        gauge(
            out,
            "kmt_audit_last_shipment_age_seconds",
            "Seconds since the last audit shipment (absent before the first).",
            age,
        );
    }
}

/// `# HELP` and `# TYPE` lines of a metric family.
/// Escalations and deliveries by channel and outcome (zeros when this
/// process does not run the scheduler, so the series always exist).
pub(super) fn write_notify(out: &mut String, n: Option<&engine::notify::deliver::NotifyStats>) {
    use engine::model::Channel;
    use std::sync::atomic::Ordering;
    let escalations = n.map_or(0, |n| n.escalations.load(Ordering::Relaxed));
    header(
        out,
        "kmt_escalations_total",
        "counter",
        "Escalation steps sent by this process's scheduler.",
    );
    sample(out, "kmt_escalations_total", &[], escalations);
    header(
        out,
        "kmt_deliveries_total",
        "counter",
        "Notification deliveries by channel and outcome (sent, retried, failed) by this process.",
    );
    for c in Channel::ALL {
        for (outcome, v) in [
            ("sent", n.map_or(0, |n| n.sent(c))),
            ("retried", n.map_or(0, |n| n.retried(c))),
            ("failed", n.map_or(0, |n| n.failed(c))),
        ] {
            let labels = [("channel", c.as_str()), ("outcome", outcome)];
            sample(out, "kmt_deliveries_total", &labels, v);
        }
    }
}

pub(super) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A gauge family with one unlabelled sample.
pub(super) fn gauge(out: &mut String, name: &str, help: &str, v: impl std::fmt::Display) {
    header(out, name, "gauge", help);
    sample(out, name, &[], v);
}

/// One sample line. (Writing to a `String` cannot fail.)
pub(super) fn sample(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    v: impl std::fmt::Display,
) {
    out.push_str(name);
    write_labels(out, labels, None);
    let _ = writeln!(out, " {v}");
}

/// `{a="x",b="y"}` (nothing when empty), with an optional `le` last.
pub(super) fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let le = le.map(|v| ("le", v));
    for (i, (k, v)) in labels.iter().copied().chain(le).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
    }
    out.push('}');
}

/// The `_bucket`, `_sum` and `_count` lines of one histogram series, from
/// per-bucket (non-cumulative) `counts` with one extra slot for values above
/// every bound. `_count` is the `+Inf` bucket itself, so the two always
/// agree even when observations land mid-scrape.
pub(super) fn write_histogram(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    bounds: &[f64],
    counts: &[u64],
    sum: f64,
) {
    let bucket = format!("{name}_bucket");
    let mut cumulative = 0u64;
    for (i, c) in counts.iter().enumerate() {
        cumulative += c;
        let le = bounds
            .get(i)
            .map_or_else(|| "+Inf".to_string(), f64::to_string);
        out.push_str(&bucket);
        write_labels(out, labels, Some(&le));
        let _ = writeln!(out, " {cumulative}");
    }
    sample(out, &format!("{name}_sum"), labels, sum);
    sample(out, &format!("{name}_count"), labels, cumulative);
}

/// Escapes a label value: backslash, double quote and newline.
pub fn escape_label(v: &str) -> String {
    escape(v, true)
}

/// Escapes `# HELP` text: backslash and newline (quotes are literal there).
pub(super) fn escape_help(v: &str) -> String {
    escape(v, false)
}

pub(super) fn escape(v: &str, quotes: bool) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '"' if quotes => s.push_str("\\\""),
            c => s.push(c),
        }
    }
    s
}
