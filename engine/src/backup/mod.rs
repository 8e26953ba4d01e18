//! Backup and restore of the whole knowledge base (`kmt export` /
//! `kmt import-kb`).
//!
//! An export is one gzip JSON Lines file ([`format`]): a header, the users
//! (without password hashes unless asked), groups, preferences, every
//! version of every category rule set, each article with all its versions
//! and its working copy, the versions of deleted articles, the tasks, and a trailer with the written counts.
//! It streams: articles are read a page at a time, so memory does not grow
//! with the knowledge base. The export is audited (`export`). On a live
//! system each article is exported consistent with its versions, but the
//! file as a whole is not a point-in-time snapshot (PostgreSQL's own backups
//! are; see README).
//!
//! An import ([`import`]) only goes into an empty store. It reads the file
//! twice: first it validates every line (reporting `file:line: field:
//! problem`) and writes nothing; then it writes everything in one
//! transaction, ids preserved. Derived data is not in the file: the search
//! index and embeddings are rebuilt by the followers from the restored
//! articles' outbox rows. Sessions, API tokens, notifications, deliveries,
//! usage events and the audit trail are not exported either (the trail
//! lives on in its shipped bucket; the import starts a new chain with a
//! `kb.import` row).

pub mod format;
mod import;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::error::{Error, Result};
use crate::model::{Article, ArticleVersion};
use crate::store::Store;
use format::{Header, Line, PreferencesRecord, Trailer, UserRecord, FORMAT, FORMAT_VERSION};

pub use import::{import, ImportReport};

/// Articles read per store query during an export.
const PAGE: i64 = 500;

/// What to put in an export.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Include users' password hashes (off by default: a backup file then
    /// holds no credentials).
    pub with_password_hashes: bool,
    /// Who asked (the audit row's actor).
    pub actor: String,
}

/// Records written so far, by type; passed to the progress callback.
pub type Counts = BTreeMap<String, u64>;

/// Writes the whole knowledge base to `out` (through `out.partial`, renamed
/// when complete, so a failed export never leaves a file that looks whole).
/// `progress` is called every few hundred articles and at the end.
pub async fn export(
    store: &Store,
    out: &Path,
    opts: &ExportOptions,
    progress: &mut dyn FnMut(&Counts),
) -> Result<Counts> {
    let partial = out.with_extension("partial");
    let file = std::io::BufWriter::new(std::fs::File::create(&partial)?);
    let mut w = Writer {
        gz: GzEncoder::new(file, Compression::default()),
        counts: Counts::new(),
    };
    let header = Header {
        format: FORMAT.to_string(),
        version: FORMAT_VERSION,
        exported_at: chrono::Utc::now(),
        store: store.backend().to_string(),
        counts: store.backup_counts().await?,
        password_hashes: opts.with_password_hashes,
    };
    w.line(&Line::Header(header))?;
    write_accounts(store, &mut w, opts.with_password_hashes).await?;
    for rule in store.list_rules().await? {
        for version in store.rule_history(&rule.category).await? {
            w.line(&Line::Rule(version))?;
        }
    }
    let mut after = 0;
    loop {
        let page = store.scan_articles(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for article in page {
            let id = article.id;
            // Deleted since the page was read: its versions come with the
            // deleted articles' below.
            let Some((article, versions)) = consistent(store, article).await? else {
                continue;
            };
            w.line(&Line::Article(article))?;
            for v in versions {
                w.line(&Line::Version(v))?;
            }
            if let Some(d) = store.get_working_copy(id).await? {
                w.line(&Line::Draft(d))?;
            }
        }
        progress(&w.counts);
    }
    let mut after = 0;
    loop {
        let ids = store.deleted_article_ids(after, PAGE).await?;
        let Some(last) = ids.last() else { break };
        after = *last;
        for id in ids {
            for v in store.list_versions(id).await? {
                w.line(&Line::DeletedVersion(v))?;
            }
        }
    }
    let mut after = 0;
    loop {
        let page = store.scan_tasks(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for t in page {
            w.line(&Line::Task(t))?;
        }
    }
    let counts = w.counts.clone();
    w.line(&Line::Trailer(Trailer {
        counts: counts.clone(),
    }))?;
    let mut file = w.gz.finish()?;
    file.flush()?;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&partial, out)?;
    let details = serde_json::json!({
        "file": out.display().to_string(),
        "password_hashes": opts.with_password_hashes,
        "counts": counts,
    });
    store
        .audit_event(&opts.actor, "export", "kb", details)
        .await?;
    progress(&counts);
    Ok(counts)
}

/// The article and its versions as of one moment: a write between reading
/// the row and the versions would leave a current version without its
/// version record (or the reverse), which the import rightly refuses. `None`
/// when the article was deleted meanwhile.
async fn consistent(
    store: &Store,
    mut article: Article,
) -> Result<Option<(Article, Vec<ArticleVersion>)>> {
    for _ in 0..10 {
        let versions = store.list_versions(article.id).await?;
        if versions.last().map(|v| v.version) == Some(article.version) {
            return Ok(Some((article, versions)));
        }
        match store.get_article(article.id).await? {
            Some(a) => article = a,
            None => return Ok(None),
        }
    }
    Err(Error::Conflict(format!(
        "article {} kept changing during the export; run it again",
        article.id
    )))
}

/// Users (with their roles), groups and preferences.
async fn write_accounts(store: &Store, w: &mut Writer, with_hashes: bool) -> Result<()> {
    let users = store.list_users().await?;
    for u in &users {
        let password_hash = match with_hashes {
            true => store.password_hash(&u.username).await?.map(|(_, h)| h),
            false => None,
        };
        w.line(&Line::User(UserRecord {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            roles: u.roles.clone(),
            created_at: u.created_at,
            email: u.email.clone(),
            webhook_url: u.webhook_url.clone(),
            password_hash,
        }))?;
    }
    for g in store.list_groups().await? {
        w.line(&Line::Group(g))?;
    }
    for u in &users {
        let prefs = store.get_preferences(u.id).await?;
        if prefs.level.is_some() {
            w.line(&Line::Preferences(PreferencesRecord {
                user_id: u.id,
                level: prefs.level,
            }))?;
        }
    }
    Ok(())
}

/// The gzip stream and the running counts.
struct Writer {
    gz: GzEncoder<std::io::BufWriter<std::fs::File>>,
    counts: Counts,
}

impl Writer {
    fn line(&mut self, line: &Line) -> Result<()> {
        serde_json::to_writer(&mut self.gz, line)
            .map_err(|e| crate::error::Error::Corrupt(format!("encoding a backup line: {e}")))?;
        self.gz.write_all(b"\n")?;
        if !matches!(line, Line::Header(_) | Line::Trailer(_)) {
            *self.counts.entry(line.kind().to_string()).or_default() += 1;
        }
        Ok(())
    }
}
