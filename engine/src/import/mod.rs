//! Importers: turn JSON Lines, BEIR corpora and Markdown folders into
//! validated [`ArticleDraft`]s, streaming, in batches.
//!
//! The CLI opens an [`ImportSource`] (which detects the format unless told),
//! then pulls [`ImportSource::next_batch`] until it returns `None`, storing
//! the good records and reporting (or stopping on) the bad ones. Nothing here
//! touches the store: parsing is kept apart so that a dry run, a progress bar
//! and `--skip-invalid` are all the caller's choice.
//!
//! Every per-record fault is a [`RecordError`] naming the file, the 1-based
//! line and, where there is one, the field, so a person can fix the source.
//! Line-based formats are read with a bounded buffer, one line at a time, so
//! a 100k-article file never sits in memory whole.

mod beir;
mod common;
mod jsonl;
mod markdown;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::model::{ArticleDraft, Status};

// The readers reach these through `super::`.
use common::{
    build_draft, category_name, sanitise_slug, Defaults, FieldError, Fields, SlugRegistry,
};

/// Longest line (or Markdown file) accepted, in bytes. Far above any valid
/// article (bodies are capped at 2 MiB) yet small enough that a corrupt file
/// with no newlines cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// Batch size used by [`ImportOptions::default`].
pub const DEFAULT_BATCH_SIZE: usize = 500;

/// The source formats the importer understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// JSON Lines with KMT's own fields (`id`, `title`, `body`, ...).
    Jsonl,
    /// A folder of Markdown files with YAML front matter (or one such file).
    Markdown,
    /// A BEIR corpus: `corpus.jsonl` with `_id`, `title`, `text`, `metadata`.
    Beir,
}

impl Format {
    /// The CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Markdown => "markdown",
            Format::Beir => "beir",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Format {
    type Err = Error;

    /// Parses `jsonl`, `markdown` (or `md`) and `beir`; `auto` is the
    /// caller's business (it means "no format", i.e. detect).
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            "markdown" | "md" => Ok(Format::Markdown),
            "beir" => Ok(Format::Beir),
            other => Err(Error::invalid(
                "format",
                format!("unknown format {other:?}; expected jsonl, markdown or beir"),
            )),
        }
    }
}

/// How to read a source and what to fill in where records say nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOptions {
    /// The format; `None` detects it from the path and the first record.
    pub format: Option<Format>,
    /// Category for records that have none (human names are slugified).
    pub default_category: Option<String>,
    /// Status for records that set none; imports are normally `published`.
    pub default_status: Status,
    /// Most items per [`ImportSource::next_batch`] (0 is treated as 1).
    pub batch_size: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            format: None,
            default_category: None,
            default_status: Status::Published,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }
}

/// One record that could not be turned into an article (or a source that
/// could not be opened at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The file the record is in.
    pub file: PathBuf,
    /// 1-based line: the JSONL line, or for Markdown the front-matter line
    /// holding the field (1 when the fault is about the file as a whole).
    pub line: usize,
    /// The offending field, as written in the source (`tags[2]` for list
    /// items), when the fault is about one field.
    pub field: Option<String>,
    /// What is wrong, phrased for the person fixing the source.
    pub message: String,
}

