//! Translation of search requests into tantivy queries.
//!
//! Each word must match the combined `all` field (title, summary and body),
//! with optional title and summary clauses adding field boosts; a word that
//! matches nothing the caller may read also matches its near spellings
//! (typo tolerance), and an unfinished last word matches as a prefix.
//! Quoted text becomes phrase queries. The caller's visibility (permissions
//! and, by default, live status) is a cached zero-score filter and the
//! request's filters are zero-weight required clauses, so they shape the hit
//! set without touching scores, and every count taken from that hit set
//! (total, facets) is already permission-filtered.

use std::ops::Bound;

use std::sync::Arc;
use tantivy::query::EnableScoring;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, PhraseQuery, Query, RangeQuery,
    TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;

use tantivy::{DocSet, Searcher, Term, TERMINATED};

use super::filter::{CachedFilter, FilterCache};
use super::request::{Filter, MatchMode, MAX_QUERY_WORDS};
use super::schema::{to_tantivy_date, Fields};
use crate::auth::{Permission, Principal};
use crate::model::Status;

/// Extra weight of the title, shared among the query's words: a one-word
/// query's title match counts double, while one word of a six-word
/// question matching a short title (`LOAD`, `MOVE`) adds a third. A fixed
/// 2.0 per word let such titles outrank the answering page (lexical nDCG@10
/// on the PostgreSQL manual questions 0.315; shared, 0.452; msmarco-5k
/// 0.737 → 0.743; BENCHMARKS.md).
const TITLE_BOOST: f32 = 2.0;
/// Extra weight of a word found in the summary.
const SUMMARY_BOOST: f32 = 0.5;

/// A piece of parsed query text.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Word { text: String, last: bool },
    Phrase(String),
}

/// Splits query text into words and quoted phrases. The last word counts as
/// "still being typed" unless the text ends in whitespace or a quote.
fn split_pieces(q: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut rest = q;
    while !rest.is_empty() {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('"') {
            let end = after.find('"').unwrap_or(after.len());
            let phrase = after[..end].trim();
            if !phrase.is_empty() {
                out.push(Piece::Phrase(phrase.to_string()));
            }
            rest = after.get(end + 1..).unwrap_or("");
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '"')
                .unwrap_or(rest.len());
            if end > 0 {
                out.push(Piece::Word {
                    text: rest[..end].to_string(),
                    last: false,
                });
            }
            rest = &rest[end..];
        }
    }
    if let Some(Piece::Word { last, .. }) = out.last_mut() {
        *last = !q.ends_with(|c: char| c.is_whitespace() || c == '"');
    }
    out.truncate(MAX_QUERY_WORDS);
    out
}

/// Function words — pronouns, auxiliaries, question words, determiners —
/// beyond the index's own stop-word list (tantivy's 33 English words). They
/// carry no topic, but a question brings several ("how do I stop my …"), and
/// as words they match titles: on our judged questions about the PostgreSQL
/// manual, "do" ranked the `DO` command first for "how do I stop a table
/// from growing". Not "us" (the US) or "may" (the month). Sorted, for the
/// binary search.
const FUNCTION_WORDS: &[&str] = &[
    "a", "about", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been",
    "being", "but", "by", "can", "could", "did", "do", "does", "doing", "each", "every", "for",
    "from", "had", "has", "have", "having", "he", "her", "here", "him", "his", "how", "i", "if",
    "in", "is", "it", "its", "just", "me", "might", "must", "my", "myself", "of", "on", "or",
    "our", "ours", "shall", "she", "should", "so", "some", "than", "that", "the", "their", "them",
    "there", "these", "they", "this", "those", "to", "too", "very", "was", "we", "were", "what",
    "when", "where", "which", "while", "who", "whom", "whose", "why", "will", "with", "would",
    "you", "your",
];

