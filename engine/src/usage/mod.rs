//! Usage: what people read, search, click, rate and say about articles,
//! recorded off the request path, plus the privacy rules around it.
//!
//! Views, searches and clicks go through the [`EventSink`] (a bounded
//! channel and a batching writer, see [`sink`]): a request never waits for
//! its event to be stored. Ratings, helpful votes and feedback are explicit
//! actions with an answer, so they are written at once. Everything here
//! requires that the caller may read the article, with the same rule and
//! the same 404 as every read.
//!
//! Privacy: a search query is stored without the searcher's identity
//! unless the user opted in to search history ([`set_privacy`]); clicks
//! follow their search. Views keep the reader (their history and reading
//! assignments need it). A user's history is shown to that user and to
//! admins only ([`history`]); everyone else sees aggregates
//! ([`analytics`]).

pub mod analytics;
pub mod assignments;
pub mod sink;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::articles;
use crate::auth::{Permission, Principal};
use crate::error::{Error, Result};
use crate::model::{
    ArticleId, ClickEvent, Feedback, HistorySearch, HistoryView, RatingSummary, SearchEvent,
    UsageEvent, ViewEvent, ViewSource,
};
use crate::search::{Filter, SearchRequest, SearchResults};
use crate::store::Store;

pub use sink::{EventSink, SinkConfig, SinkStats, SinkWriter};

/// Longest dwell time a client may report: four hours (a tab left open is
/// not reading).
pub const MAX_DWELL_MS: i64 = 4 * 60 * 60 * 1000;
/// Highest result position a click may name (the deepest page).
pub const MAX_POSITION: i64 = 10_100;
/// Most events per `POST /v1/events`.
pub const MAX_CLIENT_EVENTS: usize = 100;
/// Longest feedback comment, in bytes.
pub const MAX_COMMENT: usize = 4000;
/// Longest stored query, in characters.
const MAX_QUERY: usize = 500;
/// Days the owner has for the update task feedback opens.
pub const FEEDBACK_DAYS: i64 = 14;

/// A query as analytics groups it: lower-cased, whitespace collapsed, cut
/// to 500 characters.
pub fn normalise_query(q: &str) -> String {
    let joined = q.split_whitespace().collect::<Vec<_>>().join(" ");
    joined.to_lowercase().chars().take(MAX_QUERY).collect()
}

/// A new search id: 128 random bits in hex.
pub fn new_search_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Parses a time given as RFC 3339 or as a date (midnight UTC).
pub fn parse_time(field: &str, s: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        .map_err(|_| {
            Error::invalid(
                field,
                format!("{s:?} is not a date (2025-01-31) or an RFC 3339 time"),
            )
        })
}

/// Reads an article for the caller (the same rule and 404 as
/// [`articles::get`]) and records the view.
pub async fn view(
    store: &Store,
    sink: &EventSink,
    p: &Principal,
    key: &str,
    level: Option<crate::model::Level>,
) -> Result<articles::ArticleView> {
    let a = articles::read(store, p, key, level).await?;
    sink.record(UsageEvent::View(ViewEvent {
        at: Utc::now(),
        user_id: p.user_id,
        article_id: a.article.id,
        source: ViewSource::Server,
        dwell_ms: None,
    }));
    Ok(a)
}

/// Records a search (only one with words: browsing is not searching) and
/// returns the search id clicks refer to. Never waits for the store.
pub fn searched(
    sink: &EventSink,
    p: &Principal,
    req: &SearchRequest,
    res: &SearchResults,
) -> Option<String> {
    if req.q.trim().is_empty() || !sink.is_enabled() {
        return None;
    }
    let id = new_search_id();
    let filters = req.filters.iter().map(filter_text).collect();
    sink.record(UsageEvent::Search(SearchEvent {
        id: id.clone(),
        at: Utc::now(),
        user_id: p.user_id,
        query: req.q.chars().take(MAX_QUERY).collect(),
        filters,
        mode: res.mode.as_str().to_string(),
        result_count: res.total as i64,
        latency_ms: res.took_ms,
    }));
    Some(id)
}

