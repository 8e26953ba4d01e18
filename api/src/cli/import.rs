//! `kmt import` and `kmt reindex`.
//!
//! Import runs in two passes unless `--skip-invalid` is given: the first
//! reads the whole source and reports every bad record (file, line, field)
//! without writing anything, the second writes it batch by batch, each
//! batch one transaction. So a source with a bad record leaves the store
//! exactly as it was.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use engine::auth::Principal;
use engine::import::{Format, ImportOptions, ImportSource, RecordError};
use engine::model::Status;
use engine::search::SearchIndex;
use engine::store::{Store, UpsertOutcome};
use indicatif::{ProgressBar, ProgressStyle};

/// Most record errors printed before the rest are only counted.
const MAX_REPORTED: usize = 20;

/// `kmt import` options.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// A `.jsonl` file, a folder of Markdown files, or a BEIR folder.
    pub path: PathBuf,
    /// Source format (`auto` detects it).
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// Skip bad records (counting them) instead of rejecting the import.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Records per transaction.
    #[arg(long, default_value_t = engine::import::DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,
    /// Category for records that have none.
    #[arg(long)]
    pub category: Option<String>,
    /// Status for records that set none.
    #[arg(long, default_value = "published")]
    pub status: String,
}

/// Totals of an import.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    /// Written outcome.
    pub outcome: UpsertOutcome,
    /// Records skipped as invalid (`--skip-invalid`).
    pub skipped: usize,
}

fn options(args: &ImportArgs) -> anyhow::Result<ImportOptions> {
    let format = match args.format.as_str() {
        "auto" | "" => None,
        f => Some(f.parse::<Format>()?),
    };
    Ok(ImportOptions {
        format,
        default_category: args.category.clone(),
        default_status: args.status.parse::<Status>()?,
        batch_size: args.batch_size.max(1),
    })
}

fn bar(total: u64, msg: &'static str) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>9} [{bar:30}] {bytes}/{total_bytes} {per_sec} eta {eta}",
        )
        .expect("progress template")
        .progress_chars("=> "),
    );
    pb.set_message(msg);
    pb
}

/// Imports `path` into the store; prints a summary.
pub async fn run(store: &Store, args: &ImportArgs) -> anyhow::Result<()> {
    let opts = options(args)?;
    let started = Instant::now();
    let s = import_path(store, &args.path, &opts, args.skip_invalid, true).await?;
    println!(
        "imported {}: {} created, {} updated, {} unchanged, {} skipped as invalid in {:.1}s",
        args.path.display(),
        s.outcome.created,
        s.outcome.updated,
        s.outcome.unchanged,
        s.skipped,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn report(errors: &[RecordError], total: usize) -> String {
    let mut msg = String::new();
    for e in errors.iter().take(MAX_REPORTED) {
        msg.push_str(&format!("\n  {e}"));
    }
    if total > MAX_REPORTED {
        msg.push_str(&format!("\n  ... and {} more", total - MAX_REPORTED));
    }
    msg
}

/// Imports a source; the engine of `kmt import` and the demo loader.
pub async fn import_path(
    store: &Store,
    path: &Path,
    opts: &ImportOptions,
    skip_invalid: bool,
    progress: bool,
) -> anyhow::Result<ImportSummary> {
    let open = || ImportSource::open(path, opts).map_err(|e| anyhow::anyhow!("{e}"));
    if !skip_invalid {
        // Pass 1: validate everything, write nothing.
        let mut src = open()?;
        let pb = progress.then(|| bar(src.total_bytes(), "checking"));
        let mut errors = Vec::new();
        let mut count = 0;
        while let Some(batch) = src.next_batch() {
            for item in batch {
                if let Err(e) = item {
                    count += 1;
                    if errors.len() < MAX_REPORTED {
                        errors.push(e);
                    }
                }
            }
            if let Some(pb) = &pb {
                pb.set_position(src.bytes_read());
            }
        }
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        if count > 0 {
            bail!(
                "{count} invalid record(s); nothing was imported (use --skip-invalid to import the rest):{}",
                report(&errors, count)
            );
        }
    }
    // Pass 2 (or the only pass with --skip-invalid): write batch by batch.
    let mut src = open()?;
    let pb = progress.then(|| bar(src.total_bytes(), "importing"));
    let actor = Principal::system();
    let mut summary = ImportSummary::default();
    while let Some(batch) = src.next_batch() {
        let mut drafts = Vec::with_capacity(batch.len());
        for item in batch {
            match item {
                Ok(r) => drafts.push(r.draft),
                Err(e) => {
                    summary.skipped += 1;
                    if let Some(pb) = &pb {
                        pb.suspend(|| eprintln!("skipped: {e}"));
                    } else {
                        eprintln!("skipped: {e}");
                    }
                }
            }
        }
        if !drafts.is_empty() {
            let o = store
                .upsert_batch(&actor, drafts)
                .await
                .with_context(|| format!("writing a batch from {}", path.display()))?;
            summary.outcome.created += o.created;
            summary.outcome.updated += o.updated;
            summary.outcome.unchanged += o.unchanged;
        }
        if let Some(pb) = &pb {
            pb.set_position(src.bytes_read());
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Ok(summary)
}

/// `kmt reindex`: records the request in the outbox (so running servers
/// rebuild their indexes too) and, when no process holds the index in
/// `dir`, rebuilds it here with a progress bar.
pub async fn reindex(store: &Store, dir: &Path) -> anyhow::Result<()> {
    let index = SearchIndex::open(dir)
        .with_context(|| format!("opening the index in {}", dir.display()))?;
    let seq = store.request_reindex(&Principal::system()).await?;
    let mut follower = match indexer::Follower::new(store.clone(), index, 500) {
        Ok(f) => f,
        Err(indexer::Error::Engine(engine::Error::Unavailable(_))) => {
            println!(
                "reindex requested (outbox seq {seq}); the server using {} rebuilds its index now",
                dir.display()
            );
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>9} [{bar:30}] {pos}/{len} articles {per_sec} eta {eta}",
        )
        .expect("progress template")
        .progress_chars("=> "),
    );
    pb.set_message("indexing");
    let started = Instant::now();
    let n = follower
        .rebuild(|done, total| {
            pb.set_length(total);
            pb.set_position(done);
        })
        .await?;
    follower.catch_up().await?;
    pb.finish_and_clear();
    println!(
        "index rebuilt: {n} articles in {:.1}s ({})",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}
