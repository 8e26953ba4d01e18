//! Sections with their own audience in the search index (issue 4): a
//! section's words are found only by those allowed to see it, and each
//! article still counts once in hits, totals and facets.

use chrono::{TimeZone, Utc};
use engine::auth::Principal;
use engine::model::{Article, Status};
use engine::search::{FacetField, SearchIndex, SearchRequest};

const BODY: &str = "Waivers are granted for reasonable cause.\n\
::: section id=notes audience=reviewer title=\"Reviewer notes\"\n\
Quokkaword appears only for reviewers.\n\
:::\n\
::: section id=audit audience=auditor,director\n\
Wombatword appears only for auditors and directors.\n\
:::\n\
Closing words about waivers.\n";

fn article(id: i64, slug: &str, title: &str, body: &str, owner: &str) -> Article {
    let t = Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap();
    Article {
        id,
        slug: slug.into(),
        title: title.into(),
        summary: String::new(),
        body: body.into(),
        category: "penalties".into(),
        tags: vec!["waiver".into()],
        audience: vec![],
        status: Status::Published,
        owner: owner.into(),
        version: 1,
        created_at: t,
        updated_at: t,
        published_at: Some(t),
        review_due: None,
    }
}

fn build() -> SearchIndex {
    let index = SearchIndex::in_memory().unwrap();
    let mut u = index.updater().unwrap();
    u.upsert(&article(1, "fee-waiver", "Fee waiver", BODY, "olga"))
        .unwrap();
    u.upsert(&article(
        2,
        "other-waivers",
        "Other waivers",
        "More about waivers.",
        "olga",
    ))
    .unwrap();
    u.commit(2).unwrap();
    index
}

fn user(name: &str, roles: &[&str]) -> Principal {
    Principal {
        user_id: Some(7),
        username: name.into(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
    }
}

fn total(ix: &SearchIndex, p: &Principal, q: &str) -> u64 {
    let r = ix
        .search(
            p,
            &SearchRequest {
                q: q.into(),
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(r.hits.len() as u64, r.total.min(10), "{q}");
    r.total
}

#[test]
fn issue_4_section_words_are_found_only_by_their_audience() {
    let ix = build();
    let viewer = user("vera", &["viewer"]);
    let reviewer = user("rita", &["reviewer"]);
    let auditor = user("aldo", &["viewer", "auditor"]);
    let both = user("bea", &["reviewer", "auditor"]);
    let owner = user("olga", &["author"]);
    let admin = user("ada", &["admin"]);
    let cases: [(&Principal, u64, u64); 6] = [
        (&viewer, 0, 0),
        (&reviewer, 1, 0),
        (&auditor, 0, 1),
        (&both, 1, 1),
        (&owner, 1, 1),
        (&admin, 1, 1),
    ];
    for (p, quokka, wombat) in cases {
        assert_eq!(total(&ix, p, "quokkaword"), quokka, "{}", p.username);
        assert_eq!(total(&ix, p, "wombatword"), wombat, "{}", p.username);
        // A misspelling of a hidden word behaves like an unknown word.
        assert_eq!(total(&ix, p, "quokaword"), quokka, "{}", p.username);
        // Every reader finds each article exactly once.
        assert_eq!(total(&ix, p, "waivers"), 2, "{}", p.username);
    }
    assert_eq!(total(&ix, &Principal::anonymous(), "waivers"), 0);
    // The index holds several documents for the article, one per view,
    // but lists it once.
    assert_eq!(ix.documents().unwrap(), vec![(1, 1), (2, 1)]);
    assert!(ix.num_docs() > 2);
}

#[test]
fn issue_4_hidden_sections_stay_out_of_snippets_facets_and_suggestions() {
    let ix = build();
    ix.warm_suggestions().unwrap();
    let viewer = user("vera", &["viewer"]);
    let mut req = SearchRequest {
        q: "waivers".into(),
        limit: 10,
        ..Default::default()
    };
    req.facets = vec![FacetField::Category, FacetField::Tags];
    let r = ix.search(&viewer, &req).unwrap();
    for h in &r.hits {
        assert!(
            !h.snippet.to_lowercase().contains("quokka"),
            "{}",
            h.snippet
        );
        assert!(
            !h.snippet.to_lowercase().contains("wombat"),
            "{}",
            h.snippet
        );
    }
    let cat: u64 = r.facets["category"].iter().map(|c| c.count).sum();
    assert_eq!(cat, 2, "each article counted once");
    let tags: u64 = r.facets["tags"].iter().map(|c| c.count).sum();
    assert_eq!(tags, 2);
    // Snippets of the reviewer's view show the reviewer's section.
    let reviewer = user("rita", &["reviewer"]);
    let r = ix
        .search(
            &reviewer,
            &SearchRequest {
                q: "quokkaword".into(),
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(r.hits[0].snippet.to_lowercase().contains("quokkaword"));
    assert!(!r.hits[0].snippet.contains(":::"));
    // Suggestions and did-you-mean never complete a hidden word.
    let s = ix.suggest(&viewer, "quokk", 10).unwrap();
    assert!(s.iter().all(|s| !s.text.contains("quokk")), "{s:?}");
    let s = ix.suggest(&reviewer, "quokk", 10).unwrap();
    assert!(s.iter().any(|s| s.text.contains("quokkaword")), "{s:?}");
    assert_eq!(ix.did_you_mean(&viewer, "quokaword").unwrap(), None);
}

#[test]
fn issue_4_editing_sections_updates_every_view() {
    let ix = build();
    let reviewer = user("rita", &["reviewer"]);
    let mut a = article(1, "fee-waiver", "Fee waiver", BODY, "olga");
    a.body = a.body.replace("Quokkaword", "Platypusword");
    a.version = 2;
    let mut u = ix.updater().unwrap();
    u.upsert(&a).unwrap();
    u.commit(3).unwrap();
    drop(u);
    assert_eq!(total(&ix, &reviewer, "quokkaword"), 0);
    assert_eq!(total(&ix, &reviewer, "platypusword"), 1);
    assert_eq!(total(&ix, &reviewer, "waivers"), 2);
    let mut u = ix.updater().unwrap();
    u.delete(1);
    u.commit(4).unwrap();
    assert_eq!(total(&ix, &reviewer, "waivers"), 1);
    assert_eq!(ix.documents().unwrap(), vec![(2, 1)]);
}