impl RecordError {
    /// An error about `file` at `line`, optionally about `field`.
    pub fn new(
        file: impl Into<PathBuf>,
        line: usize,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        RecordError {
            file: file.into(),
            line,
            field: field.map(str::to_string),
            message: message.into(),
        }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for RecordError {}

impl From<RecordError> for Error {
    /// Lets a caller `?` an import fault into the engine's error; the
    /// location goes into the message so it is not lost.
    fn from(e: RecordError) -> Self {
        let field = e.field.clone().unwrap_or_else(|| "import".to_string());
        Error::invalid(field, e.to_string())
    }
}

/// One record turned into a validated draft.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The file it came from.
    pub file: PathBuf,
    /// Its 1-based line (1 for Markdown files).
    pub line: usize,
    /// The validated, normalised article.
    pub draft: ArticleDraft,
}

/// An opened import source: format detected, ready to be read in batches.
#[derive(Debug)]
pub struct ImportSource {
    path: PathBuf,
    format: Format,
    batch_size: usize,
    total_bytes: u64,
    reader: Reader,
}

/// The format-specific readers behind [`ImportSource`].
#[derive(Debug)]
enum Reader {
    Jsonl(jsonl::JsonlReader),
    Beir(beir::BeirReader),
    Markdown(markdown::MarkdownReader),
}

impl ImportSource {
    /// Opens `path` (a file or a directory), detecting the format unless
    /// `opts.format` names it.
    ///
    /// Detection: a directory holding `corpus.jsonl` is BEIR (or JSONL if
    /// that file's first record has no `_id`); a directory with `*.md` files
    /// anywhere below it is Markdown; a `.jsonl`/`.ndjson` file is JSONL
    /// unless its first record has `_id`, then BEIR; a `.md` file is
    /// Markdown. Fails when the path is missing, unreadable or undetectable,
    /// or when the default category cannot be made a valid name.
    pub fn open(path: &Path, opts: &ImportOptions) -> Result<ImportSource, RecordError> {
        let meta = fs::metadata(path)
            .map_err(|e| RecordError::new(path, 1, None, format!("cannot open: {e}")))?;
        let defaults = Defaults::new(path, opts)?;
        let format;
        let file;
        if meta.is_dir() {
            let corpus = path.join("corpus.jsonl");
            let has_corpus = corpus.is_file();
            format = match opts.format {
                Some(f) => f,
                None if has_corpus => match jsonl::first_record_has_id(&corpus)? {
                    Some(false) => Format::Jsonl,
                    // An unreadable first record still says "BEIR layout";
                    // its error is reported when that line is read.
                    Some(true) | None => Format::Beir,
                },
                None if markdown::contains_markdown(path) => Format::Markdown,
                None => {
                    return Err(RecordError::new(
                        path,
                        1,
                        None,
                        "cannot detect the format: the directory has neither a corpus.jsonl nor .md files",
                    ))
                }
            };
            if format != Format::Markdown && !has_corpus {
                return Err(RecordError::new(
                    path,
                    1,
                    None,
                    format!("no corpus.jsonl in this directory to read as {format}"),
                ));
            }
            file = if format == Format::Markdown {
                path.to_path_buf()
            } else {
                corpus
            };
        } else {
            format = match opts.format {
                Some(f) => f,
                None => detect_file(path)?,
            };
            file = path.to_path_buf();
        }

        let reader = match format {
            Format::Jsonl => Reader::Jsonl(jsonl::JsonlReader::open(&file, defaults)?),
            Format::Beir => Reader::Beir(beir::BeirReader::open(&file, defaults)?),
            Format::Markdown => Reader::Markdown(markdown::MarkdownReader::open(&file, defaults)?),
        };
        let total_bytes = match &reader {
            Reader::Jsonl(r) => r.total_bytes(),
            Reader::Beir(r) => r.total_bytes(),
            Reader::Markdown(r) => r.total_bytes(),
        };
        Ok(ImportSource {
            path: file,
            format,
            batch_size: opts.batch_size.max(1),
            total_bytes,
            reader,
        })
    }

    /// The format being read.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The file (or Markdown directory) being read; for a BEIR directory,
    /// its `corpus.jsonl`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of everything that will be read, for a progress bar.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Bytes consumed so far (reaches [`Self::total_bytes`] at the end unless
    /// files change underneath).
    pub fn bytes_read(&self) -> u64 {
        match &self.reader {
            Reader::Jsonl(r) => r.bytes_read(),
            Reader::Beir(r) => r.bytes_read(),
            Reader::Markdown(r) => r.bytes_read(),
        }
    }

