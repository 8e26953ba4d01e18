//! The tantivy schema, the text analyzer and article → document mapping.

use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, IndexRecordOption, Schema, TextFieldIndexing,
    TextOptions, FAST, INDEXED, STORED, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer,
};
use tantivy::{DateTime, Index, TantivyDocument};

use crate::auth::audience_terms_of;
use crate::model::sections::{self, Visibility};
use crate::model::Article;

/// Name under which the analyzer is registered.
pub const ANALYZER: &str = "kmt_en";
/// Name of the analyzer used for prefix matching (no stemming: a typed
/// prefix is not a word, and stemming it would not be a prefix of the stem).
pub const PREFIX_ANALYZER: &str = "kmt_prefix";

/// Bumped whenever the schema or analyzers change; an index with another
/// version is rebuilt at start-up.
pub const SCHEMA_VERSION: u32 = 3;

/// Handles to every field.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// Article id (u64, fast, stored).
    pub id: Field,
    /// Slug (stored).
    pub slug: Field,
    /// Title text (boosted most).
    pub title: Field,
    /// Summary text.
    pub summary: Field,
    /// Body text.
    pub body: Field,
    /// Title, summary and body in one field: what words are matched
    /// against (one posting list per word); not stored.
    pub all: Field,
    /// Category (raw string, fast for facets).
    pub category: Field,
    /// Tags (raw strings, multi-valued, fast for facets).
    pub tags: Field,
    /// Status.
    pub status: Field,
    /// Audience terms (for the permission clause; never returned).
    pub audience: Field,
    /// Owner username (for the permission clause).
    pub owner: Field,
    /// Last update (fast, for sort and range filters).
    pub updated_at: Field,
    /// First publication (fast, for range filters).
    pub published_at: Field,
    /// Lowercased title (fast, for sorting by title).
    pub title_sort: Field,
    /// Unstemmed words of the title, for prefix matching as the user types.
    pub title_prefix: Field,
    /// Unstemmed words of title, summary and body (no frequencies or
    /// positions): typo tolerance and prefixes compare what people type
    /// with words as written, which stems are not.
    pub words: Field,
    /// Article version (fast, stored: lets tests and `kmt reindex --check`
    /// compare the index with the store article for article).
    pub version: Field,
    /// Audience keys of the restricted sections this document shows (see
    /// [`to_documents`]).
    pub sec_show: Field,
    /// Roles of the restricted sections this document hides.
    pub sec_hide: Field,
    /// `1` on documents that hide at least one section.
    pub sec_partial: Field,
}

/// Builds the schema.
pub fn build_schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = |stored: bool| {
        let idx = TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions);
        let o = TextOptions::default().set_indexing_options(idx);
        if stored {
            o.set_stored()
        } else {
            o
        }
    };
    let date = DateOptions::default()
        .set_indexed()
        .set_fast()
        .set_stored()
        .set_precision(DateTimePrecision::Seconds);
    let prefix = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(PREFIX_ANALYZER)
            .set_index_option(IndexRecordOption::Basic),
    );
    let fields = Fields {
        id: b.add_u64_field("id", INDEXED | FAST | STORED),
        slug: b.add_text_field("slug", STRING | STORED),
        title: b.add_text_field("title", text(true)),
        summary: b.add_text_field("summary", text(true)),
        body: b.add_text_field("body", text(true)),
        all: b.add_text_field("all", text(false)),
        category: b.add_text_field("category", STRING | FAST | STORED),
        tags: b.add_text_field("tags", STRING | FAST | STORED),
        status: b.add_text_field("status", STRING | STORED),
        audience: b.add_text_field("audience", STRING),
        owner: b.add_text_field("owner", STRING),
        updated_at: b.add_date_field("updated_at", date.clone()),
        published_at: b.add_date_field("published_at", date),
        title_sort: b.add_text_field("title_sort", STRING | FAST),
        title_prefix: b.add_text_field("title_prefix", prefix.clone()),
        words: b.add_text_field("words", prefix.clone()),
        version: b.add_u64_field("version", FAST | STORED),
        sec_show: b.add_text_field("sec_show", STRING),
        sec_hide: b.add_text_field("sec_hide", STRING),
        sec_partial: b.add_text_field("sec_partial", STRING),
    };
    (b.build(), fields)
}

