//! The PostgreSQL full-text search baseline.
//!
//! Over the same JSONL articles and queries as the KMT benchmark, this
//! creates a throw-away database (`kmt_bench_fts_<pid>`) on the server of
//! `--database-url`, loads the articles with `COPY` into a table whose stored
//! generated `tsvector` weights title (A), summary (B) and body (C), builds a
//! GIN index, runs `VACUUM (ANALYZE)`, and then answers each query with
//! `websearch_to_tsquery('english', $1)` ranked by `ts_rank_cd`, top 10, with
//! the total number of matches (see [`PgWork`] for exactly what each mode does).
//! Each concurrent worker owns one sqlx connection. The database is dropped at
//! the end, also after an error or Ctrl-C.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Executor, Row};

use crate::corpus::Article;
use crate::loadgen::{self, LoadSpec, Measured, Worker};
use crate::stats::Outcome;

/// How much work PostgreSQL does per query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PgWork {
    /// Top 10 by ts_rank_cd plus the total (count(*) OVER ()); no snippets, no facets.
    Ranked,
    /// `ranked` plus ts_headline snippets for the hits and category/tags facet counts.
    Full,
}

impl PgWork {
    /// The mode's name as given on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PgWork::Ranked => "ranked",
            PgWork::Full => "full",
        }
    }

    /// What the mode does, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            PgWork::Ranked => {
                "`tsv @@ websearch_to_tsquery('english', $1)` over a GIN index, `ORDER BY ts_rank_cd(tsv, q) DESC LIMIT 10`, \
                 total via `count(*) OVER ()`; returns id, title, summary, category, tags, score \
                 (no snippets, no facets: less work than KMT does per request)"
            }
            PgWork::Full => {
                "`tsv @@ websearch_to_tsquery('english', $1)` over a GIN index, top 10 by `ts_rank_cd`, total count, \
                 `ts_headline` snippets for the 10 hits and category/tags facet counts over all matches, \
                 returned as one JSON document (about the work KMT does per request)"
            }
        }
    }

    fn sql(self) -> &'static str {
        match self {
            PgWork::Ranked => RANKED_SQL,
            PgWork::Full => FULL_SQL,
        }
    }
}

const RANKED_SQL: &str = "\
SELECT a.id, a.title, a.summary, a.category, a.tags, ts_rank_cd(a.tsv, q) AS score, count(*) OVER () AS total
FROM articles a, websearch_to_tsquery('english', $1) AS q
WHERE a.tsv @@ q
ORDER BY score DESC
LIMIT 10";

const FULL_SQL: &str = "\
WITH q AS (SELECT websearch_to_tsquery('english', $1) AS q),
matches AS MATERIALIZED (
  SELECT a.id, a.category, a.tags, ts_rank_cd(a.tsv, q.q) AS score
  FROM articles a, q WHERE a.tsv @@ q.q),
top AS (SELECT id, score FROM matches ORDER BY score DESC LIMIT 10)
SELECT json_build_object(
  'total', (SELECT count(*) FROM matches),
  'hits', (SELECT coalesce(json_agg(json_build_object(
      'id', a.id, 'title', a.title, 'score', t.score, 'category', a.category, 'tags', a.tags,
      'snippet', ts_headline('english', a.body, q.q, 'MaxFragments=1, MaxWords=30, MinWords=10'))
      ORDER BY t.score DESC), '[]'::json)
    FROM top t JOIN articles a USING (id), q),
  'facets', json_build_object(
    'category', (SELECT coalesce(json_object_agg(category, n), '{}'::json) FROM
      (SELECT category, count(*) AS n FROM matches GROUP BY category ORDER BY n DESC LIMIT 20) c),
    'tags', (SELECT coalesce(json_object_agg(tag, n), '{}'::json) FROM
      (SELECT tag, count(*) AS n FROM matches, unnest(tags) AS tag GROUP BY tag ORDER BY n DESC LIMIT 20) t))
)::text AS result";