    /// The next batch of up to `batch_size` items, in source order; `None`
    /// at the end. A bad record is an `Err` item: reading goes on after it.
    pub fn next_batch(&mut self) -> Option<Vec<Result<Record, RecordError>>> {
        let mut batch = Vec::with_capacity(self.batch_size.min(4096));
        while batch.len() < self.batch_size {
            let item = match &mut self.reader {
                Reader::Jsonl(r) => r.next_item(),
                Reader::Beir(r) => r.next_item(),
                Reader::Markdown(r) => r.next_item(),
            };
            match item {
                Some(item) => batch.push(item),
                None => break,
            }
        }
        (!batch.is_empty()).then_some(batch)
    }
}

/// Picks the format of a single file from its extension (and, for JSON
/// Lines, its first record).
fn detect_file(path: &Path) -> Result<Format, RecordError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("jsonl" | "ndjson") => Ok(match jsonl::first_record_has_id(path)? {
            Some(true) => Format::Beir,
            Some(false) | None => Format::Jsonl,
        }),
        Some("md") => Ok(Format::Markdown),
        _ => Err(RecordError::new(
            path,
            1,
            None,
            "cannot detect the format: expected a .jsonl/.ndjson file, a .md file or a directory (or pass --format)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared reference corpora; a missing folder fails loudly because
    /// these tests are the only check that real data imports cleanly.
    fn corpora() -> PathBuf {
        let dir = std::env::var_os("KMT_CORPORA")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpora"))
            });
        assert!(
            dir.is_dir(),
            "reference corpora not found at {} (set KMT_CORPORA to the shared/corpora folder)",
            dir.display()
        );
        dir
    }

    /// Reads a whole source, returning the records and the errors.
    pub(super) fn read_all(
        path: &Path,
        opts: &ImportOptions,
    ) -> (ImportSource, Vec<Record>, Vec<RecordError>) {
        let mut src = ImportSource::open(path, opts).unwrap();
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        while let Some(batch) = src.next_batch() {
            assert!(batch.len() <= opts.batch_size.max(1));
            for item in batch {
                match item {
                    Ok(r) => ok.push(r),
                    Err(e) => bad.push(e),
                }
            }
        }
        (src, ok, bad)
    }

    #[test]
    fn pgdocs_corpus_imports_cleanly() {
        let path = corpora().join("pgdocs/corpus.jsonl");
        let opts = ImportOptions::default();
        let (src, ok, bad) = read_all(&path, &opts);
        assert_eq!(src.format(), Format::Jsonl);
        assert!(bad.is_empty(), "errors: {:?}", &bad[..bad.len().min(5)]);
        assert_eq!(ok.len(), 1139);
        assert_eq!(src.bytes_read(), src.total_bytes());
        let first = &ok[0].draft;
        assert_eq!(first.slug, "acronyms");
        assert_eq!(first.category, "appendixes");
        assert_eq!(first.status, Status::Published);
        assert!(first.tags.contains(&"appendixes".to_string()));
        let admin = ok
            .iter()
            .find(|r| r.draft.category == "server-administration")
            .expect("a Server Administration page");
        assert!(!admin.draft.tags.is_empty());
    }

    #[test]
    fn msmarco_corpus_imports_cleanly() {
        let dir = corpora().join("msmarco-5k");
        let (src, ok, bad) = read_all(&dir, &ImportOptions::default());
        assert_eq!(src.format(), Format::Beir);
        assert!(bad.is_empty(), "errors: {:?}", &bad[..bad.len().min(5)]);
        assert_eq!(ok.len(), 5000);
        assert!(ok.iter().all(|r| r.draft.category == "msmarco-5k"));
        assert!(ok.iter().all(
            |r| r.draft.title.ends_with('…') || r.draft.title.split_whitespace().count() <= 12
        ));
    }

    #[test]
    fn record_error_display() {
        let e = RecordError::new("a.jsonl", 3, Some("tags"), "expected a list");
        assert_eq!(e.to_string(), "a.jsonl:3: tags: expected a list");
        let e = RecordError::new("a.jsonl", 4, None, "malformed JSON");
        assert_eq!(e.to_string(), "a.jsonl:4: malformed JSON");
    }

