//! The `kmt` subcommands. Every command finds its store the same way:
//! `DATABASE_URL` for Postgres, else the embedded SQLite store in
//! `--data DIR` / `KMT_DATA_DIR` (default `./data`).

pub mod backup;
mod demo;
pub mod import;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use engine::auth::Principal;
use engine::store::Store;

use crate::app::{serve, ServeOptions};

/// The KMT knowledge-management service.
#[derive(Debug, Parser)]
#[command(name = "kmt", version, about)]
pub struct Cli {
    /// PostgreSQL URL of the system of record; without it the embedded
    /// SQLite store in `--data` is used.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Data directory: the embedded store, the index, demo files.
    #[arg(
        long = "data",
        env = "KMT_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Log format: `text` or `json`.
    #[arg(long, env = "KMT_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Server options shared by `serve` and `demo`.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Address to bind (the port is taken from `--port` when given).
    #[arg(long, env = "KMT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Port to bind on the `--listen` address.
    #[arg(long, env = "KMT_PORT")]
    pub port: Option<u16>,
    /// Index directory (default `<data>/index`).
    #[arg(long, env = "KMT_INDEX_DIR")]
    pub index_dir: Option<PathBuf>,
    /// Per-request timeout, in seconds.
    #[arg(long, env = "KMT_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Seconds between SIGTERM and closing the listener, during which
    /// `/readyz` answers 503 (`draining`) and requests are still served, so
    /// a load balancer polling it takes this replica out of rotation
    /// before connections close. Set it above the balancer's check interval.
    #[arg(long, env = "KMT_SHUTDOWN_DRAIN_SECS", default_value_t = 0.0)]
    pub shutdown_drain_secs: f64,
    /// Outbox rows applied per index commit.
    #[arg(long, env = "KMT_INDEXER_BATCH", default_value_t = indexer::follower::DEFAULT_BATCH)]
    pub index_batch: i64,
    /// Mark session cookies `Secure` (set when users reach KMT over HTTPS;
    /// requests with `X-Forwarded-Proto: https` get it anyway).
    #[arg(long, env = "KMT_COOKIE_SECURE", default_value_t = false)]
    pub cookie_secure: bool,
    /// Requests per second each client may make (0 turns limiting off).
    #[arg(long, env = "KMT_RATE_LIMIT_PER_SEC", default_value_t = 100.0)]
    pub rate_limit_per_sec: f64,
    /// Burst each client may make above its rate.
    #[arg(long, env = "KMT_RATE_LIMIT_BURST", default_value_t = 200.0)]
    pub rate_limit_burst: f64,
    /// Identify clients by the first `X-Forwarded-For` address (set only
    /// behind a proxy that overwrites that header).
    #[arg(long, env = "KMT_TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,
    /// Usage events (views, searches, clicks) the recording queue holds
    /// before new ones are dropped (0 turns recording off).
    #[arg(long, env = "KMT_EVENT_QUEUE", default_value_t = 10_000)]
    pub event_queue: usize,
    /// Usage events written per batch.
    #[arg(long, env = "KMT_EVENT_BATCH", default_value_t = 500)]
    pub event_batch: usize,
    /// Longest time a usage event waits before its batch is written, in
    /// milliseconds.
    #[arg(long, env = "KMT_EVENT_FLUSH_MS", default_value_t = 1000)]
    pub event_flush_ms: u64,
    /// Seconds between two trainings of the recommendation models (also
    /// trained at start and on `POST /v1/admin/recommendations/retrain`).
    #[arg(long, env = "KMT_RECOMMEND_INTERVAL_SECS", default_value_t = 3600)]
    pub recommend_interval_secs: u64,
    /// Embedding model settings (semantic and hybrid search).
    #[command(flatten)]
    pub embed: indexer::embedder::EmbedArgs,
    /// Audit shipping (in-process on the embedded store; with PostgreSQL,
    /// `kmt-indexer` ships).
    #[command(flatten)]
    pub audit_ship: indexer::audit_ship::AuditShipArgs,
    /// Notification channels outside the application (e-mail, webhooks).
    #[command(flatten)]
    pub notify: indexer::jobs::NotifyArgs,
    /// Index snapshots (boot from the newest; publish on the embedded store).
    #[command(flatten)]
    pub snapshot: indexer::snapshot::SnapshotArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (and keep the index fresh from the outbox).
    Serve(ServerArgs),
    /// Run the demo: embedded store, sample corpus, demo accounts.
    Demo(ServerArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Import articles from JSON Lines, a Markdown folder or a BEIR corpus.
    Import(import::ImportArgs),
    /// Back up the whole knowledge base (articles with every version,
    /// working copies, users and roles, groups, preferences, rule history,
    /// tasks) to one gzip JSON Lines file.
    Export(backup::ExportArgs),
    /// Restore a `kmt export` file into an empty store (ids preserved; the
    /// index rebuilds from the store). Not `kmt import`, which adds article
    /// corpora.
    ImportKb(backup::ImportKbArgs),
    /// Rebuild the search index from the store (running servers rebuild
    /// theirs too, and swap without stopping queries).
    Reindex {
        /// Index directory (default `<data>/index`).
        #[arg(long, env = "KMT_INDEX_DIR")]
        index_dir: Option<PathBuf>,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// List roles and manage custom groups.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Exit 0 when the server on this machine answers `/healthz` (for
    /// container health checks: the image has no curl).
    Healthcheck {
        /// Address of the server.
        #[arg(long, env = "KMT_HEALTHCHECK_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
    },
}

/// `kmt user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user.
    Add {
        /// Username.
        name: String,
        /// Roles and groups (repeat, or comma-separate).
        #[arg(long = "role", value_delimiter = ',', required = true)]
        roles: Vec<String>,
        /// Display name (default: the username).
        #[arg(long)]
        display_name: Option<String>,
        /// E-mail address for notifications.
        #[arg(long)]
        email: Option<String>,
        /// Webhook URL for notifications (an SMS gateway, say).
        #[arg(long)]
        webhook_url: Option<String>,
    },
    /// List users.
    List,
    /// Set a user's password, read from the first line of standard input.
    SetPassword {
        /// Username.
        name: String,
    },
    /// Set (replace) a user's notification addresses; omitted ones are
    /// cleared.
    SetContact {
        /// Username.
        name: String,
        /// E-mail address for notifications.
        #[arg(long)]
        email: Option<String>,
        /// Webhook URL for notifications (an SMS gateway, say).
        #[arg(long)]
        webhook_url: Option<String>,
    },
    /// Replace a user's roles.
    SetRoles {
        /// Username.
        name: String,
        /// Roles and groups.
        #[arg(long = "role", value_delimiter = ',', required = true)]
        roles: Vec<String>,
    },
}

/// `kmt role ...`
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// List built-in roles (with their permissions) and custom groups,
    /// with their members.
    List,
    /// Define a custom group (users then hold it like a role).
    AddGroup {
        /// Group name (a-z 0-9 - _).
        name: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
    },
}