/// A filter as the search event keeps it (the request's own spelling).
fn filter_text(f: &Filter) -> String {
    use std::ops::Bound;
    let range = |name: &str, lo: &Bound<DateTime<Utc>>, hi: &Bound<DateTime<Utc>>| {
        let mut parts = vec![];
        match lo {
            Bound::Included(t) => parts.push(format!("{name}>={}", t.to_rfc3339())),
            Bound::Excluded(t) => parts.push(format!("{name}>{}", t.to_rfc3339())),
            Bound::Unbounded => {}
        }
        match hi {
            Bound::Included(t) => parts.push(format!("{name}<={}", t.to_rfc3339())),
            Bound::Excluded(t) => parts.push(format!("{name}<{}", t.to_rfc3339())),
            Bound::Unbounded => {}
        }
        parts.join(" ")
    };
    match f {
        Filter::Category(v) => format!("category:{v}"),
        Filter::Tag(v) => format!("tags:{v}"),
        Filter::Status(v) => format!("status:{v}"),
        Filter::Audience(v) => format!("audience:{v}"),
        Filter::UpdatedAt(lo, hi) => range("updated_at", lo, hi),
        Filter::PublishedAt(lo, hi) => range("published_at", lo, hi),
    }
}

/// An event a client reports.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClientEvent {
    /// How long an article was on screen.
    Dwell {
        /// The article.
        article_id: ArticleId,
        /// Milliseconds, 0..=14,400,000.
        dwell_ms: i64,
    },
    /// A search result was opened.
    Click {
        /// The article opened.
        article_id: ArticleId,
        /// Its position in the results, from 0.
        position: i64,
        /// The `X-Search-Id` of the search it came from.
        #[serde(default)]
        search_id: Option<String>,
    },
}

/// Validates and queues client-reported events; all or none. Every article
/// must be readable by the caller (else 404, as for a read).
pub async fn client_events(
    store: &Store,
    sink: &EventSink,
    p: &Principal,
    events: Vec<ClientEvent>,
) -> Result<usize> {
    if events.len() > MAX_CLIENT_EVENTS {
        let msg = format!("at most {MAX_CLIENT_EVENTS} events per request");
        return Err(Error::invalid("events", msg));
    }
    let mut ids = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let field = |f: &str| format!("events[{i}].{f}");
        match e {
            ClientEvent::Dwell {
                article_id,
                dwell_ms,
            } => {
                if !(0..=MAX_DWELL_MS).contains(dwell_ms) {
                    let msg = format!("must be within 0..={MAX_DWELL_MS}");
                    return Err(Error::invalid(field("dwell_ms"), msg));
                }
                ids.push(*article_id);
            }
            ClientEvent::Click {
                article_id,
                position,
                search_id,
            } => {
                if !(0..=MAX_POSITION).contains(position) {
                    let msg = format!("must be within 0..={MAX_POSITION}");
                    return Err(Error::invalid(field("position"), msg));
                }
                if search_id
                    .as_ref()
                    .is_some_and(|s| s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()))
                {
                    let msg = "must be the X-Search-Id of a search";
                    return Err(Error::invalid(field("search_id"), msg));
                }
                ids.push(*article_id);
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    let readable = store.get_articles(&ids).await?;
    if let Some(id) = ids
        .iter()
        .find(|id| !readable.iter().any(|a| a.id == **id && p.can_read(a)))
    {
        return Err(Error::NotFound(format!("article {id}")));
    }
    let now = Utc::now();
    let n = events.len();
    for e in events {
        sink.record(match e {
            ClientEvent::Dwell {
                article_id,
                dwell_ms,
            } => UsageEvent::View(ViewEvent {
                at: now,
                user_id: p.user_id,
                article_id,
                source: ViewSource::Client,
                dwell_ms: Some(dwell_ms),
            }),
            ClientEvent::Click {
                article_id,
                position,
                search_id,
            } => UsageEvent::Click(ClickEvent {
                at: now,
                user_id: p.user_id,
                search_id: search_id.map(|s| s.to_ascii_lowercase()),
                article_id,
                position: position as i32,
            }),
        });
    }
    Ok(n)
}

/// The signed-in caller's user id (ratings, votes and history need one).
fn user_id(p: &Principal) -> Result<i64> {
    p.user_id.ok_or(Error::Unauthenticated)
}

/// Rates an article 1–5 stars (replacing the caller's earlier rating).
pub async fn rate(store: &Store, p: &Principal, key: &str, stars: i32) -> Result<RatingSummary> {
    let uid = user_id(p)?;
    if !(1..=5).contains(&stars) {
        return Err(Error::invalid("stars", "must be 1 to 5"));
    }
    let a = articles::get(store, p, key).await?;
    store.set_rating(uid, a.id, stars).await?;
    store.rating_summary(Some(uid), a.id).await
}

/// Votes an article helpful or not (replacing the caller's earlier vote).
pub async fn vote(store: &Store, p: &Principal, key: &str, helpful: bool) -> Result<RatingSummary> {
    let uid = user_id(p)?;
    let a = articles::get(store, p, key).await?;
    store.set_helpful(uid, a.id, helpful).await?;
    store.rating_summary(Some(uid), a.id).await
}

/// An article's ratings and votes, with the caller's own.
pub async fn ratings(store: &Store, p: &Principal, key: &str) -> Result<RatingSummary> {
    let a = articles::get(store, p, key).await?;
    store.rating_summary(p.user_id, a.id).await
}

/// Leaves a feedback comment: opens an update task for the article's owner
/// and notifies them.
pub async fn feedback(store: &Store, p: &Principal, key: &str, comment: &str) -> Result<Feedback> {
    user_id(p)?;
    let comment = comment.trim();
    if comment.is_empty() || comment.len() > MAX_COMMENT {
        let msg = format!("say what is wrong or missing, in at most {MAX_COMMENT} bytes");
        return Err(Error::invalid("comment", msg));
    }
    let a = articles::get(store, p, key).await?;
    let due = Utc::now() + Duration::days(FEEDBACK_DAYS);
    let f = store.add_feedback(p, &a, comment, due).await?;
    crate::notify::feedback_received(store, &a, &f).await;
    Ok(f)
}

/// A user's privacy choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Privacy {
    /// Keep my searches with my name, so I can see my search history
    /// (default: no — searches are stored without identity).
    pub keep_search_history: bool,
}

