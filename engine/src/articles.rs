//! Article operations with their access rules, shared by the API and the CLI.
//!
//! The caller's permission for the operation has been checked against the
//! role table by the endpoint; these functions add the per-article rules
//! (audience, ownership, who may publish) and validation.

use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Permission, Principal};
use crate::error::{Error, Result};
use crate::model::sections::{self, Visibility};
use crate::model::{
    Article, ArticleDraft, ArticlePatch, ArticleVersion, Level, NewArticle, SectionInfo, Status,
};
use crate::store::Store;

/// Looks an article up by numeric id or slug.
async fn find(store: &Store, key: &str) -> Result<Option<Article>> {
    match key.parse::<i64>() {
        Ok(id) => store.get_article(id).await,
        Err(_) => store.get_article_by_slug(key).await,
    }
}

/// An article the caller may read, with every section: for the engine's
/// own edits. What goes back to the caller passes through
/// [`sections::view_of`]. Articles they may not read are reported as
/// missing, so their existence does not leak.
pub async fn readable(store: &Store, p: &Principal, key: &str) -> Result<Article> {
    match find(store, key).await? {
        Some(a) if p.can_read(&a) => Ok(a),
        _ => Err(Error::NotFound(format!("article {key}"))),
    }
}

/// An article as the caller may see it (sections hidden from them removed).
pub async fn get(store: &Store, p: &Principal, key: &str) -> Result<Article> {
    Ok(sections::view_of(p, &readable(store, p, key).await?))
}

/// An article as a reader gets it: the sections they may see, in a level.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArticleView {
    /// The article (at the summary level, `body` is empty).
    #[serde(flatten)]
    pub article: Article,
    /// The level served: asked for, else the reader's preference, else the
    /// default for their roles.
    pub level: Level,
    /// The sections shown, in order (summary first).
    pub sections: Vec<SectionInfo>,
}

/// Reads an article in a level: `level`, else the reader's saved
/// preference, else the default for their roles.
pub async fn read(
    store: &Store,
    p: &Principal,
    key: &str,
    level: Option<Level>,
) -> Result<ArticleView> {
    let a = readable(store, p, key).await?;
    let level = match (level, p.user_id) {
        (Some(l), _) => l,
        (None, Some(id)) => match store.get_preferences(id).await?.level {
            Some(l) => l,
            None => Level::default_for(p),
        },
        (None, None) => Level::default_for(p),
    };
    let v = Visibility::of(p, &a.owner);
    let mut infos = sections::infos("summary", &a.summary, &v);
    let mut article = sections::view_of(p, &a);
    if level == Level::Detailed {
        infos.extend(sections::infos("body", &a.body, &v));
    } else {
        article.body.clear();
    }
    Ok(ArticleView {
        article,
        level,
        sections: infos,
    })
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
    let a = readable(store, p, key).await?;
    let (index, p) = (index.clone(), p.clone());
    let found = tokio::task::spawn_blocking(move || index.related(&p, a.id, limit))
        .await
        .map_err(|e| Error::Unavailable(format!("related-articles task failed: {e}")))?;
    match found {
        // Readable in the store but not indexed yet (the index follows the
        // store a moment later): nothing related to show yet.
        Err(Error::NotFound(_)) => Ok(Vec::new()),
        other => other,
    }
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
    Ok(sections::view_of(p, &store.create_article(p, draft).await?))
}

/// Applies a partial update as a new version.
pub async fn update(
    store: &Store,
    p: &Principal,
    key: &str,
    patch: ArticlePatch,
) -> Result<Article> {
    let current = readable(store, p, key).await?;
    if !p.can_edit(&current) {
        return Err(Error::Forbidden(Permission::ArticlePublish.as_str()));
    }
    let patch = keep_hidden_sections(p, &current.owner, &current.summary, &current.body, patch)?;
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
        return Ok(sections::view_of(p, &current));
    }
    let updated = store.update_article(p, current.id, draft, expected).await?;
    Ok(sections::view_of(p, &updated))
}

/// Puts back, into a patch's summary and body, the sections the editor
/// cannot see (they edited text without them), and refuses sections the
/// editor could not read themselves.
pub(crate) fn keep_hidden_sections(
    p: &Principal,
    owner: &str,
    old_summary: &str,
    old_body: &str,
    mut patch: ArticlePatch,
) -> Result<ArticlePatch> {
    let v = Visibility::of(p, owner);
    if let Some(s) = patch.summary.take() {
        patch.summary = Some(sections::merge_hidden("summary", old_summary, &s, &v)?);
    }
    if let Some(b) = patch.body.take() {
        patch.body = Some(sections::merge_hidden("body", old_body, &b, &v)?);
    }
    Ok(patch)
}

/// Retires an article: gone from search, history kept (publishers).
pub async fn retire(store: &Store, p: &Principal, key: &str) -> Result<Article> {
    let patch = ArticlePatch {
        status: Some(Status::Retired),
        ..Default::default()
    };
    update(store, p, key, patch).await
}

/// Deletes an article.
pub async fn delete(store: &Store, p: &Principal, key: &str) -> Result<()> {
    let a = readable(store, p, key).await?;
    store.delete_article(p, a.id).await
}

/// Version history of an article the caller may read.
/// Sections hidden from the caller are removed from every version.
pub async fn versions(store: &Store, p: &Principal, key: &str) -> Result<Vec<ArticleVersion>> {
    let a = readable(store, p, key).await?;
    let v = Visibility::of(p, &a.owner);
    let mut versions = store.list_versions(a.id).await?;
    if !matches!(v, Visibility::All) {
        for ver in &mut versions {
            ver.summary = sections::visible_text(&ver.summary, &v);
            ver.body = sections::visible_text(&ver.body, &v);
        }
    }
    Ok(versions)
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
    let current = readable(store, p, key).await?;
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
    let reverted = store
        .update_article(p, current.id, draft, Some(current.version))
        .await?;
    Ok(sections::view_of(p, &reverted))
}
