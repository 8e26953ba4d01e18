//! JSON Lines in KMT's own shape, plus the line reader and JSON helpers the
//! BEIR importer shares.
//!
//! One object per line: `id` (required, becomes the slug), `title`,
//! `summary`, `body`, `category`, `tags`, `audience`, `status`,
//! `review_due`, and `chapter` (from the pgdocs corpus; added as a tag).
//! Any other field is an error rather than silently dropped data.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{
    build_draft, category_name, sanitise_slug, Defaults, FieldError, Fields, Record, RecordError,
    SlugRegistry, MAX_LINE_BYTES,
};

/// The fields a KMT JSONL record may carry.
const FIELDS: &[&str] = &[
    "id",
    "title",
    "summary",
    "body",
    "category",
    "tags",
    "audience",
    "status",
    "review_due",
    "chapter",
];

/// Reads a file line by line with a bounded buffer, counting lines and
/// bytes, skipping blank lines.
#[derive(Debug)]
pub(super) struct LineReader {
    path: PathBuf,
    reader: BufReader<File>,
    buf: Vec<u8>,
    /// 1-based number of the line last returned.
    line: usize,
    bytes_read: u64,
    total_bytes: u64,
    /// Set after EOF or a read error, so a failing disk ends the stream
    /// instead of repeating the same error forever.
    done: bool,
}

impl LineReader {
    pub(super) fn open(path: &Path) -> Result<Self, RecordError> {
        let fail = |e: io::Error| RecordError::new(path, 1, None, format!("cannot open: {e}"));
        let file = File::open(path).map_err(fail)?;
        let total_bytes = file.metadata().map_err(fail)?.len();
        Ok(LineReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(256 * 1024, file),
            buf: Vec::new(),
            line: 0,
            bytes_read: 0,
            total_bytes,
            done: false,
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    pub(super) fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next non-blank line as `(line number, text)`, without its line
    /// ending; `Err` for an over-long, non-UTF-8 or unreadable line.
    pub(super) fn next_line(&mut self) -> Option<Result<(usize, String), RecordError>> {
        loop {
            if self.done {
                return None;
            }
            let too_long = match self.fill_line() {
                Ok(Some(too_long)) => too_long,
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(self.error(None, format!("read failed: {e}"))));
                }
            };
            self.line += 1;
            if too_long {
                return Some(Err(self.error(
                    None,
                    format!("line is longer than {} MiB", MAX_LINE_BYTES >> 20),
                )));
            }
            // Moving the buffer out avoids a copy; the next line gets a
            // fresh one, which costs less than the JSON parse anyway.
            let mut text = match String::from_utf8(std::mem::take(&mut self.buf)) {
                Ok(t) => t,
                Err(e) => {
                    let msg = format!(
                        "not valid UTF-8 (at byte {})",
                        e.utf8_error().valid_up_to() + 1
                    );
                    self.buf = e.into_bytes();
                    return Some(Err(self.error(None, msg)));
                }
            };
            // A byte-order mark may open the file; it is not content.
            if self.line == 1 && text.starts_with('\u{feff}') {
                text.drain(..'\u{feff}'.len_utf8());
            }
            if !text.trim().is_empty() {
                return Some(Ok((self.line, text)));
            }
            self.buf = text.into_bytes();
        }
    }

    /// An error at the current line.
    pub(super) fn error(&self, field: Option<&str>, message: String) -> RecordError {
        RecordError::new(&self.path, self.line, field, message)
    }

    /// Reads one raw line into `buf` (line ending stripped). Returns
    /// `Some(true)` if it exceeded [`MAX_LINE_BYTES`] (its bytes are
    /// consumed but not kept), `None` at end of file.
    fn fill_line(&mut self) -> io::Result<Option<bool>> {
        self.buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                return Ok(any.then_some(too_long));
            }
            any = true;
            let newline = available.iter().position(|&b| b == b'\n');
            let take = newline.map_or(available.len(), |i| i + 1);
            let content = newline.map_or(take, |i| i);
            if !too_long {
                if self.buf.len() + content > MAX_LINE_BYTES {
                    too_long = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(&available[..content]);
                }
            }
            self.reader.consume(take);
            self.bytes_read += take as u64;
            if newline.is_some() {
                if self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                }
                return Ok(Some(too_long));
            }
        }
    }
}

