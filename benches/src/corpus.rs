//! Scale corpus generator: builds KMT JSONL articles from real reference text.
//!
//! The generator reads two reference corpora that live outside the repository
//! (`../shared/corpora` by default):
//!
//! * `pgdocs/corpus.jsonl` — the PostgreSQL 15 manual, one page per line with
//!   `id`, `title`, `category`, `chapter` and `body` (paragraphs separated by a
//!   blank line);
//! * `msmarco-5k/corpus.jsonl` — 5,000 MS MARCO passages (`_id`, `title`, `text`).
//!
//! Each generated article takes a pgdocs page's title and a deterministic
//! random window of 3–12 of its paragraphs, mixes in 1–3 MS MARCO passages at
//! random positions, and keeps the page's category (slugified) and chapter
//! (as a slug tag). Every article is public (`audience: ["public"]`) so that
//! anonymous benchmark queries see the whole corpus. The output is a pure
//! function of the seed: article `i` draws from its own PRNG stream, so the
//! same `--seed` always yields byte-identical files.
//!
//! With `--articles 0` the pgdocs pages are converted one-to-one instead.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// splitmix64: a tiny, fast, well-distributed PRNG (Steele, Lea, Flood 2014).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// An independent stream for item `index` of a run seeded with `seed`.
    pub fn for_item(seed: u64, index: u64) -> Self {
        Self::new(mix64(
            seed ^ mix64(index.wrapping_add(0x5851_f42d_4c95_7f2d)),
        ))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; `n` must be > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One article in KMT's JSONL import format.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Article {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub audience: Vec<String>,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Deserialize)]
struct PgDoc {
    id: String,
    title: String,
    category: String,
    chapter: String,
    body: String,
}

#[derive(Debug, Deserialize)]
struct Passage {
    text: String,
}

struct Source {
    id: String,
    title: String,
    category: String,
    tag: String,
    paragraphs: Vec<String>,
}

/// Where the corpora are expected, and the files this generator reads.
pub fn resolve_corpora(dir: &Path, need_msmarco: bool) -> Result<(PathBuf, PathBuf)> {
    let pgdocs = dir.join("pgdocs/corpus.jsonl");
    let msmarco = dir.join("msmarco-5k/corpus.jsonl");
    let missing: Vec<&Path> = [Some(&pgdocs), need_msmarco.then_some(&msmarco)]
        .into_iter()
        .flatten()
        .filter(|p| !p.is_file())
        .map(PathBuf::as_path)
        .collect();
    if !missing.is_empty() {
        bail!(
            "the scale benchmark needs the reference corpora, but {} {} missing; \
             pass --corpora DIR or set KMT_CORPORA to the folder holding pgdocs/ and msmarco-5k/ \
             (default ../shared/corpora)",
            missing
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" and "),
            if missing.len() > 1 { "are" } else { "is" }
        );
    }
    Ok((pgdocs, msmarco))
}

/// Every non-blank line of a JSON Lines file as a `T` (errors name the
/// file and line).
pub(crate) fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .with_context(|| format!("{}:{}: bad json line", path.display(), n + 1))?,
        );
    }
    Ok(out)
}

