//! Sections: blocks of an article's summary or body with their own audience
//! ("knowledge blocks": internal notes only reviewers see, a script for new
//! staff, bullets for experts).
//!
//! A section is written inline in the Markdown, so it is versioned, diffed,
//! reverted, drafted and imported with the text it belongs to:
//!
//! ```text
//! ::: section id=internal-notes audience=reviewer,auditor title="Internal notes"
//! Text only reviewers and auditors see.
//! :::
//! ```
//!
//! A section without an audience is visible to everyone who reads the
//! article. A restricted one is visible to admins, to the article's owner
//! and to callers holding one of its roles (the same audience terms as
//! articles, so `public` works too). Everything that serves text — the
//! article, versions, diffs, drafts, the search index, embeddings — goes
//! through [`visible_text`] or [`indexable_text`] with the caller's
//! [`Visibility`].
//!
//! Parsing never fails on read: an unclosed section runs to the end of the
//! text (so it stays hidden rather than leaking), and an opener inside a
//! section is that section's text. Writes are stricter: [`check`] reports
//! such mistakes with their line, so stored text is always well formed.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{validate_name, Article};
use crate::auth::{audience_terms_of, Principal};
use crate::error::{Error, Result};

/// Most sections in one field.
pub const MAX_SECTIONS: usize = 64;
/// Most distinct section audiences in one article: the search index keeps
/// one document per combination a reader can see (2^n).
pub const MAX_AUDIENCES: usize = 4;

/// The reading levels of an article.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The summary only: bullet points for experienced staff.
    Summary,
    /// Summary and the step-by-step body for new staff.
    Detailed,
}

impl Level {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Summary => "summary",
            Level::Detailed => "detailed",
        }
    }

    /// Parses the stored or query spelling.
    pub fn parse(field: &str, s: &str) -> Result<Level> {
        match s {
            "summary" => Ok(Level::Summary),
            "detailed" => Ok(Level::Detailed),
            other => Err(Error::invalid(
                field,
                format!("unknown level {other:?}; expected summary or detailed"),
            )),
        }
    }

    /// The level a reader gets when they have not chosen one: experts
    /// (reviewers, admins) the summary, everyone else the detailed script.
    pub fn default_for(p: &Principal) -> Level {
        if p.has_role(crate::auth::roles::REVIEWER) || p.is_admin() {
            Level::Summary
        } else {
            Level::Detailed
        }
    }
}

/// The heading of a section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SectionInfo {
    /// Identifier, unique within the article field.
    pub id: String,
    /// Title shown above the section.
    pub title: Option<String>,
    /// Roles that may see it; empty means every reader of the article.
    pub audience: Vec<String>,
    /// Which field it is in: `summary` or `body`.
    pub field: String,
}

/// One block of text: plain text between sections, or a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block<'a> {
    /// The section heading; `None` for plain text.
    pub head: Option<Head>,
    /// The block's lines as written, fences included.
    pub text: &'a str,
    /// The content lines (fences excluded; plain text: the whole block).
    pub content: &'a str,
    /// Line number (1-based) where the block starts.
    pub line: usize,
}

/// A parsed section opener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Identifier.
    pub id: String,
    /// Title.
    pub title: Option<String>,
    /// Audience roles, sorted and deduplicated.
    pub audience: Vec<String>,
}

impl Head {
    /// The audience as one key (roles joined by `,`): what the search
    /// index stores for restricted sections. Empty when unrestricted.
    pub fn key(&self) -> String {
        self.audience.join(",")
    }
}

/// Who is reading: decides which sections are visible.
#[derive(Debug, Clone)]
pub enum Visibility {
    /// Every section (admins, the article's owner, the store itself).
    All,
    /// Only sections without an audience (what every reader sees:
    /// embeddings, which serve every caller alike).
    Unrestricted,
    /// Sections whose audience meets these terms.
    Terms(Vec<String>),
    /// Sections whose audience key ([`Head::key`]) is one of these (the
    /// search index's per-combination documents).
    Keys(Vec<String>),
}

impl Visibility {
    /// What `p` sees of an article owned by `owner`.
    pub fn of(p: &Principal, owner: &str) -> Visibility {
        if p.is_admin() || (p.is_signed_in() && p.username == owner) {
            Visibility::All
        } else {
            Visibility::Terms(p.audience_terms())
        }
    }

