//! Starts a real server on a loopback port over a fresh store.

#![allow(dead_code)]

use std::time::Duration;

use api::app::{serve_on, ServeOptions};
use engine::auth::{new_token, Principal};
use engine::store::Store;
use engine::testutil::PgTestDb;

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in a temporary directory.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// A fresh store of either kind, cleaned up by [`TestStore::cleanup`].
pub struct TestStore {
    pub store: Store,
    pub dir: tempfile::TempDir,
    pg: Option<PgTestDb>,
}

impl TestStore {
    pub async fn new(backend: Backend) -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        let (store, pg) = match backend {
            Backend::Sqlite => (Store::open(None, dir.path()).await.unwrap(), None),
            Backend::Postgres => {
                let db = PgTestDb::create("api").await;
                (
                    Store::open(Some(&db.url), dir.path()).await.unwrap(),
                    Some(db),
                )
            }
        };
        TestStore { store, dir, pg }
    }

    /// The PostgreSQL URL of this store's database, when it is one.
    pub fn pg_url(&self) -> Option<String> {
        self.pg.as_ref().map(|d| d.url.clone())
    }

    /// Runs a raw SQL statement against the store's database, reaching
    /// around the store (tests that tamper with rows).
    pub async fn raw_sql(&self, sql: &str) {
        use sqlx::Connection;
        match self.pg_url() {
            Some(url) => {
                let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
            }
            None => {
                let url = format!("sqlite://{}", self.dir.path().join("kmt.db").display());
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
            }
        }
    }

    pub async fn cleanup(self) {
        match self.store {
            Store::Postgres(s) => s.close().await,
            Store::Sqlite(s) => s.close().await,
        }
        if let Some(db) = self.pg {
            db.drop_db().await;
        }
    }
}

