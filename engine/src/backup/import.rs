//! Restoring a backup file into an empty store: validate every line, then
//! write everything in one transaction.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::format::{Line, FORMAT, FORMAT_VERSION};
use super::Counts;
use crate::error::{Error, Result};
use crate::model::{validate_name, validate_slug, Status};
use crate::store::Store;

/// Records written per progress report.
const PROGRESS_EVERY: u64 = 1000;

/// What an import restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Records restored, by type.
    pub counts: Counts,
    /// The store the backup came from.
    pub source_store: String,
}

/// Restores the backup at `path` into `store`, which must hold no users,
/// groups, rules, articles or tasks. Nothing is written when any line is
/// bad ([`Error::BadRecord`]) or the store is not empty ([`Error::Conflict`]).
pub async fn import(
    store: &Store,
    path: &Path,
    actor: &str,
    progress: &mut dyn FnMut(&Counts),
) -> Result<ImportReport> {
    let occupied: BTreeMap<String, i64> = store
        .backup_counts()
        .await?
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    if !occupied.is_empty() {
        let list: Vec<String> = occupied.iter().map(|(t, n)| format!("{t} ({n})")).collect();
        return Err(Error::Conflict(format!(
            "the store is not empty ({}); import-kb restores only into an empty store",
            list.join(", ")
        )));
    }
    let name = path.display().to_string();
    let mut check = Checker::default();
    for_each_line(path, |n, line| check.line(n, line)).map_err(|e| at(&name, e))?;
    check.finish().map_err(|e| at(&name, e))?;
    let mut restore = store.begin_restore().await?;
    let mut counts = Counts::new();
    let mut lines = Vec::new();
    // Lines are parsed in the blocking reader and written a batch at a time,
    // so at most one batch is in memory.
    let mut reader = Lines::open(path)?;
    loop {
        let batch_done = reader.next_batch(&mut lines, PROGRESS_EVERY as usize)?;
        for line in lines.drain(..) {
            restore.write(&line).await?;
            if !matches!(line, Line::Header(_) | Line::Trailer(_)) {
                *counts.entry(line.kind().to_string()).or_default() += 1;
            }
        }
        progress(&counts);
        if batch_done {
            break;
        }
    }
    let details = serde_json::json!({ "file": name, "counts": counts, "from": check.source });
    restore.commit(actor, details).await?;
    Ok(ImportReport {
        counts,
        source_store: check.source,
    })
}

/// A problem found at a line, before the file name is known to it.
struct Fault {
    line: u64,
    field: String,
    problem: String,
}

fn fault(line: u64, field: impl Into<String>, problem: impl Into<String>) -> Fault {
    Fault {
        line,
        field: field.into(),
        problem: problem.into(),
    }
}

fn at(file: &str, f: Fault) -> Error {
    Error::BadRecord {
        file: file.to_string(),
        line: f.line,
        field: f.field,
        problem: f.problem,
    }
}

/// Opens a backup, gzip or plain (by its first two bytes).
fn open(path: &Path) -> std::io::Result<Box<dyn BufRead>> {
    let mut file = std::fs::File::open(path)?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic)?;
    let file = std::io::Cursor::new(magic[..n].to_vec()).chain(file);
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::new(MultiGzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    })
}

/// Parses one line, naming the field at fault. The `type` is read first
/// and the rest decoded as that record, so serde can name the field.
fn parse(n: u64, text: &str) -> std::result::Result<Line, Fault> {
    let mut value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| fault(n, "-", format!("not JSON: {e}")))?;
    let Some(obj) = value.as_object_mut() else {
        return Err(fault(n, "-", "must be a JSON object"));
    };
    let kind = match obj.remove("type") {
        Some(serde_json::Value::String(k)) => k,
        Some(_) => return Err(fault(n, "type", "must be a string")),
        None => return Err(fault(n, "type", "missing")),
    };
    let line = match kind.as_str() {
        "header" => Line::Header(record(n, value)?),
        "user" => Line::User(record(n, value)?),
        "group" => Line::Group(record(n, value)?),
        "preferences" => Line::Preferences(record(n, value)?),
        "rule" => Line::Rule(record(n, value)?),
        "article" => Line::Article(record(n, value)?),
        "version" => Line::Version(record(n, value)?),
        "deleted_version" => Line::DeletedVersion(record(n, value)?),
        "draft" => Line::Draft(record(n, value)?),
        "task" => Line::Task(record(n, value)?),
        "trailer" => Line::Trailer(record(n, value)?),
        other => return Err(fault(n, "type", format!("unknown record type {other:?}"))),
    };
    Ok(line)
}