const SCHEMA_SQL: &str = "\
CREATE TABLE articles (
  id text PRIMARY KEY,
  title text NOT NULL,
  summary text,
  body text,
  category text,
  tags text[] NOT NULL DEFAULT '{}',
  tsv tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
    setweight(to_tsvector('english', coalesce(summary, '')), 'B') ||
    setweight(to_tsvector('english', coalesce(body, '')), 'C')) STORED
)";

/// True when the options point at this machine (Unix socket or loopback).
fn is_local(opts: &PgConnectOptions) -> bool {
    let host = opts.get_host();
    if host.starts_with('/') {
        return true;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// A database created for one benchmark run; call [`FreshDb::drop`] at the end.
pub struct FreshDb {
    admin: PgConnectOptions,
    pub name: String,
    pub opts: PgConnectOptions,
}

impl FreshDb {
    pub async fn create(database_url: &str, allow_remote: bool) -> Result<Self> {
        Self::create_named(database_url, allow_remote, "kmt_bench_fts").await
    }

    /// A fresh database `<prefix>_<pid>` on the server of `database_url`.
    pub async fn create_named(
        database_url: &str,
        allow_remote: bool,
        prefix: &str,
    ) -> Result<Self> {
        let admin = PgConnectOptions::from_str(database_url).context("bad --database-url")?;
        if !allow_remote && !is_local(&admin) {
            bail!(
                "refusing to benchmark postgres at {}: not a loopback address (pass --allow-remote)",
                admin.get_host()
            );
        }
        let name = format!("{prefix}_{}", std::process::id());
        let mut conn = admin
            .connect()
            .await
            .with_context(|| format!("connect to postgres at {}", admin.get_host()))?;
        conn.execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
            .await?;
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .with_context(|| format!("create database {name}"))?;
        conn.close().await.ok();
        eprintln!("created database {name}");
        let opts = admin.clone().database(&name);
        Ok(Self { admin, name, opts })
    }

    pub async fn drop(self) -> Result<()> {
        let mut conn = self.admin.connect().await?;
        conn.execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await
            .with_context(|| format!("drop database {}", self.name))?;
        conn.close().await.ok();
        eprintln!("dropped database {}", self.name);
        Ok(())
    }
}

/// What loading produced.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub articles: u64,
    pub load_s: f64,
    pub index_s: f64,
    pub table_bytes: i64,
    pub server_version: String,
}

/// Appends `s` escaped for COPY's text format.
fn copy_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => {}
            c => out.push(c),
        }
    }
}

/// A Postgres array literal (`{"a","b"}`) for `text[]`.
fn array_literal(items: &[String]) -> String {
    let mut s = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('"');
        for c in item.chars() {
            if c == '"' || c == '\\' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push('"');
    }
    s.push('}');
    s
}

fn copy_row(out: &mut String, a: &Article) {
    for (i, field) in [&a.id, &a.title, &a.summary, &a.body, &a.category]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            out.push('\t');
        }
        copy_text(out, field);
    }
    out.push('\t');
    copy_text(out, &array_literal(&a.tags));
    out.push('\n');
}

