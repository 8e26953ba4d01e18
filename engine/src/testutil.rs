//! Test support shared by the crates' integration tests (feature
//! `testutil`): a fresh PostgreSQL database per test, dropped afterwards.
//!
//! The server comes from `TEST_DATABASE_URL`, else `DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/postgres` (trust auth on the
//! project's machines). A missing server fails the test with a message
//! saying so: the suite never silently skips Postgres.

use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::{Connection, PgConnection};

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// URL of the server's maintenance database used to create test databases.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| DEFAULT_PG.to_string())
}

/// A database created for one test; call [`PgTestDb::drop_db`] at the end.
#[derive(Debug, Clone)]
pub struct PgTestDb {
    /// Connection URL of the new database.
    pub url: String,
    name: String,
}

fn with_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

impl PgTestDb {
    /// Creates a uniquely named database (`kmt_test_<tag>_<pid>_<n>_<nanos>`).
    pub async fn create(tag: &str) -> PgTestDb {
        static N: AtomicUsize = AtomicUsize::new(0);
        let server = server_url();
        let name = format!(
            "kmt_test_{tag}_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        let mut c = PgConnection::connect(&server).await.unwrap_or_else(|e| {
            panic!(
                "cannot reach PostgreSQL at {server}: {e}. Start it (make test does) or set TEST_DATABASE_URL"
            )
        });
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut c)
            .await
            .expect("creating the test database");
        let _ = c.close().await;
        PgTestDb {
            url: with_db(&server, &name),
            name,
        }
    }

    /// Drops the database (forcing other sessions off).
    pub async fn drop_db(self) {
        if let Ok(mut c) = PgConnection::connect(&server_url()).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .execute(&mut c)
            .await;
            let _ = c.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_replaces_path() {
        assert_eq!(
            super::with_db("postgres://u@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(
            super::with_db("postgres://u@h:5432", "x"),
            "postgres://u@h:5432/x"
        );
    }
}