    /// Whether a section with this audience is visible.
    pub fn sees(&self, audience: &[String]) -> bool {
        if audience.is_empty() {
            return true;
        }
        match self {
            Visibility::All => true,
            Visibility::Unrestricted => false,
            Visibility::Terms(t) => audience_terms_of(audience).iter().any(|a| t.contains(a)),
            Visibility::Keys(k) => k.contains(&audience.join(",")),
        }
    }

    /// Whether a section with this audience key ([`Head::key`]) is visible.
    pub fn sees_key(&self, key: &str) -> bool {
        let audience: Vec<String> = key
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        self.sees(&audience)
    }
}

fn is_closer(line: &str) -> bool {
    line.trim() == ":::"
}

/// The attributes of an opener line, or `None` when the line is not one.
fn opener(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix(":::")?.trim_start();
    let rest = rest.strip_prefix("section")?;
    if rest.is_empty() || rest.starts_with(char::is_whitespace) {
        Some(rest.trim())
    } else {
        None
    }
}

/// Parses `key=value key="quoted value"` attributes.
fn attributes(s: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("expected key=value, found {rest:?}"))?;
        let key = rest[..eq].trim().to_string();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("expected key=value, found {rest:?}"));
        }
        let after = &rest[eq + 1..];
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q
                .find('"')
                .ok_or_else(|| format!("the value of {key} has no closing quote"))?;
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        out.push((key, value));
        rest = tail.trim_start();
    }
    Ok(out)
}

/// Builds a heading from an opener's attributes; `n` numbers default ids.
fn head(attrs: &str, n: usize) -> std::result::Result<Head, String> {
    let mut h = Head {
        id: String::new(),
        title: None,
        audience: Vec::new(),
    };
    for (k, v) in attributes(attrs)? {
        match k.as_str() {
            "id" => h.id = v,
            "title" => h.title = Some(v).filter(|t| !t.trim().is_empty()),
            "audience" => {
                let mut roles: Vec<String> = v
                    .split(',')
                    .map(|r| r.trim().to_lowercase())
                    .filter(|r| !r.is_empty())
                    .collect();
                for r in &roles {
                    validate_name("audience", r).map_err(|e| e.to_string())?;
                }
                roles.sort();
                roles.dedup();
                h.audience = roles;
            }
            other => {
                return Err(format!(
                    "unknown section attribute {other:?}; expected id, title or audience"
                ))
            }
        }
    }
    if h.id.is_empty() {
        h.id = match &h.title {
            Some(t) if !super::slugify(t).is_empty() => super::slugify(t),
            _ => format!("section-{n}"),
        };
    }
    let id_ok = h.id.len() <= 64
        && h.id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        return Err(format!(
            "section id {:?} must be 1-64 characters of a-z, 0-9, '-' or '_'",
            h.id
        ));
    }
    Ok(h)
}

