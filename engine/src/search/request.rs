//! Search requests: sort, match mode, facets, filters and their parsing,
//! and the bounds every request is checked against.

use std::ops::Bound;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};
use crate::model::Status;

/// Longest accepted query text, in bytes.
pub const MAX_QUERY_BYTES: usize = 1024;
/// Most words used from one query.
pub const MAX_QUERY_WORDS: usize = 32;
/// Largest page.
pub const MAX_LIMIT: usize = 100;
/// Deepest offset (deep paging is what exports are for).
pub const MAX_OFFSET: usize = 10_000;

/// Sort order of hits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// By score (by `updated` when there is no query text).
    #[default]
    Relevance,
    /// Most recently updated first.
    Updated,
    /// By title, A to Z.
    Title,
}

/// How query words combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    /// Every word must match (falls back to `any` when nothing matches all).
    #[default]
    All,
    /// Any word may match; more matching words rank higher.
    Any,
}

/// Which rankers answer a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Words only (BM25 with typo tolerance).
    Lexical,
    /// Meaning only: the query's embedding against passage embeddings.
    Semantic,
    /// Both, fused (the default when an embedding model is loaded).
    Hybrid,
}

impl SearchMode {
    /// Parses `lexical`, `semantic` or `hybrid`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "lexical" => Ok(SearchMode::Lexical),
            "semantic" => Ok(SearchMode::Semantic),
            "hybrid" => Ok(SearchMode::Hybrid),
            other => Err(Error::invalid(
                "mode",
                format!("unknown mode {other:?}; use lexical, semantic or hybrid"),
            )),
        }
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchMode::Lexical => "lexical",
            SearchMode::Semantic => "semantic",
            SearchMode::Hybrid => "hybrid",
        }
    }
}

/// How hybrid search fuses the lexical and semantic rankings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Fusion {
    /// Reciprocal-rank fusion: the sum of 1/(60 + rank) over both lists.
    Rrf,
    /// Convex combination of normalised scores with this semantic weight
    /// (KMT's default, with the embedder's weight: `hybrid::default_fusion`).
    Convex(f32),
    /// A convex combination whose semantic weight rises from 0.7 to 1.0 as
    /// the two rankers' top tens disagree (see `hybrid.rs`).
    Adaptive,
}

/// A facetable field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FacetField {
    /// The category.
    Category,
    /// The tags.
    Tags,
}

impl FacetField {
    /// Field name.
    pub fn as_str(self) -> &'static str {
        match self {
            FacetField::Category => "category",
            FacetField::Tags => "tags",
        }
    }

    /// Parses a field name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "category" => Ok(FacetField::Category),
            "tags" | "tag" => Ok(FacetField::Tags),
            other => Err(Error::invalid(
                "facets",
                format!("unknown facet {other:?}; facetable fields are category and tags"),
            )),
        }
    }
}

/// One filter clause. Values of the same field are OR-ed; fields are AND-ed.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `category:X`
    Category(String),
    /// `tags:X`
    Tag(String),
    /// `status:X`
    Status(Status),
    /// `audience:X` (articles whose audience includes role X)
    Audience(String),
    /// `updated_at>=T`, `updated_at<T`
    UpdatedAt(
        Bound<chrono::DateTime<chrono::Utc>>,
        Bound<chrono::DateTime<chrono::Utc>>,
    ),
    /// `published_at>=T`, `published_at<T`
    PublishedAt(
        Bound<chrono::DateTime<chrono::Utc>>,
        Bound<chrono::DateTime<chrono::Utc>>,
    ),
}

