//! Backup and restore of the whole knowledge base (issue 7): `kmt export`
//! on one backend, `kmt import-kb` into a fresh store of the other, and
//! everything compared; plus the refusals and error reports.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use engine::auth::Principal;
use engine::backup::{export, import, ExportOptions};
use engine::error::Error;
use engine::model::{ArticleDraft, Decision, Level, Preferences, RuleSpec, Status};
use engine::store::{AuditFilter, Store};
use serde_json::{json, Value};

use crate::harness::{Backend, TestServer, TestStore};

fn principal(name: &str, role: &str) -> Principal {
    Principal {
        user_id: None,
        username: name.into(),
        roles: vec![role.into()],
    }
}

fn draft(slug: &str, word: &str, status: Status) -> ArticleDraft {
    ArticleDraft {
        slug: slug.into(),
        title: format!("How to handle {word}"),
        summary: format!("- {word} in short"),
        body: format!("The {word} procedure, step by step."),
        category: "claims".into(),
        tags: vec!["ops".into(), word.into()],
        audience: vec!["public".into()],
        status,
        review_due: None,
    }
}

/// Fills a store with every kind of record a backup holds.
async fn populate(store: &Store) {
    let system = Principal::system();
    for (name, role) in [
        ("admin", "admin"),
        ("alice", "author"),
        ("rita", "reviewer"),
    ] {
        store
            .create_user(&system, name, &format!("{name} display"), &[role.into()])
            .await
            .unwrap();
    }
    engine::sessions::set_password(store, &system, "alice", "correct horse battery", None)
        .await
        .unwrap();
    let contact = engine::model::Contact {
        email: Some("alice@example.org".into()),
        webhook_url: None,
    };
    engine::users::set_contact(store, &system, "alice", contact)
        .await
        .unwrap();
    let alice = store.get_user("alice").await.unwrap().unwrap();
    let prefs = Preferences {
        level: Some(Level::Detailed),
    };
    store
        .put_preferences(&system, alice.id, &prefs)
        .await
        .unwrap();
    store
        .create_group(&system, "night-shift", "works nights")
        .await
        .unwrap();
    for days in [30, 90] {
        let spec = RuleSpec {
            review_interval_days: Some(days),
            approver_role: Some("reviewer".into()),
            ..Default::default()
        };
        store.save_rule(&system, "claims", &spec).await.unwrap();
    }
    let author = principal("alice", "author");
    let reviewer = principal("rita", "reviewer");
    // Published, edited (two versions), with a working copy in review.
    let a = store
        .create_article(&author, draft("wombat-claims", "wombat", Status::Published))
        .await
        .unwrap();
    let mut revised = draft("wombat-claims", "wombat", Status::Published);
    revised.body = "The wombat procedure, revised.".into();
    let a = store
        .update_article(&author, a.id, revised, None)
        .await
        .unwrap();
    assert_eq!(a.version, 2);
    let mut edit = draft("wombat-claims", "wombat", Status::Draft);
    edit.body = "A new wombat procedure.".into();
    store.save_working_copy(&author, a.id, edit).await.unwrap();
    store
        .submit_for_review(&author, a.id, "reviewer", None)
        .await
        .unwrap();
    // A draft reviewed and approved: a done task.
    let b = store
        .create_article(&author, draft("quokka-intake", "quokka", Status::Draft))
        .await
        .unwrap();
    store
        .submit_for_review(&author, b.id, "reviewer", None)
        .await
        .unwrap();
    store
        .decide_review(&reviewer, b.id, Decision::Approve, Some("fine"), None)
        .await
        .unwrap();
    store
        .create_article(
            &author,
            draft("platypus-refunds", "platypus", Status::Published),
        )
        .await
        .unwrap();
    // A deleted article (the newest: its id is the highest) keeps its versions and its id.
    let c = store
        .create_article(&author, draft("gone-soon", "gone", Status::Published))
        .await
        .unwrap();
    store.delete_article(&author, c.id).await.unwrap();
}

/// Everything a backup is meant to carry, read back through the store.
async fn snapshot(store: &Store, with_hashes: bool) -> Value {
    let mut articles = Vec::new();
    for a in store.scan_articles(0, 10_000).await.unwrap() {
        let versions = store.list_versions(a.id).await.unwrap();
        let draft = store.get_working_copy(a.id).await.unwrap();
        articles.push(json!({ "article": a, "versions": versions, "draft": draft }));
    }
    let mut deleted = Vec::new();
    for id in store.deleted_article_ids(0, 10_000).await.unwrap() {
        deleted.push(store.list_versions(id).await.unwrap());
    }
    let mut users = Vec::new();
    for u in store.list_users().await.unwrap() {
        let prefs = store.get_preferences(u.id).await.unwrap();
        let hash = match with_hashes {
            true => store.password_hash(&u.username).await.unwrap().map(|p| p.1),
            false => None,
        };
        users.push(json!({ "user": u, "prefs": prefs, "hash": hash }));
    }
    let mut rules = Vec::new();
    for r in store.list_rules().await.unwrap() {
        rules.push(store.rule_history(&r.category).await.unwrap());
    }
    json!({
        "articles": articles,
        "deleted": deleted,
        "users": users,
        "groups": store.list_groups().await.unwrap(),
        "rules": rules,
        "tasks": store.scan_tasks(0, 10_000).await.unwrap(),
    })
}

