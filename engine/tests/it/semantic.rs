//! Semantic and hybrid search with the real embedding model: paraphrases,
//! permissions inside the vector search, facet counts of the hybrid
//! population, explain, and the exact/graph plans.

use std::sync::{Arc, OnceLock};

use chrono::{TimeZone, Utc};
use engine::auth::Principal;
use engine::embed::local::LocalEmbedder;
use engine::embed::{passages, Embedder, QueryEmbedder};
use engine::model::{Article, Status};
use engine::search::{
    FacetField, Fusion, SearchIndex, SearchMode, SearchRequest, SearchResults, Semantic,
};
use engine::vector::{SearchParams, VectorIndex};

fn model() -> Arc<dyn Embedder> {
    static MODEL: OnceLock<Arc<dyn Embedder>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = LocalEmbedder::default_dir();
            let m = LocalEmbedder::load(&dir).unwrap_or_else(|e| {
                panic!(
                    "the embedding model is needed in {} (run `make model`): {e}",
                    dir.display()
                )
            });
            Arc::new(m)
        })
        .clone()
}

fn article(id: i64, title: &str, body: &str, category: &str, audience: &[&str]) -> Article {
    let t = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    Article {
        id,
        slug: format!("a-{id}"),
        title: title.into(),
        summary: String::new(),
        body: body.into(),
        category: category.into(),
        tags: vec![],
        audience: audience.iter().map(|s| s.to_string()).collect(),
        status: Status::Published,
        owner: "admin".into(),
        version: 1,
        created_at: t,
        updated_at: t,
        published_at: Some(t),
        review_due: None,
    }
}

/// An index of `articles` with semantic search attached.
fn build(articles: &[Article], params: SearchParams) -> SearchIndex {
    let index = SearchIndex::in_memory().unwrap();
    let mut u = index.updater().unwrap();
    for a in articles {
        u.upsert(a).unwrap();
    }
    u.commit(articles.len() as i64).unwrap();
    let m = model();
    let mut vecs = Vec::new();
    for a in articles {
        let p = passages(&a.title, &a.summary, &a.body);
        let refs: Vec<&str> = p.iter().map(String::as_str).collect();
        vecs.push((
            a.id,
            engine::embed::content_hash(&p),
            m.embed(&refs).unwrap(),
        ));
    }
    let vectors = VectorIndex::build(m.dim(), vecs);
    index.attach_semantic(Arc::new(Semantic {
        embedder: QueryEmbedder::new(m, 64),
        vectors,
        params,
    }));
    index
}

fn corpus() -> Vec<Article> {
    vec![
        article(1, "Releasing a bank levy", "When the balance is paid in full, send the release form to the bank within two business days.", "collections", &[]),
        article(2, "Penalty abatement for reasonable cause", "Abatement removes a penalty when the taxpayer shows reasonable cause such as serious illness or a natural disaster.", "penalties", &[]),
        article(3, "Scheduling a field audit", "Mail the audit notice thirty days before the visit and confirm the appointment by phone.", "audits", &[]),
        article(4, "Audit selection scoring model", "The Thistlewood scoring model ranks returns for audit selection using income ratios.", "audits", &["auditor"]),
        article(5, "Refund status", "Taxpayers can check the progress of their refund online with the confirmation number.", "refunds", &["public"]),
        article(6, "Installment agreements", "A taxpayer who cannot pay at once may spread the debt over monthly payments under an agreement.", "collections", &[]),
        article(7, "Hearing procedure", "An informal hearing lets the taxpayer present evidence to a hearing officer before a decision.", "appeals", &[]),
    ]
}