/// Lowercase ASCII slug: runs of anything but letters and digits become `-`.
pub fn slugify(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

fn paragraphs(body: &str) -> Vec<String> {
    body.split("\n\n")
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// First sentence of the first paragraph with a few words, cut at ~240 chars.
fn summary_of<'a>(paras: impl IntoIterator<Item = &'a String>) -> String {
    let para = paras
        .into_iter()
        .find(|p| p.split_whitespace().count() >= 5)
        .map(String::as_str)
        .unwrap_or("");
    let mut sentence = match para.find(". ") {
        Some(i) => &para[..=i],
        None => para,
    };
    if sentence.len() > 240 {
        let mut cut = 240;
        while !sentence.is_char_boundary(cut) {
            cut -= 1;
        }
        sentence = &sentence[..cut];
        if let Some(space) = sentence.rfind(' ') {
            sentence = &sentence[..space];
        }
        return format!("{sentence}…");
    }
    sentence.to_owned()
}

/// Up to `n` leading words of `para`, at most `max_chars` characters.
fn lead_words(para: &str, n: usize, max_chars: usize) -> String {
    let mut out = String::new();
    for word in para.split_whitespace().take(n) {
        let extra = usize::from(!out.is_empty()) + word.chars().count();
        if out.chars().count() + extra > max_chars {
            if out.is_empty() {
                out = word.chars().take(max_chars).collect();
            }
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    // Drop dangling punctuation and arrows, keep closing brackets and quotes.
    out.trim_end_matches(|c: char| {
        c.is_whitespace() || (!c.is_alphanumeric() && !")]}'\"".contains(c))
    })
    .to_owned()
}

/// A slug that fits KMT's 64-byte limit on category and tag names.
fn name_slug(s: &str) -> String {
    let mut slug = slugify(s);
    slug.truncate(64);
    slug.trim_end_matches('-').to_owned()
}

fn load_sources(pgdocs: &Path) -> Result<Vec<Source>> {
    let docs: Vec<PgDoc> = read_jsonl(pgdocs)?;
    if docs.is_empty() {
        bail!("{} holds no articles", pgdocs.display());
    }
    Ok(docs
        .into_iter()
        .map(|d| Source {
            id: slugify(&d.id),
            title: d.title,
            category: name_slug(&d.category),
            tag: name_slug(&d.chapter),
            paragraphs: paragraphs(&d.body),
        })
        .filter(|s| !s.paragraphs.is_empty())
        .collect())
}

/// Builds generated article number `index` (0-based) from its own PRNG stream.
fn generate_one(seed: u64, index: usize, sources: &[Source], passages: &[String]) -> Article {
    let mut rng = SplitMix64::for_item(seed, index as u64);
    let src = &sources[rng.below(sources.len())];
    let n = src.paragraphs.len();
    let len = rng.between(3, 12).min(n);
    let start = rng.below(n - len + 1);
    let mut end = start + len;
    // Catalog pages are lists of one-line paragraphs: grow thin windows a little.
    while end < n
        && src.paragraphs[start..end]
            .iter()
            .map(|p| p.split_whitespace().count())
            .sum::<usize>()
            < 60
    {
        end += 1;
    }
    let window = &src.paragraphs[start..end];
    let mut parts: Vec<&str> = window.iter().map(String::as_str).collect();
    if !passages.is_empty() {
        for _ in 0..rng.between(1, 3) {
            let passage = &passages[rng.below(passages.len())];
            let at = rng.between(1, parts.len());
            parts.insert(at, passage);
        }
    }
    let title = if start == 0 {
        src.title.clone()
    } else {
        format!("{} — {}", src.title, lead_words(&window[0], 6, 60))
    };
    Article {
        id: format!("scale-{:06}", index + 1),
        title,
        summary: summary_of(window),
        body: parts.join("\n\n"),
        category: src.category.clone(),
        tags: vec![src.tag.clone()],
        audience: vec!["public".into()],
        status: "published".into(),
    }
}

/// Converts a pgdocs page one-to-one (the `--articles 0` mode).
fn convert_one(src: &Source) -> Article {
    Article {
        id: src.id.clone(),
        title: src.title.clone(),
        summary: summary_of(&src.paragraphs),
        body: src.paragraphs.join("\n\n"),
        category: src.category.clone(),
        tags: vec![src.tag.clone()],
        audience: vec!["public".into()],
        status: "published".into(),
    }
}

/// What `scale` wrote.
#[derive(Debug)]
pub struct ScaleReport {
    pub articles: usize,
    pub bytes: u64,
    pub words: u64,
}

/// Generates `articles` articles (or converts pgdocs when 0) into `out`.
pub fn scale(corpora: &Path, articles: usize, seed: u64, out: &Path) -> Result<ScaleReport> {
    let (pgdocs, msmarco) = resolve_corpora(corpora, articles > 0)?;
    let sources = load_sources(&pgdocs)?;
    let passages: Vec<String> = if articles > 0 {
        read_jsonl::<Passage>(&msmarco)?
            .into_iter()
            .map(|p| p.text.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect()
    } else {
        Vec::new()
    };
    eprintln!(
        "scale: {} pgdocs pages, {} msmarco passages -> {}",
        sources.len(),
        passages.len(),
        out.display()
    );
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let file = File::create(out).with_context(|| format!("create {}", out.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let started = Instant::now();
    let total = if articles == 0 {
        sources.len()
    } else {
        articles
    };
    let mut report = ScaleReport {
        articles: 0,
        bytes: 0,
        words: 0,
    };
    for i in 0..total {
        let article = if articles == 0 {
            convert_one(&sources[i])
        } else {
            generate_one(seed, i, &sources, &passages)
        };
        let line = serde_json::to_string(&article)?;
        w.write_all(line.as_bytes())?;
        w.write_all(b"\n")?;
        report.articles += 1;
        report.bytes += line.len() as u64 + 1;
        report.words += article.body.split_whitespace().count() as u64;
        if (i + 1) % 20_000 == 0 {
            eprintln!(
                "scale: {}/{} articles ({:.1}s)",
                i + 1,
                total,
                started.elapsed().as_secs_f64()
            );
        }
    }
    w.flush()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugify_keeps_ascii_words() {
        assert_eq!(
            slugify("PL/Tcl — Tcl Procedural Language"),
            "pl-tcl-tcl-procedural-language"
        );
        assert_eq!(slugify("  The SQL Language "), "the-sql-language");
    }

    #[test]
    fn prng_is_deterministic_and_in_range() {
        let a: Vec<u64> = (0..4)
            .map(|i| SplitMix64::for_item(7, i).next_u64())
            .collect();
        let b: Vec<u64> = (0..4)
            .map(|i| SplitMix64::for_item(7, i).next_u64())
            .collect();
        assert_eq!(a, b);
        let mut r = SplitMix64::new(1);
        assert!((0..10_000).all(|_| (3..=12).contains(&r.between(3, 12))));
    }

    #[test]
    fn titles_stay_short() {
        let long = "polygon(circle '<(0,0),2>') → ((-2,0),(-1.7320508075688774,0.9999999999999999),(-1.0000000000000002,1.7320508075688772)";
        assert_eq!(lead_words(long, 6, 60), "polygon(circle '<(0,0),2>')");
        assert_eq!(lead_words("abcdefgh", 6, 4), "abcd");
        assert_eq!(
            lead_words("The new name of the text search", 6, 60),
            "The new name of the text"
        );
        assert_eq!(name_slug(&"x".repeat(80)).len(), 64);
    }

    #[test]
    fn summary_takes_first_sentence() {
        let paras = vec!["Table 1".to_owned(), "This is it. And more.".to_owned()];
        assert_eq!(summary_of(&paras), "This is it.");
    }
}
