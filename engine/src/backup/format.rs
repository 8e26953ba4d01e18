//! The backup file format: gzip JSON Lines, one header line, typed records,
//! one trailer line.
//!
//! Every line is an object whose `type` says what it is. The header comes
//! first (format version, when, from which store, the row counts at the
//! start), then records in dependency order (users, groups, preferences,
//! rules, each article followed by its versions and working copy, the
//! versions of deleted articles, tasks),
//! then a trailer with the counts actually written: a file cut short has no
//! trailer and is refused. Records reuse the model types so the file says
//! exactly what the API says.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Article, ArticleVersion, CategoryRule, Group, Level, Task, WorkingCopy};

/// `format` of the header: what this file is.
pub const FORMAT: &str = "kmt-backup";

/// `version` of the header this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// One line of a backup file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    /// The first line.
    Header(Header),
    /// A user (roles included).
    User(UserRecord),
    /// A custom group.
    Group(Group),
    /// A user's preferences.
    Preferences(PreferencesRecord),
    /// One version of a category's rule set (the whole history is kept).
    Rule(CategoryRule),
    /// An article's current row.
    Article(Article),
    /// One immutable version of an article.
    Version(ArticleVersion),
    /// One version of an article since deleted (history outlives the
    /// article; these come after every article).
    DeletedVersion(ArticleVersion),
    /// An article's working copy (a draft or change in review).
    Draft(WorkingCopy),
    /// A review or update task.
    Task(Task),
    /// The last line.
    Trailer(Trailer),
}

/// The first line of a backup file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] of the writer.
    pub version: u32,
    /// When the export started.
    pub exported_at: DateTime<Utc>,
    /// `postgres` or `sqlite`: the store it came from.
    pub store: String,
    /// Rows per table when the export started (informational: writes during
    /// the export may change them; the trailer has the written counts).
    pub counts: BTreeMap<String, i64>,
    /// Whether user records carry their password hashes.
    pub password_hashes: bool,
}

/// The last line: how many records of each type precede it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trailer {
    /// Records written, by `type`.
    pub counts: BTreeMap<String, u64>,
}

/// A user as backed up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    /// Store id (preserved on import).
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Roles and custom groups.
    pub roles: Vec<String>,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// Notification e-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Notification webhook URL.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The password hash, only with `--with-password-hashes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

/// A user's stored preferences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferencesRecord {
    /// The user's store id.
    pub user_id: i64,
    /// Default detail level.
    pub level: Option<Level>,
}

impl Line {
    /// The `type` tag, for counts and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Line::Header(_) => "header",
            Line::User(_) => "user",
            Line::Group(_) => "group",
            Line::Preferences(_) => "preferences",
            Line::Rule(_) => "rule",
            Line::Article(_) => "article",
            Line::Version(_) => "version",
            Line::DeletedVersion(_) => "deleted_version",
            Line::Draft(_) => "draft",
            Line::Task(_) => "task",
            Line::Trailer(_) => "trailer",
        }
    }
}
