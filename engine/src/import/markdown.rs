//! Markdown folders: one article per `*.md` file, found recursively and read
//! in path order so that repeated imports behave identically.
//!
//! Each file opens with YAML front matter between `---` lines holding
//! `title`, `category`, `tags`, `audience`, `summary`, `status` and
//! `review_due`; the rest of the file is the body and the file stem is the
//! slug. Errors point at the front-matter line of the offending field, since
//! that is where a person will go to fix it.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

use super::{
    build_draft, sanitise_slug, Defaults, FieldError, Fields, Record, RecordError, SlugRegistry,
    MAX_LINE_BYTES,
};
use crate::model::ArticleDraft;

/// The front-matter fields an article file may set.
const FIELDS: &[&str] = &[
    "title",
    "category",
    "tags",
    "audience",
    "summary",
    "status",
    "review_due",
];

/// Reads the Markdown files of a folder (or a single file), one per item.
#[derive(Debug)]
pub(super) struct MarkdownReader {
    files: Vec<PathBuf>,
    next: usize,
    total_bytes: u64,
    bytes_read: u64,
    defaults: Defaults,
    slugs: SlugRegistry,
}

impl MarkdownReader {
    /// Lists the files up front: the total size feeds the progress bar and
    /// sorting needs the whole list anyway.
    pub(super) fn open(path: &Path, defaults: Defaults) -> Result<Self, RecordError> {
        let fail = |e: io::Error| RecordError::new(path, 1, None, format!("cannot list: {e}"));
        let files = if path.is_dir() {
            let mut files = Vec::new();
            collect(path, &mut files).map_err(fail)?;
            files.sort();
            if files.is_empty() {
                return Err(RecordError::new(
                    path,
                    1,
                    None,
                    "no .md files in this directory",
                ));
            }
            files
        } else {
            vec![path.to_path_buf()]
        };
        // A file that vanishes before it is read reports its own error then.
        let total_bytes = files
            .iter()
            .filter_map(|f| fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
        Ok(MarkdownReader {
            files,
            next: 0,
            total_bytes,
            bytes_read: 0,
            defaults,
            slugs: SlugRegistry::default(),
        })
    }

    pub(super) fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    pub(super) fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next file's record, or `None` when every file has been read.
    pub(super) fn next_item(&mut self) -> Option<Result<Record, RecordError>> {
        let file = self.files.get(self.next)?.clone();
        self.next += 1;
        Some(self.read(&file))
    }

    fn read(&mut self, file: &Path) -> Result<Record, RecordError> {
        let text = read_bounded(file, &mut self.bytes_read)?;
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default();
        let slug = sanitise_slug(&stem)
            .map_err(|m| RecordError::new(file, 1, None, format!("file name: {m}")))?;
        if let Some((first, _)) = self.slugs.claim(&slug, &file.to_string_lossy(), 1) {
            return Err(RecordError::new(
                file,
                1,
                None,
                format!("file name maps to slug {slug:?}, already taken by {first}"),
            ));
        }
        let draft = parse(&text, slug, &self.defaults).map_err(|(line, e)| e.at(file, line))?;
        Ok(Record {
            file: file.to_path_buf(),
            line: 1,
            draft,
        })
    }
}

/// Whether `dir` holds any `*.md` file below it.
pub(super) fn contains_markdown(dir: &Path) -> bool {
    let mut files = Vec::new();
    collect(dir, &mut files).is_ok() && !files.is_empty()
}

/// Adds every `*.md` file below `dir` to `out`. Hidden entries (`.git`, ...)
/// are skipped, and symlinked directories are not followed so a link
/// cycle cannot recurse forever.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let ty = entry.file_type()?;
        if ty.is_dir() {
            collect(&path, out)?;
        } else if is_markdown(&path) && (ty.is_file() || path.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_markdown(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("md"))
}

/// Reads a whole file, refusing ones over [`MAX_LINE_BYTES`] and text that
/// is not UTF-8 (with the line of the first bad byte).
fn read_bounded(file: &Path, bytes_read: &mut u64) -> Result<String, RecordError> {
    let fail = |e: io::Error| RecordError::new(file, 1, None, format!("cannot read: {e}"));
    let mut bytes = Vec::new();
    File::open(file)
        .map_err(fail)?
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    *bytes_read += bytes.len() as u64;
    if bytes.len() > MAX_LINE_BYTES {
        return Err(RecordError::new(
            file,
            1,
            None,
            format!("file is larger than {} MiB", MAX_LINE_BYTES >> 20),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        RecordError::new(file, line, None, "not valid UTF-8")
    })
}

/// Splits front matter from body and builds the draft; errors carry the
/// file line to report.
fn parse(
    text: &str,
    slug: String,
    defaults: &Defaults,
) -> Result<ArticleDraft, (usize, FieldError)> {
    let at_file = |message: &str| {
        (
            1,
            FieldError {
                field: None,
                message: message.to_string(),
            },
        )
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (yaml, body) = split_front_matter(text).ok_or_else(|| {
        at_file("missing YAML front matter: the file must start with a '---' line")
    })?;
    let yaml = yaml.ok_or_else(|| at_file("front matter is not closed by a '---' line"))?;
    // The YAML starts on the file's second line.
    let key_lines = key_lines(yaml, 2);
    let line_of = |field: &str| {
        let key = field.split('[').next().unwrap_or(field);
        key_lines.get(key).copied().unwrap_or(1)
    };

    let value: Value = serde_yaml_ng::from_str(yaml).map_err(|e| {
        // The YAML starts on the file's second line: shift every position
        // the message quotes so it matches what an editor shows.
        let message = shift_lines(&e.to_string(), 1);
        let line = e.location().map_or(1, |loc| loc.line() + 1);
        let err = FieldError {
            field: None,
            message: format!("malformed YAML front matter: {message}"),
        };
        (line, err)
    })?;
    let mapping = match value {
        Value::Null => serde_yaml_ng::Mapping::new(),
        Value::Mapping(m) => m,
        _ => return Err(at_file("front matter must be a mapping of fields")),
    };

    let mut fields = Fields::default();
    for (key, value) in mapping {
        let Value::String(key) = key else {
            return Err(at_file("front matter keys must be strings"));
        };
        let located = |e: FieldError| (line_of(&key), e);
        match key.as_str() {
            "title" => fields.title = string(&key, value).map_err(located)?,
            "category" => fields.category = string(&key, value).map_err(located)?,
            "summary" => fields.summary = string(&key, value).map_err(located)?,
            "status" => fields.status = string(&key, value).map_err(located)?,
            "review_due" => fields.review_due = string(&key, value).map_err(located)?,
            "tags" => fields.tags = list(&key, value).map_err(located)?,
            "audience" => fields.audience = list(&key, value).map_err(located)?,
            _ => {
                let msg = format!("unknown field; expected one of {}", FIELDS.join(", "));
                return Err(located(FieldError::new(&key, msg)));
            }
        }
    }
    if fields.title.is_none() {
        fields.title = first_heading(body).map(str::to_string);
    }
    if fields.title.is_none() {
        let msg = "is required: set it in the front matter or start the body with a '# ' heading";
        return Err((1, FieldError::new("title", msg)));
    }
    fields.body = Some(body.trim_start_matches(['\r', '\n']).to_string());
    build_draft(slug, fields, defaults, "slug").map_err(|e| {
        let line = e.field.as_deref().map_or(1, line_of);
        (line, e)
    })
}

/// Splits `---` front matter from the body: `None` if the file does not
/// open with `---`; `Some((None, _))` if it is never closed.
fn split_front_matter(text: &str) -> Option<(Option<&str>, &str)> {
    let mut lines = text.split_inclusive('\n');
    let first = lines.next()?;
    if first.trim_end() != "---" {
        return None;
    }
    let start = first.len();
    let mut pos = start;
    for line in lines {
        // `...` is YAML's own end-of-document marker; accept it too.
        if matches!(line.trim_end(), "---" | "...") {
            return Some((Some(&text[start..pos]), &text[pos + line.len()..]));
        }
        pos += line.len();
    }
    Some((None, ""))
}

/// Adds `offset` to every "line N" in a parser message.
fn shift_lines(message: &str, offset: usize) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("line ") {
        let (head, tail) = rest.split_at(i + "line ".len());
        out.push_str(head);
        let digits = tail.len() - tail.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match tail[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&tail[..digits]),
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// The file line of each top-level key in the front matter. A plain scan is
/// enough here: YAML values carry no positions, and top-level keys are the
/// unindented `key:` lines.
fn key_lines(yaml: &str, first_line: usize) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for (i, line) in yaml.lines().enumerate() {
        if line.starts_with([' ', '\t', '#', '-']) {
            continue;
        }
        if let Some((key, _)) = line.split_once(':') {
            let key = key.trim().trim_matches(['"', '\'']);
            out.entry(key.to_string()).or_insert(first_line + i);
        }
    }
    out
}

/// The text of the first `# ` heading outside code fences.
fn first_heading(body: &str) -> Option<&str> {
    let mut in_fence = false;
    for line in body.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        } else if !in_fence {
            if let Some(h) = line.strip_prefix("# ") {
                let h = h.trim().trim_end_matches('#').trim();
                if !h.is_empty() {
                    return Some(h);
                }
            }
        }
    }
    None
}

/// Names a YAML value's type for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn string(field: &str, v: Value) -> Result<Option<String>, FieldError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(FieldError::new(
            field,
            format!("expected a string, found {}", kind(&other)),
        )),
    }
}

