//! Result files: JSON dumps, SVG plots and the BENCHMARKS.md section.
//!
//! `compare` writes its results between the markers
//! `<!-- bench:latency:<label> -->` and `<!-- /bench:latency:<label> -->`:
//! a rerun with the same label replaces that section in place and keeps the
//! rest of the file; a new label is appended. The recorded command line has
//! secrets redacted (`--token` values, passwords in database URLs).

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::plot;
use crate::stats::Series;

/// Writes `<dir>/<label>.json` (summaries + CDFs) and `<dir>/<label>.svg`.
/// Returns the SVG's path.
pub fn write_results<T: Serialize>(
    dir: &Path,
    label: &str,
    title: &str,
    series: &[Series],
    meta: &T,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let json = dir.join(format!("{label}.json"));
    let doc = serde_json::json!({ "label": label, "meta": meta, "series": series });
    std::fs::write(&json, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("write {}", json.display()))?;
    let svg = dir.join(format!("{label}.svg"));
    std::fs::write(&svg, plot::latency_svg(title, series))
        .with_context(|| format!("write {}", svg.display()))?;
    eprintln!("wrote {} and {}", json.display(), svg.display());
    Ok(svg)
}

/// A label safe to use in file names and markers.
pub fn clean_label(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() {
        "run".into()
    } else {
        s
    }
}

fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Replaces a password in `scheme://user:password@host` with `***`.
fn redact_url(arg: &str) -> String {
    if let Some(scheme_end) = arg.find("://") {
        let rest = &arg[scheme_end + 3..];
        if let Some(at) = rest.find('@') {
            let userinfo = &rest[..at];
            if let Some(colon) = userinfo.find(':') {
                return format!(
                    "{}{}:***{}",
                    &arg[..scheme_end + 3],
                    &userinfo[..colon],
                    &rest[at..]
                );
            }
        }
    }
    arg.to_owned()
}

/// The command line, shell-quoted, with secrets redacted.
pub fn command_line(args: &[String]) -> String {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for (i, arg) in args.iter().enumerate() {
        let shown = if hide_next {
            hide_next = false;
            "***".to_owned()
        } else if arg == "--token" {
            hide_next = true;
            arg.clone()
        } else if arg.starts_with("--token=") {
            "--token=***".to_owned()
        } else if i == 0 {
            Path::new(arg)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| arg.clone())
        } else {
            redact_url(arg)
        };
        out.push(shell_quote(&shown));
    }
    out.join(" ")
}

/// `target` relative to the directory `from_dir` (both made absolute first).
pub fn relative_path(target: &Path, from_dir: &Path) -> PathBuf {
    let abs = |p: &Path| -> PathBuf {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        let mut out = PathBuf::new();
        for c in p.components() {
            match c {
                Component::CurDir => {}
                Component::ParentDir => {
                    out.pop();
                }
                c => out.push(c),
            }
        }
        out
    };
    let (t, f) = (abs(target), abs(from_dir));
    let common = t
        .components()
        .zip(f.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut rel = PathBuf::new();
    for _ in f.components().skip(common) {
        rel.push("..");
    }
    for c in t.components().skip(common) {
        rel.push(c);
    }
    rel
}

/// Inserts or replaces the `label` section of `file` with `body`.
pub fn upsert_section(file: &Path, label: &str, body: &str) -> Result<()> {
    let begin = format!("<!-- bench:latency:{label} -->");
    let end = format!("<!-- /bench:latency:{label} -->");
    let section = format!("{begin}\n{}\n{end}", body.trim_end());
    let existing = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::from(
            "# KMT benchmarks\n\nGenerated by `kmt-bench compare` (see `benches/run-latency.sh`); \
             each section is replaced in place when rerun with the same label.\n",
        ),
        Err(e) => return Err(e).with_context(|| format!("read {}", file.display())),
    };
    let updated = match (existing.find(&begin), existing.find(&end)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{section}{}", &existing[..b], &existing[e + end.len()..])
        }
        _ => format!("{}\n{section}\n", existing.trim_end().to_owned() + "\n"),
    };
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(file, updated).with_context(|| format!("write {}", file.display()))
}

