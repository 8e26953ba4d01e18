//! Article operations with their access rules, shared by the API and the CLI.
//!
//! The caller's permission for the operation has been checked against the
//! role table by the endpoint; these functions add the per-article rules
//! (audience, ownership, who may publish) and validation.

use crate::auth::{Permission, Principal};
use crate::error::{Error, Result};
use crate::model::{Article, ArticleDraft, ArticlePatch, ArticleVersion, NewArticle, Status};
use crate::store::Store;

/// Looks an article up by numeric id or slug.
async fn find(store: &Store, key: &str) -> Result<Option<Article>> {
    match key.parse::<i64>() {
        Ok(id) => store.get_article(id).await,
        Err(_) => store.get_article_by_slug(key).await,
    }
}

/// An article the caller may read. Articles they may not read are reported
/// as missing, so their existence does not leak.
pub async fn get(store: &Store, p: &Principal, key: &str) -> Result<Article> {
    match find(store, key).await? {
        Some(a) if p.can_read(&a) => Ok(a),
        _ => Err(Error::NotFound(format!("article {key}"))),
    }
}

/// Statuses an author may set without the publish permission.
fn author_may_set(s: Status) -> bool {
    matches!(s, Status::Draft | Status::InReview)
}

/// Creates an article owned by the caller. Only publishers may create it
/// directly in a live or retired state.
pub async fn create(store: &Store, p: &Principal, input: NewArticle) -> Result<Article> {
    let draft = input.into_draft()?;
    if !author_may_set(draft.status) && !p.has(Permission::ArticlePublish) {
        return Err(Error::Forbidden(Permission::ArticlePublish.as_str()));
    }
    store.create_article(p, draft).await
}

/// Applies a partial update as a new version.
pub async fn update(
    store: &Store,
    p: &Principal,
    key: &str,
    patch: ArticlePatch,
) -> Result<Article> {
    let current = get(store, p, key).await?;
    if !p.can_edit(&current) {
        return Err(Error::Forbidden(Permission::ArticlePublish.as_str()));
    }
    let expected = patch.expected_version;
    let draft = ArticleDraft::from_article(&current).apply(patch)?;
    if draft.status != current.status
        && !author_may_set(draft.status)
        && !p.has(Permission::ArticlePublish)
    {
        return Err(Error::Forbidden(Permission::ArticlePublish.as_str()));
    }
    if draft == ArticleDraft::from_article(&current) {
        return Ok(current);
    }
    store.update_article(p, current.id, draft, expected).await
}

/// Deletes an article.
pub async fn delete(store: &Store, p: &Principal, key: &str) -> Result<()> {
    let a = get(store, p, key).await?;
    store.delete_article(p, a.id).await
}

/// Version history of an article the caller may read.
pub async fn versions(store: &Store, p: &Principal, key: &str) -> Result<Vec<ArticleVersion>> {
    let a = get(store, p, key).await?;
    store.list_versions(a.id).await
}