/// Decodes one record, naming the field at fault.
fn record<T: serde::de::DeserializeOwned>(
    n: u64,
    value: serde_json::Value,
) -> std::result::Result<T, Fault> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.inner().to_string();
        let field = match msg.strip_prefix("missing field `") {
            Some(rest) if path == "." => rest.split('`').next().unwrap_or("-").to_string(),
            _ if path == "." => "-".to_string(),
            _ => path,
        };
        fault(n, field, msg)
    })
}

/// Calls `f` with each parsed line and its 1-based number.
fn for_each_line(
    path: &Path,
    mut f: impl FnMut(u64, Line) -> std::result::Result<(), Fault>,
) -> std::result::Result<(), Fault> {
    let reader = open(path).map_err(|e| fault(0, "-", format!("cannot read: {e}")))?;
    for (i, text) in reader.lines().enumerate() {
        let n = i as u64 + 1;
        let text = text.map_err(|e| fault(n, "-", format!("cannot read: {e}")))?;
        if text.trim().is_empty() {
            continue;
        }
        f(n, parse(n, &text)?)?;
    }
    Ok(())
}

/// The second pass: parsed lines a batch at a time (already validated).
struct Lines {
    reader: std::io::Lines<Box<dyn BufRead>>,
}

impl Lines {
    fn open(path: &Path) -> Result<Lines> {
        Ok(Lines {
            reader: open(path)?.lines(),
        })
    }

    /// Fills `out` with up to `max` lines; true at the end of the file.
    fn next_batch(&mut self, out: &mut Vec<Line>, max: usize) -> Result<bool> {
        while out.len() < max {
            let Some(text) = self.reader.next() else {
                return Ok(true);
            };
            let text = text?;
            if text.trim().is_empty() {
                continue;
            }
            let line = parse(0, &text).map_err(|f| {
                Error::Corrupt(format!("backup changed while importing: {}", f.problem))
            })?;
            out.push(line);
        }
        Ok(false)
    }
}

/// The first pass: what has been seen, to check references and duplicates.
#[derive(Default)]
struct Checker {
    header: bool,
    trailer: Option<(u64, BTreeMap<String, u64>)>,
    source: String,
    counts: Counts,
    user_ids: HashSet<i64>,
    usernames: HashSet<String>,
    groups: HashSet<String>,
    rules: HashSet<(String, i32)>,
    /// Article id to its current version.
    articles: HashMap<i64, i32>,
    slugs: HashSet<String>,
    versions: HashSet<(i64, i32)>,
    drafts: HashSet<i64>,
    tasks: HashSet<i64>,
    prefs: HashSet<i64>,
}

type Check = std::result::Result<(), Fault>;

