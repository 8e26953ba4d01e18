//! BEIR corpora (`corpus.jsonl`: `_id`, `title`, `text`, `metadata`), the
//! layout of public retrieval benchmarks such as MS MARCO.
//!
//! Passages have no category, summary or tags, and often no title: the
//! category comes from the options or the corpus folder's name (so several
//! benchmark sets can sit side by side), and a missing title is made from
//! the passage's first words so that search results stay readable.

use std::path::Path;

use super::jsonl::{parse_object, reject_unknown, take_id, take_str, LineReader};
use super::{
    build_draft, category_name, sanitise_slug, Defaults, FieldError, Fields, Record, RecordError,
    SlugRegistry,
};
use crate::model::ArticleDraft;

/// The fields a BEIR corpus record may carry.
const FIELDS: &[&str] = &["_id", "title", "text", "metadata"];

/// Words kept from the text when a passage has no title.
const TITLE_WORDS: usize = 12;

/// Characters kept at most from those words (a URL can be one long word).
const TITLE_CHARS: usize = 120;

/// Category when neither the options nor the folder name give one.
const FALLBACK_CATEGORY: &str = "beir";

/// Reads a BEIR `corpus.jsonl`.
#[derive(Debug)]
pub(super) struct BeirReader {
    lines: LineReader,
    defaults: Defaults,
    slugs: SlugRegistry,
}

impl BeirReader {
    pub(super) fn open(path: &Path, mut defaults: Defaults) -> Result<Self, RecordError> {
        if defaults.category.is_none() {
            defaults.category = Some(folder_category(path));
        }
        Ok(BeirReader {
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

/// The category named after the folder holding the corpus
/// (`msmarco-5k/corpus.jsonl` → `msmarco-5k`).
fn folder_category(path: &Path) -> String {
    // Canonicalise so that a bare `corpus.jsonl` still has a parent name.
    let abs = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    abs.parent()
        .and_then(|dir| dir.file_name())
        .and_then(|name| category_name(&name.to_string_lossy()))
        .unwrap_or_else(|| FALLBACK_CATEGORY.to_string())
}

/// Turns one BEIR line into a validated draft.
fn parse_record(
    text: &str,
    line: usize,
    defaults: &Defaults,
    slugs: &mut SlugRegistry,
) -> Result<ArticleDraft, FieldError> {
    let mut obj = parse_object(text)?;
    reject_unknown(&obj, FIELDS)?;
    let id = take_id(&mut obj, "_id")?;
    let slug = sanitise_slug(&id).map_err(|m| FieldError::new("_id", m))?;
    slugs
        .claim_id(&slug, &id, line)
        .map_err(|m| FieldError::new("_id", m))?;
    let body = take_str(&mut obj, "text")?.unwrap_or_default();
    let title = take_str(&mut obj, "title")?
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| title_from_text(&body));
    // `metadata` is free-form and has no place in an article.
    let fields = Fields {
        title: Some(title),
        summary: Some(String::new()),
        body: Some(body),
        ..Fields::default()
    };
    build_draft(slug, fields, defaults, "_id").map_err(|mut e| {
        // The title was made from the text: point at what the person wrote.
        if e.field.as_deref() == Some("title") {
            e.field = Some("text".to_string());
        }
        e
    })
}

/// The first [`TITLE_WORDS`] words of `text`, with "…" when cut short.
fn title_from_text(text: &str) -> String {
    let mut words = text.split_whitespace();
    let mut title = String::new();
    let mut cut = false;
    for (i, w) in words.by_ref().enumerate() {
        if i == TITLE_WORDS {
            cut = true;
            break;
        }
        if !title.is_empty() {
            title.push(' ');
        }
        title.push_str(w);
    }
    if title.chars().count() > TITLE_CHARS {
        title = title.chars().take(TITLE_CHARS).collect();
        cut = true;
    }
    if cut {
        title.push('…');
    }
    title
}

#[cfg(test)]
mod tests {
    use super::super::tests::read_all;
    use super::super::{Format, ImportOptions};
    use super::*;
    use crate::model::Status;
    use std::fs;

    #[test]
    fn parses_a_corpus_folder() {
        let dir = tempfile::tempdir().unwrap();
        let set = dir.path().join("My Set");
        fs::create_dir(&set).unwrap();
        let long = "one two three four five six seven eight nine ten eleven twelve thirteen";
        fs::write(
            set.join("corpus.jsonl"),
            format!(
                "{{\"_id\":\"10\",\"title\":\"\",\"text\":\"{long}\",\"metadata\":{{}}}}\n\
                 {{\"_id\":\"doc:11\",\"title\":\"Given\",\"text\":\"short\"}}\n"
            ),
        )
        .unwrap();
        let (src, ok, bad) = read_all(&set, &ImportOptions::default());
        assert_eq!(src.format(), Format::Beir);
        assert!(bad.is_empty(), "{bad:?}");
        let d = &ok[0].draft;
        assert_eq!(d.slug, "10");
        assert_eq!(
            d.title,
            "one two three four five six seven eight nine ten eleven twelve…"
        );
        assert_eq!(d.body, long);
        assert_eq!(d.summary, "");
        assert_eq!(d.category, "my-set");
        assert!(d.tags.is_empty());
        assert_eq!(d.status, Status::Published);
        assert_eq!(ok[1].draft.slug, "doc-11");
        assert_eq!(ok[1].draft.title, "Given");
        assert_eq!(ok[1].line, 2);
    }

    #[test]
    fn default_category_wins_over_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corpus.jsonl");
        fs::write(&path, "{\"_id\":\"1\",\"text\":\"a b\"}\n").unwrap();
        let opts = ImportOptions {
            default_category: Some("bench".into()),
            ..ImportOptions::default()
        };
        let (_, ok, _) = read_all(&path, &opts);
        assert_eq!(ok[0].draft.category, "bench");
        assert_eq!(ok[0].draft.title, "a b");
    }

    #[test]
    fn faults_name_beir_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corpus.jsonl");
        fs::write(
            &path,
            "{\"_id\":\"1\",\"text\":\"a\"}\n{\"_id\":\"1\",\"text\":\"b\"}\n\
             {\"_id\":\"2\",\"text\":\"\"}\n{\"_id\":\"3\",\"text\":5}\n{\"_id\":\"4\",\"url\":\"x\"}\n",
        )
        .unwrap();
        let (_, ok, bad) = read_all(&path, &ImportOptions::default());
        assert_eq!(ok.len(), 1);
        let at: Vec<(usize, Option<&str>)> =
            bad.iter().map(|e| (e.line, e.field.as_deref())).collect();
        assert_eq!(
            at,
            vec![
                (2, Some("_id")),
                (3, Some("text")),
                (4, Some("text")),
                (5, Some("url"))
            ]
        );
    }

    #[test]
    fn titles_from_text_are_bounded() {
        assert_eq!(title_from_text("  a \n b  "), "a b");
        assert_eq!(title_from_text(""), "");
        let t = title_from_text(&"x".repeat(500));
        assert_eq!(t.chars().count(), TITLE_CHARS + 1);
        assert!(t.ends_with('…'));
    }
}
