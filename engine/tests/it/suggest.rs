//! As-you-type suggestions and did-you-mean: completion, typos, titles,
//! ranking, limits and — above all — that nothing of an article the caller
//! may not read is ever suggested.

use chrono::{TimeZone, Utc};
use engine::auth::Principal;
use engine::model::{Article, Status};
use engine::search::{SearchIndex, Suggestion, SuggestionKind};

struct Doc {
    title: &'static str,
    body: &'static str,
    audience: &'static [&'static str],
    status: Status,
}

const fn public(title: &'static str, body: &'static str) -> Doc {
    Doc {
        title,
        body,
        audience: &["public"],
        status: Status::Published,
    }
}

/// The restricted article: readable by the `auditor` role only, with a
/// unique title and unique words.
const SECRET_TITLE: &str = "Zanzibar quarterly reconciliation";
const SECRET_WORDS: &[&str] = &[
    "zanzibar",
    "quarterly",
    "xylocarp",
    "quillwort",
    "reconciliation",
];

fn corpus() -> Vec<Doc> {
    vec![
        // "postgres" in 4 articles, "posture" in 2, "postgresql" in 1.
        public(
            "PostgreSQL backup procedure",
            "Back up postgres nightly with pg_dump.",
        ),
        public("Postgres replication", "Streaming postgres replication."),
        public("Connection pooling", "Put pgbouncer in front of postgres."),
        public(
            "Tuning the database",
            "Memory settings of postgres and the security posture.",
        ),
        public("Security review", "Posture checks every quarter."),
        Doc {
            audience: &["auditor"],
            ..public(
                SECRET_TITLE,
                "The xylocarp ledger and quillwort adjustments of the quarter.",
            )
        },
        // Same title as a public article: the duplicate must not make the
        // restricted one visible, nor hide the public one.
        Doc {
            audience: &["auditor"],
            ..public("Connection pooling", "Auditor notes on pooling.")
        },
        // Not live: suggested to nobody (not even an admin).
        Doc {
            status: Status::Draft,
            ..public("Nightjar draft notes", "Nightjar appeal draft.")
        },
    ]
}

fn build() -> SearchIndex {
    let index = SearchIndex::in_memory().unwrap();
    let mut updater = index.updater().unwrap();
    let t = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let docs = corpus();
    for (i, d) in docs.iter().enumerate() {
        let a = Article {
            id: i as i64 + 1,
            slug: format!("article-{}", i + 1),
            title: d.title.into(),
            summary: String::new(),
            body: d.body.into(),
            category: "general".into(),
            tags: vec![],
            audience: d.audience.iter().map(|s| s.to_string()).collect(),
            status: d.status,
            owner: "alice".into(),
            version: 1,
            created_at: t,
            updated_at: t,
            published_at: d.status.is_live().then_some(t),
            review_due: None,
        };
        updater.upsert(&a).unwrap();
        // Two segments: frequencies add up across them ("posture" is in
        // one article of each), titles and words come from both.
        if i == 3 {
            updater.commit(4).unwrap();
        }
    }
    updater.commit(docs.len() as i64).unwrap();
    index
}