/// Splits text into blocks, collecting the mistakes [`check`] reports.
fn parse_with_faults(text: &str) -> (Vec<Block<'_>>, Vec<(usize, String)>) {
    let mut blocks = Vec::new();
    let mut faults = Vec::new();
    // (byte offset, line number, content start, heading) of the open section.
    let mut open: Option<(usize, usize, usize, Head)> = None;
    let mut plain_start = 0usize;
    let mut plain_line = 1usize;
    let mut offset = 0usize;
    let mut sections = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let n = i + 1;
        let next = offset + line.len();
        match &open {
            None => {
                if let Some(attrs) = opener(line) {
                    sections += 1;
                    let h = head(attrs, sections).unwrap_or_else(|e| {
                        faults.push((n, e));
                        // A faulty heading stays hidden from everyone but
                        // admins and the owner until it is fixed.
                        Head {
                            id: format!("section-{sections}"),
                            title: None,
                            audience: vec![crate::auth::roles::ADMIN.to_string()],
                        }
                    });
                    if offset > plain_start {
                        blocks.push(Block {
                            head: None,
                            text: &text[plain_start..offset],
                            content: &text[plain_start..offset],
                            line: plain_line,
                        });
                    }
                    open = Some((offset, n, next, h));
                }
            }
            Some((start, first, content, _)) => {
                if is_closer(line) {
                    let (start, first, content) = (*start, *first, *content);
                    let (_, _, _, h) = open.take().expect("open section");
                    blocks.push(Block {
                        head: Some(h),
                        text: &text[start..next],
                        content: &text[content..offset],
                        line: first,
                    });
                    plain_start = next;
                    plain_line = n + 1;
                } else if opener(line).is_some() {
                    faults.push((
                        n,
                        format!("sections cannot nest: the section opened on line {first} is still open (close it with a line ':::')"),
                    ));
                }
            }
        }
        offset = next;
    }
    if let Some((start, first, content, h)) = open {
        faults.push((
            first,
            format!(
                "section {:?} is never closed (add a line ':::' after it)",
                h.id
            ),
        ));
        blocks.push(Block {
            head: Some(h),
            text: &text[start..],
            content: &text[content.min(text.len())..],
            line: first,
        });
    } else if plain_start < text.len() {
        blocks.push(Block {
            head: None,
            text: &text[plain_start..],
            content: &text[plain_start..],
            line: plain_line,
        });
    }
    if sections > MAX_SECTIONS {
        faults.push((1, format!("at most {MAX_SECTIONS} sections")));
    }
    let mut ids = BTreeSet::new();
    for b in &blocks {
        if let Some(h) = &b.head {
            if !ids.insert(h.id.clone()) {
                faults.push((b.line, format!("section id {:?} is used twice", h.id)));
            }
        }
    }
    faults.sort_by_key(|f| f.0);
    (blocks, faults)
}

/// Splits text into plain blocks and sections (never fails; see the
/// module docs).
pub fn parse(text: &str) -> Vec<Block<'_>> {
    parse_with_faults(text).0
}

/// Checks the section syntax of one field: the first mistake, with its line.
pub fn check(field: &str, text: &str) -> Result<()> {
    match parse_with_faults(text).1.into_iter().next() {
        Some((line, msg)) => Err(Error::invalid(field, format!("line {line}: {msg}"))),
        None => Ok(()),
    }
}

/// Checks the sections of an article's fields together: each field's
/// syntax, and at most [`MAX_AUDIENCES`] distinct restricted audiences.
pub fn check_article(summary: &str, body: &str) -> Result<()> {
    check("summary", summary)?;
    check("body", body)?;
    let keys = restricted_keys(summary, body);
    if keys.len() > MAX_AUDIENCES {
        return Err(Error::invalid(
            "body",
            format!(
                "at most {MAX_AUDIENCES} different section audiences per article; found {}: {}",
                keys.len(),
                keys.join("; ")
            ),
        ));
    }
    Ok(())
}

/// The distinct audience keys of restricted sections in both fields, sorted.
pub fn restricted_keys(summary: &str, body: &str) -> Vec<String> {
    let mut keys = BTreeSet::new();
    for text in [summary, body] {
        for b in parse(text) {
            if let Some(h) = b.head.filter(|h| !h.audience.is_empty()) {
                keys.insert(h.key());
            }
        }
    }
    keys.into_iter().collect()
}

/// The text as the reader sees it: hidden sections removed, visible ones
/// kept with their fences (so clients can render them as blocks).
pub fn visible_text(text: &str, v: &Visibility) -> String {
    if !text.contains(":::") {
        return text.to_string();
    }
    parse(text)
        .into_iter()
        .filter(|b| b.head.as_ref().is_none_or(|h| v.sees(&h.audience)))
        .map(|b| b.text)
        .collect()
}

/// The words to index or embed for a reader with visibility `v`: fences
/// dropped, section titles kept as text.
pub fn indexable_text(text: &str, v: &Visibility) -> String {
    if !text.contains(":::") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for b in parse(text) {
        match &b.head {
            None => out.push_str(b.content),
            Some(h) if v.sees(&h.audience) => {
                if let Some(t) = &h.title {
                    out.push_str(t);
                    out.push('\n');
                }
                out.push_str(b.content);
                if !b.content.ends_with('\n') {
                    out.push('\n');
                }
            }
            Some(_) => {}
        }
    }
    out
}