/// A running server with a few users.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub ts: TestStore,
    /// Tokens by username: admin, vera (viewer), alice (author, auditor),
    /// harry (viewer, hearing_officer).
    pub tokens: std::collections::HashMap<&'static str, String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// A server without an embedding model (lexical search only: most
    /// tests do not need the model, and loading it per test costs time).
    pub async fn start(backend: Backend) -> TestServer {
        TestServer::start_with(backend, None).await
    }

    /// A server with a per-client rate limit.
    pub async fn start_with(
        backend: Backend,
        rate_limit: Option<api::ratelimit::RateLimit>,
    ) -> TestServer {
        let embed = indexer::embedder::EmbedArgs {
            embedder: indexer::embedder::EmbedderKind::Off,
            ..Default::default()
        };
        TestServer::start_full(backend, rate_limit, embed).await
    }

    /// A server with the real embedding model (semantic and hybrid search).
    pub async fn start_semantic(backend: Backend) -> TestServer {
        TestServer::start_full(backend, None, indexer::embedder::EmbedArgs::default()).await
    }

    /// A server with every option given.
    pub async fn start_full(
        backend: Backend,
        rate_limit: Option<api::ratelimit::RateLimit>,
        embed: indexer::embedder::EmbedArgs,
    ) -> TestServer {
        // Usage events flush quickly, so tests see them soon.
        let usage = engine::usage::SinkConfig {
            flush_interval: Duration::from_millis(50),
            ..Default::default()
        };
        TestServer::start_usage(backend, rate_limit, embed, usage).await
    }

    /// A lexical server with its own usage-event settings.
    pub async fn start_with_usage(
        backend: Backend,
        usage: engine::usage::SinkConfig,
    ) -> TestServer {
        let embed = indexer::embedder::EmbedArgs {
            embedder: indexer::embedder::EmbedderKind::Off,
            ..Default::default()
        };
        TestServer::start_usage(backend, None, embed, usage).await
    }

    async fn start_usage(
        backend: Backend,
        rate_limit: Option<api::ratelimit::RateLimit>,
        embed: indexer::embedder::EmbedArgs,
        usage: engine::usage::SinkConfig,
    ) -> TestServer {
        let ts = TestStore::new(backend).await;
        let system = Principal::system();
        let mut tokens = std::collections::HashMap::new();
        for (name, roles) in [
            ("admin", vec!["admin"]),
            ("vera", vec!["viewer"]),
            ("alice", vec!["author", "auditor"]),
            ("harry", vec!["viewer", "hearing_officer"]),
        ] {
            let roles: Vec<String> = roles.into_iter().map(String::from).collect();
            ts.store
                .create_user(&system, name, name, &roles)
                .await
                .unwrap();
            let (t, h) = new_token();
            ts.store
                .create_token(&system, name, "test", &h)
                .await
                .unwrap();
            tokens.insert(name, t);
        }
        TestServer::serve(ts, tokens, rate_limit, embed, usage, Box::new(|_| {})).await
    }

    /// A lexical server over a store a test filled itself (a restored
    /// backup, say), with API tokens for `users`, who must exist.
    pub async fn start_on(ts: TestStore, users: &[&'static str]) -> TestServer {
        let system = Principal::system();
        let mut tokens = std::collections::HashMap::new();
        for name in users {
            let (t, h) = new_token();
            ts.store
                .create_token(&system, name, "test", &h)
                .await
                .unwrap();
            tokens.insert(*name, t);
        }
        let embed = indexer::embedder::EmbedArgs {
            embedder: indexer::embedder::EmbedderKind::Off,
            ..Default::default()
        };
        let usage = engine::usage::SinkConfig {
            flush_interval: Duration::from_millis(50),
            ..Default::default()
        };
        TestServer::serve(ts, tokens, None, embed, usage, Box::new(|_| {})).await
    }

    /// A server over a store a test filled itself, with tokens for `users`
    /// and the given embedding settings; `tweak` adjusts any other option
    /// (snapshots, say) before the server starts.
    pub async fn start_on_with(
        ts: TestStore,
        users: &[&'static str],
        embed: indexer::embedder::EmbedArgs,
        tweak: impl FnOnce(&mut ServeOptions) + Send + 'static,
    ) -> TestServer {
        let system = Principal::system();
        let mut tokens = std::collections::HashMap::new();
        for name in users {
            let (t, h) = new_token();
            ts.store
                .create_token(&system, name, "test", &h)
                .await
                .unwrap();
            tokens.insert(*name, t);
        }
        let usage = engine::usage::SinkConfig {
            flush_interval: Duration::from_millis(50),
            ..Default::default()
        };
        TestServer::serve(ts, tokens, None, embed, usage, Box::new(tweak)).await
    }

    async fn serve(
        ts: TestStore,
        tokens: std::collections::HashMap<&'static str, String>,
        rate_limit: Option<api::ratelimit::RateLimit>,
        embed: indexer::embedder::EmbedArgs,
        usage: engine::usage::SinkConfig,
        tweak: Box<dyn FnOnce(&mut ServeOptions) + Send>,
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut opts = ServeOptions {
            listen: addr,
            index_dir: ts.dir.path().join("index"),
            request_timeout: Duration::from_secs(10),
            shutdown_drain: Duration::ZERO,
            index_batch: 500,
            cookie_secure: false,
            rate_limit,
            embed,
            usage,
            // In-process shipping to `<dir>/shipped` (embedded store only).
            audit_ship: Some(engine::audit_ship::ShipConfig {
                target: engine::audit_ship::TargetConfig::Dir(ts.dir.path().join("shipped")),
                batch_rows: 1000,
                interval: Duration::from_millis(200),
                max_backoff: Duration::from_secs(1),
            }),
            delivery: Default::default(),
            snapshot: None,
            // Tests retrain on demand (POST /v1/admin/recommendations/retrain).
            recommend_interval: Duration::from_secs(3600),
        };
        tweak(&mut opts);
        let store = ts.store.clone();
        let task = tokio::spawn(async move {
            serve_on(store, opts, listener, |_| {}, async move {
                let _ = stopped.await;
            })
            .await
        });
        let s = TestServer {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            ts,
            tokens,
            stop: Some(stop),
            task: Some(task),
        };
        s.wait_ready().await;
        s
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("server did not become ready");
    }

    /// Adds a user with a token.
    pub async fn add_user(&mut self, name: &'static str, roles: &[&str]) {
        let system = Principal::system();
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        self.ts
            .store
            .create_user(&system, name, name, &roles)
            .await
            .unwrap();
        let (t, h) = new_token();
        self.ts
            .store
            .create_token(&system, name, "test", &h)
            .await
            .unwrap();
        self.tokens.insert(name, t);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request as `user` (`None` = anonymous).
    pub fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        user: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let b = self.http.request(method, self.url(path));
        match user {
            Some(u) => b.bearer_auth(&self.tokens[u]),
            None => b,
        }
    }

    pub async fn get_json(&self, path: &str, user: Option<&str>) -> (u16, serde_json::Value) {
        let r = self
            .req(reqwest::Method::GET, path, user)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// One call as `user` with an optional JSON body: (status, JSON body or
    /// null).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut r = self.req(method, path, Some(user));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Shuts the server down gracefully (as SIGTERM would) but keeps the
    /// store, for tests that look at what shutdown wrote.
    pub async fn stop_server(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }

    pub async fn stop(mut self) {
        self.stop_server().await;
        self.ts.cleanup().await;
    }
}
