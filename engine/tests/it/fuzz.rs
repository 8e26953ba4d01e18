//! Property tests standing in for fuzzing (issue 7): the search query and
//! filter parsers and the three importers get arbitrary and near-valid
//! input and must never panic; a search answers or refuses with a user
//! error, and every import fault names its file, line and (when it is
//! about one) field.
//!
//! cargo-fuzz needs a nightly toolchain, which this project does not use;
//! proptest runs on stable inside `cargo test`. Case counts are fixed in
//! code (override with `PROPTEST_CASES`) so the whole module adds a few
//! seconds to CI. Failing inputs are shrunk and printed; a panic found here
//! is fixed and kept as an `issue_7_…` regression test.

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use chrono::{Duration, TimeZone, Utc};
use engine::auth::Principal;
use engine::import::{Format, ImportOptions, ImportSource, RecordError};
use engine::model::{Article, Status};
use engine::search::{
    FacetField, Filter, Fusion, MatchMode, SearchIndex, SearchMode, SearchRequest, Sort,
};
use engine::ErrorKind;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        // Shrinking a failure can take thousands of runs; cap it so a
        // failing CI run still ends quickly with a small enough input.
        max_shrink_iters: 2_000,
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------- strategies

/// Text with the characters query and filter parsers treat specially, plus
/// multi-byte ones (char boundaries), controls and NUL.
fn tricky_text(max: usize) -> impl Strategy<Value = String> {
    let alphabet = prop::sample::select(vec![
        'a', 'e', 'l', 'v', 'y', 'Z', ' ', ' ', '\t', '\n', '"', '"', ':', '>', '<', '=', '*', '~',
        '^', '-', '+', '(', ')', '[', ']', '{', '}', '\\', '/', '%', '&', '?', ',', '.', '0', '9',
        '\0', 'é', 'ß', 'İ', 'ﬁ', '€', '日', '😀', '\u{200b}', '\u{feff}', '\u{301}',
    ]);
    prop::collection::vec(alphabet, 0..max).prop_map(|v| v.into_iter().collect())
}

/// Any string: printable-ish unicode, tricky characters or lossy bytes.
fn any_text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        prop::string::string_regex(&format!(".{{0,{max}}}")).unwrap(),
        tricky_text(max),
        prop::collection::vec(any::<u8>(), 0..max)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

/// Strings shaped like filters: a real or wrong field, an operator and a
/// value that is nearly a date or a name.
fn near_filter() -> impl Strategy<Value = String> {
    let field = prop::sample::select(vec![
        "category",
        "tags",
        "tag",
        "status",
        "audience",
        "updated_at",
        "published_at",
        " updated_at ",
        "colour",
        "",
        "category:x",
    ]);
    let op = prop::sample::select(vec![":", ">=", "<=", ">", "<", "=", "::", ": ", ">=<"]);
    let value = prop_oneof![
        prop::sample::select(vec![
            "2025-01-31",
            "2025-02-30",
            "1899-12-31",
            "2201-01-01",
            "9999-12-31",
            "+275760-09-13",
            "2025-01-31T12:00:00Z",
            "2025-01-31T25:00:00+14:00",
            "2025-01-31T12:00:00-23:59",
            "2262-04-12T00:00:00Z",
            "published",
            "draft",
            "PUBLISHED",
            "Audits",
            "",
            " ",
        ])
        .prop_map(String::from),
        tricky_text(24),
    ];
    (field, op, value).prop_map(|(f, o, v)| format!("{f}{o}{v}"))
}

/// Query text: words of the test corpus (with typos and prefixes), phrases,
/// operators and noise, sometimes longer than the limit.
fn query_text() -> impl Strategy<Value = String> {
    let word = prop::sample::select(vec![
        "levy",
        "levi",
        "garnishmnet",
        "garnish",
        "offer",
        "in",
        "the",
        "compromise",
        "penalty",
        "\"offer in compromise\"",
        "\"",
        "\"\"",
        "\" \"",
        "*",
        "a",
        "é",
        "😀",
        "x".repeat(300).leak(),
    ]);
    prop_oneof![
        3 => prop::collection::vec((word, tricky_text(4)), 0..40).prop_map(|ws| {
            ws.into_iter().map(|(w, n)| format!("{w}{n}")).collect::<Vec<_>>().join(" ")
        }),
        2 => any_text(200),
        1 => tricky_text(1_100),
    ]
}

