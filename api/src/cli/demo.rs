//! `kmt demo`: the embedded store, the sample corpus and demo accounts,
//! ready from one command.

use std::path::Path;

use anyhow::Context;
use engine::auth::{new_token, Principal};
use engine::import::ImportOptions;
use engine::store::Store;
use serde::{Deserialize, Serialize};

use crate::app::{serve, ServeOptions};

/// The demo accounts: (username, display name, roles, what they show).
const ACCOUNTS: &[(&str, &str, &[&str], &str)] = &[
    ("admin", "Ada Admin", &["admin"], "everything"),
    (
        "alice",
        "Alice Auditor",
        &["author", "auditor"],
        "writes drafts; reads auditor-only articles",
    ),
    (
        "rita",
        "Rita Reviewer",
        &["reviewer", "program_specialist"],
        "reviews and publishes; usage analytics, reading assignments",
    ),
    (
        "harry",
        "Harry Hearing",
        &["viewer", "hearing_officer"],
        "reads hearing-officer-only articles",
    ),
    (
        "diana",
        "Diana Director",
        &["viewer", "director"],
        "reads director-only articles; usage analytics, reading assignments",
    ),
    (
        "vera",
        "Vera Viewer",
        &["viewer"],
        "reads articles for all staff",
    ),
];

/// The demo password of an account (printed by the demo; local use only).
fn demo_password(name: &str) -> String {
    format!("kmt-demo-{name}")
}

#[derive(Debug, Serialize, Deserialize)]
struct DemoAccount {
    username: String,
    roles: Vec<String>,
    token: String,
}

/// Loads the sample corpus on first start, makes the demo accounts, serves.
pub async fn run(data_dir: &Path, opts: ServeOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let store = Store::open(None, data_dir)
        .await
        .context("opening the embedded store")?;
    if store.count_articles().await? == 0 {
        let dir = data_dir.join("sample-corpus");
        std::fs::create_dir_all(&dir)?;
        for (name, text) in crate::corpus::SAMPLE_CORPUS {
            std::fs::write(dir.join(name), text)?;
        }
        let s = super::import::import_path(&store, &dir, &ImportOptions::default(), false, true)
            .await
            .context("loading the sample corpus")?;
        println!("loaded the sample corpus: {} articles", s.outcome.created);
    }
    let accounts = accounts(&store, data_dir).await?;
    let banner = move |addr: std::net::SocketAddr| {
        println!("\nKMT demo running at http://{addr}/");
        println!("API description: http://{addr}/v1/openapi.json\n");
        println!("Demo accounts (sign in with the password, or send the token as `Authorization: Bearer <token>`):");
        for a in &accounts {
            let what = ACCOUNTS
                .iter()
                .find(|x| x.0 == a.username)
                .map_or("", |x| x.3);
            println!(
                "  {:<6} {:<32} {}\n         password {}  token {}",
                a.username,
                a.roles.join(","),
                what,
                demo_password(&a.username),
                a.token
            );
        }
        println!("\nTry: curl -H 'Authorization: Bearer {}' 'http://{addr}/v1/search?q=penalty+abatement&facets=category,tags'", accounts.first().map_or("", |a| a.token.as_str()));
        println!("Stop with Ctrl-C.");
    };
    serve(store, opts, banner).await
}

async fn accounts(store: &Store, data_dir: &Path) -> anyhow::Result<Vec<DemoAccount>> {
    let file = data_dir.join("demo-accounts.json");
    if let Ok(text) = std::fs::read_to_string(&file) {
        if let Ok(v) = serde_json::from_str::<Vec<DemoAccount>>(&text) {
            return Ok(v);
        }
    }
    let system = Principal::system();
    let mut out = Vec::new();
    for (name, display, roles, _) in ACCOUNTS {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        if store.get_user(name).await?.is_none() {
            store.create_user(&system, name, display, &roles).await?;
        }
        let (token, hash) = new_token();
        store.create_token(&system, name, "demo", &hash).await?;
        let password = demo_password(name);
        engine::sessions::set_password(store, &system, name, &password, None).await?;
        out.push(DemoAccount {
            username: name.to_string(),
            roles,
            token,
        });
    }
    std::fs::write(&file, serde_json::to_string_pretty(&out)?)?;
    Ok(out)
}
