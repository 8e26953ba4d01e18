//! Helpers shared by the integration tests: fresh stores of both kinds.
//!
//! [`for_each_store`] runs a test body against a new SQLite store (in a
//! temporary directory) and then against a new Postgres database, created
//! for the test and dropped afterwards by [`PgTestDb`] (the engine's
//! `testutil` feature, shared with the api and indexer tests). Postgres is
//! required: set `TEST_DATABASE_URL` (or `DATABASE_URL`) to a server where
//! the user may create databases; the default is
//! `postgres://postgres@127.0.0.1:5432/postgres`. An unreachable server
//! fails the test with a message saying so.

#![allow(dead_code)] // not every test module uses every helper

use std::future::Future;
use std::path::PathBuf;

use engine::auth::Principal;
use engine::model::{ArticleDraft, Status};
use engine::store::Store;
use engine::testutil::PgTestDb;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

/// Raw access to the database behind a test store, for tests that reach
/// around the store (installing a failing trigger, opening a second handle).
#[derive(Debug, Clone)]
pub enum TestDb {
    /// A database on the test Postgres server.
    Postgres {
        /// Connection URL of the test database.
        url: String,
    },
    /// A SQLite file.
    Sqlite {
        /// The directory holding `kmt.db`.
        dir: PathBuf,
    },
}

impl TestDb {
    /// Runs raw SQL (several statements allowed) in the test database.
    /// Uses a one-connection pool: `raw_sql` on a `&mut` connection makes a
    /// future the compiler cannot prove `Send` inside `tokio::spawn`.
    pub async fn execute(&self, pg_sql: &str, sqlite_sql: &str) {
        match self {
            TestDb::Postgres { url } => {
                let pool = PgPoolOptions::new().max_connections(1).connect(url).await;
                let pool = pool.expect("connect to test database");
                sqlx::raw_sql(pg_sql)
                    .execute(&pool)
                    .await
                    .expect("run raw sql");
                pool.close().await;
            }
            TestDb::Sqlite { dir } => {
                let options = SqliteConnectOptions::new().filename(dir.join("kmt.db"));
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await;
                let pool = pool.expect("open test database");
                sqlx::raw_sql(sqlite_sql)
                    .execute(&pool)
                    .await
                    .expect("run raw sql");
                pool.close().await;
            }
        }
    }

    /// Opens a second, independent store on the same database, as another
    /// process would.
    pub async fn open_again(&self) -> Store {
        match self {
            TestDb::Postgres { url } => Store::open(Some(url), std::path::Path::new(".")).await,
            TestDb::Sqlite { dir } => Store::open(None, dir).await,
        }
        .expect("open a second store")
    }
}

/// Closes a store's pool so its database can be removed.
pub async fn close(store: &Store) {
    match store {
        Store::Postgres(s) => s.close().await,
        Store::Sqlite(s) => s.close().await,
    }
}

/// Runs `test` against a fresh SQLite store, then a fresh Postgres store.
/// Panics in `test` are re-raised after the Postgres database is dropped.
pub async fn for_each_store<F, Fut>(test: F)
where
    F: Fn(Store, TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(None, dir.path())
        .await
        .expect("open sqlite store");
    let db = TestDb::Sqlite {
        dir: dir.path().to_path_buf(),
    };
    let outcome = tokio::spawn(test(store.clone(), db)).await;
    close(&store).await;
    if let Err(e) = outcome {
        eprintln!("test failed on the sqlite store");
        std::panic::resume_unwind(e.into_panic());
    }

    let pg = PgTestDb::create("engine").await;
    let url = pg.url.clone();
    let store = Store::open(Some(&url), dir.path())
        .await
        .expect("open postgres store");
    let outcome = tokio::spawn(test(store.clone(), TestDb::Postgres { url })).await;
    close(&store).await;
    pg.drop_db().await;
    if let Err(e) = outcome {
        eprintln!("test failed on the postgres store");
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The system principal (an admin), the actor of most test writes.
pub fn system() -> Principal {
    Principal::system()
}

/// A signed-in principal with one role.
pub fn user(name: &str, role: &str) -> Principal {
    Principal {
        user_id: Some(1),
        username: name.into(),
        roles: vec![role.into()],
    }
}

/// A valid draft with the given slug.
pub fn draft(slug: &str) -> ArticleDraft {
    ArticleDraft {
        slug: slug.into(),
        title: format!("Title of {slug}"),
        summary: "- short".into(),
        body: format!("Body of {slug}."),
        category: "general".into(),
        tags: vec!["alpha".into(), "beta".into()],
        audience: vec!["public".into()],
        status: Status::Draft,
        review_due: None,
    }
}
