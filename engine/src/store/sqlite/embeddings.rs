//! The SQLite store: stored passage embeddings.
//!
//! Embeddings are derived data, keyed by (article, model): no version,
//! audit or outbox row, so a put never wakes followers. It writes under the
//! write lock like every other write (SQLite has one writer anyway), so an
//! article cannot be deleted between the existence check and the upsert of
//! its row; rows of articles already gone are skipped. Ids reach the reads
//! as `IN` lists of at most [`ID_CHUNK`] parameters per statement.

use sqlx::sqlite::SqliteRow;
use sqlx::Row as _;

use super::SqliteStore;
use crate::error::Result;
use crate::model::ArticleId;
use crate::store::common::{check_embeddings, now};
use crate::store::StoredEmbedding;

/// The `embeddings` columns a [`StoredEmbedding`] is read from.
const EMBEDDING_COLS: &str = "article_id, model_id, content_hash, dim, vectors";

/// Most ids bound to one statement, well under SQLite's parameter limit.
const ID_CHUNK: usize = 500;

impl SqliteStore {
    /// See [`super::Store::get_embeddings`]. By article id; an empty `ids`
    /// list runs no query.
    pub async fn get_embeddings(
        &self,
        model_id: &str,
        ids: &[ArticleId],
    ) -> Result<Vec<StoredEmbedding>> {
        // Sorted and deduplicated, so the chunks return each row once and
        // in id order.
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut found = Vec::new();
        for chunk in ids.chunks(ID_CHUNK) {
            let params: Vec<String> = (2..chunk.len() + 2).map(|n| format!("?{n}")).collect();
            let sql = format!(
                "SELECT {EMBEDDING_COLS} FROM embeddings \
                 WHERE model_id = ?1 AND article_id IN ({}) ORDER BY article_id",
                params.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(model_id);
            for id in chunk {
                query = query.bind(id);
            }
            let rows = query.fetch_all(&self.pool).await?;
            for r in &rows {
                found.push(embedding_from_row(r)?);
            }
        }
        Ok(found)
    }

    /// See [`super::Store::put_embeddings`]. Every row is checked before
    /// anything is written; an empty batch opens no transaction. When the
    /// batch holds one (article, model) twice, the later row wins.
    pub async fn put_embeddings(&self, rows: &[StoredEmbedding]) -> Result<()> {
        check_embeddings(rows)?;
        if rows.is_empty() {
            return Ok(());
        }
        let now = now();
        let mut w = self.begin_write().await?;
        // `WHERE` before `ON CONFLICT` also keeps the parser from reading
        // the conflict clause as a join constraint.
        let sql = "INSERT INTO embeddings \
                   (article_id, model_id, content_hash, dim, vectors, updated_at) \
                   SELECT ?1, ?2, ?3, ?4, ?5, ?6 \
                   WHERE EXISTS (SELECT 1 FROM articles WHERE id = ?1) \
                   ON CONFLICT (article_id, model_id) DO UPDATE SET \
                       content_hash = excluded.content_hash, dim = excluded.dim, \
                       vectors = excluded.vectors, updated_at = excluded.updated_at";
        for r in rows {
            let query = sqlx::query(sql)
                .bind(r.article_id)
                .bind(&r.model_id)
                .bind(&r.content_hash)
                .bind(r.dim)
                .bind(&r.vectors)
                .bind(now);
            query.execute(&mut *w.tx).await?;
        }
        // No audit row: embeddings derive from audited content.
        self.finish(w, Vec::new()).await?;
        Ok(())
    }

    /// See [`super::Store::scan_embeddings`].
    pub async fn scan_embeddings(
        &self,
        model_id: &str,
        after_id: ArticleId,
        limit: i64,
    ) -> Result<Vec<StoredEmbedding>> {
        let sql = format!(
            "SELECT {EMBEDDING_COLS} FROM embeddings \
             WHERE model_id = ?1 AND article_id > ?2 ORDER BY article_id LIMIT ?3"
        );
        let query = sqlx::query(&sql)
            .bind(model_id)
            .bind(after_id)
            .bind(limit.max(0));
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(embedding_from_row).collect()
    }
}

fn embedding_from_row(r: &SqliteRow) -> Result<StoredEmbedding> {
    Ok(StoredEmbedding {
        article_id: r.try_get("article_id")?,
        model_id: r.try_get("model_id")?,
        content_hash: r.try_get("content_hash")?,
        dim: r.try_get("dim")?,
        vectors: r.try_get("vectors")?,
    })
}
