//! As-you-type suggestions (`GET /v1/suggest`) and did-you-mean.
//!
//! Candidates come from finite-state maps (the `fst` crate) built from the
//! index, one set per segment: the unstemmed indexed words (the `words`
//! field) with their document frequencies, the normalized titles, and a
//! title word → titles map so that any title word can be completed.
//! Searches run over every segment's maps and add frequencies up. The last
//! word of the query is completed as a prefix and, when long enough,
//! through a Levenshtein automaton (typos).
//!
//! Per-segment maps make refreshing cheap: segments are immutable, so after
//! a commit only the new segments are read, and deletes are checked against
//! the current alive bits at query time. The maps are refreshed lazily, at
//! most every [`REFRESH`], and a slightly stale set is served meanwhile.
//!
//! The maps are not per caller: they hold words and titles of articles the
//! caller may not read. That is why every candidate is verified against
//! the caller's visibility clause with a tantivy query before it is
//! returned, in rank order, until enough are found. The same verification
//! makes stale maps harmless: a word or title that is gone, or no longer
//! readable, simply fails verification.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::time::Duration;

use fst::automaton::{Levenshtein, Str};
use fst::Automaton;
use serde::{Deserialize, Serialize};
use tantivy::index::SegmentId;
use tantivy::query::{BooleanQuery, EnableScoring, Occur, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocAddress, Searcher, SegmentReader, TantivyDocument, Term, TERMINATED};
use utoipa::ToSchema;

mod maps;

pub(super) use maps::SuggestCache;
use maps::*;

use super::request::{MAX_QUERY_BYTES, MAX_QUERY_WORDS};
use super::schema::Fields;
use super::{query, SearchIndex};
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::model::ArticleId;

/// Most suggestions one request may ask for.
pub const MAX_SUGGEST_LIMIT: usize = 20;
/// Longest query text (bytes) accepted for suggestions.
pub const MAX_SUGGEST_QUERY_BYTES: usize = 100;

/// Youngest age at which a map built from an older index state is rebuilt:
/// commits arrive every few hundred milliseconds under load, and a rebuild
/// per commit would cost more than the staleness it avoids (verification
/// keeps a stale map correct).
const REFRESH: Duration = Duration::from_secs(2);
/// Verifications per kind (titles, words) per returned suggestion: bounds
/// the work when many top candidates are unreadable to the caller.
const VERIFY_FACTOR: usize = 5;
/// Most keys streamed from one map search (a one-letter prefix of a large
/// vocabulary matches tens of thousands).
const SCAN_CAP: usize = 200_000;
/// Most titles gathered as candidates per search.
const TITLE_SCAN_CAP: usize = 10_000;
/// Longest word (chars) given typo tolerance: automaton construction grows
/// with the word, and long words are rarely typed wrong twice.
const FUZZY_MAX_CHARS: usize = 24;
/// State limit of a Levenshtein automaton (fst's default, 10 000, can take
/// tens of megabytes); past it the word simply gets no typo tolerance.
const LEV_STATE_LIMIT: usize = 5_000;
/// Spare candidates fetched so that dropping stop words (about 30 in
/// English) still leaves enough.
const STOP_WORD_MARGIN: usize = 40;
/// Candidates checked per unknown word in did-you-mean.
const DYM_VERIFY: usize = 20;

/// What a suggestion completes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SuggestionKind {
    /// The title of an article the caller may read.
    Title,
    /// The query with its last word completed to an indexed word.
    Term,
}

/// One as-you-type suggestion.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Suggestion {
    /// The text to show: an article title, or the query with its last word
    /// completed (earlier words kept as typed).
    pub text: String,
    /// Title or term.
    pub kind: SuggestionKind,
    /// The article, for title suggestions.
    pub article_id: Option<ArticleId>,
    /// The article's slug, for title suggestions.
    pub slug: Option<String>,
    /// Ordering score, higher first. The integer part is the tier: 3 title
    /// with a word starting with what was typed, 2 word starting with it, 1
    /// title through a near spelling, 0 word through a near spelling; the
    /// fraction orders within a tier. Deliberately not a document count:
    /// counts would include articles the caller may not read.
    pub score: f32,
}

/// Checks candidates against what the caller may read.
struct Verifier<'a> {
    searcher: &'a Searcher,
    f: &'a Fields,
    visible: Box<dyn Query>,
}

