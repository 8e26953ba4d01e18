//! The SQLite store: article reads and writes, import batches, versions and the
//! outbox, with the row helpers that write a new version.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::sqlite::SqliteRow;
use sqlx::Row as _;

use super::deliveries::enqueue_publication;
use super::SqliteStore;
use super::{list, Tx};
use crate::auth::Principal;
use crate::error::Result;
use crate::model::{Article, ArticleDraft, ArticleId, ArticleVersion, Change, ChangeKind};
use crate::store::common::{
    article_not_found, batch_conflict_or, change, check_batch, check_version, conflict_or,
    delete_entry, entry, no_id, now, parse_status, published_at, reindex_entry, rows_json, stored,
    ArticleRow, BatchPlan, ARTICLE_COLS,
};
use crate::store::UpsertOutcome;

impl SqliteStore {
    /// See [`super::Store::create_article`].
    pub async fn create_article(&self, actor: &Principal, draft: ArticleDraft) -> Result<Article> {
        draft.validate()?;
        let now = now();
        let published = published_at(None, draft.status, now);
        let mut w = self.begin_write().await?;
        let row = ArticleRow::new(0, &draft, published);
        let ids = insert_rows(&mut w.tx, &[row], &actor.username, now).await;
        let ids = ids.map_err(|e| conflict_or(e, &draft.slug))?;
        let id = ids.get(&draft.slug).copied().ok_or_else(no_id)?;
        write_side_rows(&mut w.tx, &[id], &actor.username, now).await?;
        let entry = entry(actor, now, "article.create", id, &draft.slug, 1);
        let article = stored(id, draft, &actor.username, 1, now, now, published);
        enqueue_publication(&mut w.tx, &article, now).await?;
        self.finish(w, vec![entry]).await?;
        Ok(article)
    }

    /// See [`super::Store::update_article`].
    pub async fn update_article(
        &self,
        actor: &Principal,
        id: ArticleId,
        draft: ArticleDraft,
        expected_version: Option<i32>,
    ) -> Result<Article> {
        draft.validate()?;
        let now = now();
        let mut w = self.begin_write().await?;
        let old = read_article(&mut w.tx, id).await?;
        check_version(&old, expected_version)?;
        let article = write_version(&mut w.tx, &old, draft, &actor.username, now).await?;
        let (slug, version) = (&article.slug, article.version);
        let entry = entry(actor, now, "article.update", id, slug, version);
        enqueue_publication(&mut w.tx, &article, now).await?;
        self.finish(w, vec![entry]).await?;
        Ok(article)
    }

    /// See [`super::Store::delete_article`].
    pub async fn delete_article(&self, actor: &Principal, id: ArticleId) -> Result<()> {
        let now = now();
        let mut w = self.begin_write().await?;
        let delete = sqlx::query_scalar("DELETE FROM articles WHERE id = ?1 RETURNING slug");
        let slug: Option<String> = delete.bind(id).fetch_optional(&mut *w.tx).await?;
        let slug = slug.ok_or_else(|| article_not_found(id))?;
        append_outbox(&mut w.tx, &[id], ChangeKind::Delete, now).await?;
        let entry = delete_entry(actor, now, id, &slug);
        self.finish(w, vec![entry]).await
    }

    /// See [`super::Store::upsert_batch`].
    pub async fn upsert_batch(
        &self,
        actor: &Principal,
        drafts: Vec<ArticleDraft>,
    ) -> Result<UpsertOutcome> {
        check_batch(&drafts)?;
        if drafts.is_empty() {
            return Ok(UpsertOutcome::default());
        }
        let now = now();
        let mut w = self.begin_write().await?;
        let slugs = json!(drafts.iter().map(|d| &d.slug).collect::<Vec<_>>()).to_string();
        let sql = format!(
            "SELECT {ARTICLE_COLS} FROM articles WHERE slug IN (SELECT value FROM json_each(?1))"
        );
        let rows = sqlx::query(&sql).bind(slugs).fetch_all(&mut *w.tx).await?;
        let existing: Vec<Article> = rows.iter().map(article_from_row).collect::<Result<_>>()?;
        let plan = BatchPlan::new(&drafts, existing, now);
        let new_ids = insert_rows(&mut w.tx, &plan.new, &actor.username, now).await;
        let new_ids = new_ids.map_err(batch_conflict_or)?;
        update_rows(&mut w.tx, &plan.changed, now)
            .await
            .map_err(batch_conflict_or)?;
        let (ids, entries) = plan.written(&new_ids, actor, now);
        write_side_rows(&mut w.tx, &ids, &actor.username, now).await?;
        self.finish(w, entries).await?;
        Ok(plan.outcome)
    }

