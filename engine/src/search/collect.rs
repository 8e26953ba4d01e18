//! Collectors and hit presentation: facet counts and highlighted snippets.

use std::collections::HashMap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::snippet::Snippet;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

/// Counts the values of string fast fields over the matching documents.
/// Runs in the same pass as the top-k collector, so counts describe exactly
/// the permission-filtered hit set.
pub(crate) struct FacetCounts {
    pub fields: Vec<&'static str>,
}

pub(crate) struct FacetSegment {
    columns: Vec<Option<StrColumn>>,
    counts: Vec<Vec<u32>>,
}

/// Per field, value → count.
pub(crate) type FacetFruit = Vec<HashMap<String, u64>>;

impl Collector for FacetCounts {
    type Fruit = FacetFruit;
    type Child = FacetSegment;

    fn for_segment(
        &self,
        _ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<FacetSegment> {
        let mut columns = Vec::with_capacity(self.fields.len());
        let mut counts = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            let col = reader.fast_fields().str(f)?;
            counts.push(vec![0; col.as_ref().map_or(0, |c| c.num_terms())]);
            columns.push(col);
        }
        Ok(FacetSegment { columns, counts })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<FacetFruit>) -> tantivy::Result<FacetFruit> {
        let mut out: FacetFruit = vec![HashMap::new(); self.fields.len()];
        for fruit in fruits {
            for (i, m) in fruit.into_iter().enumerate() {
                for (k, v) in m {
                    *out[i].entry(k).or_default() += v;
                }
            }
        }
        Ok(out)
    }
}

impl SegmentCollector for FacetSegment {
    type Fruit = FacetFruit;

    fn collect(&mut self, doc: DocId, _score: Score) {
        for (col, counts) in self.columns.iter().zip(self.counts.iter_mut()) {
            if let Some(col) = col {
                for ord in col.term_ords(doc) {
                    counts[ord as usize] += 1;
                }
            }
        }
    }

    fn harvest(self) -> FacetFruit {
        let mut out = Vec::with_capacity(self.columns.len());
        for (col, counts) in self.columns.into_iter().zip(self.counts) {
            let mut m = HashMap::new();
            if let Some(col) = col {
                let mut s = String::new();
                for (ord, n) in counts.into_iter().enumerate() {
                    if n > 0 && col.ord_to_str(ord as u64, &mut s).unwrap_or(false) {
                        m.insert(s.clone(), n as u64);
                    }
                }
            }
            out.push(m);
        }
        out
    }
}

/// Collects every matching document's article id, address and score
/// (scoring only when asked): the allowed set of a vector search, and the
/// lexical scores of a hybrid union.
pub(crate) struct Ids {
    pub scoring: bool,
}

pub(crate) struct IdsSegment {
    ord: SegmentOrdinal,
    ids: Option<tantivy::columnar::Column<u64>>,
    out: Vec<(i64, tantivy::DocAddress, Score)>,
}

impl Collector for Ids {
    type Fruit = Vec<(i64, tantivy::DocAddress, Score)>;
    type Child = IdsSegment;

    fn for_segment(
        &self,
        ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<IdsSegment> {
        Ok(IdsSegment {
            ord,
            ids: Some(reader.fast_fields().u64("id")?),
            out: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.scoring
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for IdsSegment {
    type Fruit = Vec<(i64, tantivy::DocAddress, Score)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if let Some(id) = self.ids.as_ref().and_then(|c| c.first(doc)) {
            self.out
                .push((id as i64, tantivy::DocAddress::new(self.ord, doc), score));
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.out
    }
}

/// Renders a snippet as HTML: the text escaped, matches in `<mark>`.
pub(crate) fn snippet_html(s: &Snippet) -> String {
    let frag = s.fragment();
    let mut out = String::with_capacity(frag.len() + 32);
    let mut pos = 0;
    for r in s.highlighted() {
        if r.start < pos || r.end > frag.len() {
            continue;
        }
        escape_into(&mut out, &frag[pos..r.start]);
        out.push_str("<mark>");
        escape_into(&mut out, &frag[r.start..r.end]);
        out.push_str("</mark>");
        pos = r.end;
    }
    escape_into(&mut out, &frag[pos..]);
    out
}

/// The stretch of `text` around the earliest word starting with one of
/// `stems` (ASCII case-insensitive), about `len` bytes long, on character
/// boundaries. `None` when no stem occurs.
pub(crate) fn match_window<'a>(text: &'a str, stems: &[String], len: usize) -> Option<&'a str> {
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut first: Option<usize> = None;
    for stem in stems.iter().filter(|s| s.len() >= 2) {
        let mut from = 0;
        while let Some(i) = lower[from..].find(stem.as_str()) {
            let pos = from + i;
            if pos == 0 || !bytes[pos - 1].is_ascii_alphanumeric() {
                first = Some(first.map_or(pos, |f: usize| f.min(pos)));
                break;
            }
            from = pos + stem.len();
            if first.is_some_and(|f| from > f) {
                break;
            }
        }
    }
    let pos = first?;
    let mut start = pos.saturating_sub(len / 5);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (pos + len).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    Some(&text[start..end])
}

/// HTML-escapes text.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The first `max` characters of `text`, cut at a word boundary, escaped.
pub(crate) fn lead_html(text: &str, max: usize) -> String {
    let mut cut: String = text.chars().take(max).collect();
    if cut.len() < text.len() {
        if let Some(i) = cut.rfind(char::is_whitespace) {
            cut.truncate(i);
        }
        cut.push('…');
    }
    let mut out = String::new();
    escape_into(&mut out, cut.trim());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_surrounds_the_first_word_match() {
        let text = "aaa ".repeat(100) + "Configuration here, and café configur";
        let w = match_window(&text, &["configur".into()], 50).unwrap();
        assert!(w.contains("Configuration"));
        assert!(w.len() <= 60);
        assert!(match_window("reconfigure only", &["configur".into()], 50).is_none());
        assert!(match_window("x", &[], 50).is_none());
    }

    #[test]
    fn lead_cuts_at_words_and_escapes() {
        assert_eq!(lead_html("a <b> c d", 6), "a &lt;b&gt;…");
        assert_eq!(lead_html("short", 100), "short");
    }
}
