//! The suggestion maps: per-segment finite-state maps (the `fst` crate) of
//! indexed words with their frequencies, normalized titles and title words,
//! built lazily per index state, and the automaton helpers that search them.
//! What a caller may see is decided by the verifier in the parent module.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fst::automaton::{Levenshtein, Str};
use fst::{Automaton, IntoStreamer, Map, MapBuilder, Streamer};
use rayon::prelude::*;
use tantivy::index::SegmentId;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DocId, Opstamp, Searcher, SegmentReader};

use super::*;
use crate::error::{Error, Result};
use crate::model::ArticleId;

/// Title entry of a segment's maps: a document and its normalized title.
pub(super) struct TitleEntry {
    pub(super) id: ArticleId,
    pub(super) doc: DocId,
    /// Words of the title as the prefix analyzer yields them, joined by
    /// single spaces.
    pub(super) norm: Box<str>,
}

/// Suggestion maps of one segment. Segments are immutable, so these never
/// go stale: a commit only adds segments (whose maps are built then) and
/// deletes only flip alive bits, which are checked at query time.
pub(super) struct SegmentMaps {
    /// Indexed word → document frequency in the segment (deleted
    /// documents included until a merge drops them).
    pub(super) terms: Map<Vec<u8>>,
    /// Normalized title → index of its first entry in `entries` (entries
    /// are sorted, so duplicate titles follow it).
    pub(super) titles: Map<Vec<u8>>,
    /// Title word → `offset << 32 | len` of its entries in `postings`.
    pub(super) title_words: Map<Vec<u8>>,
    /// Indices into `entries`, grouped by title word, ascending per word.
    pub(super) postings: Vec<u32>,
    /// Every document's title, sorted by normalized title.
    pub(super) entries: Vec<TitleEntry>,
}

/// The suggestion maps of one index state: one [`SegmentMaps`] per segment.
/// Searches run on all of them and add up frequencies.
pub(in crate::search) struct SuggestMaps {
    /// The index state (segments and their delete opstamps) built from.
    pub(super) segments: BTreeMap<SegmentId, Option<Opstamp>>,
    pub(super) built_at: Instant,
    pub(super) parts: Vec<(SegmentId, Arc<SegmentMaps>)>,
}

/// The lazily built maps of a generation.
#[derive(Default)]
pub(in crate::search) struct SuggestCache {
    pub(super) current: Mutex<Option<Arc<SuggestMaps>>>,
    /// Held during the first build, so concurrent requests don't all build.
    pub(super) building: Mutex<()>,
    /// A background rebuild is running.
    pub(super) rebuilding: std::sync::atomic::AtomicBool,
}

impl SuggestCache {
    pub(super) fn current(&self) -> Option<Arc<SuggestMaps>> {
        // A panic elsewhere cannot leave the slot half-written (it is one
        // pointer swap), so a poisoned lock still holds a usable value.
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The maps for `searcher`'s index state: the cached ones when they
    /// match it or are younger than [`REFRESH`]; stale ones are served
    /// while one background thread rebuilds them (maps of segments that are
    /// still there are reused; only new segments are read), so a merge or a
    /// commit never makes a request wait for a rebuild. Only the very first
    /// build blocks (the follower warms it up after catching up).
    pub(super) fn get(
        self: &Arc<Self>,
        searcher: &Searcher,
        f: &Fields,
        analyzer: &TextAnalyzer,
    ) -> Result<Arc<SuggestMaps>> {
        let segments = searcher.generation().segments();
        let usable = |m: &SuggestMaps| &m.segments == segments || m.built_at.elapsed() < REFRESH;
        match self.current() {
            Some(m) if usable(&m) => Ok(m),
            Some(m) => {
                if !self
                    .rebuilding
                    .swap(true, std::sync::atomic::Ordering::AcqRel)
                {
                    let (me, searcher, f, analyzer) =
                        (self.clone(), searcher.clone(), *f, analyzer.clone());
                    std::thread::spawn(move || {
                        let previous = me.current();
                        match build_maps(&searcher, &f, &analyzer, previous.as_deref()) {
                            Ok(maps) => {
                                *me.current.lock().unwrap_or_else(|e| e.into_inner()) =
                                    Some(Arc::new(maps));
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "rebuilding the suggestion maps failed")
                            }
                        }
                        me.rebuilding
                            .store(false, std::sync::atomic::Ordering::Release);
                    });
                }
                Ok(m)
            }
            None => {
                let _guard = self.building.lock().unwrap_or_else(|e| e.into_inner());
                // Built by another thread while this one waited for the lock.
                if let Some(m) = self.current() {
                    return Ok(m);
                }
                let maps = Arc::new(build_maps(searcher, f, analyzer, None)?);
                *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(maps.clone());
                Ok(maps)
            }
        }
    }
}

