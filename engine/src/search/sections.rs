//! The section part of the permission clause: which of an article's index
//! documents (one per combination of restricted-section audiences, see
//! [`super::schema::to_documents`]) a caller matches.
//!
//! A caller matches the document whose shown audiences they all hold and
//! whose hidden ones they all lack. "Lacks every hidden one" is a plain
//! term clause (no hidden role among the caller's terms). "Holds every
//! shown one" needs the audiences the caller does *not* hold, which depend
//! on what the index contains: [`SectionMatch`] reads them from each
//! segment's term dictionary (a handful of terms) when the clause is
//! evaluated, which happens once per segment and caller thanks to the
//! visibility filter cache.

use tantivy::query::{
    AllQuery, BooleanQuery, EnableScoring, Explanation, Occur, Query, Scorer, TermQuery,
    TermSetQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption, Schema};
use tantivy::{DocId, DocSet, Score, SegmentReader, Term};

use super::schema::Fields;
use crate::auth::Principal;
use crate::model::sections::Visibility;

/// Matches documents a reader with these audience terms sees (ignoring
/// the owner rule, which [`clause`] adds).
#[derive(Debug, Clone)]
pub(crate) struct SectionMatch {
    show: Field,
    hide: Field,
    terms: Vec<String>,
}

impl Query for SectionMatch {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(SectionMatchWeight {
            q: self.clone(),
            schema: enable_scoring.schema().clone(),
        }))
    }
}

struct SectionMatchWeight {
    q: SectionMatch,
    schema: Schema,
}

impl SectionMatchWeight {
    /// This segment's clause: no shown audience outside the caller's, no
    /// hidden role inside them.
    fn segment_query(&self, reader: &SegmentReader) -> tantivy::Result<BooleanQuery> {
        let visibility = Visibility::Terms(self.q.terms.clone());
        let mut unseen = Vec::new();
        let inverted = reader.inverted_index(self.q.show)?;
        let mut stream = inverted.terms().stream()?;
        while stream.advance() {
            if let Ok(key) = std::str::from_utf8(stream.key()) {
                if !visibility.sees_key(key) {
                    unseen.push(Term::from_field_text(self.q.show, key));
                }
            }
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, Box::new(AllQuery))];
        if !unseen.is_empty() {
            clauses.push((Occur::MustNot, Box::new(TermSetQuery::new(unseen))));
        }
        let held: Vec<Term> = self
            .q
            .terms
            .iter()
            .map(|t| Term::from_field_text(self.q.hide, t))
            .collect();
        clauses.push((Occur::MustNot, Box::new(TermSetQuery::new(held))));
        Ok(BooleanQuery::new(clauses))
    }
}

impl Weight for SectionMatchWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        self.segment_query(reader)?
            .weight(EnableScoring::disabled_from_schema(&self.schema))?
            .scorer(reader, boost)
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut s = self.scorer(reader, 1.0)?;
        if s.seek(doc) == doc {
            Ok(Explanation::new("section visibility", 0.0))
        } else {
            Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} is another reader's view"
            )))
        }
    }
}

fn term(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::Basic,
    ))
}

/// Documents that show every section: what admins and owners read.
fn complete(f: &Fields) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, Box::new(AllQuery)),
        (Occur::MustNot, term(f.sec_partial, "1")),
    ]))
}

/// The section clause for `p`: admins and the article's owner match the
/// complete document, everyone else the one for their audience terms.
pub(crate) fn clause(f: &Fields, p: &Principal) -> Box<dyn Query> {
    if p.is_admin() {
        return complete(f);
    }
    let others = SectionMatch {
        show: f.sec_show,
        hide: f.sec_hide,
        terms: p.audience_terms(),
    };
    if !p.is_signed_in() {
        return Box::new(others);
    }
    let mine = term(f.owner, &p.username);
    Box::new(BooleanQuery::new(vec![
        (
            Occur::Should,
            Box::new(BooleanQuery::new(vec![
                (Occur::Must, mine.box_clone()),
                (Occur::Must, complete(f)),
            ])),
        ),
        (
            Occur::Should,
            Box::new(BooleanQuery::new(vec![
                (Occur::Must, Box::new(others)),
                (Occur::MustNot, mine),
            ])),
        ),
    ]))
}
