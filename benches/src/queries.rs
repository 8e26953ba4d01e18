//! Benchmark query sets.
//!
//! A query file holds one query per line; blank lines and lines starting with
//! `#` are skipped. The committed set `benches/queries/pgdocs.txt` (searches a
//! DBA would type against the PostgreSQL manual, a few with typos or cut
//! short) is compiled in and used when no `--queries FILE` is given.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// The committed pgdocs query set, embedded at build time.
pub const PGDOCS: &str = include_str!("../queries/pgdocs.txt");

/// Parses a query file's text.
pub fn parse(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Loads `path`, or the embedded pgdocs set when `None`.
pub fn load(path: Option<&Path>) -> Result<Vec<String>> {
    let queries = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("read query file {}", p.display()))?;
            parse(&text)
        }
        None => parse(PGDOCS),
    };
    if queries.is_empty() {
        bail!("the query set is empty");
    }
    Ok(queries)
}

/// A short description of where the queries came from, for reports.
pub fn describe(path: Option<&Path>, n: usize) -> String {
    match path {
        Some(p) => format!("{n} queries from `{}`", p.display()),
        None => format!("{n} queries from `benches/queries/pgdocs.txt` (built in)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_set_is_sane() {
        let q = parse(PGDOCS);
        assert!(q.len() >= 50, "{} queries", q.len());
        assert!(q
            .iter()
            .all(|q| (1..=4).contains(&q.split_whitespace().count())));
        assert!(q.contains(&"create index concurrently".to_owned()));
    }

    #[test]
    fn comments_and_blanks_are_skipped() {
        assert_eq!(parse("# c\n\n a b \n"), vec!["a b".to_owned()]);
    }
}