fn user(name: &str, roles: &[&str]) -> Principal {
    Principal {
        user_id: Some(1),
        username: name.into(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
    }
}

fn auditor() -> Principal {
    user("otto", &["auditor"])
}

fn texts(s: &[Suggestion], kind: SuggestionKind) -> Vec<&str> {
    s.iter()
        .filter(|x| x.kind == kind)
        .map(|x| x.text.as_str())
        .collect()
}

#[test]
fn completes_the_last_word_keeping_earlier_words() {
    let ix = build();
    let s = ix.suggest(&Principal::anonymous(), "postgr", 8).unwrap();
    let terms = texts(&s, SuggestionKind::Term);
    // Exact prefixes by frequency, then near spellings ("postur").
    assert_eq!(terms, vec!["postgres", "postgresql", "posture"], "{s:?}");
    // Earlier words are kept as typed; only the last is completed.
    let s = ix
        .suggest(&Principal::anonymous(), "Nightly postgr", 8)
        .unwrap();
    assert!(
        texts(&s, SuggestionKind::Term).contains(&"Nightly postgres"),
        "{s:?}"
    );
    // A finished word is not completed.
    let s = ix.suggest(&Principal::anonymous(), "postgr ", 8).unwrap();
    assert!(texts(&s, SuggestionKind::Term).is_empty(), "{s:?}");
}

#[test]
fn typo_in_the_prefix_still_completes() {
    let ix = build();
    let s = ix.suggest(&Principal::anonymous(), "potsgres", 8).unwrap();
    assert!(
        texts(&s, SuggestionKind::Term).contains(&"postgres"),
        "{s:?}"
    );
    // Exact prefixes rank above near spellings.
    let s = ix.suggest(&Principal::anonymous(), "postu", 8).unwrap();
    assert_eq!(texts(&s, SuggestionKind::Term).first(), Some(&"posture"));
    // Below four characters there is no typo tolerance.
    let s = ix.suggest(&Principal::anonymous(), "pso", 8).unwrap();
    assert!(s.is_empty(), "{s:?}");
}

#[test]
fn titles_are_suggested_with_their_article() {
    let ix = build();
    let s = ix.suggest(&Principal::anonymous(), "repl", 8).unwrap();
    let t = s
        .iter()
        .find(|x| x.kind == SuggestionKind::Title)
        .expect("a title suggestion");
    assert_eq!(t.text, "Postgres replication");
    assert_eq!(t.article_id, Some(2));
    assert_eq!(t.slug.as_deref(), Some("article-2"));
    // Titles outrank words.
    assert_eq!(s[0].kind, SuggestionKind::Title);
    // Any title word completes when the other words are in the title.
    let s = ix
        .suggest(&Principal::anonymous(), "replication postg", 8)
        .unwrap();
    assert_eq!(
        texts(&s, SuggestionKind::Title),
        vec!["Postgres replication"]
    );
    // A title starting with the whole query comes first.
    let s = ix.suggest(&Principal::anonymous(), "postgres", 8).unwrap();
    assert_eq!(s[0].text, "Postgres replication", "{s:?}");
    // Typos in titles.
    let s = ix
        .suggest(&Principal::anonymous(), "replicaton", 8)
        .unwrap();
    assert!(
        texts(&s, SuggestionKind::Title).contains(&"Postgres replication"),
        "{s:?}"
    );
}

#[test]
fn words_rank_by_document_frequency() {
    let ix = build();
    let s = ix.suggest(&Principal::anonymous(), "pos", 8).unwrap();
    // postgres (4 articles) > posture (2) > postgresql (1).
    assert_eq!(
        texts(&s, SuggestionKind::Term),
        vec!["postgres", "posture", "postgresql"],
        "{s:?}"
    );
    for w in s.windows(2) {
        assert!(w[0].score >= w[1].score, "{s:?}");
    }
}

#[test]
fn limit_is_respected_and_checked() {
    let ix = build();
    for limit in [1, 2, 3] {
        let s = ix.suggest(&Principal::anonymous(), "p", limit).unwrap();
        assert_eq!(s.len(), limit, "{s:?}");
    }
    let anon = Principal::anonymous();
    assert!(ix.suggest(&anon, "p", 0).is_err());
    assert!(ix.suggest(&anon, "p", 21).is_err());
    assert!(ix.suggest(&anon, "", 5).is_err());
    assert!(ix.suggest(&anon, "   ", 5).is_err());
    assert!(ix.suggest(&anon, &"p".repeat(101), 5).is_err());
    // Punctuation only: valid, nothing to complete.
    assert!(ix.suggest(&anon, "?!", 5).unwrap().is_empty());
}

#[test]
fn did_you_mean_corrects_unknown_words() {
    let ix = build();
    let anon = Principal::anonymous();
    assert_eq!(
        ix.did_you_mean(&anon, "postgres replicaton").unwrap(),
        Some("postgres replication".into())
    );
    assert_eq!(
        ix.did_you_mean(&anon, "Streeming \"postgres\"").unwrap(),
        Some("streaming \"postgres\"".into())
    );
    // Nothing to correct, or nothing to correct it with.
    assert_eq!(ix.did_you_mean(&anon, "postgres").unwrap(), None);
    assert_eq!(ix.did_you_mean(&anon, "qqqqqqqq").unwrap(), None);
    assert_eq!(ix.did_you_mean(&anon, "").unwrap(), None);
}

/// Issue 3: nothing of an article a caller may not read is ever suggested:
/// not its title, not its words, not through typos, not as a correction.
#[test]
fn issue_3_suggest_leaks_nothing_restricted() {
    let ix = build();
    let outsiders = [
        Principal::anonymous(),
        user("vera", &["viewer"]),
        user("harry", &["viewer", "hearing_officer"]),
    ];
    // Prefixes, whole words and near spellings of the restricted words.
    let probes = [
        "z",
        "za",
        "zanz",
        "zanzibar",
        "zanzibra",
        "quarterly",
        "quarter",
        "x",
        "xy",
        "xylo",
        "xylocarp",
        "xylocrap",
        "quil",
        "quilwort",
        "quillwort",
        "reco",
        "reconcilation",
        "zanzibar quar",
        "postgres zanz",
    ];
    let leaks = |s: &[Suggestion]| {
        s.iter().any(|x| {
            // Earlier words of a term suggestion are the caller's own.
            let t = match x.kind {
                SuggestionKind::Title => x.text.to_lowercase(),
                SuggestionKind::Term => x.text.rsplit(' ').next().unwrap_or("").to_lowercase(),
            };
            x.article_id.is_some_and(|id| id == 6 || id == 7)
                || t.contains("zanzibar")
                || SECRET_WORDS.iter().any(|w| t.contains(w))
                || t.contains("nightjar")
        })
    };
    for p in &outsiders {
        for q in probes {
            for limit in [1, 8, 20] {
                let s = ix.suggest(p, q, limit).unwrap();
                assert!(!leaks(&s), "{} got {s:?} for {q:?}", p.username);
            }
        }
        for q in [
            "xylocrap",
            "quilwort",
            "zanzibra",
            "reconcilation",
            "postgres xylocrap",
        ] {
            let fix = ix.did_you_mean(p, q).unwrap();
            assert!(
                fix.as_deref()
                    .is_none_or(|f| !SECRET_WORDS.iter().any(|w| f.contains(w))),
                "{} got {fix:?} for {q:?}",
                p.username
            );
        }
        // The duplicate title: only the public article.
        let s = ix.suggest(p, "conn", 8).unwrap();
        let ids: Vec<_> = s.iter().filter_map(|x| x.article_id).collect();
        assert_eq!(ids, vec![3], "{} got {s:?}", p.username);
        // Drafts are suggested to nobody.
        let s = ix.suggest(p, "nightj", 8).unwrap();
        assert!(!leaks(&s), "{s:?}");
    }

    // The role that may read it gets all of it.
    let a = auditor();
    let s = ix.suggest(&a, "zanz", 8).unwrap();
    let t = s
        .iter()
        .find(|x| x.kind == SuggestionKind::Title)
        .expect("the title");
    assert_eq!(t.text, SECRET_TITLE);
    assert_eq!(t.article_id, Some(6));
    assert!(texts(&s, SuggestionKind::Term).contains(&"zanzibar"));
    let s = ix.suggest(&a, "xylocrap", 8).unwrap();
    assert!(
        texts(&s, SuggestionKind::Term).contains(&"xylocarp"),
        "{s:?}"
    );
    let s = ix.suggest(&a, "conn", 8).unwrap();
    let mut ids: Vec<_> = s.iter().filter_map(|x| x.article_id).collect();
    ids.sort();
    assert_eq!(ids, vec![3, 7], "{s:?}");
    assert_eq!(
        ix.did_you_mean(&a, "xylocrap").unwrap(),
        Some("xylocarp".into())
    );
    // An admin reads everything live, but drafts are not suggested.
    let admin = user("root", &["admin"]);
    let s = ix.suggest(&admin, "quil", 8).unwrap();
    assert!(texts(&s, SuggestionKind::Term).contains(&"quillwort"));
    let s = ix.suggest(&admin, "nightj", 8).unwrap();
    assert!(
        s.iter()
            .all(|x| !x.text.to_lowercase().contains("nightjar")),
        "{s:?}"
    );
}

#[test]
fn suggestions_follow_index_updates() {
    let ix = build();
    let anon = Principal::anonymous();
    assert!(ix.suggest(&anon, "post", 8).unwrap().len() > 1);
    // Delete every article: even a map built before the deletes (served
    // for up to two seconds) suggests nothing, because every candidate is
    // verified against the current index.
    let mut updater = ix.updater().unwrap();
    for id in 1..=8 {
        updater.delete(id);
    }
    updater.commit(100).unwrap();
    assert!(ix.suggest(&anon, "post", 8).unwrap().is_empty());
    assert_eq!(ix.did_you_mean(&anon, "potsgres").unwrap(), None);
}
