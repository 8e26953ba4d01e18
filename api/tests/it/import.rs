//! `kmt import`: the sample corpus, the reference corpora, bad input.

use std::io::Write;
use std::path::PathBuf;

use api::cli::import::import_path;
use engine::import::ImportOptions;

use crate::harness::{Backend, TestStore};

fn sample_corpus() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/articles"))
}

fn corpora() -> PathBuf {
    let p = std::env::var("KMT_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpora"))
        });
    assert!(
        p.is_dir(),
        "reference corpora not found at {} (set KMT_CORPORA)",
        p.display()
    );
    p
}

async fn sample_corpus_imports_once(backend: Backend) {
    let ts = TestStore::new(backend).await;
    let opts = ImportOptions::default();
    let s = import_path(&ts.store, &sample_corpus(), &opts, false, false)
        .await
        .unwrap();
    assert!(s.outcome.created >= 60, "{s:?}");
    let n = ts.store.count_articles().await.unwrap();
    let head = ts.store.outbox_head().await.unwrap();
    // Importing the same source again updates in place: nothing new.
    let again = import_path(&ts.store, &sample_corpus(), &opts, false, false)
        .await
        .unwrap();
    assert_eq!(again.outcome.created, 0);
    assert_eq!(again.outcome.unchanged, s.outcome.created);
    assert_eq!(ts.store.count_articles().await.unwrap(), n);
    assert_eq!(ts.store.outbox_head().await.unwrap(), head);
    // Restricted articles keep their audience.
    let a = ts
        .store
        .get_article_by_slug("conducting-an-informal-hearing")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.audience, vec!["hearing_officer"]);
    assert!(!a.summary.is_empty() && !a.body.is_empty());
    ts.cleanup().await;
}

#[tokio::test]
async fn sample_corpus_imports_into_sqlite() {
    sample_corpus_imports_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn sample_corpus_imports_into_postgres() {
    sample_corpus_imports_once(Backend::Postgres).await;
}

#[tokio::test]
async fn pgdocs_imports_into_postgres() {
    let ts = TestStore::new(Backend::Postgres).await;
    let s = import_path(
        &ts.store,
        &corpora().join("pgdocs/corpus.jsonl"),
        &ImportOptions::default(),
        false,
        false,
    )
    .await
    .unwrap();
    assert_eq!(s.outcome.created, 1139);
    assert_eq!(ts.store.count_articles().await.unwrap(), 1139);
    let a = ts
        .store
        .get_article_by_slug("sql-createtable")
        .await
        .unwrap()
        .unwrap();
    assert!(a.title.contains("CREATE TABLE"), "{}", a.title);
    ts.cleanup().await;
}

#[tokio::test]
async fn msmarco_imports_into_sqlite() {
    let ts = TestStore::new(Backend::Sqlite).await;
    let s = import_path(
        &ts.store,
        &corpora().join("msmarco-5k"),
        &ImportOptions::default(),
        false,
        false,
    )
    .await
    .unwrap();
    assert_eq!(s.outcome.created, 5000);
    assert_eq!(ts.store.count_articles().await.unwrap(), 5000);
    ts.cleanup().await;
}

/// A malformed line gives an error with its line number and field, and
/// leaves the store unchanged; `--skip-invalid` imports the rest.
#[tokio::test]
async fn malformed_line_names_its_line_and_changes_nothing() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let ts = TestStore::new(backend).await;
        let path = ts.dir.path().join("articles.jsonl");
        let mut f = std::fs::File::create(&path).unwrap();
        // 600 good records (more than one batch) around one bad one.
        for i in 0..600 {
            writeln!(
                f,
                r#"{{"id":"ok-{i}","title":"Good {i}","body":"text","category":"audits"}}"#
            )
            .unwrap();
            if i == 550 {
                writeln!(f, r#"{{"id":"bad","title":"Bad","body":"text","category":"audits","tags":"not-a-list"}}"#).unwrap();
            }
        }
        drop(f);
        let err = import_path(&ts.store, &path, &ImportOptions::default(), false, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("articles.jsonl:552"), "{err}");
        assert!(err.contains("tags"), "{err}");
        assert_eq!(
            ts.store.count_articles().await.unwrap(),
            0,
            "nothing may be written"
        );
        assert_eq!(ts.store.outbox_head().await.unwrap(), 0);
        let s = import_path(&ts.store, &path, &ImportOptions::default(), true, false)
            .await
            .unwrap();
        assert_eq!((s.outcome.created, s.skipped), (600, 1));
        ts.cleanup().await;
    }
}