/// The headings of the sections visible with `v` in one field.
pub fn infos(field: &str, text: &str, v: &Visibility) -> Vec<SectionInfo> {
    parse(text)
        .into_iter()
        .filter_map(|b| b.head)
        .filter(|h| v.sees(&h.audience))
        .map(|h| SectionInfo {
            id: h.id,
            title: h.title,
            audience: h.audience,
            field: field.to_string(),
        })
        .collect()
}

/// Merges an edit made by someone who cannot see every section: `new` is
/// what they submitted, `old` the text they edited. Sections hidden from
/// the editor are kept (after the visible section that preceded them, at
/// the start when none did, at the end when that section is gone), and the
/// editor may not write sections they could not read themselves.
pub fn merge_hidden(field: &str, old: &str, new: &str, v: &Visibility) -> Result<String> {
    if matches!(v, Visibility::All) {
        return Ok(new.to_string());
    }
    let new_blocks = parse(new);
    for b in &new_blocks {
        if let Some(h) = &b.head {
            if !v.sees(&h.audience) {
                return Err(Error::invalid(
                    field,
                    format!(
                        "line {}: section {:?} is for {}, which you cannot read yourself",
                        b.line,
                        h.id,
                        h.audience.join(", ")
                    ),
                ));
            }
        }
    }
    // Hidden sections of the old text, each with the id of the visible
    // section before it.
    let mut hidden: Vec<(Option<String>, &str, String)> = Vec::new();
    let mut anchor: Option<String> = None;
    for b in parse(old) {
        if let Some(h) = &b.head {
            if v.sees(&h.audience) {
                anchor = Some(h.id.clone());
            } else {
                hidden.push((anchor.clone(), b.text, h.id.clone()));
            }
        }
    }
    if hidden.is_empty() {
        return Ok(new.to_string());
    }
    for (_, _, id) in &hidden {
        if let Some(b) = new_blocks
            .iter()
            .find(|b| b.head.as_ref().is_some_and(|h| &h.id == id))
        {
            return Err(Error::invalid(
                field,
                format!(
                    "line {}: section id {id:?} is taken by a section you cannot see; choose another id",
                    b.line
                ),
            ));
        }
    }
    let with_newline = |s: &str| {
        if s.ends_with('\n') {
            s.to_string()
        } else {
            format!("{s}\n")
        }
    };
    let mut out = String::with_capacity(new.len() + 256);
    for (_, text, _) in hidden.iter().filter(|h| h.0.is_none()) {
        out.push_str(&with_newline(text));
    }
    let mut placed: Vec<bool> = hidden.iter().map(|h| h.0.is_none()).collect();
    for b in &new_blocks {
        out.push_str(b.text);
        if let Some(h) = &b.head {
            for (i, (a, text, _)) in hidden.iter().enumerate() {
                if !placed[i] && a.as_deref() == Some(h.id.as_str()) {
                    if !out.ends_with('\n') {
                        out.push('\n');
                    }
                    out.push_str(&with_newline(text));
                    placed[i] = true;
                }
            }
        }
    }
    for (i, (_, text, _)) in hidden.iter().enumerate() {
        if !placed[i] {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&with_newline(text));
        }
    }
    Ok(out)
}

