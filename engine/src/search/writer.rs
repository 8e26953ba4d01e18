//! Writing a generation: applying article changes, committing them with
//! the outbox sequence they cover, and merging segments.

use std::sync::Arc;

use tantivy::{IndexWriter, Term};

use super::{schema, Generation, Payload, SCHEMA_VERSION};
use crate::error::{Error, Result};
use crate::model::{Article, ArticleId};

/// The writer of one generation: applies article changes and commits them
/// together with the outbox sequence they cover.
pub struct IndexUpdater {
    pub(super) gen: Arc<Generation>,
    pub(super) writer: IndexWriter,
}

impl IndexUpdater {
    /// Replaces (or adds) an article's documents.
    pub fn upsert(&mut self, a: &Article) -> Result<()> {
        let f = &self.gen.fields;
        self.writer
            .delete_term(Term::from_field_u64(f.id, a.id as u64));
        for doc in schema::to_documents(f, a) {
            self.writer.add_document(doc)?;
        }
        Ok(())
    }

    /// Removes an article's documents (no-op when absent).
    pub fn delete(&mut self, id: ArticleId) {
        self.writer
            .delete_term(Term::from_field_u64(self.gen.fields.id, id as u64));
    }

    /// Commits everything applied so far as covering outbox sequence `seq`,
    /// and makes it visible to searches.
    pub fn commit(&mut self, seq: i64) -> Result<()> {
        let payload = serde_json::to_string(&Payload {
            seq,
            schema: SCHEMA_VERSION,
        })
        .map_err(|e| Error::Corrupt(e.to_string()))?;
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.gen.reader.reload()?;
        Ok(())
    }

    /// Merges every segment into one (after a full rebuild, before the
    /// generation goes live): fewer segments mean less per-segment work in
    /// every query, and a rebuilt index is read far more than written.
    pub fn optimize(&mut self) -> Result<()> {
        let ids = self.gen.index.searchable_segment_ids()?;
        if ids.len() > 1 {
            self.writer.merge(&ids).wait()?;
            self.gen.reader.reload()?;
        }
        Ok(())
    }

    /// Starts merging every segment into one in the background (tantivy's
    /// merge threads) when there are more than `max_segments`; the writer
    /// keeps accepting changes meanwhile. Wait on the handle to make the
    /// merged segment visible.
    pub fn start_merge(&mut self, max_segments: usize) -> Result<Option<MergeHandle>> {
        let ids = self.gen.index.searchable_segment_ids()?;
        if ids.len() <= max_segments {
            return Ok(None);
        }
        Ok(Some(MergeHandle {
            future: self.writer.merge(&ids),
            gen: self.gen.clone(),
        }))
    }

    /// The outbox sequence this generation's last commit covers.
    pub fn checkpoint(&self) -> Result<i64> {
        Ok(self.gen.payload()?.seq)
    }

    /// Id of the generation this updater writes.
    pub fn generation(&self) -> u64 {
        self.gen.id
    }
}

/// A background merge started by [`IndexUpdater::start_merge`].
pub struct MergeHandle {
    future: tantivy::FutureResult<Option<tantivy::index::SegmentMeta>>,
    gen: Arc<Generation>,
}

impl MergeHandle {
    /// Blocks until the merge is done and makes its result visible. A merge
    /// that lost a race with a commit deleting the same segments fails
    /// harmlessly.
    pub fn wait(self) -> Result<()> {
        self.future.wait()?;
        self.gen.reader.reload()?;
        Ok(())
    }
}