async fn round_trip(from: Backend, to: Backend, with_hashes: bool) {
    let src = TestStore::new(from).await;
    populate(&src.store).await;
    let file = src.dir.path().join("kb.jsonl.gz");
    let opts = ExportOptions {
        with_password_hashes: with_hashes,
        actor: "admin".into(),
    };
    let counts = export(&src.store, &file, &opts, &mut |_| {}).await.unwrap();
    assert_eq!(counts["article"], 3, "{counts:?}");
    assert_eq!(counts["deleted_version"], 1, "{counts:?}");
    assert_eq!(counts["rule"], 2, "{counts:?}");
    let filter = AuditFilter {
        action: Some("export".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(src.store.list_audit(&filter).await.unwrap().len(), 1);

    let dst = TestStore::new(to).await;
    let report = import(&dst.store, &file, "admin", &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.counts, counts);
    assert_eq!(
        snapshot(&dst.store, with_hashes).await,
        snapshot(&src.store, with_hashes).await
    );
    if !with_hashes {
        assert!(dst.store.password_hash("alice").await.unwrap().is_none());
    }
    let filter = AuditFilter {
        action: Some("kb.import".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(dst.store.list_audit(&filter).await.unwrap().len(), 1);
    // Ids continue after the restored ones (sequences were moved on), and
    // a deleted article's id is not handed out again.
    let gone = dst.store.deleted_article_ids(0, 10).await.unwrap();
    assert_eq!(gone.len(), 1);
    let live = dst.store.scan_articles(0, 100).await.unwrap();
    let max_id = live.last().unwrap().id.max(gone[0]);
    let author = principal("alice", "author");
    let next = dst
        .store
        .create_article(&author, draft("after-restore", "numbat", Status::Published))
        .await
        .unwrap();
    assert!(next.id > max_id);
    let system = Principal::system();
    let u = dst
        .store
        .create_user(&system, "newbie", "n", &["viewer".into()])
        .await;
    assert!(u.unwrap().id > 3);

    // A server over the restored store finds the articles: the index is
    // rebuilt from the outbox rows the restore wrote.
    let s = TestServer::start_on(dst, &["admin"]).await;
    let t0 = Instant::now();
    for (word, slug) in [
        ("wombat", "wombat-claims"),
        ("platypus", "platypus-refunds"),
    ] {
        loop {
            let (_, v) = s
                .get_json(&format!("/v1/search?q={word}"), Some("admin"))
                .await;
            let hits = v["hits"].as_array().cloned().unwrap_or_default();
            if hits.iter().any(|h| h["slug"] == slug) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "{slug} not found: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    s.stop().await;
    src.cleanup().await;
}

#[tokio::test]
async fn issue_7_export_import_round_trip_sqlite_to_postgres() {
    round_trip(Backend::Sqlite, Backend::Postgres, true).await;
}

#[tokio::test]
async fn issue_7_export_import_round_trip_postgres_to_sqlite() {
    round_trip(Backend::Postgres, Backend::Sqlite, false).await;
}

fn read_gz(path: &Path) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[tokio::test]
async fn issue_7_export_omits_password_hashes_unless_asked() {
    let src = TestStore::new(Backend::Sqlite).await;
    populate(&src.store).await;
    let hash = src.store.password_hash("alice").await.unwrap().unwrap().1;
    let plain = src.dir.path().join("plain.jsonl.gz");
    let opts = ExportOptions {
        with_password_hashes: false,
        actor: "admin".into(),
    };
    export(&src.store, &plain, &opts, &mut |_| {})
        .await
        .unwrap();
    let text = read_gz(&plain);
    assert!(text.contains("\"username\":\"alice\""));
    assert!(!text.contains("\"password_hash\":"), "{text}");
    assert!(!text.contains(&hash));
    let header: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(header["type"], "header");
    assert_eq!(header["password_hashes"], false);
    assert_eq!(header["store"], "sqlite");

    let with = src.dir.path().join("with.jsonl.gz");
    let opts = ExportOptions {
        with_password_hashes: true,
        actor: "admin".into(),
    };
    export(&src.store, &with, &opts, &mut |_| {}).await.unwrap();
    assert!(read_gz(&with).contains(&hash));
    src.cleanup().await;
}

#[tokio::test]
async fn issue_7_import_refuses_non_empty_store() {
    let src = TestStore::new(Backend::Sqlite).await;
    populate(&src.store).await;
    let file = src.dir.path().join("kb.jsonl.gz");
    let opts = ExportOptions::default();
    export(&src.store, &file, &opts, &mut |_| {}).await.unwrap();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let dst = TestStore::new(backend).await;
        let system = Principal::system();
        dst.store
            .create_user(&system, "early", "e", &["viewer".into()])
            .await
            .unwrap();
        let before = dst.store.backup_counts().await.unwrap();
        let err = import(&dst.store, &file, "admin", &mut |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
        assert!(err.to_string().contains("not empty"), "{err}");
        assert!(err.to_string().contains("users (1)"), "{err}");
        assert_eq!(dst.store.backup_counts().await.unwrap(), before);
        dst.cleanup().await;
    }
    // The source itself is not empty either.
    let err = import(&src.store, &file, "admin", &mut |_| {}).await;
    assert!(matches!(err, Err(Error::Conflict(_))));
    src.cleanup().await;
}

/// Rewrites an export as plain JSON Lines with `edit` applied to the first
/// line of `kind`; returns the new file and that line's number.
fn tamper(src: &Path, dir: &Path, kind: &str, edit: impl Fn(&mut Value)) -> (String, usize) {
    let text = read_gz(src);
    let mut out = Vec::new();
    let mut at = 0;
    for (i, line) in text.lines().enumerate() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        if at == 0 && v["type"] == kind {
            edit(&mut v);
            at = i + 1;
        }
        out.push(v.to_string());
    }
    assert!(at > 0, "no {kind} line");
    let path = dir.join(format!("bad-{kind}-{}.jsonl", out.len()));
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(out.join("\n").as_bytes()).unwrap();
    (path.display().to_string(), at)
}

/// A change to one JSON line.
type Edit = Box<dyn Fn(&mut Value)>;

#[tokio::test]
async fn issue_7_import_reports_file_line_field() {
    let src = TestStore::new(Backend::Sqlite).await;
    populate(&src.store).await;
    let file = src.dir.path().join("kb.jsonl.gz");
    export(&src.store, &file, &ExportOptions::default(), &mut |_| {})
        .await
        .unwrap();
    let dir = src.dir.path();
    let cases: Vec<(&str, &str, Edit)> = vec![
        (
            "article",
            "slug",
            Box::new(|v| v["slug"] = json!("Not A Slug!")),
        ),
        (
            "article",
            "title",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("title");
            }),
        ),
        (
            "article",
            "version",
            Box::new(|v| v["version"] = json!("two")),
        ),
        (
            "version",
            "article_id",
            Box::new(|v| v["article_id"] = json!(999)),
        ),
        ("user", "username", Box::new(|v| v["username"] = json!(""))),
        (
            "rule",
            "category",
            Box::new(|v| v["category"] = json!("Bad Category")),
        ),
        ("task", "status", Box::new(|v| v["status"] = json!("maybe"))),
        (
            "draft",
            "status",
            Box::new(|v| v["status"] = json!("published")),
        ),
        (
            "article",
            "type",
            Box::new(|v| v["type"] = json!("articel")),
        ),
    ];
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let dst = TestStore::new(backend).await;
        for (kind, field, edit) in &cases {
            let (path, line) = tamper(&file, dir, kind, edit);
            let err = import(&dst.store, Path::new(&path), "admin", &mut |_| {})
                .await
                .unwrap_err();
            let msg = err.to_string();
            let want = format!("{path}:{line}: {field}: ");
            assert!(
                msg.starts_with(&want),
                "{kind}.{field}: want {want:?}, got {msg:?}"
            );
            let counts = dst.store.backup_counts().await.unwrap();
            assert!(
                counts.values().all(|n| *n == 0),
                "wrote something: {counts:?}"
            );
        }
        // A file cut short (no trailer) is refused too.
        let text = read_gz(&file);
        let lines: Vec<&str> = text.lines().collect();
        let cut = dir.join("cut.jsonl");
        std::fs::write(&cut, lines[..lines.len() - 1].join("\n")).unwrap();
        let err = import(&dst.store, &cut, "admin", &mut |_| {})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("trailer"), "{err}");
        dst.cleanup().await;
    }
    src.cleanup().await;
}

#[tokio::test]
async fn issue_7_cli_export_and_import_kb() {
    let dir = tempfile::tempdir().unwrap();
    let kmt = |data: &str, args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kmt"))
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .arg("--data")
            .arg(dir.path().join(data))
            .args(args)
            .output()
            .unwrap()
    };
    let out = kmt("a", &["user", "add", "ann", "--role", "admin"]);
    assert!(out.status.success(), "{out:?}");
    let file = dir.path().join("kb.jsonl.gz");
    let file = file.to_str().unwrap();
    let out = kmt("a", &["export", "--out", file]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("exported 1 user"));
    let out = kmt("b", &["import-kb", file]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 1 user"));
    // Again: the store is no longer empty.
    let out = kmt("b", &["import-kb", file]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not empty"),
        "{out:?}"
    );
    let out = kmt("b", &["user", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ann\tadmin"));
}