/// Leaves out the words that are [`FUNCTION_WORDS`] unless every word is
/// one ("to be or not to be" still searches for what it says). Phrases
/// keep all their words.
fn without_function_words(pieces: Vec<Piece>) -> Vec<Piece> {
    let is_function_word = |p: &Piece| match p {
        Piece::Word { text, .. } => {
            let w = text
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase();
            FUNCTION_WORDS.binary_search(&w.as_str()).is_ok()
        }
        Piece::Phrase(_) => false,
    };
    if pieces.iter().all(is_function_word) {
        return pieces;
    }
    pieces
        .into_iter()
        .filter(|p| !is_function_word(p))
        .collect()
}

fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    positioned_tokens(analyzer, text)
        .into_iter()
        .map(|(_, t)| t)
        .collect()
}

/// Tokens with their positions: stop words leave gaps that phrase queries
/// must keep, or "offer in compromise" would not match its own text.
fn positioned_tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<(usize, String)> {
    let mut v = Vec::new();
    let mut ts = analyzer.token_stream(text);
    ts.process(&mut |t| v.push((t.position, t.text.clone())));
    v
}

fn zero_weight(q: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(BoostQuery::new(q, 0.0))
}

fn term_q(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::Basic,
    ))
}

fn any_of(field: Field, values: &[&str]) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(
        values
            .iter()
            .map(|v| (Occur::Should, term_q(field, v)))
            .collect(),
    ))
}

/// Builds the text part of a query. Returns `None` when the text has no
/// searchable words (empty, or only stop words), and whether the text
/// had any words at all.
pub(crate) struct TextQuery {
    pub query: Option<Box<dyn Query>>,
    /// Words matched through typo tolerance.
    pub fuzzy_words: usize,
    /// Analysed terms to highlight in snippets.
    pub highlight: Vec<String>,
}

impl TextQuery {
    /// A query naming the highlight terms in `fields` (what snippet
    /// generators look for; never used to match).
    pub fn highlight_query(&self, fields: &[Field]) -> Box<dyn Query> {
        Box::new(BooleanQuery::new(
            fields
                .iter()
                .flat_map(|&field| {
                    self.highlight.iter().map(move |t| {
                        (
                            Occur::Should,
                            Box::new(TermQuery::new(
                                Term::from_field_text(field, t),
                                IndexRecordOption::WithFreqs,
                            )) as Box<dyn Query>,
                        )
                    })
                })
                .collect(),
        ))
    }
}

/// Whether any live document matches `q`. Cheap: stops at the first match
/// of each segment's scorer instead of counting.
fn exists(searcher: &Searcher, q: &dyn Query) -> bool {
    let Ok(weight) = q.weight(EnableScoring::disabled_from_searcher(searcher)) else {
        return false;
    };
    for seg in searcher.segment_readers() {
        let Ok(mut scorer) = weight.scorer(seg, 1.0) else {
            continue;
        };
        let alive = seg.alive_bitset();
        let mut doc = scorer.doc();
        while doc != TERMINATED {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                return true;
            }
            doc = scorer.advance();
        }
    }
    false
}