/// Whether the first non-blank line of `path` is an object with `_id`
/// (BEIR); `None` when that cannot be told (empty file, bad first line).
pub(super) fn first_record_has_id(path: &Path) -> Result<Option<bool>, RecordError> {
    let mut lines = LineReader::open(path)?;
    Ok(match lines.next_line() {
        Some(Ok((_, text))) => serde_json::from_str::<Map<String, Value>>(&text)
            .ok()
            .map(|obj| obj.contains_key("_id")),
        _ => None,
    })
}

/// Parses one line as a JSON object; malformed JSON reports its column.
pub(super) fn parse_object(text: &str) -> Result<Map<String, Value>, FieldError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(other) => Err(FieldError {
            field: None,
            message: format!("expected a JSON object, found {}", kind(&other)),
        }),
        Err(e) => {
            // serde_json appends " at line 1 column N"; the line is ours.
            let full = e.to_string();
            let msg = full
                .rsplit_once(" at line ")
                .map_or(full.as_str(), |(m, _)| m);
            Err(FieldError {
                field: None,
                message: format!("malformed JSON at column {}: {msg}", e.column()),
            })
        }
    }
}

/// Names a JSON value's type for messages.
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The first field not in `allowed`, as an error.
pub(super) fn reject_unknown(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), FieldError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(FieldError::new(
            k,
            format!("unknown field; expected one of {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// Removes a string field; absent or `null` is `None`.
pub(super) fn take_str(
    obj: &mut Map<String, Value>,
    field: &str,
) -> Result<Option<String>, FieldError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(FieldError::new(
            field,
            format!("expected a string, found {}", kind(&other)),
        )),
    }
}

/// Removes a source id: a string, or an integer (common in foreign corpora).
pub(super) fn take_id(obj: &mut Map<String, Value>, field: &str) -> Result<String, FieldError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Err(FieldError::new(field, "is required")),
        Some(Value::String(s)) => Ok(s),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        Some(other) => Err(FieldError::new(
            field,
            format!("expected a string or an integer, found {}", kind(&other)),
        )),
    }
}

/// Removes a list-of-strings field; absent or `null` is empty.
fn take_list(obj: &mut Map<String, Value>, field: &str) -> Result<Vec<String>, FieldError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
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
        Some(other) => Err(FieldError::new(
            field,
            format!("expected a list of strings, found {}", kind(&other)),
        )),
    }
}

/// Reads KMT JSONL records.
#[derive(Debug)]
pub(super) struct JsonlReader {
    lines: LineReader,
    defaults: Defaults,
    slugs: SlugRegistry,
}

impl JsonlReader {
    pub(super) fn open(path: &Path, defaults: Defaults) -> Result<Self, RecordError> {
        Ok(JsonlReader {
            lines: LineReader::open(path)?,
            defaults,
            slugs: SlugRegistry::default(),
        })
    }

    pub(super) fn total_bytes(&self) -> u64 {
        self.lines.total_bytes()
    }

    pub(super) fn bytes_read(&self) -> u64 {
        self.lines.bytes_read()
    }

    /// The next record, or `None` at end of file.
    pub(super) fn next_item(&mut self) -> Option<Result<Record, RecordError>> {
        let (line, text) = match self.lines.next_line()? {
            Ok(l) => l,
            Err(e) => return Some(Err(e)),
        };
        let result = parse_record(&text, line, &self.defaults, &mut self.slugs);
        let file = self.lines.path();
        Some(match result {
            Ok(draft) => Ok(Record {
                file: file.to_path_buf(),
                line,
                draft,
            }),
            Err(e) => Err(e.at(file, line)),
        })
    }
}