    /// See [`super::Store::get_article`].
    pub async fn get_article(&self, id: ArticleId) -> Result<Option<Article>> {
        let sql = format!("SELECT {ARTICLE_COLS} FROM articles WHERE id = ?1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(article_from_row).transpose()
    }

    /// See [`super::Store::get_article_by_slug`].
    pub async fn get_article_by_slug(&self, slug: &str) -> Result<Option<Article>> {
        let sql = format!("SELECT {ARTICLE_COLS} FROM articles WHERE slug = ?1");
        let row = sqlx::query(&sql)
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(article_from_row).transpose()
    }

    /// See [`super::Store::get_articles`].
    pub async fn get_articles(&self, ids: &[ArticleId]) -> Result<Vec<Article>> {
        let sql = format!(
            "SELECT {ARTICLE_COLS} FROM articles WHERE id IN (SELECT value FROM json_each(?1))"
        );
        let query = sqlx::query(&sql).bind(json!(ids).to_string());
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(article_from_row).collect()
    }

    /// See [`super::Store::scan_articles`].
    pub async fn scan_articles(&self, after_id: ArticleId, limit: i64) -> Result<Vec<Article>> {
        let sql = format!("SELECT {ARTICLE_COLS} FROM articles WHERE id > ?1 ORDER BY id LIMIT ?2");
        let query = sqlx::query(&sql).bind(after_id).bind(limit.max(0));
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(article_from_row).collect()
    }

    /// See [`super::Store::count_articles`].
    pub async fn count_articles(&self) -> Result<i64> {
        let query = sqlx::query_scalar("SELECT count(*) FROM articles");
        Ok(query.fetch_one(&self.pool).await?)
    }

    /// See [`super::Store::list_versions`].
    pub async fn list_versions(&self, id: ArticleId) -> Result<Vec<ArticleVersion>> {
        let sql = "SELECT article_id, version, title, summary, body, category, tags, audience, \
                   status, author, created_at FROM article_versions WHERE article_id = ?1 \
                   ORDER BY version";
        let rows = sqlx::query(sql).bind(id).fetch_all(&self.pool).await?;
        let version = |r: &SqliteRow| -> Result<ArticleVersion> {
            Ok(ArticleVersion {
                article_id: r.try_get("article_id")?,
                version: r.try_get("version")?,
                title: r.try_get("title")?,
                summary: r.try_get("summary")?,
                body: r.try_get("body")?,
                category: r.try_get("category")?,
                tags: list(r.try_get("tags")?)?,
                audience: list(r.try_get("audience")?)?,
                status: parse_status(r.try_get("status")?)?,
                author: r.try_get("author")?,
                created_at: r.try_get("created_at")?,
            })
        };
        rows.iter().map(version).collect()
    }

    /// See [`super::Store::changes_after`].
    pub async fn changes_after(&self, after: i64, limit: i64) -> Result<Vec<Change>> {
        let sql = "SELECT seq, article_id, kind FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2";
        let query = sqlx::query_as(sql).bind(after).bind(limit.max(0));
        let rows: Vec<(i64, i64, String)> = query.fetch_all(&self.pool).await?;
        rows.into_iter().map(change).collect()
    }

    /// See [`super::Store::outbox_head`].
    pub async fn outbox_head(&self) -> Result<i64> {
        let query = sqlx::query_scalar("SELECT COALESCE(max(seq), 0) FROM outbox");
        Ok(query.fetch_one(&self.pool).await?)
    }

    /// See [`super::Store::request_reindex`].
    pub async fn request_reindex(&self, actor: &Principal) -> Result<i64> {
        let now = now();
        let mut w = self.begin_write().await?;
        let seq = append_outbox(&mut w.tx, &[0], ChangeKind::Reindex, now).await?;
        let entry = reindex_entry(actor, now, seq);
        self.finish(w, vec![entry]).await?;
        Ok(seq)
    }
}

/// Reads an article inside a write (`BEGIN IMMEDIATE` already holds the
/// write lock); `NotFound` if missing.
pub(super) async fn read_article(tx: &mut Tx, id: ArticleId) -> Result<Article> {
    let sql = format!("SELECT {ARTICLE_COLS} FROM articles WHERE id = ?1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut **tx).await?;
    let old = row.as_ref().map(article_from_row).transpose()?;
    old.ok_or_else(|| article_not_found(id))
}

/// Writes `draft` over `old` as its next version (the version row by
/// `author`, an `upsert` outbox row) and returns the stored article.
pub(super) async fn write_version(
    tx: &mut Tx,
    old: &Article,
    draft: ArticleDraft,
    author: &str,
    now: DateTime<Utc>,
) -> Result<Article> {
    let published = published_at(old.published_at, draft.status, now);
    let row = ArticleRow::new(old.id, &draft, published);
    let updated = update_rows(tx, &[row], now).await;
    updated.map_err(|e| conflict_or(e, &draft.slug))?;
    write_side_rows(tx, &[old.id], author, now).await?;
    let (id, owner, created) = (old.id, &old.owner, old.created_at);
    let version = old.version + 1;
    Ok(stored(id, draft, owner, version, created, now, published))
}

/// Inserts new articles (version 1) owned by `owner`; returns id by slug.
async fn insert_rows(
    tx: &mut Tx,
    rows: &[ArticleRow<'_>],
    owner: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<HashMap<String, i64>> {
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let query = sqlx::query_as(include_str!("../sql/sqlite_insert_articles.sql"));
    let query = query.bind(rows_json(rows)).bind(owner).bind(now);
    let ids: Vec<(i64, String)> = query.fetch_all(&mut **tx).await?;
    Ok(ids.into_iter().map(|(id, slug)| (slug, id)).collect())
}

/// Replaces the content of existing articles, bumping their versions.
async fn update_rows(tx: &mut Tx, rows: &[ArticleRow<'_>], now: DateTime<Utc>) -> sqlx::Result<()> {
    if !rows.is_empty() {
        let query = sqlx::query(include_str!("../sql/sqlite_update_articles.sql"));
        query
            .bind(rows_json(rows))
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Snapshots the written articles into `article_versions` and appends their
/// `upsert` outbox rows.
async fn write_side_rows(tx: &mut Tx, ids: &[i64], author: &str, now: DateTime<Utc>) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = "INSERT INTO article_versions (article_id, version, title, summary, body, \
               category, tags, audience, status, author, created_at) \
               SELECT id, version, title, summary, body, category, tags, audience, status, ?2, \
               updated_at FROM articles WHERE id IN (SELECT value FROM json_each(?1))";
    let query = sqlx::query(sql).bind(json!(ids).to_string()).bind(author);
    query.execute(&mut **tx).await?;
    append_outbox(tx, ids, ChangeKind::Upsert, now).await?;
    Ok(())
}

/// Appends one outbox row per id, in order; returns the last seq.
async fn append_outbox(
    tx: &mut Tx,
    ids: &[i64],
    kind: ChangeKind,
    now: DateTime<Utc>,
) -> Result<i64> {
    let sql = "INSERT INTO outbox (article_id, kind, created_at) \
               SELECT value, ?2, ?3 FROM json_each(?1) ORDER BY key";
    let query = sqlx::query(sql)
        .bind(json!(ids).to_string())
        .bind(kind.as_str())
        .bind(now);
    Ok(query.execute(&mut **tx).await?.last_insert_rowid())
}

pub(super) fn article_from_row(r: &SqliteRow) -> Result<Article> {
    Ok(Article {
        id: r.try_get("id")?,
        slug: r.try_get("slug")?,
        title: r.try_get("title")?,
        summary: r.try_get("summary")?,
        body: r.try_get("body")?,
        category: r.try_get("category")?,
        tags: list(r.try_get("tags")?)?,
        audience: list(r.try_get("audience")?)?,
        status: parse_status(r.try_get("status")?)?,
        owner: r.try_get("owner")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        published_at: r.try_get("published_at")?,
        review_due: r.try_get("review_due")?,
    })
}