impl Verifier<'_> {
    /// The first live document matching `q` and the visibility clause.
    fn first_visible(&self, q: Box<dyn Query>) -> Result<Option<DocAddress>> {
        let q = BooleanQuery::new(vec![
            (Occur::Must, q),
            (Occur::Must, self.visible.box_clone()),
        ]);
        let weight = q.weight(EnableScoring::disabled_from_searcher(self.searcher))?;
        for (ord, seg) in self.searcher.segment_readers().iter().enumerate() {
            let mut scorer = weight.scorer(seg, 1.0)?;
            let alive = seg.alive_bitset();
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    return Ok(Some(DocAddress::new(ord as u32, doc)));
                }
                doc = scorer.advance();
            }
        }
        Ok(None)
    }

    /// Whether an article the caller may read contains `word`.
    fn word_visible(&self, word: &str) -> Result<bool> {
        let q = TermQuery::new(
            Term::from_field_text(self.f.words, word),
            IndexRecordOption::Basic,
        );
        Ok(self.first_visible(Box::new(q))?.is_some())
    }

    /// The article's title and slug, if the caller may read it.
    fn article(&self, id: ArticleId) -> Result<Option<(String, String)>> {
        let q = TermQuery::new(
            Term::from_field_u64(self.f.id, id as u64),
            IndexRecordOption::Basic,
        );
        let Some(addr) = self.first_visible(Box::new(q))? else {
            return Ok(None);
        };
        let doc: TantivyDocument = self.searcher.doc(addr)?;
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        Ok(Some((text(self.f.title), text(self.f.slug))))
    }
}

/// How the last typed word is matched against title words and indexed words.
struct LastWord<'q> {
    text: &'q str,
    /// Still being typed (nothing follows it): match as a prefix.
    typing: bool,
    fuzzy: Option<Levenshtein>,
}

impl LastWord<'_> {
    fn exact(&self, w: &str) -> bool {
        if self.typing {
            w.starts_with(self.text)
        } else {
            w == self.text
        }
    }

    fn near(&self, w: &str) -> bool {
        match &self.fuzzy {
            Some(lev) if self.typing => accepts(&lev.starts_with(), w.as_bytes()),
            Some(lev) => accepts(&lev, w.as_bytes()),
            None => false,
        }
    }
}

/// Tier bases of [`Suggestion::score`].
const TIER_TITLE: f32 = 3.0;
const TIER_TERM: f32 = 2.0;
const TIER_TITLE_FUZZY: f32 = 1.0;
const TIER_TERM_FUZZY: f32 = 0.0;

/// A score within a tier: the tier plus a fraction falling with the rank.
fn tier_score(tier: f32, rank: usize) -> f32 {
    tier + 1.0 / (2.0 + rank as f32)
}