/// Turns one JSONL line into a validated draft.
fn parse_record(
    text: &str,
    line: usize,
    defaults: &Defaults,
    slugs: &mut SlugRegistry,
) -> Result<crate::model::ArticleDraft, FieldError> {
    let mut obj = parse_object(text)?;
    reject_unknown(&obj, FIELDS)?;
    let id = take_id(&mut obj, "id")?;
    let slug = sanitise_slug(&id).map_err(|m| FieldError::new("id", m))?;
    slugs
        .claim_id(&slug, &id, line)
        .map_err(|m| FieldError::new("id", m))?;
    let mut fields = Fields {
        title: take_str(&mut obj, "title")?,
        summary: take_str(&mut obj, "summary")?,
        body: take_str(&mut obj, "body")?,
        category: take_str(&mut obj, "category")?,
        tags: take_list(&mut obj, "tags")?,
        audience: take_list(&mut obj, "audience")?,
        status: take_str(&mut obj, "status")?,
        review_due: take_str(&mut obj, "review_due")?,
    };
    // Appended after the record's own tags so `tags[i]` in a validation
    // error still points at the i-th tag the person wrote.
    if let Some(chapter) = take_str(&mut obj, "chapter")? {
        if let Some(tag) = category_name(&chapter) {
            fields.tags.push(tag);
        }
    }
    build_draft(slug, fields, defaults, "id")
}

#[cfg(test)]
mod tests {
    use super::super::tests::read_all;
    use super::super::{Format, ImportOptions, ImportSource};
    use super::*;
    use crate::model::Status;
    use std::fs;
    use std::io::Write;

    /// Writes `content` to a temp `.jsonl` and reads it all.
    fn run(content: &str, opts: &ImportOptions) -> (Vec<Record>, Vec<RecordError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        fs::write(&path, content).unwrap();
        let (src, ok, bad) = read_all(&path, opts);
        assert_eq!(src.format(), Format::Jsonl);
        (ok, bad)
    }

    fn only_error(content: &str) -> RecordError {
        let (ok, bad) = run(content, &ImportOptions::default());
        assert!(ok.is_empty(), "unexpected records: {ok:?}");
        assert_eq!(bad.len(), 1, "{bad:?}");
        bad.into_iter().next().unwrap()
    }

    #[test]
    fn parses_every_field() {
        let line = r#"{"id":"Reset Password!","title":" Reset a password ","summary":"- s","body":"b","category":"Help Desk","tags":["B","a"],"audience":["clerk"],"status":"draft","review_due":"2030-01-02","chapter":"Server Administration"}"#;
        let (ok, bad) = run(&format!("\n{line}\n\n"), &ImportOptions::default());
        assert!(bad.is_empty(), "{bad:?}");
        let r = &ok[0];
        assert_eq!(r.line, 2);
        let d = &r.draft;
        assert_eq!(d.slug, "reset-password-");
        assert_eq!(d.title, "Reset a password");
        assert_eq!(d.category, "help-desk");
        assert_eq!(d.tags, vec!["a", "b", "server-administration"]);
        assert_eq!(d.audience, vec!["clerk"]);
        assert_eq!(d.status, Status::Draft);
        assert_eq!(
            d.review_due.unwrap().to_rfc3339(),
            "2030-01-02T00:00:00+00:00"
        );
    }

