//! Who may do what: principals, the role→permission table, API tokens.
//!
//! Every API endpoint names one [`Permission`]; [`Principal::require`] checks
//! it against [`ROLE_PERMISSIONS`], the single table that grants permissions
//! to roles. Read access to individual articles (audiences) is enforced by the
//! search engine and the store through [`Principal::can_read`] and the index's
//! permission clause, both derived from the same audience rule.

use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::{Article, Status, PUBLIC};

/// Built-in roles.
pub mod roles {
    /// Reads published articles.
    pub const VIEWER: &str = "viewer";
    /// Writes drafts.
    pub const AUTHOR: &str = "author";
    /// Reviews and approves.
    pub const REVIEWER: &str = "reviewer";
    /// Everything.
    pub const ADMIN: &str = "admin";
    /// Reads usage analytics and assigns reading (a director's report); it
    /// is also an audience group, as before it gained permissions.
    pub const DIRECTOR: &str = "director";
    /// The built-in roles, for listings.
    pub const BUILT_IN: [&str; 5] = [VIEWER, AUTHOR, REVIEWER, DIRECTOR, ADMIN];
}

/// A capability an endpoint requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Search and read articles (subject to each article's audience).
    ArticleRead,
    /// Create articles and edit one's own.
    ArticleWrite,
    /// Edit anyone's articles and set any status directly (publish, retire).
    ArticlePublish,
    /// Delete articles.
    ArticleDelete,
    /// Bulk import and reindex.
    Import,
    /// Manage users, roles and tokens.
    UserAdmin,
    /// Read the audit trail.
    AuditRead,
    /// Define category rules and escalation paths.
    RuleAdmin,
    /// Read usage analytics: aggregates over articles the caller may read
    /// and over queries (never anyone's identity).
    AnalyticsRead,
    /// Ask people or roles to read or review an article, and see who did.
    ArticleAssign,
}

impl Permission {
    /// The name used in error messages and the OpenAPI description.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ArticleRead => "article.read",
            Permission::ArticleWrite => "article.write",
            Permission::ArticlePublish => "article.publish",
            Permission::ArticleDelete => "article.delete",
            Permission::Import => "import",
            Permission::UserAdmin => "user.admin",
            Permission::AuditRead => "audit.read",
            Permission::RuleAdmin => "rule.admin",
            Permission::AnalyticsRead => "analytics.read",
            Permission::ArticleAssign => "article.assign",
        }
    }
}

/// The one table granting permissions to roles. Custom groups (e.g.
/// `auditor`) grant no permissions: they only widen article audiences.
/// Analytics and reading assignments are for people who steer the
/// knowledge base: directors, reviewers and admins.
/// Anonymous callers hold only [`Permission::ArticleRead`] (public articles).
pub const ROLE_PERMISSIONS: &[(&str, &[Permission])] = &[
    (roles::VIEWER, &[Permission::ArticleRead]),
    (
        roles::AUTHOR,
        &[Permission::ArticleRead, Permission::ArticleWrite],
    ),
    (
        roles::REVIEWER,
        &[
            Permission::ArticleRead,
            Permission::ArticleWrite,
            Permission::ArticlePublish,
            Permission::AnalyticsRead,
            Permission::ArticleAssign,
        ],
    ),
    (
        roles::DIRECTOR,
        &[
            Permission::ArticleRead,
            Permission::AnalyticsRead,
            Permission::ArticleAssign,
        ],
    ),
    (
        roles::ADMIN,
        &[
            Permission::ArticleRead,
            Permission::ArticleWrite,
            Permission::ArticlePublish,
            Permission::ArticleDelete,
            Permission::Import,
            Permission::UserAdmin,
            Permission::AuditRead,
            Permission::RuleAdmin,
            Permission::AnalyticsRead,
            Permission::ArticleAssign,
        ],
    ),
];

/// The caller of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User id, `None` for anonymous callers and the system itself.
    pub user_id: Option<i64>,
    /// Username (`anonymous`, `system` for internal jobs).
    pub username: String,
    /// Roles and groups.
    pub roles: Vec<String>,
}

impl Principal {
    /// A caller who has not signed in.
    pub fn anonymous() -> Self {
        Principal {
            user_id: None,
            username: "anonymous".into(),
            roles: vec![],
        }
    }

