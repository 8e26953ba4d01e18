//! `kmt export` and `kmt import-kb`: backup and restore of the whole
//! knowledge base (the engine's [`engine::backup`] does the work).
//!
//! `import-kb` is not `kmt import`: that one adds article corpora
//! (JSON Lines, Markdown, BEIR) to a store; this one restores a `kmt export`
//! file into an empty store, users, rules and history included.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use engine::backup::{Counts, ExportOptions};
use engine::store::Store;

/// `kmt export` options.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The backup file to write (gzip JSON Lines).
    #[arg(long)]
    pub out: PathBuf,
    /// Include users' password hashes (treat the file as a credential).
    #[arg(long)]
    pub with_password_hashes: bool,
}

/// `kmt import-kb` options.
#[derive(Debug, clap::Args)]
pub struct ImportKbArgs {
    /// A file written by `kmt export`.
    pub file: PathBuf,
}

/// Prints running counts on stderr at most once a second.
fn reporter(what: &'static str) -> impl FnMut(&Counts) {
    let mut last = Instant::now();
    move |c: &Counts| {
        if last.elapsed().as_secs() >= 1 {
            last = Instant::now();
            eprintln!("{what}: {}", summary(c));
        }
    }
}

fn summary(c: &Counts) -> String {
    let parts: Vec<String> = c.iter().map(|(k, n)| format!("{n} {k}")).collect();
    match parts.is_empty() {
        true => "nothing".to_string(),
        false => parts.join(", "),
    }
}

/// Runs `kmt export`.
pub async fn export(store: &Store, args: &ExportArgs) -> anyhow::Result<()> {
    let opts = ExportOptions {
        with_password_hashes: args.with_password_hashes,
        actor: "system".to_string(),
    };
    let counts = engine::backup::export(store, &args.out, &opts, &mut reporter("exported"))
        .await
        .with_context(|| format!("exporting to {}", args.out.display()))?;
    println!("exported {} to {}", summary(&counts), args.out.display());
    Ok(())
}

/// Runs `kmt import-kb`.
pub async fn import_kb(store: &Store, args: &ImportKbArgs) -> anyhow::Result<()> {
    let report =
        engine::backup::import(store, &args.file, "system", &mut reporter("imported")).await?;
    println!(
        "imported {} from a {} export into the {} store; the index rebuilds from it",
        summary(&report.counts),
        report.source_store,
        store.backend()
    );
    Ok(())
}