/// Loads the JSONL articles with COPY, then indexes and analyzes the table.
pub async fn load(opts: &PgConnectOptions, articles: &Path) -> Result<LoadReport> {
    let file = std::fs::File::open(articles)
        .with_context(|| format!("open articles file {}", articles.display()))?;
    let mut conn = opts.connect().await.context("connect to benchmark db")?;
    conn.execute(SCHEMA_SQL).await.context("create table")?;
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw("COPY articles (id, title, summary, body, category, tags) FROM STDIN")
        .await?;
    let mut buf = String::with_capacity(4 << 20);
    let mut n: u64 = 0;
    for (lineno, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let a: Article = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: bad article", articles.display(), lineno + 1))?;
        copy_row(&mut buf, &a);
        n += 1;
        if buf.len() >= 4 << 20 {
            copy.send(std::mem::take(&mut buf).into_bytes()).await?;
            buf.reserve(4 << 20);
        }
        if n.is_multiple_of(10_000) {
            eprintln!(
                "pgfts: loaded {n} articles ({:.1}s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    if !buf.is_empty() {
        copy.send(buf.into_bytes()).await?;
    }
    let rows = copy.finish().await.context("copy articles")?;
    let load_s = started.elapsed().as_secs_f64();
    eprintln!("pgfts: copied {rows} articles in {load_s:.1}s; building gin index");
    let started = Instant::now();
    conn.execute("SET maintenance_work_mem = '1GB'").await?;
    conn.execute("CREATE INDEX articles_tsv_gin ON articles USING gin (tsv)")
        .await
        .context("create gin index")?;
    conn.execute("VACUUM (ANALYZE) articles").await?;
    let index_s = started.elapsed().as_secs_f64();
    let table_bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('articles')")
        .fetch_one(&mut conn)
        .await?;
    let server_version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await?;
    eprintln!(
        "pgfts: index and analyze took {index_s:.1}s; table with indexes is {:.0} MiB",
        table_bytes as f64 / (1024.0 * 1024.0)
    );
    conn.close().await.ok();
    Ok(LoadReport {
        articles: rows,
        load_s,
        index_s,
        table_bytes,
        server_version,
    })
}

struct PgWorker {
    conn: PgConnection,
    queries: Arc<Vec<String>>,
    work: PgWork,
}

impl Worker for PgWorker {
    async fn call(&mut self, query: usize) -> Outcome {
        let q = &self.queries[query];
        let started = Instant::now();
        let rows = sqlx::query(self.work.sql())
            .bind(q)
            .fetch_all(&mut self.conn)
            .await;
        let elapsed = started.elapsed();
        match rows {
            Ok(rows) => Outcome {
                elapsed,
                ok: true,
                total: total_of(self.work, &rows),
                error: None,
            },
            Err(e) => Outcome {
                elapsed,
                ok: false,
                total: None,
                error: Some(format!("query {q:?} failed: {e}")),
            },
        }
    }
}

fn total_of(work: PgWork, rows: &[sqlx::postgres::PgRow]) -> Option<u64> {
    let Some(row) = rows.first() else {
        return Some(0);
    };
    match work {
        PgWork::Ranked => row.try_get::<i64, _>("total").ok().map(|t| t as u64),
        PgWork::Full => {
            let text: String = row.try_get("result").ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            v.get("total")?.as_u64()
        }
    }
}

/// Runs the closed-loop query benchmark, one connection per worker.
pub async fn bench(
    opts: &PgConnectOptions,
    queries: &[String],
    work: PgWork,
    spec: LoadSpec,
    stop: Arc<AtomicBool>,
) -> Result<Measured> {
    let queries = Arc::new(queries.to_vec());
    let mut workers = Vec::with_capacity(spec.concurrency);
    for _ in 0..spec.concurrency {
        let conn = opts.connect().await.context("connect to benchmark db")?;
        workers.push(PgWorker {
            conn,
            queries: queries.clone(),
            work,
        });
    }
    let n = queries.len();
    let measured = loadgen::run(workers, n, spec, stop).await?;
    Ok(measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_escape_specials() {
        let a = Article {
            id: "a".into(),
            title: "t\\1".into(),
            summary: "s\tx".into(),
            body: "p1\n\np2".into(),
            category: "c".into(),
            tags: vec!["x\"y".into(), "z".into()],
            audience: vec![],
            status: String::new(),
        };
        let mut out = String::new();
        copy_row(&mut out, &a);
        assert_eq!(
            out,
            "a\tt\\\\1\ts\\tx\tp1\\n\\np2\tc\t{\"x\\\\\"y\",\"z\"}\n"
        );
    }
}
