//! The PostgreSQL store: stored passage embeddings.
//!
//! Embeddings are derived data, keyed by (article, model): no version,
//! audit or outbox row, so writes do not take the writers' lock and never
//! wake followers. A put is one set-based upsert over `unnest`ed arrays,
//! so one statement and one transaction. Each row's article is locked `FOR
//! KEY SHARE` before its row is written, so an article deleted meanwhile is
//! skipped rather than failing the batch on the foreign key, and a delete
//! that comes later waits for the put and then cascades to its rows.

use sqlx::postgres::PgRow;
use sqlx::Row as _;

use super::PgStore;
use crate::error::Result;
use crate::model::ArticleId;
use crate::store::common::{check_embeddings, now};
use crate::store::StoredEmbedding;

/// The `embeddings` columns a [`StoredEmbedding`] is read from.
const EMBEDDING_COLS: &str = "article_id, model_id, content_hash, dim, vectors";

impl PgStore {
    /// See [`super::Store::get_embeddings`]. By article id; an empty `ids`
    /// list runs no query.
    pub async fn get_embeddings(
        &self,
        model_id: &str,
        ids: &[ArticleId],
    ) -> Result<Vec<StoredEmbedding>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {EMBEDDING_COLS} FROM embeddings \
             WHERE model_id = $1 AND article_id = ANY($2) ORDER BY article_id"
        );
        let query = sqlx::query(&sql).bind(model_id).bind(ids);
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(embedding_from_row).collect()
    }

    /// See [`super::Store::put_embeddings`]. Every row is checked before
    /// anything is written; an empty batch opens no transaction. When the
    /// batch holds one (article, model) twice, the later row wins.
    pub async fn put_embeddings(&self, rows: &[StoredEmbedding]) -> Result<()> {
        check_embeddings(rows)?;
        if rows.is_empty() {
            return Ok(());
        }
        let article_ids: Vec<ArticleId> = rows.iter().map(|r| r.article_id).collect();
        let model_ids: Vec<&str> = rows.iter().map(|r| r.model_id.as_str()).collect();
        let hashes: Vec<&str> = rows.iter().map(|r| r.content_hash.as_str()).collect();
        let dims: Vec<i32> = rows.iter().map(|r| r.dim).collect();
        let vectors: Vec<&[u8]> = rows.iter().map(|r| r.vectors.as_slice()).collect();
        // DISTINCT ON keeps the last row per key (ON CONFLICT DO UPDATE may
        // not touch a row twice in one statement) and sorts the rows, so
        // articles and embedding rows are locked in key order; the EXISTS
        // cannot be pushed below the sort. One statement: one transaction.
        let sql = "INSERT INTO embeddings \
                   (article_id, model_id, content_hash, dim, vectors, updated_at) \
                   SELECT t.a, t.m, t.h, t.d, t.v, $6 \
                   FROM (SELECT DISTINCT ON (a, m) a, m, h, d, v \
                         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], \
                                     $5::bytea[]) WITH ORDINALITY AS u(a, m, h, d, v, ord) \
                         ORDER BY a, m, ord DESC) AS t \
                   WHERE EXISTS (SELECT 1 FROM articles WHERE id = t.a FOR KEY SHARE) \
                   ORDER BY t.a, t.m \
                   ON CONFLICT (article_id, model_id) DO UPDATE SET \
                       content_hash = EXCLUDED.content_hash, dim = EXCLUDED.dim, \
                       vectors = EXCLUDED.vectors, updated_at = EXCLUDED.updated_at";
        let query = sqlx::query(sql)
            .bind(article_ids)
            .bind(model_ids)
            .bind(hashes)
            .bind(dims)
            .bind(vectors)
            .bind(now());
        query.execute(&self.pool).await?;
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
             WHERE model_id = $1 AND article_id > $2 ORDER BY article_id LIMIT $3"
        );
        let query = sqlx::query(&sql)
            .bind(model_id)
            .bind(after_id)
            .bind(limit.max(0));
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(embedding_from_row).collect()
    }
}

fn embedding_from_row(r: &PgRow) -> Result<StoredEmbedding> {
    Ok(StoredEmbedding {
        article_id: r.try_get("article_id")?,
        model_id: r.try_get("model_id")?,
        content_hash: r.try_get("content_hash")?,
        dim: r.try_get("dim")?,
        vectors: r.try_get("vectors")?,
    })
}
