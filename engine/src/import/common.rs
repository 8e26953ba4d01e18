//! Pieces every format shares: defaults, the common field set, validation
//! through the model, and the mapping of source ids and human names to
//! slugs and category names.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};

use super::{ImportOptions, RecordError};
use crate::error::Error;
use crate::model::{self, limits, ArticleDraft, NewArticle, Status};

/// Defaults resolved once per source, shared by the readers.
#[derive(Debug, Clone)]
pub(super) struct Defaults {
    /// The default category, already normalised to a valid name.
    pub(super) category: Option<String>,
    /// Status for records that set none.
    pub(super) status: Status,
}

impl Defaults {
    pub(super) fn new(path: &Path, opts: &ImportOptions) -> Result<Self, RecordError> {
        let category = match &opts.default_category {
            None => None,
            Some(c) => Some(category_name(c).ok_or_else(|| {
                RecordError::new(
                    path,
                    1,
                    Some("category"),
                    format!("default category {c:?} has no letters or digits"),
                )
            })?),
        };
        Ok(Defaults {
            category,
            status: opts.default_status,
        })
    }
}

/// A fault in one record before its location is known to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FieldError {
    pub(super) field: Option<String>,
    pub(super) message: String,
}

impl FieldError {
    pub(super) fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    pub(super) fn at(self, file: &Path, line: usize) -> RecordError {
        RecordError {
            file: file.to_path_buf(),
            line,
            field: self.field,
            message: self.message,
        }
    }
}

/// The fields every format boils down to, before defaults and validation.
#[derive(Debug, Default)]
pub(super) struct Fields {
    pub(super) title: Option<String>,
    pub(super) summary: Option<String>,
    pub(super) body: Option<String>,
    pub(super) category: Option<String>,
    pub(super) tags: Vec<String>,
    pub(super) audience: Vec<String>,
    pub(super) status: Option<String>,
    pub(super) review_due: Option<String>,
}

/// Applies defaults, parses status and dates, and validates through
/// [`NewArticle::into_draft`] so imports obey the same rules as the API.
/// `slug_field` is what the source calls the slug (`id`, `_id`, ...), so a
/// slug fault names the field the person actually wrote.
pub(super) fn build_draft(
    slug: String,
    f: Fields,
    d: &Defaults,
    slug_field: &str,
) -> Result<ArticleDraft, FieldError> {
    let category = match f.category {
        Some(c) => category_name(&c).ok_or_else(|| {
            FieldError::new("category", format!("{c:?} has no letters or digits"))
        })?,
        None => d.category.clone().ok_or_else(|| {
            FieldError::new("category", "is required (or pass a default category)")
        })?,
    };
    let status = match f.status {
        Some(s) => s
            .trim()
            .to_ascii_lowercase()
            .parse::<Status>()
            .map_err(|e| invalid_to_field(e, slug_field))?,
        None => d.status,
    };
    let review_due = f
        .review_due
        .map(|s| {
            parse_date(&s).ok_or_else(|| {
                FieldError::new(
                    "review_due",
                    format!("{s:?} is not an RFC 3339 time or a YYYY-MM-DD date"),
                )
            })
        })
        .transpose()?;
    let title = f
        .title
        .ok_or_else(|| FieldError::new("title", "is required"))?;
    NewArticle {
        slug: Some(slug),
        title,
        summary: f.summary.unwrap_or_default(),
        body: f.body.unwrap_or_default(),
        category,
        tags: f.tags,
        audience: f.audience,
        status: Some(status),
        review_due,
    }
    .into_draft()
    .map_err(|e| invalid_to_field(e, slug_field))
}

/// Maps a validation error to the field as the source names it.
pub(super) fn invalid_to_field(e: Error, slug_field: &str) -> FieldError {
    match e {
        Error::Invalid { field, message } => FieldError {
            field: Some(if field == "slug" {
                slug_field.to_string()
            } else {
                field
            }),
            message,
        },
        other => FieldError {
            field: None,
            message: other.to_string(),
        },
    }
}