    #[test]
    fn detection() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let opts = ImportOptions::default();
        let fmt = |path: &Path| ImportSource::open(path, &opts).map(|s| s.format());

        fs::write(p.join("ours.jsonl"), "\n{\"id\":\"a\"}\n").unwrap();
        fs::write(p.join("theirs.ndjson"), "{\"_id\":\"1\",\"text\":\"x\"}\n").unwrap();
        fs::write(p.join("notes.txt"), "hello").unwrap();
        assert_eq!(fmt(&p.join("ours.jsonl")).unwrap(), Format::Jsonl);
        assert_eq!(fmt(&p.join("theirs.ndjson")).unwrap(), Format::Beir);
        let e = fmt(&p.join("notes.txt")).unwrap_err();
        assert!(e.message.contains("cannot detect"), "{e}");
        let e = fmt(&p.join("missing.jsonl")).unwrap_err();
        assert!(e.message.contains("cannot open"), "{e}");

        let beir = p.join("beir");
        fs::create_dir(&beir).unwrap();
        fs::write(
            beir.join("corpus.jsonl"),
            "{\"_id\":\"1\",\"text\":\"x\"}\n",
        )
        .unwrap();
        assert_eq!(fmt(&beir).unwrap(), Format::Beir);
        assert_eq!(fmt(&beir.join("corpus.jsonl")).unwrap(), Format::Beir);

        let own = p.join("own");
        fs::create_dir(&own).unwrap();
        fs::write(own.join("corpus.jsonl"), "{\"id\":\"a\"}\n").unwrap();
        assert_eq!(fmt(&own).unwrap(), Format::Jsonl);
        assert_eq!(fmt(&own.join("corpus.jsonl")).unwrap(), Format::Jsonl);

        let md = p.join("md");
        fs::create_dir_all(md.join("deep/er")).unwrap();
        fs::write(md.join("deep/er/a.md"), "---\ntitle: A\n---\n").unwrap();
        assert_eq!(fmt(&md).unwrap(), Format::Markdown);
        assert_eq!(fmt(&md.join("deep/er/a.md")).unwrap(), Format::Markdown);

        let empty = p.join("empty");
        fs::create_dir(&empty).unwrap();
        assert!(fmt(&empty).unwrap_err().message.contains("cannot detect"));

        // An explicit format overrides detection.
        let forced = ImportOptions {
            format: Some(Format::Jsonl),
            ..ImportOptions::default()
        };
        let src = ImportSource::open(&p.join("theirs.ndjson"), &forced).unwrap();
        assert_eq!(src.format(), Format::Jsonl);
        assert!(ImportSource::open(&md, &forced).is_err());
    }

    #[test]
    fn batches_split_at_batch_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let lines: String = (0..7)
            .map(|i| format!("{{\"id\":\"a{i}\",\"title\":\"T{i}\",\"category\":\"c\"}}\n"))
            .collect();
        fs::write(&path, lines).unwrap();
        let opts = ImportOptions {
            batch_size: 3,
            ..ImportOptions::default()
        };
        let mut src = ImportSource::open(&path, &opts).unwrap();
        let sizes: Vec<usize> = std::iter::from_fn(|| src.next_batch().map(|b| b.len())).collect();
        assert_eq!(sizes, vec![3, 3, 1]);
        assert!(src.next_batch().is_none());
        assert_eq!(src.bytes_read(), src.total_bytes());
    }

    #[test]
    fn bad_default_category_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        fs::write(&path, "").unwrap();
        let opts = ImportOptions {
            default_category: Some("??".into()),
            ..ImportOptions::default()
        };
        let e = ImportSource::open(&path, &opts).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("category"));
    }

    #[test]
    fn source_can_move_to_a_blocking_thread() {
        fn is_send<T: Send>() {}
        is_send::<ImportSource>();
    }

    #[test]
    fn format_parses() {
        assert_eq!("md".parse::<Format>().unwrap(), Format::Markdown);
        assert_eq!("BEIR".parse::<Format>().unwrap(), Format::Beir);
        assert!("auto".parse::<Format>().is_err());
    }
}