impl SearchIndex {
    /// As-you-type suggestions for `q` as `principal`: titles of readable
    /// articles with a word starting with the last word typed (the other
    /// words in the title too), and the query with its last word completed
    /// to words of readable articles, most frequent first; near spellings
    /// of the last word (4+ chars) after exact prefixes. At most `limit`
    /// (1..=[`MAX_SUGGEST_LIMIT`]); titles take at most half of them when
    /// there are enough words. CPU-bound: call it from a blocking thread.
    pub fn suggest(&self, principal: &Principal, q: &str, limit: usize) -> Result<Vec<Suggestion>> {
        if q.trim().is_empty() {
            return Err(Error::invalid("q", "must not be empty"));
        }
        if q.len() > MAX_SUGGEST_QUERY_BYTES {
            return Err(Error::invalid(
                "q",
                format!("must be at most {MAX_SUGGEST_QUERY_BYTES} bytes"),
            ));
        }
        if !(1..=MAX_SUGGEST_LIMIT).contains(&limit) {
            return Err(Error::invalid(
                "limit",
                format!("must be in 1..={MAX_SUGGEST_LIMIT}"),
            ));
        }
        let gen = self.current.load_full();
        let mut analyzer = gen.prefix_analyzer.clone();
        let words = words_of(&mut analyzer, q);
        let Some((last, earlier)) = words.split_last() else {
            return Ok(Vec::new());
        };
        let searcher = gen.reader.searcher();
        let maps = gen
            .suggest
            .get(&searcher, &gen.fields, &gen.prefix_analyzer)?;
        let verifier = Verifier {
            searcher: &searcher,
            f: &gen.fields,
            visible: query::visibility(&gen.fields, principal, &[], &gen.filters),
        };
        let lw = LastWord {
            text: &last.text,
            typing: last.to == q.len(),
            fuzzy: levenshtein(&last.text, max_distance(&last.text)),
        };
        let budget = VERIFY_FACTOR * limit;

        // Titles.
        let q_norm = words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let has_earlier = |norm: &str| earlier.iter().all(|e| norm.split(' ').any(|w| w == e.text));
        let readers: HashMap<SegmentId, &SegmentReader> = searcher
            .segment_readers()
            .iter()
            .map(|r| (r.segment_id(), r))
            .collect();
        // Candidates as (does not start with the query, words, title, id):
        // titles starting with the whole query first, then shorter ones.
        let mut exact: Vec<(bool, usize, &str, ArticleId)> = Vec::new();
        let mut fuzzy: Vec<(bool, usize, &str, ArticleId)> = Vec::new();
        for (segment, part) in &maps.parts {
            let reader = readers.get(segment);
            let starts: HashSet<u32> = part.titles_starting_with(&q_norm).into_iter().collect();
            let mut ex = if lw.typing {
                part.titles_with_word(Str::new(lw.text).starts_with())
            } else {
                part.titles_with_word(Str::new(lw.text))
            };
            ex.extend(starts.iter().copied());
            ex.sort_unstable();
            ex.dedup();
            let fz = match &lw.fuzzy {
                Some(lev) if lw.typing => part.titles_with_word(lev.starts_with()),
                Some(lev) => part.titles_with_word(lev),
                None => Vec::new(),
            };
            let keep = |i: &u32| {
                let e = part.entries.get(*i as usize)?;
                // Deleted since the maps were built. (A segment merged away
                // since cannot be checked here; verification catches it.)
                if reader.is_some_and(|r| r.is_deleted(e.doc)) || !has_earlier(&e.norm) {
                    return None;
                }
                Some((
                    !starts.contains(i),
                    e.norm.split(' ').count(),
                    &*e.norm,
                    e.id,
                ))
            };
            exact.extend(ex.iter().filter_map(keep));
            fuzzy.extend(fz.iter().filter_map(keep));
        }
        exact.sort_unstable();
        fuzzy.sort_unstable();
        let exact_ids: HashSet<ArticleId> = exact.iter().map(|c| c.3).collect();
        fuzzy.retain(|c| !exact_ids.contains(&c.3));

        let mut titles: Vec<Suggestion> = Vec::new();
        let mut seen_ids = HashSet::new();
        let mut checks = 0;
        for (tier, list) in [(TIER_TITLE, &exact), (TIER_TITLE_FUZZY, &fuzzy)] {
            let mut n = 0;
            for &(_, _, _, id) in list.iter() {
                if titles.len() >= limit || checks >= budget {
                    break;
                }
                if !seen_ids.insert(id) {
                    continue;
                }
                checks += 1;
                let Some((title, slug)) = verifier.article(id)? else {
                    continue;
                };
                // The maps may be older than the searcher: the article's
                // current title must still match.
                let norm = normalize(&mut analyzer, &title);
                if !(has_earlier(&norm) && norm.split(' ').any(|w| lw.exact(w) || lw.near(w))) {
                    continue;
                }
                titles.push(Suggestion {
                    text: title,
                    kind: SuggestionKind::Title,
                    article_id: Some(id),
                    slug: Some(slug),
                    score: tier_score(tier, n),
                });
                n += 1;
            }
        }

        // Words: only a word still being typed is completed.
        let mut terms: Vec<Suggestion> = Vec::new();
        if lw.typing {
            let head = &q[..last.from];
            let mut stop = gen.analyzer.clone();
            let mut is_stop_word = |w: &str| words_of(&mut stop, w).is_empty();
            let want = budget + STOP_WORD_MARGIN;
            let prefix = Str::new(lw.text).starts_with();
            let exact_terms = top_terms(&maps, &prefix, want, |_| false);
            let fuzzy_terms = match &lw.fuzzy {
                Some(lev) => top_terms(&maps, &lev.starts_with(), want, |k| {
                    k.starts_with(lw.text.as_bytes())
                }),
                None => Vec::new(),
            };
            let mut checks = 0;
            let mut seen = HashSet::new();
            for (tier, list) in [(TIER_TERM, exact_terms), (TIER_TERM_FUZZY, fuzzy_terms)] {
                let mut n = 0;
                for (word, _) in list {
                    if terms.len() >= limit || checks >= budget {
                        break;
                    }
                    if is_stop_word(&word) || !seen.insert(word.clone()) {
                        continue;
                    }
                    checks += 1;
                    if !verifier.word_visible(&word)? {
                        continue;
                    }
                    terms.push(Suggestion {
                        text: format!("{head}{word}"),
                        kind: SuggestionKind::Term,
                        article_id: None,
                        slug: None,
                        score: tier_score(tier, n),
                    });
                    n += 1;
                }
            }
        }

        // Titles get at most half of the slots unless words cannot fill
        // the rest: both kinds stay in view as the user types.
        let n_titles = titles
            .len()
            .min(limit.div_ceil(2).max(limit.saturating_sub(terms.len())));
        titles.truncate(n_titles);
        let mut out = titles;
        let mut texts: HashSet<String> = out.iter().map(|s| s.text.to_lowercase()).collect();
        for t in terms {
            if out.len() >= limit {
                break;
            }
            if texts.insert(t.text.to_lowercase()) {
                out.push(t);
            }
        }
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(out)
    }