fn list(field: &str, v: Value) -> Result<Vec<String>, FieldError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s),
                other => Err(FieldError::new(
                    &format!("{field}[{i}]"),
                    format!("expected a string, found {}", kind(&other)),
                )),
            })
            .collect(),
        other => Err(FieldError::new(
            field,
            format!("expected a list of strings, found {}", kind(&other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::read_all;
    use super::super::{Format, ImportOptions, ImportSource};
    use super::*;
    use crate::model::Status;

    const GOOD: &str = "---\ntitle: Reset a password\ncategory: help-desk\ntags: [Accounts, reset]\naudience: [clerk]\nsummary: |\n  - one\n  - two\nstatus: draft\nreview_due: 2030-01-02\n---\n## Steps\n\n1. Do it.\n";

    /// Writes `files` (relative path, content) under a temp dir and reads it.
    fn run(files: &[(&str, &str)]) -> (Vec<Record>, Vec<RecordError>) {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        let (src, ok, bad) = read_all(dir.path(), &ImportOptions::default());
        assert_eq!(src.format(), Format::Markdown);
        assert_eq!(src.bytes_read(), src.total_bytes());
        (ok, bad)
    }

    fn only_error(content: &str) -> RecordError {
        let (ok, mut bad) = run(&[("a.md", content)]);
        assert!(ok.is_empty(), "{ok:?}");
        assert_eq!(bad.len(), 1, "{bad:?}");
        bad.remove(0)
    }

    #[test]
    fn parses_front_matter_and_body() {
        let (ok, bad) = run(&[
            ("z/b.md", GOOD),
            ("a.md", "---\ntitle: A\ncategory: c\n---\nx\n"),
        ]);
        assert!(bad.is_empty(), "{bad:?}");
        // Sorted by path: a.md before z/b.md.
        assert_eq!(ok[0].draft.slug, "a");
        let d = &ok[1].draft;
        assert_eq!(d.slug, "b");
        assert_eq!(d.title, "Reset a password");
        assert_eq!(d.category, "help-desk");
        assert_eq!(d.tags, vec!["accounts", "reset"]);
        assert_eq!(d.audience, vec!["clerk"]);
        assert_eq!(d.summary, "- one\n- two\n");
        assert_eq!(d.status, Status::Draft);
        assert!(d.review_due.is_some());
        assert_eq!(d.body, "## Steps\n\n1. Do it.\n");
        assert_eq!(ok[0].draft.status, Status::Published);
    }

    #[test]
    fn title_defaults_to_first_heading() {
        let (ok, bad) = run(&[(
            "h.md",
            "---\ncategory: c\n---\n\n```\n# not this\n```\n# The Title\ntext\n",
        )]);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok[0].draft.title, "The Title");
        let e = only_error("---\ncategory: c\n---\nno heading\n");
        assert_eq!((e.line, e.field.as_deref()), (1, Some("title")));
    }

    #[test]
    fn missing_front_matter_is_line_1() {
        let e = only_error("# Title\n\ntext\n");
        assert_eq!((e.line, e.field.as_deref()), (1, None));
        assert!(e.message.contains("missing YAML front matter"), "{e}");
        let e = only_error("---\ntitle: T\n");
        assert!(e.message.contains("not closed"), "{e}");
    }

    #[test]
    fn unknown_field_reports_its_line() {
        let e = only_error("---\ntitle: T\ncategory: c\nsummary: |\n  x\nowner: bob\n---\nbody\n");
        assert_eq!((e.line, e.field.as_deref()), (6, Some("owner")));
        assert!(e.to_string().ends_with(":6: owner: unknown field; expected one of title, category, tags, audience, summary, status, review_due"), "{e}");
    }

    #[test]
    fn field_faults_report_their_line() {
        let e = only_error("---\ntitle: T\ncategory: c\ntags: x\n---\n");
        assert_eq!((e.line, e.field.as_deref()), (4, Some("tags")));
        let e = only_error("---\ntitle: T\ncategory: c\naudience: [ok, Not Ok]\n---\n");
        assert_eq!((e.line, e.field.as_deref()), (4, Some("audience[1]")));
        let e = only_error("---\ntitle: T\ncategory: c\ntags: [1]\n---\n");
        assert_eq!((e.line, e.field.as_deref()), (4, Some("tags[0]")));
        let e = only_error("---\ntitle: T\n\nstatus: gone\ncategory: c\n---\n");
        assert_eq!((e.line, e.field.as_deref()), (4, Some("status")));
        let e = only_error("---\ntitle: T\n---\n");
        assert_eq!((e.line, e.field.as_deref()), (1, Some("category")));
        let e = only_error("---\ntitle: T\ncategory: c\ntags: [a, b\n---\n");
        assert_eq!(e.field, None);
        assert!(e.message.contains("malformed YAML"), "{e}");
        assert!(e.message.contains("at line 4 column 7"), "{e}");
        assert_eq!(e.line, 5);
    }

    #[test]
    fn parser_positions_are_shifted() {
        assert_eq!(
            shift_lines("x at line 3 column 7, y at line 9", 1),
            "x at line 4 column 7, y at line 10"
        );
        assert_eq!(
            shift_lines("no line here; line x", 2),
            "no line here; line x"
        );
    }

    #[test]
    fn same_stem_in_two_folders_collides() {
        let (ok, bad) = run(&[("a/x.md", GOOD), ("b/x.md", GOOD)]);
        assert_eq!(ok.len(), 1);
        assert_eq!(bad.len(), 1);
        assert!(bad[0].file.ends_with("b/x.md"));
        assert!(bad[0].message.contains("already taken"), "{}", bad[0]);
    }

    #[test]
    fn non_utf8_reports_its_line() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.md"), b"---\ntitle: T\n\xff\n---\n").unwrap();
        let (_, ok, bad) = read_all(dir.path(), &ImportOptions::default());
        assert!(ok.is_empty());
        assert_eq!(bad[0].line, 3);
        assert!(bad[0].message.contains("UTF-8"));
    }

    #[test]
    fn hidden_and_other_files_are_ignored() {
        let (ok, bad) = run(&[(".git/x.md", "junk"), ("notes.txt", "junk"), ("a.MD", GOOD)]);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok.len(), 1);
    }

    #[test]
    fn project_sample_corpus_parses() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/articles"));
        if !contains_markdown(dir) {
            return; // The sample corpus is optional while it is being written.
        }
        let mut src = ImportSource::open(dir, &ImportOptions::default()).unwrap();
        while let Some(batch) = src.next_batch() {
            for item in batch {
                let r = item.unwrap_or_else(|e| panic!("{e}"));
                assert!(!r.draft.summary.is_empty(), "{}", r.file.display());
            }
        }
    }
}