fn sort() -> impl Strategy<Value = Sort> {
    prop::sample::select(vec![Sort::Relevance, Sort::Updated, Sort::Title])
}

fn search_request() -> impl Strategy<Value = SearchRequest> {
    let filters = prop::collection::vec(near_filter(), 0..4).prop_map(|fs| {
        fs.iter()
            .filter_map(|f| Filter::parse(f).ok())
            .collect::<Vec<_>>()
    });
    let facets = prop::collection::vec(
        prop::sample::select(vec![FacetField::Category, FacetField::Tags]),
        0..3,
    );
    let mode = prop::option::of(prop::sample::select(vec![
        SearchMode::Lexical,
        SearchMode::Semantic,
        SearchMode::Hybrid,
    ]));
    let fusion = prop::option::of(prop_oneof![
        Just(Fusion::Rrf),
        Just(Fusion::Adaptive),
        (-1.0f32..2.0).prop_map(Fusion::Convex),
    ]);
    (
        query_text(),
        filters,
        facets,
        sort(),
        prop_oneof![0usize..=120, Just(usize::MAX)],
        prop_oneof![0usize..=50, 9_990usize..=10_010, Just(usize::MAX)],
        prop::bool::ANY,
        (mode, fusion, prop::bool::ANY),
    )
        .prop_map(
            |(q, filters, facets, sort, limit, offset, any, (mode, fusion, explain))| {
                SearchRequest {
                    q,
                    filters,
                    facets,
                    sort,
                    limit,
                    offset,
                    match_mode: if any { MatchMode::Any } else { MatchMode::All },
                    mode,
                    fusion,
                    explain,
                }
            },
        )
}

// ------------------------------------------------------------- filter parser