pub(super) fn fst_error(e: fst::Error) -> Error {
    Error::Corrupt(format!("building the suggestion map: {e}"))
}

/// Builds the maps of `searcher`'s segments, reusing those of `previous`
/// for segments it already covered; new segments are read in parallel.
pub(super) fn build_maps(
    searcher: &Searcher,
    f: &Fields,
    analyzer: &TextAnalyzer,
    previous: Option<&SuggestMaps>,
) -> Result<SuggestMaps> {
    let t0 = Instant::now();
    let reuse: HashMap<SegmentId, Arc<SegmentMaps>> = previous
        .map(|p| p.parts.iter().cloned().collect())
        .unwrap_or_default();
    let parts = searcher
        .segment_readers()
        .par_iter()
        .map(|seg| {
            let id = seg.segment_id();
            match reuse.get(&id) {
                Some(m) => Ok((id, m.clone())),
                None => Ok((id, Arc::new(build_segment(seg, f, &mut analyzer.clone())?))),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let took = t0.elapsed();
    tracing::debug!(
        segments = parts.len(),
        built = parts
            .iter()
            .filter(|(id, _)| !reuse.contains_key(id))
            .count(),
        words = parts.iter().map(|(_, p)| p.terms.len()).sum::<usize>(),
        titles = parts.iter().map(|(_, p)| p.entries.len()).sum::<usize>(),
        ms = took.as_secs_f64() * 1000.0,
        "built the suggestion maps"
    );
    Ok(SuggestMaps {
        segments: searcher.generation().segments().clone(),
        built_at: Instant::now(),
        parts,
    })
}

/// Builds one segment's maps.
pub(super) fn build_segment(
    seg: &SegmentReader,
    f: &Fields,
    analyzer: &mut TextAnalyzer,
) -> Result<SegmentMaps> {
    // Words: the term dictionary is already sorted, the order an fst is
    // built in: one pass, no copies of the vocabulary.
    let inverted = seg.inverted_index(f.words)?;
    let mut stream = inverted.terms().stream()?;
    let mut terms = MapBuilder::memory();
    while stream.advance() {
        terms
            .insert(stream.key(), u64::from(stream.value().doc_freq))
            .map_err(fst_error)?;
    }
    let terms = terms.into_map();

    // Titles: from the `title_sort` fast column (lowercased titles), not
    // the document store, which would decompress every body. Each distinct
    // title is normalized once. Deleted documents are kept: alive bits
    // change after the maps are built and are checked at query time.
    let mut entries = Vec::new();
    if let Some(col) = seg.fast_fields().str("title_sort")? {
        let ids = seg.fast_fields().u64("id")?;
        let mut by_ord: Vec<Box<str>> = Vec::with_capacity(col.num_terms());
        let mut stream = col.dictionary().stream()?;
        while stream.advance() {
            let title = String::from_utf8_lossy(stream.key());
            by_ord.push(normalize(analyzer, &title).into_boxed_str());
        }
        for doc in 0..seg.max_doc() {
            let (Some(ord), Some(id)) = (col.term_ords(doc).next(), ids.first(doc)) else {
                continue;
            };
            if let Some(norm) = by_ord.get(ord as usize).filter(|n| !n.is_empty()) {
                entries.push(TitleEntry {
                    id: id as ArticleId,
                    doc,
                    norm: norm.clone(),
                });
            }
        }
    }
    entries.sort_unstable_by(|a, b| a.norm.cmp(&b.norm).then(a.id.cmp(&b.id)));

    let mut titles = MapBuilder::memory();
    let mut pairs: Vec<(&str, u32)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let i = i as u32;
        if i == 0 || entries[i as usize - 1].norm != e.norm {
            titles
                .insert(e.norm.as_bytes(), u64::from(i))
                .map_err(fst_error)?;
        }
        pairs.extend(e.norm.split(' ').map(|w| (w, i)));
    }
    let titles = titles.into_map();
    // A word twice in one title lists the title once.
    pairs.sort_unstable();
    pairs.dedup();
    let mut title_words = MapBuilder::memory();
    let mut postings = Vec::with_capacity(pairs.len());
    for group in pairs.chunk_by(|a, b| a.0 == b.0) {
        let packed = ((postings.len() as u64) << 32) | group.len() as u64;
        title_words.insert(group[0].0, packed).map_err(fst_error)?;
        postings.extend(group.iter().map(|(_, i)| *i));
    }
    let title_words = title_words.into_map();
    Ok(SegmentMaps {
        terms,
        titles,
        title_words,
        postings,
        entries,
    })
}

/// Words of `text` as the `words` field indexes them, joined by spaces.
pub(super) fn normalize(analyzer: &mut TextAnalyzer, text: &str) -> String {
    let mut out = String::new();
    let mut ts = analyzer.token_stream(text);
    ts.process(&mut |t| {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&t.text);
    });
    out
}

/// A word of the query: normalized text and its byte span in the query.
pub(super) struct Word {
    pub(super) text: String,
    pub(super) from: usize,
    pub(super) to: usize,
}

pub(super) fn words_of(analyzer: &mut TextAnalyzer, q: &str) -> Vec<Word> {
    let mut v = Vec::new();
    let mut ts = analyzer.token_stream(q);
    ts.process(&mut |t| {
        v.push(Word {
            text: t.text.clone(),
            from: t.offset_from,
            to: t.offset_to,
        })
    });
    v
}

/// Typo tolerance allowed for a word: none below 4 chars, 1 up to 7, then 2.
pub(super) fn max_distance(word: &str) -> u32 {
    match word.chars().count() {
        0..=3 => 0,
        4..=7 => 1,
        n if n <= FUZZY_MAX_CHARS => 2,
        _ => 0,
    }
}

/// A Levenshtein automaton, or `None` when it would be too large (the word
/// then gets no typo tolerance rather than failing the request).
pub(super) fn levenshtein(word: &str, distance: u32) -> Option<Levenshtein> {
    if distance == 0 {
        return None;
    }
    Levenshtein::new_with_limit(word, distance, LEV_STATE_LIMIT).ok()
}

/// Whether `aut` accepts the whole of `s`.
pub(super) fn accepts<A: Automaton>(aut: &A, s: &[u8]) -> bool {
    let mut state = aut.start();
    for &b in s {
        if !aut.can_match(&state) {
            return false;
        }
        state = aut.accept(&state, b);
    }
    aut.is_match(&state)
}

/// The `k` indexed words matched by `aut` with the highest document
/// frequencies over all segments (ties by word), best first, skipping words
/// for which `skip` is true.
pub(super) fn top_terms<A: Automaton>(
    maps: &SuggestMaps,
    aut: &A,
    k: usize,
    skip: impl Fn(&[u8]) -> bool,
) -> Vec<(String, u64)> {
    // A min-heap of the best k: its top is the worst kept (lowest value,
    // then greatest key).
    let mut heap: BinaryHeap<Reverse<(u64, Reverse<Vec<u8>>)>> = BinaryHeap::new();
    let mut op = fst::map::OpBuilder::new();
    for (_, part) in &maps.parts {
        op.push(part.terms.search(aut));
    }
    let mut stream = op.union();
    let mut scanned = 0;
    while let Some((key, per_segment)) = stream.next() {
        let value: u64 = per_segment.iter().map(|iv| iv.value).sum();
        scanned += 1;
        if scanned > SCAN_CAP {
            break;
        }
        if k == 0 || skip(key) {
            continue;
        }
        if heap.len() < k {
            heap.push(Reverse((value, Reverse(key.to_vec()))));
        } else if let Some(Reverse((worst, Reverse(worst_key)))) = heap.peek() {
            if value > *worst || (value == *worst && key < worst_key.as_slice()) {
                heap.pop();
                heap.push(Reverse((value, Reverse(key.to_vec()))));
            }
        }
    }
    let mut v: Vec<(Vec<u8>, u64)> = heap
        .into_iter()
        .map(|Reverse((value, Reverse(key)))| (key, value))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.into_iter()
        .filter_map(|(k, v)| String::from_utf8(k).ok().map(|s| (s, v)))
        .collect()
}

impl SegmentMaps {
    /// Entries of titles with a word matched by `aut`, ascending (titles in
    /// alphabetical order), at most [`TITLE_SCAN_CAP`].
    pub(super) fn titles_with_word<A: Automaton>(&self, aut: A) -> Vec<u32> {
        let mut out = Vec::new();
        let mut stream = self.title_words.search(aut).into_stream();
        while let Some((_, packed)) = stream.next() {
            let (offset, len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
            if let Some(list) = self.postings.get(offset..offset + len) {
                out.extend_from_slice(list);
            }
            if out.len() >= TITLE_SCAN_CAP {
                break;
            }
        }
        out.sort_unstable();
        out.dedup();
        out.truncate(TITLE_SCAN_CAP);
        out
    }

    /// Entries of titles starting with `prefix` (normalized).
    pub(super) fn titles_starting_with(&self, prefix: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let mut stream = self
            .titles
            .search(Str::new(prefix).starts_with())
            .into_stream();
        while let Some((key, first)) = stream.next() {
            // Duplicate titles follow their first entry.
            let mut i = first as usize;
            while self
                .entries
                .get(i)
                .is_some_and(|e| e.norm.as_bytes() == key)
            {
                out.push(i as u32);
                i += 1;
            }
            if out.len() >= TITLE_SCAN_CAP {
                break;
            }
        }
        out
    }
}