fn user(roles: &[&str]) -> Principal {
    Principal {
        user_id: Some(9),
        username: "someone".into(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
    }
}

fn req(q: &str, mode: SearchMode) -> SearchRequest {
    SearchRequest {
        q: q.into(),
        limit: 10,
        mode: Some(mode),
        ..Default::default()
    }
}

fn ids(r: &SearchResults) -> Vec<i64> {
    r.hits.iter().map(|h| h.id).collect()
}

#[test]
fn issue_3_paraphrase_without_shared_words_is_found() {
    let index = build(&corpus(), SearchParams::default());
    let viewer = user(&["viewer"]);
    // No word of this query occurs in article 6 ("Installment agreements").
    let q = "can I settle my tax bill in parts";
    let lex = index.search(&viewer, &req(q, SearchMode::Lexical)).unwrap();
    assert_ne!(
        ids(&lex).first(),
        Some(&6),
        "lexical should not find it first"
    );
    let sem = index
        .search(&viewer, &req(q, SearchMode::Semantic))
        .unwrap();
    assert_eq!(
        ids(&sem).first(),
        Some(&6),
        "semantic hits: {:?}",
        ids(&sem)
    );
    assert_eq!(sem.mode, SearchMode::Semantic);
    let hyb = index.search(&viewer, &req(q, SearchMode::Hybrid)).unwrap();
    assert_eq!(ids(&hyb).first(), Some(&6), "hybrid hits: {:?}", ids(&hyb));
    // The default mode with a model loaded is hybrid.
    let mut r = req(q, SearchMode::Hybrid);
    r.mode = None;
    assert_eq!(index.search(&viewer, &r).unwrap().mode, SearchMode::Hybrid);
}

#[test]
fn issue_3_hybrid_leaks_nothing_restricted() {
    let index = build(&corpus(), SearchParams::default());
    // Article 4 is for auditors only; this query is about exactly it.
    let q = "how are returns picked for an audit";
    for mode in [SearchMode::Semantic, SearchMode::Hybrid] {
        for who in [user(&["viewer"]), Principal::anonymous()] {
            let mut r = req(q, mode);
            r.facets = vec![FacetField::Category];
            r.limit = 100;
            r.explain = true;
            let res = index.search(&who, &r).unwrap();
            assert!(!ids(&res).contains(&4), "{mode:?}: {:?}", ids(&res));
            assert_eq!(res.total as usize, res.hits.len());
            assert!(res
                .hits
                .iter()
                .all(|h| !h.title.contains("Thistlewood") && !h.snippet.contains("Thistlewood")));
            let audits = res.facets["category"]
                .iter()
                .find(|c| c.value == "audits")
                .map_or(0, |c| c.count);
            assert!(audits <= 1, "only the public audit article may be counted");
        }
        let res = index.search(&user(&["auditor"]), &req(q, mode)).unwrap();
        assert_eq!(
            ids(&res).first(),
            Some(&4),
            "{mode:?}: the auditor finds it"
        );
    }
}

#[test]
fn issue_3_related_articles_obey_permissions() {
    let index = build(&corpus(), SearchParams::default());
    // Article 3 (field audit) is related to article 4 (auditors only).
    let auditor = index.related(&user(&["auditor"]), 3, 5).unwrap();
    assert!(auditor.iter().any(|h| h.id == 4), "{auditor:?}");
    assert!(auditor.iter().all(|h| h.id != 3));
    // Anonymous readers see only public articles (article 5).
    for (who, from) in [(user(&["viewer"]), 3), (Principal::anonymous(), 5)] {
        let hits = index.related(&who, from, 10).unwrap();
        assert!(hits.iter().all(|h| h.id != 4 && h.id != from), "{hits:?}");
        // The restricted article itself is "not found", not an empty list.
        assert!(index.related(&who, 4, 5).is_err());
    }
}

#[test]
fn issue_3_hybrid_facets_describe_the_returned_population() {
    let index = build(&corpus(), SearchParams::default());
    let mut r = req("taxpayer pays the debt", SearchMode::Hybrid);
    r.facets = vec![FacetField::Category];
    r.limit = 100;
    r.explain = true;
    let res = index.search(&user(&["viewer"]), &r).unwrap();
    // Every hit of the population is on the page (limit 100 > population),
    // so the facet counts must equal the categories of exactly these hits.
    assert_eq!(res.total as usize, res.hits.len());
    let mut expect = std::collections::BTreeMap::new();
    for h in &res.hits {
        *expect.entry(h.category.clone()).or_insert(0u64) += 1;
    }
    let got: std::collections::BTreeMap<String, u64> = res.facets["category"]
        .iter()
        .map(|c| (c.value.clone(), c.count))
        .collect();
    assert_eq!(got, expect);
    // Explain carries both scores where they exist, and hits are ordered by
    // the fused score.
    let ex: Vec<_> = res
        .hits
        .iter()
        .map(|h| h.explain.clone().unwrap())
        .collect();
    assert!(ex
        .iter()
        .any(|e| e.lexical.is_some() && e.semantic.is_some()));
    assert!(ex.windows(2).all(|w| w[0].fused >= w[1].fused));
    let info = res.semantic.unwrap();
    assert_eq!(info.model, "all-MiniLM-L6-v2");
    // Without a fusion named, the convex combination with the embedder's
    // measured weight (0.8 for MiniLM).
    assert_eq!(info.fusion, Some(Fusion::Convex(0.8)));
    // RRF and convex are selectable.
    for fusion in [Fusion::Rrf, Fusion::Convex(0.5)] {
        let mut r2 = r.clone();
        r2.fusion = Some(fusion);
        let res2 = index.search(&user(&["viewer"]), &r2).unwrap();
        assert_eq!(res2.total, res.total);
        assert_eq!(res2.semantic.unwrap().fusion, Some(fusion));
    }
}

#[test]
fn issue_3_k_readable_hits_when_most_of_the_index_is_restricted() {
    // 400 articles, of which only 12 are readable by viewers: the vector
    // search must still return 12 hits, in both plans.
    let mut arts = Vec::new();
    for i in 1..=400i64 {
        let readable = i % 33 == 0;
        let aud: &[&str] = if readable { &[] } else { &["director"] };
        arts.push(article(
            i,
            &format!("Collection case note {i}"),
            &format!(
                "Notes on collecting an unpaid balance, case {i}: the taxpayer agreed to pay."
            ),
            "collections",
            aud,
        ));
    }
    let readable = arts.iter().filter(|a| a.audience.is_empty()).count();
    for exact_below in [0usize, 1_000_000] {
        let index = build(
            &arts,
            SearchParams {
                ef: 32,
                exact_below,
                // 0 forces the graph walk; the other run scans exactly.
                exact_fraction: if exact_below == 0 { 0.0 } else { 1.0 },
            },
        );
        let mut r = req("getting a debtor to pay", SearchMode::Semantic);
        r.limit = 50;
        let res = index.search(&user(&["viewer"]), &r).unwrap();
        assert_eq!(res.hits.len(), readable, "exact_below={exact_below}");
        assert!(res.hits.iter().all(|h| h.id % 33 == 0));
        let res = index.search(&user(&["director"]), &r).unwrap();
        assert_eq!(res.hits.len(), 50);
    }
}

#[test]
fn issue_3_query_vectors_are_cached() {
    let index = build(&corpus(), SearchParams::default());
    let r = req("refund progress", SearchMode::Semantic);
    let a = index.search(&user(&["viewer"]), &r).unwrap();
    let b = index.search(&user(&["viewer"]), &r).unwrap();
    assert!(!a.semantic.as_ref().unwrap().cached_query);
    assert!(b.semantic.as_ref().unwrap().cached_query);
    assert_eq!(ids(&a), ids(&b));
}

#[test]
fn issue_3_without_a_model_semantic_is_refused_and_lexical_works() {
    let index = SearchIndex::in_memory().unwrap();
    let mut u = index.updater().unwrap();
    for a in corpus() {
        u.upsert(&a).unwrap();
    }
    u.commit(7).unwrap();
    let err = index
        .search(&user(&["viewer"]), &req("refund", SearchMode::Semantic))
        .unwrap_err();
    assert!(err.to_string().contains("no embedding model"), "{err}");
    let mut r = req("refund", SearchMode::Lexical);
    r.mode = None;
    let res = index.search(&Principal::anonymous(), &r).unwrap();
    assert_eq!(res.mode, SearchMode::Lexical);
    assert_eq!(ids(&res), vec![5]);
}