pub(crate) fn build_text_query(
    searcher: &Searcher,
    f: &Fields,
    analyzer: &mut TextAnalyzer,
    prefix_analyzer: &mut TextAnalyzer,
    q: &str,
    mode: MatchMode,
    visible: &dyn Query,
) -> TextQuery {
    // Matching runs on `all` (title, summary and body in one field): one
    // posting list per word, so intersections skip through postings instead
    // of seeking in unions of per-field lists. Field boosts come from
    // optional title and summary clauses, which are only evaluated on
    // documents that already matched.
    let mut required: Vec<Box<dyn Query>> = Vec::new();
    let mut boosts: Vec<Box<dyn Query>> = Vec::new();
    let mut fuzzy_words = 0;
    let mut highlight = Vec::new();
    let pieces = without_function_words(split_pieces(q));
    let title_boost = TITLE_BOOST / pieces.len().max(1) as f32;
    for piece in pieces {
        match piece {
            Piece::Phrase(text) => {
                let toks = positioned_tokens(analyzer, &text);
                if toks.is_empty() {
                    continue;
                }
                let first = toks[0].0;
                highlight.extend(toks.iter().map(|(_, t)| t.clone()));
                let phrase = |field: Field| -> Box<dyn Query> {
                    if toks.len() == 1 {
                        Box::new(TermQuery::new(
                            Term::from_field_text(field, &toks[0].1),
                            IndexRecordOption::WithFreqs,
                        ))
                    } else {
                        Box::new(PhraseQuery::new_with_offset(
                            toks.iter()
                                .map(|(pos, t)| (pos - first, Term::from_field_text(field, t)))
                                .collect(),
                        ))
                    }
                };
                required.push(phrase(f.all));
                boosts.push(Box::new(BoostQuery::new(phrase(f.title), title_boost)));
            }
            Piece::Word { text, last } => {
                let toks = tokens(analyzer, &text);
                highlight.extend(toks.iter().cloned());
                let mut alts: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                if !toks.is_empty() {
                    // A word like `pg_dump` analyses to two tokens: require both.
                    let terms = |field: Field| -> Box<dyn Query> {
                        let mut sub: Vec<(Occur, Box<dyn Query>)> = toks
                            .iter()
                            .map(|t| {
                                (
                                    Occur::Must,
                                    Box::new(TermQuery::new(
                                        Term::from_field_text(field, t),
                                        IndexRecordOption::WithFreqs,
                                    )) as Box<dyn Query>,
                                )
                            })
                            .collect();
                        if sub.len() == 1 {
                            sub.pop().expect("one clause").1
                        } else {
                            Box::new(BooleanQuery::new(sub))
                        }
                    };
                    alts.push((Occur::Should, terms(f.all)));
                    boosts.push(Box::new(BoostQuery::new(terms(f.title), title_boost)));
                    boosts.push(Box::new(BoostQuery::new(terms(f.summary), SUMMARY_BOOST)));
                }
                // Typo tolerance: only for words that match no article the
                // caller may read, so correct words never pick up noise.
                // "May read" matters: deciding on the whole index would let
                // a caller tell a word hidden in a restricted article from
                // one that does not exist.
                let known = !alts.is_empty()
                    && exists(
                        searcher,
                        &BooleanQuery::new(vec![
                            (Occur::Must, alts[0].1.box_clone()),
                            (Occur::Must, visible.box_clone()),
                        ]),
                    );
                let raw = tokens(prefix_analyzer, &text);
                if let (false, [w]) = (known, raw.as_slice()) {
                    let n = w.chars().count();
                    let distance = match n {
                        0..=3 => 0,
                        4..=7 => 1,
                        _ => 2,
                    };
                    if distance > 0 {
                        let fq =
                            FuzzyTermQuery::new(Term::from_field_text(f.words, w), distance, true);
                        if exists(
                            searcher,
                            &BooleanQuery::new(vec![
                                (Occur::Must, Box::new(fq.clone()) as Box<dyn Query>),
                                (Occur::Must, visible.box_clone()),
                            ]),
                        ) {
                            fuzzy_words += 1;
                        }
                        alts.push((Occur::Should, Box::new(BoostQuery::new(Box::new(fq), 1.0))));
                    }
                }
                // As-you-type: a last word that is not a whole word of any
                // readable article is still being typed: it also matches as
                // a prefix of title words, and of any word when it is long
                // enough that the expansion stays small. (Whole words skip
                // this: expanding "select" to every title word starting with
                // it would cost more than it finds.)
                if last && !known {
                    if let [p] = raw.as_slice() {
                        if p.chars().count() >= 2 {
                            let pq = FuzzyTermQuery::new_prefix(
                                Term::from_field_text(f.title_prefix, p),
                                0,
                                false,
                            );
                            alts.push((
                                Occur::Should,
                                Box::new(BoostQuery::new(Box::new(pq), title_boost)),
                            ));
                        }
                        if p.chars().count() >= 4 {
                            let pq = FuzzyTermQuery::new_prefix(
                                Term::from_field_text(f.words, p),
                                0,
                                false,
                            );
                            alts.push((
                                Occur::Should,
                                Box::new(BoostQuery::new(Box::new(pq), 1.0)),
                            ));
                        }
                    }
                }
                match alts.len() {
                    0 => {}
                    1 => required.push(alts.pop().expect("one clause").1),
                    _ => required.push(Box::new(BooleanQuery::new(alts))),
                }
            }
        }
    }
    if required.is_empty() {
        return TextQuery {
            query: None,
            fuzzy_words,
            highlight,
        };
    }
    let occur = match mode {
        MatchMode::All => Occur::Must,
        MatchMode::Any => Occur::Should,
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> =
        required.into_iter().map(|c| (occur, c)).collect();
    // Boosts are optional: they only add to the score of documents that
    // matched the required words.
    clauses.extend(boosts.into_iter().map(|b| (Occur::Should, b)));
    TextQuery {
        query: Some(Box::new(BooleanQuery::new(clauses))),
        fuzzy_words,
        highlight,
    }
}

/// The permission clause: what this principal may see, and which of an
/// article's section views (see [`super::sections`]).
/// Mirrors [`Principal::can_read`]: the audience must admit the caller, and
/// the article must be live, owned by the caller, or in review for a
/// reviewer.
pub(crate) fn permission_clause(f: &Fields, p: &Principal) -> Option<Box<dyn Query>> {
    if p.is_admin() {
        // Admins read everything, through the complete view of each article.
        return Some(super::sections::clause(f, p));
    }
    let terms = p.audience_terms();
    let terms: Vec<&str> = terms.iter().map(String::as_str).collect();
    let audience = any_of(f.audience, &terms);
    let mut visible: Vec<(Occur, Box<dyn Query>)> = vec![(
        Occur::Should,
        any_of(
            f.status,
            &[Status::Published.as_str(), Status::NeedsUpdate.as_str()],
        ),
    )];
    if p.is_signed_in() {
        visible.push((Occur::Should, term_q(f.owner, &p.username)));
    }
    if p.has(Permission::ArticlePublish) {
        visible.push((Occur::Should, term_q(f.status, Status::InReview.as_str())));
    }
    Some(Box::new(BooleanQuery::new(vec![
        (Occur::Must, audience),
        (Occur::Must, Box::new(BooleanQuery::new(visible))),
        (Occur::Must, super::sections::clause(f, p)),
    ])))
}

fn date_range(
    field: Field,
    lo: &Bound<chrono::DateTime<chrono::Utc>>,
    hi: &Bound<chrono::DateTime<chrono::Utc>>,
) -> Box<dyn Query> {
    let conv = |b: &Bound<chrono::DateTime<chrono::Utc>>| match b {
        Bound::Included(t) => Bound::Included(Term::from_field_date(field, to_tantivy_date(*t))),
        Bound::Excluded(t) => Bound::Excluded(Term::from_field_date(field, to_tantivy_date(*t))),
        Bound::Unbounded => Bound::Unbounded,
    };
    Box::new(RangeQuery::new(conv(lo), conv(hi)))
}

/// Identifies what a caller may see: the inputs of the permission clause
/// (audience terms, owner, reviewer flag). Callers with equal keys see the
/// same articles, so caches of per-caller results key on it.
pub(crate) fn caller_key(principal: &Principal) -> String {
    let mut terms = principal.audience_terms();
    terms.sort();
    format!(
        "aud={};owner={};rev={}",
        terms.join(","),
        if principal.is_signed_in() {
            principal.username.as_str()
        } else {
            ""
        },
        principal.has(Permission::ArticlePublish)
    )
}

/// What the caller can see at all: the permission clause and, without a
/// status filter, live articles only — as a cached filter (see
/// [`super::filter`]). Used in every query and to decide typo tolerance.
pub(crate) fn visibility(
    f: &Fields,
    principal: &Principal,
    filters: &[Filter],
    cache: &Arc<FilterCache>,
) -> Box<dyn Query> {
    let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let mut key = String::new();
    if let Some(p) = permission_clause(f, principal) {
        must.push((Occur::Must, p));
        key = caller_key(principal);
    }
    if !filters.iter().any(|x| matches!(x, Filter::Status(_))) {
        must.push((Occur::Must, live_clause(f)));
        key.push_str(";live");
    }
    if must.is_empty() {
        return Box::new(AllQuery);
    }
    Box::new(CachedFilter {
        key,
        inner: Box::new(BooleanQuery::new(must)),
        cache: cache.clone(),
    })
}

fn live_clause(f: &Fields) -> Box<dyn Query> {
    any_of(
        f.status,
        &[Status::Published.as_str(), Status::NeedsUpdate.as_str()],
    )
}

/// Combines text, the visibility filter and the caller's filters into the
/// final query.
pub(crate) fn assemble(
    f: &Fields,
    visible: &dyn Query,
    text: Option<Box<dyn Query>>,
    filters: &[Filter],
) -> Box<dyn Query> {
    let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    must.push((Occur::Must, text.unwrap_or_else(|| Box::new(AllQuery))));
    must.push((Occur::Must, visible.box_clone()));
    let mut sorted: Vec<&Filter> = filters.iter().collect();
    sorted.sort_by_key(|x| x.key());
    for group in sorted.chunk_by(|a, b| a.key() == b.key()) {
        let ors: Vec<(Occur, Box<dyn Query>)> = group
            .iter()
            .map(|flt| {
                let q: Box<dyn Query> = match flt {
                    Filter::Category(v) => term_q(f.category, v),
                    Filter::Tag(v) => term_q(f.tags, v),
                    Filter::Status(s) => term_q(f.status, s.as_str()),
                    Filter::Audience(v) => term_q(f.audience, v),
                    Filter::UpdatedAt(lo, hi) => date_range(f.updated_at, lo, hi),
                    Filter::PublishedAt(lo, hi) => date_range(f.published_at, lo, hi),
                };
                (Occur::Should, q)
            })
            .collect();
        // Ranges on the same field intersect (>= a AND < b); values OR.
        let occur_all = matches!(group[0], Filter::UpdatedAt(..) | Filter::PublishedAt(..));
        let q: Box<dyn Query> = if occur_all {
            Box::new(BooleanQuery::new(
                ors.into_iter().map(|(_, q)| (Occur::Must, q)).collect(),
            ))
        } else {
            Box::new(BooleanQuery::new(ors))
        };
        must.push((Occur::Must, zero_weight(q)));
    }
    Box::new(BooleanQuery::new(must))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_words_are_sorted_lowercase() {
        assert!(FUNCTION_WORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(FUNCTION_WORDS.iter().all(|w| *w == w.to_lowercase()));
    }

    #[test]
    fn questions_lose_their_function_words_but_not_their_topic() {
        let words = |q: &str| -> Vec<String> {
            without_function_words(split_pieces(q))
                .into_iter()
                .map(|p| match p {
                    Piece::Word { text, .. } => text,
                    Piece::Phrase(t) => format!("\"{t}\""),
                })
                .collect()
        };
        assert_eq!(
            words("How do I stop my table from growing?"),
            ["stop", "table", "growing?"]
        );
        assert_eq!(words("what is \"the end\""), ["\"the end\""]);
        // Nothing but function words: searched as written.
        assert_eq!(words("how do I"), ["how", "do", "I"]);
        // Words that are also names keep their meaning.
        assert_eq!(words("why did the US enter ww1"), ["US", "enter", "ww1"]);
    }

    #[test]
    fn pieces_split_words_phrases_and_last_word() {
        let p = split_pieces(r#"offer "in compromise" abat"#);
        assert_eq!(
            p,
            vec![
                Piece::Word {
                    text: "offer".into(),
                    last: false
                },
                Piece::Phrase("in compromise".into()),
                Piece::Word {
                    text: "abat".into(),
                    last: true
                },
            ]
        );
        let p = split_pieces("levy ");
        assert_eq!(
            p,
            vec![Piece::Word {
                text: "levy".into(),
                last: false
            }]
        );
        assert_eq!(
            split_pieces(r#""unclosed phrase"#),
            vec![Piece::Phrase("unclosed phrase".into())]
        );
    }
}