/// `kmt audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of the audit table and of the shipped objects;
    /// exits non-zero and names the first bad row (and object) when any row
    /// was changed, removed or reordered, or an object is missing.
    Verify {
        /// Where the shipped objects are.
        #[command(flatten)]
        target: indexer::audit_ship::AuditTargetArgs,
        /// Check only the table, not the shipped objects.
        #[arg(long)]
        store_only: bool,
    },
}

/// `kmt token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user and print it (shown only once).
    Create {
        /// Username.
        user: String,
        /// A label for the token.
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

fn init_logging(format: &str, default: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    // Spans also go to an OTLP collector when one is configured.
    let otlp = crate::otlp::OtlpConfig::from_env().map(crate::otlp::layer);
    let registry = tracing_subscriber::registry().with(filter).with(otlp);
    let _ = if format == "json" {
        registry
            .with(tracing_subscriber::fmt::layer().json())
            .try_init()
    } else {
        // A closed log pipe must not take the process down: by default the
        // subscriber reports write failures with eprintln!, which panics.
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .log_internal_errors(false)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr),
            )
            .try_init()
    };
}

impl ServerArgs {
    fn options(&self, data_dir: &std::path::Path) -> ServeOptions {
        let mut listen = self.listen;
        if let Some(p) = self.port {
            listen.set_port(p);
        }
        ServeOptions {
            listen,
            index_dir: self
                .index_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("index")),
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            shutdown_drain: Duration::from_secs_f64(self.shutdown_drain_secs.clamp(0.0, 3600.0)),
            index_batch: self.index_batch,
            cookie_secure: self.cookie_secure,
            rate_limit: (self.rate_limit_per_sec > 0.0).then_some(crate::ratelimit::RateLimit {
                per_sec: self.rate_limit_per_sec,
                burst: self.rate_limit_burst.max(1.0),
                trust_forwarded_for: self.trust_forwarded_for,
            }),
            embed: self.embed.clone(),
            usage: engine::usage::SinkConfig {
                queue: self.event_queue,
                batch: self.event_batch.max(1),
                flush_interval: Duration::from_millis(self.event_flush_ms.max(1)),
            },
            audit_ship: self.audit_ship.config(data_dir),
            delivery: self.notify.config(),
            snapshot: self.snapshot.config(&self.audit_ship.target),
            recommend_interval: Duration::from_secs(self.recommend_interval_secs.max(1)),
        }
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let quiet = matches!(
        cli.command,
        Command::Import(_)
            | Command::Export(_)
            | Command::ImportKb(_)
            | Command::User(_)
            | Command::Token(_)
            | Command::Audit(_)
            | Command::Migrate
            | Command::Reindex { .. }
    );
    init_logging(
        &cli.log_format,
        if quiet {
            "warn"
        } else {
            "info,tantivy=warn,tower_http=warn"
        },
    );
    let db = cli.database_url.as_deref();
    if let Command::Healthcheck { addr } = &cli.command {
        return healthcheck(*addr).await;
    }
    if let Command::Demo(args) = &cli.command {
        if db.is_some() {
            tracing::warn!("the demo ignores DATABASE_URL and uses the embedded store");
        }
        return demo::run(&cli.data_dir, args.options(&cli.data_dir)).await;
    }
    let store = Store::open(db, &cli.data_dir)
        .await
        .with_context(|| match db {
            Some(_) => "opening the PostgreSQL store (DATABASE_URL)".to_string(),
            None => format!("opening the embedded store in {}", cli.data_dir.display()),
        })?;
    let system = Principal::system();
    match cli.command {
        Command::Serve(args) => serve(store, args.options(&cli.data_dir), |_| {}).await,
        Command::Demo(_) | Command::Healthcheck { .. } => unreachable!("handled above"),
        Command::Migrate => {
            println!("migrations applied ({})", store.backend());
            Ok(())
        }
        Command::Import(args) => import::run(&store, &args).await,
        Command::Export(args) => backup::export(&store, &args).await,
        Command::ImportKb(args) => backup::import_kb(&store, &args).await,
        Command::Reindex { index_dir } => {
            let dir = index_dir.unwrap_or_else(|| cli.data_dir.join("index"));
            import::reindex(&store, &dir).await
        }
        Command::User(UserCommand::Add {
            name,
            roles,
            display_name,
            email,
            webhook_url,
        }) => {
            let input = engine::users::NewUser {
                username: name,
                display_name,
                roles,
                email,
                webhook_url,
            };
            let u = engine::users::create(&store, &system, input).await?;
            println!(
                "user {} created with roles {}",
                u.username,
                u.roles.join(",")
            );
            Ok(())
        }
        Command::User(UserCommand::List) => {
            for u in store.list_users().await? {
                println!("{}\t{}\t{}", u.username, u.roles.join(","), u.display_name);
            }
            Ok(())
        }
        Command::User(UserCommand::SetPassword { name }) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let password = line.trim_end_matches(['\r', '\n']);
            engine::sessions::set_password(&store, &system, &name, password, None).await?;
            println!("password set for {name}");
            Ok(())
        }
        Command::User(UserCommand::SetContact {
            name,
            email,
            webhook_url,
        }) => {
            let contact = engine::model::Contact { email, webhook_url };
            let u = engine::users::set_contact(&store, &system, &name, contact).await?;
            println!(
                "user {} now has e-mail {} and webhook {}",
                u.username,
                u.email.as_deref().unwrap_or("-"),
                u.webhook_url.as_deref().unwrap_or("-")
            );
            Ok(())
        }
        Command::User(UserCommand::SetRoles { name, roles }) => {
            let u = store.set_roles(&system, &name, &roles).await?;
            println!("user {} now has roles {}", u.username, u.roles.join(","));
            Ok(())
        }
        Command::Role(RoleCommand::List) => {
            for r in engine::users::roles(&store).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    r.name,
                    r.kind,
                    r.permissions.join(","),
                    r.members.join(",")
                );
            }
            Ok(())
        }
        Command::Role(RoleCommand::AddGroup { name, description }) => {
            let input = engine::users::NewGroup { name, description };
            let g = engine::users::create_group(&store, &system, input).await?;
            println!("group {} defined", g.name);
            Ok(())
        }
        Command::Audit(AuditCommand::Verify { target, store_only }) => {
            let shipped = (!store_only).then(|| target.config(&cli.data_dir));
            audit_verify(&store, shipped).await
        }
        Command::Token(TokenCommand::Create { user, name }) => {
            let t = engine::users::issue_token(&store, &system, &user, &name).await?;
            println!("{}", t.token);
            Ok(())
        }
    }
}