/// The analyzer for text fields and queries: words, lowercased, accents
/// folded, English stop words dropped, English stemming.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(
            StopWordFilter::new(Language::English).expect("english stop words ship with tantivy"),
        )
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The prefix analyzer: like [`analyzer`] without stop words and stemming.
pub fn prefix_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// Registers the analyzers on an index (needed after every open).
pub fn register_analyzers(index: &Index) {
    index.tokenizers().register(ANALYZER, analyzer());
    index
        .tokenizers()
        .register(PREFIX_ANALYZER, prefix_analyzer());
}

/// Converts a chrono time to tantivy's.
pub fn to_tantivy_date(t: chrono::DateTime<chrono::Utc>) -> DateTime {
    DateTime::from_timestamp_secs(t.timestamp())
}

/// Maps an article to its index documents: one per combination of its
/// restricted sections' audiences (see [`crate::model::sections`]), each
/// holding only the words of the sections shown in it.
///
/// Every reader sees exactly one of them: the document whose shown
/// audiences they all hold and whose hidden ones they all lack (the search
/// clause in `query::permission_clause`). So a section's words are found
/// only by those allowed to see it, with hits, totals and facets still
/// counting each article once. An article without restricted sections has
/// one document.
pub fn to_documents(f: &Fields, a: &Article) -> Vec<TantivyDocument> {
    let keys = sections::restricted_keys(&a.summary, &a.body);
    let full = (1usize << keys.len()) - 1;
    (0..=full)
        .map(|mask| {
            let shown: Vec<&String> = keys
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, k)| k)
                .collect();
            let v = Visibility::Keys(shown.iter().map(|k| k.to_string()).collect());
            let mut d = document(
                f,
                a,
                &sections::indexable_text(&a.summary, &v),
                &sections::indexable_text(&a.body, &v),
            );
            for k in &shown {
                d.add_text(f.sec_show, k);
            }
            for (i, k) in keys.iter().enumerate() {
                if mask & (1 << i) == 0 {
                    for role in k.split(',') {
                        d.add_text(f.sec_hide, role);
                    }
                }
            }
            if mask != full {
                d.add_text(f.sec_partial, "1");
            }
            d
        })
        .collect()
}

/// One index document with the given (already filtered) summary and body.
fn document(f: &Fields, a: &Article, summary: &str, body: &str) -> TantivyDocument {
    let mut d = TantivyDocument::default();
    d.add_u64(f.id, a.id as u64);
    d.add_text(f.slug, &a.slug);
    d.add_text(f.title, &a.title);
    d.add_text(f.summary, summary);
    d.add_text(f.body, body);
    for text in [a.title.as_str(), summary, body] {
        d.add_text(f.all, text);
    }
    d.add_text(f.category, &a.category);
    for t in &a.tags {
        d.add_text(f.tags, t);
    }
    d.add_text(f.status, a.status.as_str());
    for t in audience_terms_of(&a.audience) {
        d.add_text(f.audience, &t);
    }
    d.add_text(f.owner, &a.owner);
    d.add_date(f.updated_at, to_tantivy_date(a.updated_at));
    if let Some(p) = a.published_at {
        d.add_date(f.published_at, to_tantivy_date(p));
    }
    d.add_text(f.title_sort, a.title.to_lowercase());
    d.add_text(f.title_prefix, &a.title);
    for text in [a.title.as_str(), summary, body] {
        d.add_text(f.words, text);
    }
    d.add_u64(f.version, a.version.max(0) as u64);
    d
}