#[test]
fn filter_parser_never_panics_on_any_text() {
    let mut runner = TestRunner::new(config(2_000));
    runner
        .run(&any_text(64), |s| {
            if let Err(e) = Filter::parse(&s) {
                prop_assert_eq!(e.kind(), ErrorKind::Invalid, "{:?}: {}", s, e);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn filter_parser_near_valid_inputs() {
    let mut runner = TestRunner::new(config(2_000));
    runner
        .run(&near_filter(), |s| {
            match Filter::parse(&s) {
                Ok(Filter::Category(v) | Filter::Tag(v) | Filter::Audience(v)) => {
                    prop_assert!(!v.is_empty() && v == v.trim() && v == v.to_lowercase());
                }
                Ok(_) => {}
                Err(e) => {
                    prop_assert_eq!(e.kind(), ErrorKind::Invalid, "{:?}: {}", s, e);
                    prop_assert!(e.to_string().contains("filter"), "{}", e);
                }
            }
            Ok(())
        })
        .unwrap();
}

/// Found by the property above: a bad status in a filter was reported
/// against a `status` field the request does not have, not `filter`.
#[test]
fn issue_7_bad_status_filter_names_the_filter() {
    match Filter::parse("status:live") {
        Err(engine::Error::Invalid { field, message }) => {
            assert_eq!(field, "filter");
            assert!(message.contains("live"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn mode_and_facet_parsers_never_panic() {
    let mut runner = TestRunner::new(config(500));
    runner
        .run(&any_text(16), |s| {
            let _ = SearchMode::parse(&s);
            let _ = FacetField::parse(&s);
            let _ = s.parse::<Status>();
            Ok(())
        })
        .unwrap();
}

// -------------------------------------------------------------- query parser

/// A small index shared by the search properties: published, draft,
/// restricted and retired articles with multi-byte text.
fn index() -> &'static SearchIndex {
    static INDEX: OnceLock<SearchIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let index = SearchIndex::in_memory().unwrap();
        let mut updater = index.updater().unwrap();
        let base = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let docs: &[(&str, &str, &str, &[&str], Status)] = &[
            (
                "bank-levy",
                "Bank levy release",
                "Release the levy at the bank.",
                &[],
                Status::Published,
            ),
            (
                "garnishment",
                "Wage garnishment",
                "A garnishment is not a bank levy.",
                &[],
                Status::Published,
            ),
            (
                "compromise",
                "Offer in compromise",
                "An offer in compromise settles a debt.",
                &["auditor"],
                Status::Published,
            ),
            (
                "unicode",
                "Ünïcödé straße 日本語 😀",
                "Ligatures ﬁ and İstanbul, e\u{301}.",
                &["public"],
                Status::Published,
            ),
            (
                "draft",
                "Draft about penalties",
                "Penalty draft.",
                &[],
                Status::Draft,
            ),
            (
                "retired",
                "Old levy form",
                "Retired levy guidance.",
                &[],
                Status::Retired,
            ),
        ];
        for (i, (slug, title, body, audience, status)) in docs.iter().enumerate() {
            let t = base + Duration::days(i as i64);
            let a = Article {
                id: i as i64 + 1,
                slug: slug.to_string(),
                title: title.to_string(),
                summary: "- a summary".into(),
                body: body.to_string(),
                category: if i % 2 == 0 { "collections" } else { "audits" }.into(),
                tags: vec!["levy".into(), format!("t{i}")],
                audience: audience.iter().map(|s| s.to_string()).collect(),
                status: *status,
                owner: "alice".into(),
                version: 1,
                created_at: t,
                updated_at: t,
                published_at: status.is_live().then_some(t),
                review_due: None,
            };
            updater.upsert(&a).unwrap();
        }
        updater.commit(docs.len() as i64).unwrap();
        index
    })
}

fn principals() -> Vec<Principal> {
    let user = |name: &str, roles: &[&str]| Principal {
        user_id: Some(1),
        username: name.into(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        Principal::anonymous(),
        user("vera", &["viewer"]),
        user("alice", &["author", "auditor"]),
        user("rex", &["reviewer"]),
        user("admin", &["admin"]),
    ]
}

#[test]
fn search_never_panics_and_refuses_only_with_user_errors() {
    let ix = index();
    let who = principals();
    let mut runner = TestRunner::new(config(400));
    runner
        .run(&(search_request(), 0..who.len()), |(req, p)| {
            // Searching an unvalidated request must not panic either: the
            // engine is a library and other callers may skip validation.
            match ix.search(&who[p], &req) {
                Ok(r) => {
                    prop_assert!(req.validate().is_ok(), "searched an invalid request");
                    prop_assert!(r.hits.len() <= req.limit);
                    prop_assert!(r.total <= 6);
                }
                Err(e) => prop_assert_ne!(e.kind(), ErrorKind::Internal, "{:?}: {}", req, e),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn suggest_and_did_you_mean_never_panic() {
    let ix = index();
    let who = principals();
    let mut runner = TestRunner::new(config(300));
    runner
        .run(
            &(query_text(), 0usize..30, 0..who.len()),
            |(q, limit, p)| {
                if let Err(e) = ix.suggest(&who[p], &q, limit) {
                    prop_assert_eq!(e.kind(), ErrorKind::Invalid, "{:?}: {}", q, e);
                }
                if let Err(e) = ix.did_you_mean(&who[p], &q) {
                    prop_assert_ne!(e.kind(), ErrorKind::Internal, "{:?}: {}", q, e);
                }
                Ok(())
            },
        )
        .unwrap();
}

// ----------------------------------------------------------------- importers

/// Reads a whole source; `Err` when it cannot be opened.
fn import_all(path: &Path, format: Format) -> Result<(usize, Vec<RecordError>), RecordError> {
    let opts = ImportOptions {
        format: Some(format),
        default_category: None,
        batch_size: 7,
        ..ImportOptions::default()
    };
    let mut src = ImportSource::open(path, &opts)?;
    let (mut ok, mut bad) = (0, Vec::new());
    while let Some(batch) = src.next_batch() {
        for item in batch {
            match item {
                Ok(_) => ok += 1,
                Err(e) => bad.push(e),
            }
        }
    }
    Ok((ok, bad))
}

/// Every fault names a file under `dir`, a line within the file, a
/// message, and a field that is a real field name when there is one.
fn check_errors(
    errors: &[RecordError],
    dir: &Path,
    lines: usize,
    fields: &[&str],
) -> Result<(), TestCaseError> {
    for e in errors {
        prop_assert!(e.file.starts_with(dir), "{}", e);
        prop_assert!(
            e.line >= 1 && e.line <= lines.max(1),
            "{} (of {} lines)",
            e,
            lines
        );
        prop_assert!(!e.message.trim().is_empty(), "{:?}", e);
        if let Some(f) = &e.field {
            let base = f.split('[').next().unwrap_or(f);
            prop_assert!(
                fields.contains(&base) || !base.is_empty(),
                "unexpected field in {}",
                e
            );
        }
    }
    Ok(())
}

fn line_count(bytes: &[u8]) -> usize {
    bytes.split(|b| *b == b'\n').count()
}

/// A JSON value of any type, a few levels deep, for near-valid records.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!(1e308)),
        Just(json!(u64::MAX)),
        any_text(40).prop_map(Value::String),
        prop::sample::select(vec![
            "published",
            "draft",
            "in_review",
            "2025-01-31",
            "2025-13-01",
            "Audits",
            "??",
            "a/b/../c",
            "",
        ])
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..3)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An object with some of `fields` (and sometimes an unknown one).
fn near_record(fields: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            prop_oneof![9 => prop::sample::select(fields.to_vec()).prop_map(String::from), 1 => "[a-z_]{1,6}"],
            json_value(),
        ),
        0..8,
    )
    .prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

const JSONL_FIELDS: &[&str] = &[
    "id",
    "title",
    "summary",
    "body",
    "category",
    "tags",
    "audience",
    "status",
    "review_due",
    "chapter",
];
const BEIR_FIELDS: &[&str] = &["_id", "title", "text", "metadata"];
const MD_FIELDS: &[&str] = &[
    "title",
    "category",
    "summary",
    "status",
    "review_due",
    "tags",
    "audience",
    "slug",
];

/// Lines of a JSON Lines file: near-valid records, valid ones, and garbage.
fn jsonl_lines(fields: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let valid = (0u32..50).prop_map(|i| {
        json!({"id": format!("a{i}"), "_id": format!("a{i}"), "title": "T", "category": "c", "text": "x"})
            .to_string()
            .into_bytes()
    });
    let line = prop_oneof![
        4 => near_record(fields).prop_map(|v| v.to_string().into_bytes()),
        2 => valid,
        1 => prop::collection::vec(any::<u8>(), 0..60),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => Just(b"{\"id\": \"x\", \"title\": ".to_vec()),
        1 => Just(vec![b'['; 200]),
        1 => Just(b"\xef\xbb\xbf{\"id\":\"bom\"}".to_vec()),
    ];
    (
        prop::collection::vec(line, 0..12),
        prop::sample::select(vec!["\n", "\r\n", "\n\n"]),
    )
        .prop_map(|(lines, sep)| lines.join(sep.as_bytes()))
}

fn jsonl_property(format: Format, fields: &'static [&'static str], cases: u32) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corpus.jsonl");
    let mut runner = TestRunner::new(config(cases));
    let input = prop_oneof![
        3 => jsonl_lines(fields),
        1 => prop::collection::vec(any::<u8>(), 0..400),
    ];
    runner
        .run(&input, |bytes| {
            fs::write(&path, &bytes).unwrap();
            let (_, errors) = import_all(&path, format)
                .map_err(|e| TestCaseError::fail(format!("an existing file must open: {e}")))?;
            check_errors(&errors, dir.path(), line_count(&bytes), fields)
        })
        .unwrap();
}

#[test]
fn jsonl_importer_never_panics_and_names_file_line_field() {
    jsonl_property(Format::Jsonl, JSONL_FIELDS, 300);
}

#[test]
fn beir_importer_never_panics_and_names_file_line_field() {
    jsonl_property(Format::Beir, BEIR_FIELDS, 300);
}

/// A Markdown file: front matter made of near-valid YAML lines, then a body.
fn markdown_file() -> impl Strategy<Value = Vec<u8>> {
    let scalar = prop_oneof![
        prop::sample::select(vec![
            "Levy basics",
            "\"quoted\"",
            "'single'",
            "[a, b]",
            "[a, [b]]",
            "{a: 1}",
            "- x",
            "2025-01-31",
            "~",
            "null",
            "yes",
            "12e9",
            ".nan",
            "&anchor x",
            "*anchor",
            "!!binary aGVsbG8=",
            "|",
            ">-",
            "",
        ])
        .prop_map(String::from),
        tricky_text(20),
    ];
    let key = prop_oneof![
        8 => prop::sample::select(MD_FIELDS.to_vec()).prop_map(String::from),
        1 => "[a-z]{1,6}",
        1 => tricky_text(6),
    ];
    let yaml_line = prop_oneof![
        6 => (key, scalar.clone()).prop_map(|(k, v)| format!("{k}: {v}")),
        2 => scalar.prop_map(|v| format!("  - {v}")),
        1 => tricky_text(30),
    ];
    let body = prop_oneof![
        Just(String::new()),
        Just("# Heading\n\nBody text.\n".to_string()),
        Just("```\n# not a heading\n```\n".to_string()),
        tricky_text(120),
    ];
    let open = prop::sample::select(vec!["---\n", "---\r\n", "\u{feff}---\n", "", "--\n"]);
    let close = prop::sample::select(vec!["---\n", "...\n", "", "--- \n"]);
    let text =
        (open, prop::collection::vec(yaml_line, 0..8), close, body).prop_map(|(o, lines, c, b)| {
            let mut s = o.to_string();
            for l in lines {
                s.push_str(&l);
                s.push('\n');
            }
            s.push_str(c);
            s.push_str(&b);
            s.into_bytes()
        });
    prop_oneof![
        5 => text,
        1 => prop::collection::vec(any::<u8>(), 0..300),
        1 => Just(b"---\na: &a [*a]\n---\n".to_vec()),
        1 => Just(format!("---\ntags: {}x{}\n---\n", "[".repeat(300), "]".repeat(300)).into_bytes()),
    ]
}

#[test]
fn markdown_importer_never_panics_and_names_file_line_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("levy-basics.md");
    let mut runner = TestRunner::new(config(300));
    runner
        .run(&markdown_file(), |bytes| {
            fs::write(&path, &bytes).unwrap();
            let (ok, errors) = import_all(dir.path(), Format::Markdown)
                .map_err(|e| TestCaseError::fail(format!("the folder must open: {e}")))?;
            prop_assert_eq!(ok + errors.len(), 1);
            check_errors(&errors, dir.path(), line_count(&bytes), MD_FIELDS)
        })
        .unwrap();
}

/// A typed fault in an otherwise valid JSON Lines record names its field
/// and line (the fuzzing above only checks that a named field is sane).
#[test]
fn wrong_types_name_their_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("a.jsonl");
    let mut runner = TestRunner::new(config(200));
    let field = prop::sample::select(vec![
        "title",
        "summary",
        "body",
        "category",
        "tags",
        "audience",
        "status",
        "review_due",
    ]);
    let wrong = prop_oneof![
        Just(json!(5)),
        Just(json!(true)),
        Just(json!({"a": 1})),
        Just(json!([1])),
        Just(json!(["ok", {"no": 1}])),
    ];
    runner
        .run(&(field, wrong), |(field, wrong)| {
            let mut rec = json!({"id": "x", "title": "T", "category": "c"});
            rec[field] = wrong.clone();
            fs::write(&jsonl, format!("\n{rec}\n")).unwrap();
            let (_, errors) = import_all(&jsonl, Format::Jsonl).unwrap();
            prop_assert_eq!(errors.len(), 1, "{}", rec);
            let e = &errors[0];
            prop_assert_eq!(e.line, 2);
            let named = e.field.as_deref().unwrap_or("");
            prop_assert!(named.starts_with(field), "{} named {:?}", rec, named);
            Ok(())
        })
        .unwrap();
}
