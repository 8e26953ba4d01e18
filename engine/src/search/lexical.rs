//! Lexical search: the BM25 pass (with the fallback from all words to any
//! word), its facet counts, and turning hits into results with snippets.

use std::time::Instant;

use tantivy::collector::{Count, TopDocs};
use tantivy::query::Query;
use tantivy::schema::Value;
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocAddress, Order, Searcher, TantivyDocument};

use super::{
    collect, hybrid, query, Fields, Generation, Hit, MatchMode, SearchMode, SearchRequest,
    SearchResults, Sort, Timings, SNIPPET_CHARS,
};
use crate::auth::Principal;
use crate::error::Result;
use crate::model::ArticleId;

/// The lexical side of a query: its top `limit` candidates from `offset`,
/// total and facet counts, after the fallback from all words to any word.
pub(super) struct Lexical {
    pub(super) docs: Vec<(Option<f32>, DocAddress)>,
    pub(super) total: u64,
    pub(super) facets: Vec<std::collections::HashMap<String, u64>>,
    pub(super) relaxed: bool,
    pub(super) fuzzy_words: usize,
    /// The final query (`None` without searchable words).
    pub(super) query: Option<Box<dyn Query>>,
    pub(super) highlight: Box<dyn Query>,
    pub(super) stems: Vec<String>,
    pub(super) has_text: bool,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn lexical_pass(
    gen: &Generation,
    searcher: &Searcher,
    visible: &dyn Query,
    req: &SearchRequest,
    sort: Sort,
    limit: usize,
    offset: usize,
    facet_fields: &[&'static str],
) -> Result<Lexical> {
    let f = &gen.fields;
    let mut analyzer = gen.analyzer.clone();
    let mut prefix_analyzer = gen.prefix_analyzer.clone();
    let text = query::build_text_query(
        searcher,
        f,
        &mut analyzer,
        &mut prefix_analyzer,
        &req.q,
        req.match_mode,
        visible,
    );
    let has_text = text.query.is_some();
    let highlight = text.highlight_query(&[f.body, f.summary]);
    let stems = text.highlight.clone();
    let fuzzy_words = text.fuzzy_words;
    let mut final_text = text.query;
    let query = query::assemble(
        f,
        visible,
        final_text.as_ref().map(|q| q.box_clone()),
        &req.filters,
    );
    let sort = match sort {
        Sort::Relevance if !has_text => Sort::Updated,
        s => s,
    };
    let mut pass = run_pass(searcher, &*query, sort, limit, offset, facet_fields)?;
    let mut relaxed = false;
    if pass.total == 0 && has_text && req.match_mode == MatchMode::All {
        // Nothing matches every word: fall back to any word.
        let text = query::build_text_query(
            searcher,
            f,
            &mut analyzer,
            &mut prefix_analyzer,
            &req.q,
            MatchMode::Any,
            visible,
        );
        let q2 = query::assemble(
            f,
            visible,
            text.query.as_ref().map(|q| q.box_clone()),
            &req.filters,
        );
        let p2 = run_pass(searcher, &*q2, sort, limit, offset, facet_fields)?;
        if p2.total > 0 {
            relaxed = true;
            pass = p2;
            final_text = text.query;
        }
    }
    Ok(Lexical {
        docs: pass.docs,
        total: pass.total,
        facets: pass.facets,
        relaxed,
        fuzzy_words,
        query: final_text.map(|t| query::assemble(f, visible, Some(t), &req.filters)),
        highlight,
        stems,
        has_text,
    })
}

/// The lexical candidates of a hybrid query: the top `depth` by BM25.
pub(super) fn lexical_candidates(
    gen: &Generation,
    searcher: &Searcher,
    visible: &dyn Query,
    req: &SearchRequest,
    depth: usize,
    facet_fields: &[&'static str],
) -> Result<Lexical> {
    lexical_pass(
        gen,
        searcher,
        visible,
        req,
        Sort::Relevance,
        depth,
        0,
        facet_fields,
    )
}

/// The article id of a document.
pub(super) fn article_id(searcher: &Searcher, addr: DocAddress) -> ArticleId {
    searcher
        .segment_reader(addr.segment_ord)
        .fast_fields()
        .u64("id")
        .ok()
        .and_then(|c| c.first(addr.doc_id))
        .unwrap_or(0) as ArticleId
}

/// A lexical search.
pub(super) fn lexical(
    gen: &Generation,
    principal: &Principal,
    req: &SearchRequest,
) -> Result<SearchResults> {
    let t0 = Instant::now();
    let searcher = gen.reader.searcher();
    let f = &gen.fields;
    let visible = query::visibility(f, principal, &req.filters, &gen.filters);
    let facet_fields: Vec<&'static str> = req.facets.iter().map(|x| x.as_str()).collect();
    let t_parse = t0.elapsed();
    let lex = lexical_pass(
        gen,
        &searcher,
        &*visible,
        req,
        req.sort,
        req.limit,
        req.offset,
        &facet_fields,
    )?;
    let t_search = t0.elapsed();

    let facets = hybrid::facets_out(&facet_fields, lex.facets);
    let t_facets = t0.elapsed();

    let hits = if lex.docs.is_empty() {
        Vec::new()
    } else {
        build_hits(
            &searcher,
            f,
            &*lex.highlight,
            &lex.stems,
            lex.has_text,
            lex.docs,
        )?
    };
    let t_total = t0.elapsed();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    Ok(SearchResults {
        hits,
        total: lex.total,
        facets,
        relaxed: lex.relaxed,
        fuzzy_words: lex.fuzzy_words,
        mode: SearchMode::Lexical,
        did_you_mean: None,
        semantic: None,
        took_ms: ms(t_total),
        timings: Timings {
            parse: ms(t_parse),
            embed: 0.0,
            vector: 0.0,
            search: ms(t_search - t_parse),
            facets: ms(t_facets - t_search),
            snippets: ms(t_total - t_facets),
            total: ms(t_total),
        },
    })
}

pub(super) struct Pass {
    pub(super) docs: Vec<(Option<f32>, DocAddress)>,
    pub(super) total: u64,
    pub(super) facets: Vec<std::collections::HashMap<String, u64>>,
}

pub(super) fn run_pass(
    searcher: &Searcher,
    query: &dyn Query,
    sort: Sort,
    limit: usize,
    offset: usize,
    facet_fields: &[&'static str],
) -> Result<Pass> {
    let top = TopDocs::with_limit(limit).and_offset(offset);
    let fc = collect::FacetCounts {
        fields: facet_fields.to_vec(),
    };
    Ok(match sort {
        Sort::Relevance => {
            let (d, total, facets) = searcher.search(query, &(top, Count, fc))?;
            Pass {
                docs: d.into_iter().map(|(s, a)| (Some(s), a)).collect(),
                total: total as u64,
                facets,
            }
        }
        Sort::Updated => {
            let top = top.order_by_fast_field::<tantivy::DateTime>("updated_at", Order::Desc);
            let (d, total, facets) = searcher.search(query, &(top, Count, fc))?;
            Pass {
                docs: d.into_iter().map(|(_, a)| (None, a)).collect(),
                total: total as u64,
                facets,
            }
        }
        Sort::Title => {
            let top = top.order_by_string_fast_field("title_sort", Order::Asc);
            let (d, total, facets) = searcher.search(query, &(top, Count, fc))?;
            Pass {
                docs: d.into_iter().map(|(_, a)| (None, a)).collect(),
                total: total as u64,
                facets,
            }
        }
    })
}

pub(super) fn build_hits(
    searcher: &Searcher,
    f: &Fields,
    highlight: &dyn Query,
    stems: &[String],
    has_text: bool,
    docs: Vec<(Option<f32>, DocAddress)>,
) -> Result<Vec<Hit>> {
    let mut generators: Vec<SnippetGenerator> = Vec::new();
    if has_text {
        for field in [f.body, f.summary] {
            let mut g = SnippetGenerator::create(searcher, highlight, field)?;
            g.set_max_num_chars(SNIPPET_CHARS);
            generators.push(g);
        }
    }
    let mut hits = Vec::with_capacity(docs.len());
    for (score, addr) in docs {
        let doc: TantivyDocument = searcher.doc(addr)?;
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let mut snippet = String::new();
        for (g, field) in generators.iter().zip([f.body, f.summary]) {
            let full = doc
                .get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            // Highlighting tokenizes and stems its input: give it only the
            // stretch around the first match, not a whole long body.
            let Some(window) = collect::match_window(full, stems, SNIPPET_CHARS * 3) else {
                continue;
            };
            let s = g.snippet(window);
            if !s.highlighted().is_empty() {
                snippet = collect::snippet_html(&s);
                break;
            }
        }
        if snippet.is_empty() {
            let summary = text(f.summary);
            let lead = if summary.trim().is_empty() {
                text(f.body)
            } else {
                summary
            };
            snippet = collect::lead_html(&lead, SNIPPET_CHARS);
        }
        let updated = doc
            .get_first(f.updated_at)
            .and_then(|v| v.as_datetime())
            .map(|d| d.into_timestamp_secs())
            .unwrap_or(0);
        hits.push(Hit {
            id: doc.get_first(f.id).and_then(|v| v.as_u64()).unwrap_or(0) as ArticleId,
            slug: text(f.slug),
            title: text(f.title),
            snippet,
            score,
            category: text(f.category),
            tags: doc
                .get_all(f.tags)
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            status: text(f.status),
            updated_at: chrono::DateTime::from_timestamp(updated, 0).unwrap_or_default(),
            explain: None,
        });
    }
    Ok(hits)
}