/// Parses an RFC 3339 time or a bare date (midnight UTC), since front matter
/// is usually written by hand with just a date.
pub(super) fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc())
}

/// Turns a category or chapter as people write it ("Server Administration")
/// into a valid name ("server-administration"); names that are already
/// valid are kept as they are (so `audit_log` keeps its underscore).
/// `None` when nothing usable is left.
pub(super) fn category_name(raw: &str) -> Option<String> {
    let lower = raw.trim().to_lowercase();
    if model::validate_name("category", &lower).is_ok() {
        return Some(lower);
    }
    // slugify yields ASCII only, so truncating by bytes is safe.
    let mut s = model::slugify(raw);
    s.truncate(limits::NAME);
    let s = s.trim_end_matches('-');
    (!s.is_empty()).then(|| s.to_string())
}

/// Maps a source id to a valid slug, deterministically: lowercase ASCII,
/// every other character becomes `-`, leading punctuation is dropped.
/// One character maps to one character so distinct ids rarely collide;
/// [`SlugRegistry`] catches the collisions that remain.
pub(super) fn sanitise_slug(raw: &str) -> Result<String, String> {
    let mapped: String = raw
        .trim()
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let slug = mapped.trim_start_matches(['-', '_', '.']);
    if slug.is_empty() {
        return Err(format!(
            "{raw:?} has no letters or digits to make a slug from"
        ));
    }
    if slug.len() > limits::SLUG {
        return Err(format!(
            "is longer than {} bytes, the longest slug",
            limits::SLUG
        ));
    }
    Ok(slug.to_string())
}

/// Remembers which source id claimed each slug in one source, so that two
/// records never silently overwrite each other.
#[derive(Debug, Default)]
pub(super) struct SlugRegistry {
    /// slug → (source id or file, line).
    seen: HashMap<String, (String, usize)>,
}

impl SlugRegistry {
    /// Claims `slug` for `raw` (a source id or file) at `line`; on a clash,
    /// returns the earlier holder and its line, keeping the first claim.
    pub(super) fn claim(&mut self, slug: &str, raw: &str, line: usize) -> Option<(String, usize)> {
        if let Some(first) = self.seen.get(slug) {
            return Some(first.clone());
        }
        self.seen.insert(slug.to_string(), (raw.to_string(), line));
        None
    }

    /// [`Self::claim`] for line-based sources, with the message to report.
    pub(super) fn claim_id(&mut self, slug: &str, raw: &str, line: usize) -> Result<(), String> {
        match self.claim(slug, raw, line) {
            None => Ok(()),
            Some((first, first_line)) if first == raw => Err(format!(
                "duplicate {raw:?}, first seen on line {first_line}"
            )),
            Some((first, first_line)) => Err(format!(
                "{raw:?} maps to slug {slug:?}, already taken by {first:?} on line {first_line}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_sanitised() {
        assert_eq!(sanitise_slug("sql-createtable").unwrap(), "sql-createtable");
        assert_eq!(sanitise_slug("4380635").unwrap(), "4380635");
        assert_eq!(sanitise_slug("My Doc/Ü").unwrap(), "my-doc--");
        assert_eq!(sanitise_slug("_x.y").unwrap(), "x.y");
        assert!(sanitise_slug("__").is_err());
        assert!(sanitise_slug(&"a".repeat(201)).is_err());
    }

    #[test]
    fn categories_are_named() {
        assert_eq!(category_name("Appendixes").unwrap(), "appendixes");
        assert_eq!(
            category_name("The SQL Language").unwrap(),
            "the-sql-language"
        );
        assert_eq!(category_name("audit_log").unwrap(), "audit_log");
        assert_eq!(category_name(&"Word ".repeat(40)).unwrap().len(), 64);
        assert!(category_name("!!").is_none());
    }

    #[test]
    fn dates_parse() {
        assert!(parse_date("2025-06-30").is_some());
        assert!(parse_date("2025-06-30T12:00:00Z").is_some());
        assert!(parse_date("June").is_none());
    }
}