/// The article as `p` may see it: hidden sections removed from summary and
/// body.
pub fn view_of(p: &Principal, a: &Article) -> Article {
    let v = Visibility::of(p, &a.owner);
    let mut out = a.clone();
    if !matches!(v, Visibility::All) {
        out.summary = visible_text(&a.summary, &v);
        out.body = visible_text(&a.body, &v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Intro line\n\
::: section id=notes audience=reviewer title=\"Internal notes\"\n\
secret zebra words\n\
:::\n\
Middle\n\
::: section title=\"For everyone\"\n\
open words\n\
:::\n\
Tail";

    fn terms(t: &[&str]) -> Visibility {
        Visibility::Terms(t.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn parses_plain_text_and_sections() {
        let blocks = parse(TEXT);
        assert_eq!(blocks.len(), 5);
        assert_eq!(blocks[0].content, "Intro line\n");
        let h = blocks[1].head.as_ref().unwrap();
        assert_eq!(h.id, "notes");
        assert_eq!(h.audience, vec!["reviewer"]);
        assert_eq!(h.title.as_deref(), Some("Internal notes"));
        assert_eq!(blocks[1].content, "secret zebra words\n");
        assert_eq!(blocks[1].line, 2);
        assert_eq!(blocks[3].head.as_ref().unwrap().id, "for-everyone");
        assert_eq!(blocks[4].content, "Tail");
        let joined: String = blocks.iter().map(|b| b.text).collect();
        assert_eq!(joined, TEXT, "blocks cover the text exactly");
        check("body", TEXT).unwrap();
    }

    #[test]
    fn hidden_sections_are_removed_for_readers_without_the_role() {
        let viewer = terms(&["public", "@signed_in", "viewer"]);
        let seen = visible_text(TEXT, &viewer);
        assert!(!seen.contains("zebra"));
        assert!(seen.contains("open words") && seen.contains("Tail"));
        let words = indexable_text(TEXT, &viewer);
        assert!(!words.contains("zebra") && !words.contains(":::"));
        assert!(words.contains("For everyone"));
        let reviewer = terms(&["public", "@signed_in", "reviewer"]);
        assert!(visible_text(TEXT, &reviewer).contains("zebra"));
        assert!(!indexable_text(TEXT, &Visibility::Unrestricted).contains("zebra"));
        assert_eq!(infos("body", TEXT, &viewer).len(), 1);
    }

    #[test]
    fn mistakes_are_reported_with_their_line() {
        let e = check("body", "a\n::: section id=x\nb\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = check("body", "::: section id=x\n::: section id=y\n:::\n").unwrap_err();
        assert!(e.to_string().contains("cannot nest"), "{e}");
        let e = check("body", "::: section colour=red\n:::\n").unwrap_err();
        assert!(e.to_string().contains("unknown section attribute"), "{e}");
        let e = check("body", "::: section audience=Not_Ok!\n:::\n").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let e = check("body", "::: section id=a\n:::\n::: section id=a\n:::\n").unwrap_err();
        assert!(e.to_string().contains("used twice"), "{e}");
        // An unclosed section stays hidden on read.
        let v = terms(&["public"]);
        let t = "x\n::: section audience=admin\nsecret\n";
        assert_eq!(visible_text(t, &v), "x\n");
    }

    #[test]
    fn audiences_are_limited_per_article() {
        let body: String = (0..5)
            .map(|i| format!("::: section id=s{i} audience=r{i}\nx\n:::\n"))
            .collect();
        assert!(check_article("", &body).is_err());
        let ok: String = (0..4)
            .map(|i| format!("::: section id=s{i} audience=r{i}\nx\n:::\n"))
            .collect();
        check_article("", &ok).unwrap();
        assert_eq!(restricted_keys("", &ok).len(), 4);
    }

    #[test]
    fn an_edit_by_someone_who_cannot_see_a_section_keeps_it() {
        let viewer = terms(&["public", "@signed_in", "author"]);
        let seen = visible_text(TEXT, &viewer);
        let edited = seen.replace("Intro line", "Better intro");
        let merged = merge_hidden("body", TEXT, &edited, &viewer).unwrap();
        assert!(merged.contains("Better intro"));
        assert!(merged.contains("secret zebra words"), "{merged}");
        check("body", &merged).unwrap();
        // Writing a section one cannot read, or taking a hidden id, fails.
        let forged = format!("{seen}\n::: section audience=reviewer\nx\n:::\n");
        assert!(merge_hidden("body", TEXT, &forged, &viewer).is_err());
        let taken = format!("{seen}\n::: section id=notes\nx\n:::\n");
        assert!(merge_hidden("body", TEXT, &taken, &viewer).is_err());
        // A hidden section after a visible one follows it.
        let old = "::: section id=a\nA\n:::\n::: section id=h audience=reviewer\nH\n:::\nend\n";
        let new = "start\n::: section id=a\nA2\n:::\nend\n";
        let merged = merge_hidden("body", old, new, &viewer).unwrap();
        assert_eq!(
            merged,
            "start\n::: section id=a\nA2\n:::\n::: section id=h audience=reviewer\nH\n:::\nend\n"
        );
    }
}