impl Filter {
    /// Parses `field:value`, `field>=date`, `field>date`, `field<=date`, `field<date`.
    /// Dates are RFC 3339 or `YYYY-MM-DD` (midnight UTC).
    pub fn parse(s: &str) -> Result<Filter> {
        let bad = |m: String| Error::invalid("filter", m);
        for op in [">=", "<=", ">", "<"] {
            if let Some((field, value)) = s.split_once(op) {
                if field.contains(':') {
                    break;
                }
                let t = parse_date(value.trim()).map_err(|_| {
                    bad(format!(
                        "{value:?} is not a date (use 2025-01-31 or RFC 3339)"
                    ))
                })?;
                let (lo, hi) = match op {
                    ">=" => (Bound::Included(t), Bound::Unbounded),
                    ">" => (Bound::Excluded(t), Bound::Unbounded),
                    "<=" => (Bound::Unbounded, Bound::Included(t)),
                    _ => (Bound::Unbounded, Bound::Excluded(t)),
                };
                return match field.trim() {
                    "updated_at" => Ok(Filter::UpdatedAt(lo, hi)),
                    "published_at" => Ok(Filter::PublishedAt(lo, hi)),
                    f => Err(bad(format!(
                        "cannot compare {f:?}; date ranges apply to updated_at and published_at"
                    ))),
                };
            }
        }
        let (field, value) = s
            .split_once(':')
            .ok_or_else(|| bad(format!("{s:?} is not field:value")))?;
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err(bad(format!("{s:?} has an empty value")));
        }
        match field.trim() {
            "category" => Ok(Filter::Category(value.to_lowercase())),
            "tags" | "tag" => Ok(Filter::Tag(value.to_lowercase())),
            // The parameter at fault is the filter, whatever the field.
            "status" => Ok(Filter::Status(
                value.parse().map_err(|e: Error| bad(e.to_string()))?,
            )),
            "audience" => Ok(Filter::Audience(value.to_lowercase())),
            f => Err(bad(format!(
                "unknown filter field {f:?}; use category, tags, status, audience, updated_at or published_at"
            ))),
        }
    }

    /// Groups filters by field: same field ORs, different fields AND.
    pub(crate) fn key(&self) -> u8 {
        match self {
            Filter::Category(_) => 0,
            Filter::Tag(_) => 1,
            Filter::Status(_) => 2,
            Filter::Audience(_) => 3,
            Filter::UpdatedAt(..) => 4,
            Filter::PublishedAt(..) => 5,
        }
    }
}

/// Parses a filter date; only years 1900–2200 are accepted (the index keeps
/// nanosecond timestamps, which end in 2262).
fn parse_date(s: &str) -> std::result::Result<chrono::DateTime<chrono::Utc>, ()> {
    use chrono::Datelike;
    let t = match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&chrono::Utc),
        Err(_) => {
            let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| ())?;
            d.and_hms_opt(0, 0, 0).ok_or(())?.and_utc()
        }
    };
    if (1900..=2200).contains(&t.year()) {
        Ok(t)
    } else {
        Err(())
    }
}

/// A search request, validated.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// Query text (may be empty: then every readable article matches).
    pub q: String,
    /// Filters.
    pub filters: Vec<Filter>,
    /// Facets to count.
    pub facets: Vec<FacetField>,
    /// Sort order.
    pub sort: Sort,
    /// Page size (1..=100).
    pub limit: usize,
    /// Offset (0..=10,000).
    pub offset: usize,
    /// How words combine.
    pub match_mode: MatchMode,
    /// Rankers to use; `None` = hybrid when a model is loaded, else lexical.
    pub mode: Option<SearchMode>,
    /// Fusion of hybrid rankings; `None` = the measured default.
    pub fusion: Option<Fusion>,
    /// Return each hit's lexical score, vector similarity and fused score.
    pub explain: bool,
}

impl SearchRequest {
    /// Checks bounds; the API calls this before searching.
    pub fn validate(&self) -> Result<()> {
        if self.q.len() > MAX_QUERY_BYTES {
            return Err(Error::invalid(
                "q",
                format!("must be at most {MAX_QUERY_BYTES} bytes"),
            ));
        }
        if self.limit == 0 || self.limit > MAX_LIMIT {
            return Err(Error::invalid("limit", format!("must be 1..={MAX_LIMIT}")));
        }
        if let Some(Fusion::Convex(w)) = self.fusion {
            if !(0.0..=1.0).contains(&w) {
                return Err(Error::invalid(
                    "fusion",
                    "the semantic weight must be 0..=1",
                ));
            }
        }
        if self.offset > MAX_OFFSET {
            return Err(Error::invalid(
                "offset",
                format!("must be at most {MAX_OFFSET}"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        assert_eq!(
            Filter::parse("category:Audits").unwrap(),
            Filter::Category("audits".into())
        );
        assert!(matches!(
            Filter::parse("updated_at>=2025-01-02").unwrap(),
            Filter::UpdatedAt(Bound::Included(_), Bound::Unbounded)
        ));
        assert!(Filter::parse("colour:red").is_err());
        assert!(Filter::parse("status:live").is_err());
        assert!(Filter::parse("updated_at>yesterday").is_err());
        assert!(Filter::parse("updated_at<=2999-01-01").is_err());
        assert!(Filter::parse("category:").is_err());
    }
}