/// The caller's privacy choice.
pub async fn privacy(store: &Store, p: &Principal) -> Result<Privacy> {
    let keep_search_history = store.keeps_search_history(user_id(p)?).await?;
    Ok(Privacy {
        keep_search_history,
    })
}

/// Sets the caller's privacy choice; opting out forgets which stored
/// searches were theirs.
pub async fn set_privacy(store: &Store, p: &Principal, choice: Privacy) -> Result<Privacy> {
    store
        .set_search_history(user_id(p)?, choice.keep_search_history)
        .await?;
    Ok(choice)
}

/// A user's usage history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct History {
    /// Whose.
    pub username: String,
    /// Whether their searches are kept with their name.
    pub keep_search_history: bool,
    /// Articles read (still readable by the asker), newest first.
    pub views: Vec<HistoryView>,
    /// Searches kept while opted in, newest first.
    pub searches: Vec<HistorySearch>,
}

/// The history of `username` (the caller's own when `None`): only the
/// user themselves and admins may see it; others get 404, as if there
/// were no such user.
pub async fn history(
    store: &Store,
    p: &Principal,
    username: Option<&str>,
    limit: i64,
) -> Result<History> {
    let (uid, name) = match username {
        None => (user_id(p)?, p.username.clone()),
        Some(u) if u == p.username => (user_id(p)?, p.username.clone()),
        Some(u) => {
            p.require(Permission::UserAdmin)?;
            let user = store.get_user(u).await?;
            let user = user.ok_or_else(|| Error::NotFound(format!("user {u}")))?;
            (user.id, user.username)
        }
    };
    let mut views = store.view_history(uid, limit).await?;
    let mut ids: Vec<_> = views.iter().map(|v| v.article_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let readable: std::collections::HashSet<_> = store
        .get_articles(&ids)
        .await?
        .into_iter()
        .filter(|a| p.can_read(a))
        .map(|a| a.id)
        .collect();
    views.retain(|v| readable.contains(&v.article_id));
    Ok(History {
        username: name,
        keep_search_history: store.keeps_search_history(uid).await?,
        views,
        searches: store.search_history(uid, limit).await?,
    })
}