/// `kmt audit verify`: the table's chain, then (unless `shipped` is `None`)
/// the shipped objects against their records, the chain and the table.
async fn audit_verify(
    store: &Store,
    shipped: Option<engine::audit_ship::TargetConfig>,
) -> anyhow::Result<()> {
    let r = engine::store::audit::verify(store).await?;
    if let Some(b) = r.first_broken {
        anyhow::bail!(
            "audit chain broken at row {}: {} ({} rows before it verified)",
            b.id,
            b.reason,
            r.rows
        );
    }
    println!("audit chain intact: {} rows", r.rows);
    let Some(cfg) = shipped else { return Ok(()) };
    let target = engine::audit_ship::ShipTarget::open(&cfg).await?;
    let s = engine::audit_ship::verify_shipped(store, &target).await?;
    if let Some(b) = s.first_broken {
        let row = b.id.map(|id| format!(" at row {id}")).unwrap_or_default();
        anyhow::bail!(
            "shipped audit object {} in {} is bad{row}: {} ({} objects before it verified)",
            b.key,
            target.describe(),
            b.reason,
            s.objects
        );
    }
    if let Some(key) = s.unrecorded.first() {
        anyhow::bail!(
            "shipped audit object {key} in {} is not in the shipment records ({} such objects)",
            target.describe(),
            s.unrecorded.len()
        );
    }
    println!(
        "shipped audit objects intact: {} objects, {} rows in {}",
        s.objects,
        s.rows,
        target.describe()
    );
    Ok(())
}

/// A minimal HTTP/1.0 GET of `/healthz`.
async fn healthcheck(addr: SocketAddr) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        anyhow::Ok(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(3), fut)
        .await
        .context("health check timed out")??;
    let head = String::from_utf8_lossy(&buf[..buf.len().min(32)]).to_string();
    anyhow::ensure!(head.contains(" 200 "), "unhealthy: {head}");
    Ok(())
}
