//! Article operations with their access rules, shared by the API and the CLI.
//!
//! The caller's permission for the operation has been checked against the
//! role table by the endpoint; these functions add the per-article rules
//! (audience, ownership, who may publish) and validation.

use serde::Serialize;
use utoipa::ToSchema;

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

/// Articles related to the one at `key` that the caller may read (nearest
/// neighbours by meaning with a model loaded, else by its title's words).
/// `NotFound` when the caller cannot read it.
pub async fn related(
    store: &Store,
    index: &crate::search::SearchIndex,
    p: &Principal,
    key: &str,
    limit: usize,
) -> Result<Vec<crate::search::Hit>> {
    let a = get(store, p, key).await?;
    let (index, p) = (index.clone(), p.clone());
    tokio::task::spawn_blocking(move || index.related(&p, a.id, limit))
        .await
        .map_err(|e| Error::Unavailable(format!("related-articles task failed: {e}")))?
}

/// Statuses an author may set without the publish permission: only draft
/// (review starts with a submission, which also opens the review task).
fn author_may_set(s: Status) -> bool {
    s == Status::Draft
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
    // A live article changes content only through a reviewed draft; admins
    // (migrations, corrections) and status changes by publishers (retire,
    // needs update) are direct.
    let content_change = patch.slug.is_some()
        || patch.title.is_some()
        || patch.summary.is_some()
        || patch.body.is_some()
        || patch.category.is_some()
        || patch.tags.is_some()
        || patch.audience.is_some();
    if current.status.is_live() && content_change && !p.is_admin() {
        return Err(Error::Conflict(format!(
            "article {key} is published: save changes as a draft with PUT /v1/articles/{key}/draft, then submit it for review"
        )));
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

/// A readable difference between two versions of an article.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VersionDiff {
    /// The older version compared.
    pub from: i32,
    /// The newer version compared.
    pub to: i32,
    /// Fields whose value changed, each with a unified line diff.
    pub fields: Vec<FieldDiff>,
}

/// The change to one field.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldDiff {
    /// Field name.
    pub field: &'static str,
    /// Unified diff (`-` removed lines, `+` added lines, three lines of context).
    pub unified: String,
}

fn version_fields(v: &ArticleVersion) -> [(&'static str, String); 7] {
    [
        ("title", v.title.clone()),
        ("summary", v.summary.clone()),
        ("body", v.body.clone()),
        ("category", v.category.clone()),
        ("tags", v.tags.join("\n")),
        ("audience", v.audience.join("\n")),
        ("status", v.status.as_str().to_string()),
    ]
}

/// Diff between versions `from` and `to` of an article the caller may read.
pub async fn diff(
    store: &Store,
    p: &Principal,
    key: &str,
    from: i32,
    to: i32,
) -> Result<VersionDiff> {
    let versions = versions(store, p, key).await?;
    let find = |n: i32, field: &str| {
        versions
            .iter()
            .find(|v| v.version == n)
            .ok_or_else(|| Error::invalid(field, format!("article {key} has no version {n}")))
    };
    let (a, b) = (find(from, "from")?, find(to, "to")?);
    let fields = version_fields(a)
        .into_iter()
        .zip(version_fields(b))
        .filter(|((_, x), (_, y))| x != y)
        .map(|((field, x), (_, y))| {
            let unified = similar::TextDiff::from_lines(&x, &y)
                .unified_diff()
                .context_radius(3)
                .header(&format!("v{from}"), &format!("v{to}"))
                .to_string();
            FieldDiff { field, unified }
        })
        .collect();
    Ok(VersionDiff { from, to, fields })
}

/// Writes a new version whose content is that of version `version` (history
/// is never rewritten). The status stays as it is now.
pub async fn revert(store: &Store, p: &Principal, key: &str, version: i32) -> Result<Article> {
    let current = get(store, p, key).await?;
    if !p.can_edit(&current) {
        return Err(Error::Forbidden(Permission::ArticlePublish.as_str()));
    }
    let old = store
        .list_versions(current.id)
        .await?
        .into_iter()
        .find(|v| v.version == version)
        .ok_or_else(|| {
            Error::invalid("version", format!("article {key} has no version {version}"))
        })?;
    let mut draft = ArticleDraft::from_article(&current);
    draft.title = old.title;
    draft.summary = old.summary;
    draft.body = old.body;
    draft.category = old.category;
    draft.tags = old.tags;
    draft.audience = old.audience;
    store
        .update_article(p, current.id, draft, Some(current.version))
        .await
}