    #[test]
    fn defaults_apply() {
        let opts = ImportOptions {
            default_category: Some("General".into()),
            default_status: Status::InReview,
            ..ImportOptions::default()
        };
        let (ok, bad) = run("{\"id\":\"a\",\"title\":\"A\"}\n", &opts);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok[0].draft.category, "general");
        assert_eq!(ok[0].draft.status, Status::InReview);
        let e = only_error("{\"id\":\"a\",\"title\":\"A\"}\n");
        assert_eq!(e.field.as_deref(), Some("category"));
    }

    #[test]
    fn malformed_line_reports_line_and_column() {
        let good = "{\"id\":\"a\",\"title\":\"A\",\"category\":\"c\"}";
        let (ok, bad) = run(
            &format!("{good}\n\n{{\"id\": \"b\", \"title\" \"B\"}}\n[1]\n"),
            &ImportOptions::default(),
        );
        assert_eq!(ok.len(), 1);
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].line, 3);
        assert_eq!(bad[0].field, None);
        assert!(bad[0].message.contains("column 21"), "{}", bad[0]);
        assert!(
            bad[0].to_string().contains("in.jsonl:3: malformed JSON"),
            "{}",
            bad[0]
        );
        assert_eq!(bad[1].line, 4);
        assert!(bad[1].message.contains("JSON object"));
    }

    #[test]
    fn wrong_type_names_field() {
        let e = only_error("{\"id\":\"a\",\"title\":\"A\",\"category\":\"c\",\"tags\":\"x\"}");
        assert_eq!((e.line, e.field.as_deref()), (1, Some("tags")));
        let e = only_error("{\"id\":\"a\",\"title\":\"A\",\"category\":\"c\",\"tags\":[\"ok\",3]}");
        assert_eq!(e.field.as_deref(), Some("tags[1]"));
        let e = only_error("{\"id\":\"a\",\"title\":7,\"category\":\"c\"}");
        assert_eq!(e.field.as_deref(), Some("title"));
        let e = only_error("{\"id\":[],\"title\":\"A\",\"category\":\"c\"}");
        assert_eq!(e.field.as_deref(), Some("id"));
    }

    #[test]
    fn validation_errors_name_field() {
        let e = only_error(
            "{\"id\":\"a\",\"title\":\"A\",\"category\":\"c\",\"tags\":[\"ok\",\"not ok\"]}",
        );
        assert_eq!(e.field.as_deref(), Some("tags[1]"));
        let e = only_error("{\"id\":\"a\",\"title\":\"  \",\"category\":\"c\"}");
        assert_eq!(e.field.as_deref(), Some("title"));
        let e = only_error("{\"id\":\"a\",\"category\":\"c\"}");
        assert_eq!(e.field.as_deref(), Some("title"));
        let e = only_error("{\"id\":\"a\",\"title\":\"A\",\"category\":\"c\",\"status\":\"live\"}");
        assert_eq!(e.field.as_deref(), Some("status"));
        let e =
            only_error("{\"id\":\"a\",\"title\":\"A\",\"category\":\"c\",\"review_due\":\"soon\"}");
        assert_eq!(e.field.as_deref(), Some("review_due"));
        let e = only_error("{\"id\":\"!!\",\"title\":\"A\",\"category\":\"c\"}");
        assert_eq!(e.field.as_deref(), Some("id"));
    }

    #[test]
    fn unknown_field_is_named() {
        let e = only_error("{\"id\":\"a\",\"title\":\"A\",\"category\":\"c\",\"slug\":\"x\"}");
        assert_eq!(e.field.as_deref(), Some("slug"));
        assert!(e.message.contains("unknown field"));
    }

    #[test]
    fn duplicate_ids_are_reported_on_the_later_line() {
        let rec = |id: &str| format!("{{\"id\":\"{id}\",\"title\":\"T\",\"category\":\"c\"}}\n");
        let content = [
            rec("a"),
            rec("b"),
            rec("a"),
            rec("B"),
            rec("c d"),
            rec("c-d"),
        ]
        .concat();
        let (ok, bad) = run(&content, &ImportOptions::default());
        assert_eq!(ok.len(), 3);
        let at: Vec<(usize, Option<&str>)> =
            bad.iter().map(|e| (e.line, e.field.as_deref())).collect();
        assert_eq!(at, vec![(3, Some("id")), (4, Some("id")), (6, Some("id"))]);
        assert!(
            bad[0].message.contains("first seen on line 1"),
            "{}",
            bad[0]
        );
        assert!(bad[1].message.contains("already taken"), "{}", bad[1]);
    }

    #[test]
    fn overlong_and_non_utf8_lines_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.jsonl");
        let mut f = File::create(&path).unwrap();
        f.write_all(&vec![b'x'; MAX_LINE_BYTES + 10]).unwrap();
        f.write_all(b"\n\xff\xfe\n{\"id\":\"a\",\"title\":\"A\",\"category\":\"c\"}\r\n")
            .unwrap();
        drop(f);
        let (src, ok, bad) = read_all(&path, &ImportOptions::default());
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].line, 3);
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].line, 1);
        assert!(bad[0].message.contains("longer than 8 MiB"));
        assert_eq!(bad[1].line, 2);
        assert!(bad[1].message.contains("UTF-8"));
        assert_eq!(src.bytes_read(), src.total_bytes());
    }

    #[test]
    fn integer_ids_are_accepted() {
        let (ok, bad) = run(
            "{\"id\":42,\"title\":\"A\",\"category\":\"c\"}",
            &ImportOptions::default(),
        );
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok[0].draft.slug, "42");
    }

    #[test]
    fn empty_file_yields_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        fs::write(&path, "\n  \n").unwrap();
        let mut src = ImportSource::open(&path, &ImportOptions::default()).unwrap();
        assert!(src.next_batch().is_none());
    }
}