    /// Builds the suggestion maps now if they are missing, so the first
    /// request after a start does not wait for them. CPU-bound.
    pub fn warm_suggestions(&self) -> Result<()> {
        let gen = self.current.load_full();
        let searcher = gen.reader.searcher();
        gen.suggest
            .get(&searcher, &gen.fields, &gen.prefix_analyzer)
            .map(|_| ())
    }

    /// A corrected query when `q` has words no article `principal` may read
    /// contains: each such word is replaced by the most frequent readable
    /// word within edit distance 1 (words of 4–7 chars) or 1, then 2 (8+).
    /// `None` when nothing needs correcting or some word cannot be
    /// corrected. Text between words (punctuation, quotes) is kept.
    pub fn did_you_mean(&self, principal: &Principal, q: &str) -> Result<Option<String>> {
        if q.trim().is_empty() || q.len() > MAX_QUERY_BYTES {
            return Ok(None);
        }
        let gen = self.current.load_full();
        let mut analyzer = gen.prefix_analyzer.clone();
        let words = words_of(&mut analyzer, q);
        if words.is_empty() || words.len() > MAX_QUERY_WORDS {
            return Ok(None);
        }
        let searcher = gen.reader.searcher();
        let verifier = Verifier {
            searcher: &searcher,
            f: &gen.fields,
            visible: query::visibility(&gen.fields, principal, &[], &gen.filters),
        };
        let mut maps = None;
        let mut out = String::new();
        let mut pos = 0;
        for w in &words {
            if verifier.word_visible(&w.text)? {
                continue;
            }
            if maps.is_none() {
                maps = Some(
                    gen.suggest
                        .get(&searcher, &gen.fields, &gen.prefix_analyzer)?,
                );
            }
            let Some(m) = maps.as_deref() else {
                return Ok(None);
            };
            let Some(fix) = correction(m, &verifier, &w.text)? else {
                return Ok(None);
            };
            out.push_str(&q[pos..w.from]);
            out.push_str(&fix);
            pos = w.to;
        }
        if maps.is_none() {
            return Ok(None);
        }
        out.push_str(&q[pos..]);
        Ok(Some(out))
    }
}

/// The most frequent readable word near `word` (distance 1 first, then 2).
fn correction(maps: &SuggestMaps, verifier: &Verifier<'_>, word: &str) -> Result<Option<String>> {
    for distance in 1..=max_distance(word) {
        let Some(lev) = levenshtein(word, distance) else {
            continue;
        };
        let candidates = top_terms(maps, &lev, DYM_VERIFY, |k| k == word.as_bytes());
        for (candidate, _) in candidates {
            if verifier.word_visible(&candidate)? {
                return Ok(Some(candidate));
            }
        }
    }
    Ok(None)
}