impl Checker {
    fn line(&mut self, n: u64, line: Line) -> Check {
        if let Some((t, _)) = &self.trailer {
            return Err(fault(
                n,
                "type",
                format!("nothing may follow the trailer (line {t})"),
            ));
        }
        if !self.header && !matches!(line, Line::Header(_)) {
            return Err(fault(n, "type", "the first line must be the header"));
        }
        let kind = line.kind();
        match line {
            Line::Header(h) => {
                if self.header {
                    return Err(fault(n, "type", "a second header"));
                }
                if h.format != FORMAT {
                    return Err(fault(n, "format", format!("must be {FORMAT:?}")));
                }
                if h.version != FORMAT_VERSION {
                    return Err(fault(
                        n,
                        "version",
                        format!(
                            "{} is not supported (this build reads {FORMAT_VERSION})",
                            h.version
                        ),
                    ));
                }
                self.header = true;
                self.source = h.store;
            }
            Line::Trailer(t) => self.trailer = Some((n, t.counts)),
            Line::User(u) => {
                positive(n, "id", u.id)?;
                not_empty(n, "username", &u.username)?;
                new(n, "id", self.user_ids.insert(u.id))?;
                new(n, "username", self.usernames.insert(u.username))?;
                for (i, r) in u.roles.iter().enumerate() {
                    name(n, &format!("roles[{i}]"), r)?;
                }
            }
            Line::Group(g) => {
                name(n, "name", &g.name)?;
                new(n, "name", self.groups.insert(g.name))?;
            }
            Line::Preferences(p) => {
                if !self.user_ids.contains(&p.user_id) {
                    return Err(fault(n, "user_id", "no user with this id precedes it"));
                }
                new(n, "user_id", self.prefs.insert(p.user_id))?;
            }
            Line::Rule(r) => {
                name(n, "category", &r.category)?;
                positive(n, "version", r.version.into())?;
                new(n, "version", self.rules.insert((r.category, r.version)))?;
            }
            Line::Article(a) => {
                positive(n, "id", a.id)?;
                positive(n, "version", a.version.into())?;
                validate_slug(&a.slug).map_err(|e| invalid(n, "slug", e))?;
                not_empty(n, "title", &a.title)?;
                name(n, "category", &a.category)?;
                new(n, "id", self.articles.insert(a.id, a.version).is_none())?;
                new(n, "slug", self.slugs.insert(a.slug))?;
            }
            Line::Version(v) => {
                let Some(current) = self.articles.get(&v.article_id) else {
                    return Err(fault(
                        n,
                        "article_id",
                        "no article with this id precedes it",
                    ));
                };
                if v.version < 1 || v.version > *current {
                    return Err(fault(
                        n,
                        "version",
                        format!("must be between 1 and the article's version {current}"),
                    ));
                }
                not_empty(n, "title", &v.title)?;
                new(
                    n,
                    "version",
                    self.versions.insert((v.article_id, v.version)),
                )?;
            }
            Line::DeletedVersion(v) => {
                positive(n, "article_id", v.article_id)?;
                if self.articles.contains_key(&v.article_id) {
                    return Err(fault(
                        n,
                        "article_id",
                        "this article exists: use a version line",
                    ));
                }
                positive(n, "version", v.version.into())?;
                not_empty(n, "title", &v.title)?;
                new(
                    n,
                    "version",
                    self.versions.insert((v.article_id, v.version)),
                )?;
            }
            Line::Draft(d) => {
                if !self.articles.contains_key(&d.article_id) {
                    return Err(fault(
                        n,
                        "article_id",
                        "no article with this id precedes it",
                    ));
                }
                if !matches!(d.status, Status::Draft | Status::InReview) {
                    return Err(fault(n, "status", "a working copy is draft or in_review"));
                }
                new(n, "article_id", self.drafts.insert(d.article_id))?;
            }
            Line::Task(t) => {
                positive(n, "id", t.id)?;
                new(n, "id", self.tasks.insert(t.id))?;
            }
        }
        if !matches!(kind, "header" | "trailer") {
            *self.counts.entry(kind.to_string()).or_default() += 1;
        }
        Ok(())
    }

    /// Checks that the file ended with a trailer agreeing with what was read.
    fn finish(&self) -> Check {
        if !self.header {
            return Err(fault(1, "type", "the file is empty: no header"));
        }
        let Some((n, counts)) = &self.trailer else {
            return Err(fault(0, "trailer", "missing: the file is cut short"));
        };
        if *counts != self.counts {
            return Err(fault(
                *n,
                "counts",
                format!("say {counts:?} but the file holds {:?}", self.counts),
            ));
        }
        // Every article must come with its current version.
        for (id, version) in &self.articles {
            if !self.versions.contains(&(*id, *version)) {
                return Err(fault(
                    *n,
                    "version",
                    format!("article {id} has no record of its current version {version}"),
                ));
            }
        }
        Ok(())
    }
}

fn positive(n: u64, field: &str, v: i64) -> Check {
    match v >= 1 {
        true => Ok(()),
        false => Err(fault(n, field, format!("must be at least 1, not {v}"))),
    }
}

fn not_empty(n: u64, field: &str, v: &str) -> Check {
    match v.trim().is_empty() {
        true => Err(fault(n, field, "must not be empty")),
        false => Ok(()),
    }
}

fn name(n: u64, field: &str, v: &str) -> Check {
    validate_name(field, v).map_err(|e| invalid(n, field, e))
}

fn new(n: u64, field: &str, inserted: bool) -> Check {
    match inserted {
        true => Ok(()),
        false => Err(fault(
            n,
            field,
            "duplicate: an earlier line has the same value",
        )),
    }
}

/// A model validation error as a fault at line `n`.
fn invalid(n: u64, field: &str, e: Error) -> Fault {
    match e {
        Error::Invalid { message, .. } => fault(n, field, message),
        other => fault(n, field, other.to_string()),
    }
}
