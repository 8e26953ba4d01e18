//! A cached filter: the visibility clause (permissions and status) as a
//! bit set per segment.
//!
//! Every query carries the caller's visibility clause, and few distinct
//! clauses exist (one per combination of audience terms, owner and
//! reviewer flag). Evaluating it means walking unions of long posting lists
//! for every query; caching its result per segment turns it into a bit set
//! that intersections probe in constant time. Segments are immutable (deletes
//! only flip the alive bits, which the collector checks anyway), so a cached
//! set never goes stale; a new segment simply gets its own entry.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tantivy::index::SegmentId;
use tantivy::query::{
    BitSetDocSet, ConstScorer, EnableScoring, Explanation, Query, Scorer, Weight,
};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED};
use tantivy_common::BitSet;

/// Most cached (segment, filter) sets before the cache is cleared.
const MAX_ENTRIES: usize = 512;

/// Bit sets by (segment, filter key).
#[derive(Default)]
pub(crate) struct FilterCache {
    sets: Mutex<HashMap<(SegmentId, String), Arc<BitSet>>>,
}

impl FilterCache {
    fn get_or_compute(
        &self,
        reader: &SegmentReader,
        key: &str,
        compute: impl FnOnce() -> tantivy::Result<BitSet>,
    ) -> tantivy::Result<Arc<BitSet>> {
        let k = (reader.segment_id(), key.to_string());
        if let Some(s) = self.sets.lock().expect("filter cache lock").get(&k) {
            return Ok(s.clone());
        }
        let set = Arc::new(compute()?);
        let mut sets = self.sets.lock().expect("filter cache lock");
        if sets.len() >= MAX_ENTRIES {
            sets.clear();
        }
        sets.insert(k, set.clone());
        Ok(set)
    }
}

/// A query matching what `inner` matches, through the cache, with score 0.
pub(crate) struct CachedFilter {
    pub key: String,
    pub inner: Box<dyn Query>,
    pub cache: Arc<FilterCache>,
}

impl Clone for CachedFilter {
    fn clone(&self) -> Self {
        CachedFilter {
            key: self.key.clone(),
            inner: self.inner.box_clone(),
            cache: self.cache.clone(),
        }
    }
}

impl fmt::Debug for CachedFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CachedFilter({})", self.key)
    }
}

impl Query for CachedFilter {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let schema = enable_scoring.schema();
        Ok(Box::new(CachedFilterWeight {
            key: self.key.clone(),
            inner: self
                .inner
                .weight(EnableScoring::disabled_from_schema(schema))?,
            cache: self.cache.clone(),
        }))
    }
}

struct CachedFilterWeight {
    key: String,
    inner: Box<dyn Weight>,
    cache: Arc<FilterCache>,
}

impl Weight for CachedFilterWeight {
    fn scorer(&self, reader: &SegmentReader, _boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let set = self.cache.get_or_compute(reader, &self.key, || {
            let mut set = BitSet::with_max_value(reader.max_doc());
            let mut scorer = self.inner.scorer(reader, 1.0)?;
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                set.insert(doc);
                doc = scorer.advance();
            }
            Ok(set)
        })?;
        Ok(Box::new(ConstScorer::new(
            BitSetDocSet::from((*set).clone()),
            0.0,
        )))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut s = self.scorer(reader, 1.0)?;
        if s.seek(doc) == doc {
            Ok(Explanation::new("visibility filter", 0.0))
        } else {
            Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} is not visible"
            )))
        }
    }
}