/// Everything the markdown section shows besides the two series.
pub struct SectionInfo<'a> {
    pub articles: u64,
    pub kmt_total: Option<u64>,
    pub queries: &'a str,
    pub kmt_work: &'a str,
    pub pg_work: &'a str,
    pub pg_version: &'a str,
    pub pg_load: &'a str,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub command: &'a str,
    pub driver: Option<&'a str>,
    pub plot_link: &'a str,
}

/// The markdown body of a comparison section (`kmt` first, `pg` second).
pub fn section_markdown(kmt: &Series, pg: &Series, info: &SectionInfo<'_>) -> String {
    let (k, p) = (&kmt.summary, &pg.summary);
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    let mut md = format!(
        "### Search latency: KMT vs PostgreSQL full-text search — {} articles, concurrency {}\n\n",
        info.articles, k.concurrency
    );
    md.push_str(
        "| system | articles | concurrency | requests | errors | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | QPS |\n",
    );
    md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for s in [k, p] {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |\n",
            s.system,
            info.articles,
            s.concurrency,
            s.requests,
            s.errors,
            s.p50_ms,
            s.p90_ms,
            s.p99_ms,
            s.max_ms,
            s.qps
        ));
    }
    if k.p50_ms > 0.0 {
        let ratio = p.p50_ms / k.p50_ms;
        let verdict = if ratio >= 1.0 {
            "KMT's median is lower"
        } else {
            "PostgreSQL's median is lower"
        };
        md.push_str(&format!(
            "\nRatio of medians (PostgreSQL FTS p50 / KMT p50): **{ratio:.2}×** ({verdict}).\n"
        ));
    }
    md.push_str(&format!(
        "\n![latency distribution]({})\n\n",
        info.plot_link
    ));
    md.push_str(&format!("- Date: {date}.\n"));
    md.push_str(&format!(
        "- Load: closed loop, {} concurrent workers per system, {} s warm-up then {} s measured, one system after the other; {}, cycled. Client and servers share one machine ({} CPUs).\n",
        k.concurrency,
        info.warmup_s,
        info.duration_s,
        info.queries,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    md.push_str(&format!("- KMT: {}.", info.kmt_work));
    if let Some(t) = info.kmt_total {
        md.push_str(&format!(
            " Its index held {t} articles (empty-query total)."
        ));
    }
    md.push('\n');
    md.push_str(&format!(
        "- PostgreSQL {}: {}. Load: {}.\n",
        info.pg_version, info.pg_work, info.pg_load
    ));
    for s in [k, p] {
        if let (Some(t), Some(z)) = (s.mean_total, s.zero_total_share) {
            md.push_str(&format!(
                "- {}: mean `total` {t:.0} per request, {:.0}% of requests with no hits.\n",
                s.system,
                z * 100.0
            ));
        }
    }
    md.push_str(&format!("- Command: `{}`\n", info.command));
    if let Some(d) = info.driver {
        md.push_str(&format!("- Driver: `{d}`\n"));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let args: Vec<String> = [
            "/x/kmt-bench",
            "compare",
            "--token",
            "s3cret",
            "--database-url",
            "postgres://u:pw@127.0.0.1/db",
            "--label=a b",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            command_line(&args),
            "kmt-bench compare --token '***' --database-url 'postgres://u:***@127.0.0.1/db' '--label=a b'"
        );
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_path(Path::new("/r/benches/results/x.svg"), Path::new("/r")),
            PathBuf::from("benches/results/x.svg")
        );
        assert_eq!(
            relative_path(Path::new("/r/a/x.svg"), Path::new("/r/b")),
            PathBuf::from("../a/x.svg")
        );
    }

    #[test]
    fn sections_update_in_place() {
        let dir = std::env::temp_dir().join(format!("kmt-bench-test-{}", std::process::id()));
        let file = dir.join("B.md");
        let _ = std::fs::remove_file(&file);
        upsert_section(&file, "a", "first").unwrap();
        upsert_section(&file, "b", "other").unwrap();
        upsert_section(&file, "a", "second").unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("# KMT benchmarks"));
        assert!(!text.contains("first"));
        assert!(text.find("second").unwrap() < text.find("other").unwrap());
        assert_eq!(text.matches("<!-- bench:latency:a -->").count(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