    /// The system itself (demo loader, CLI run by the operator): an admin.
    pub fn system() -> Self {
        Principal {
            user_id: None,
            username: "system".into(),
            roles: vec![roles::ADMIN.into()],
        }
    }

    /// Whether this caller signed in.
    pub fn is_signed_in(&self) -> bool {
        self.user_id.is_some() || self.username == "system"
    }

    /// Whether this caller holds a role.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether this caller is an admin (reads everything).
    pub fn is_admin(&self) -> bool {
        self.has_role(roles::ADMIN)
    }

    /// Whether the role table grants `p` to this caller.
    pub fn has(&self, p: Permission) -> bool {
        if p == Permission::ArticleRead {
            return true; // anonymous callers read public articles
        }
        ROLE_PERMISSIONS
            .iter()
            .filter(|(role, _)| self.has_role(role))
            .any(|(_, perms)| perms.contains(&p))
    }

    /// Fails unless the caller holds `p` (401 for anonymous callers, else 403).
    pub fn require(&self, p: Permission) -> Result<()> {
        if self.has(p) {
            Ok(())
        } else if !self.is_signed_in() {
            Err(Error::Unauthenticated)
        } else {
            Err(Error::Forbidden(p.as_str()))
        }
    }

    /// The audience terms this caller matches: `public` always, the signed-in
    /// marker when signed in, and each role. Admins match everything and are
    /// handled separately.
    pub fn audience_terms(&self) -> Vec<String> {
        let mut t = vec![PUBLIC.to_string()];
        if self.is_signed_in() {
            t.push(SIGNED_IN.to_string());
            t.extend(self.roles.iter().cloned());
        }
        t
    }

    /// Whether the caller may read this article at all: the audience rule,
    /// plus the status rule (non-live articles only for their owner,
    /// publishers and admins). Mirrors the search engine's permission clause.
    pub fn can_read(&self, a: &Article) -> bool {
        self.can_read_parts(&a.audience, a.status, &a.owner)
    }

    /// [`Principal::can_read`] from the three fields it looks at, for
    /// callers holding a partial row (the usage report).
    pub fn can_read_parts(&self, audience: &[String], status: Status, owner: &str) -> bool {
        if self.is_admin() {
            return true;
        }
        let audience_ok = audience_terms_of(audience)
            .iter()
            .any(|t| self.audience_terms().contains(t));
        if !audience_ok {
            return false;
        }
        status.is_live()
            || (self.is_signed_in() && owner == self.username)
            || (status == Status::InReview && self.has(Permission::ArticlePublish))
    }

    /// Whether the caller may modify this article.
    pub fn can_edit(&self, a: &Article) -> bool {
        self.has(Permission::ArticlePublish)
            || (self.has(Permission::ArticleWrite) && a.owner == self.username)
    }
}

/// The audience term an article with an empty audience is indexed under.
pub const SIGNED_IN: &str = "@signed_in";

/// The terms under which an article's audience is indexed: an empty audience
/// becomes [`SIGNED_IN`].
pub fn audience_terms_of(audience: &[String]) -> Vec<String> {
    if audience.is_empty() {
        vec![SIGNED_IN.to_string()]
    } else {
        audience.to_vec()
    }
}

/// Prefix of every API token, so leaked tokens are recognisable.
pub const TOKEN_PREFIX: &str = "kmt_";

/// Makes a new random API token (shown once) and its stored hash.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let hash = hash_token(&token);
    (token, hash)
}

/// The stored form of a token: SHA-256 hex. Tokens carry 256 random bits, so
/// a fast hash is enough (no dictionary to guard against).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(roles: &[&str]) -> Principal {
        Principal {
            user_id: Some(1),
            username: "u".into(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn role_table_grants() {
        assert!(user(&["viewer"]).require(Permission::ArticleWrite).is_err());
        assert!(user(&["author"]).require(Permission::ArticleWrite).is_ok());
        assert!(user(&["admin"]).require(Permission::UserAdmin).is_ok());
        assert!(matches!(
            Principal::anonymous().require(Permission::ArticleWrite),
            Err(Error::Unauthenticated)
        ));
        assert!(user(&["auditor"]).require(Permission::ArticleRead).is_ok());
    }

    #[test]
    fn tokens_hash_stably() {
        let (t, h) = new_token();
        assert!(t.starts_with(TOKEN_PREFIX));
        assert_eq!(hash_token(&t), h);
        assert_ne!(new_token().0, t);
    }
}
