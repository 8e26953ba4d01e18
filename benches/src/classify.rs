//! Record-type prediction (issue 5): the category and tags of held-out
//! pgdocs articles suggested by `engine::prompts::classify` — the code the
//! API serves — from the nearest published articles of the rest. pgdocs
//! has 9 categories; its chapter is imported as the article's tag.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use engine::auth::Principal;
use engine::embed::QueryEmbedder;
use engine::model::Article;
use engine::prompts::category_model::CategoryCorpus;
use engine::prompts::{classify_with, CategoryConfig, CategoryModel, ClassifyOptions, DraftText};
use engine::search::SearchMode;
use engine::search::{SearchIndex, Semantic};
use engine::vector::{SearchParams, VectorIndex};

use crate::relevance::{load_articles, vectors, EmbedderChoice};

/// Inputs of a run.
pub struct ClassifySpec {
    /// pgdocs `corpus.jsonl`.
    pub corpus: PathBuf,
    /// Model directory.
    pub model_dir: PathBuf,
    /// Embedders measured beside the lexical vote.
    pub embedders: Vec<EmbedderChoice>,
    /// Cache of passage vectors.
    pub cache: PathBuf,
    /// Share of articles held out (0–1).
    pub holdout: f64,
    /// Markdown file whose classify section is replaced.
    pub out: Option<PathBuf>,
    /// Folder for an offline dump of labels and vectors.
    pub dump: Option<PathBuf>,
    /// The command line, for the report.
    pub command: String,
}

/// One configuration's results.
struct Row {
    name: String,
    category_at1: f64,
    tag_at1: f64,
    tag_in3: f64,
    ms_per_draft: f64,
}

/// Held out deterministically: every article whose FNV hash of the slug
/// falls in the first `share` of the range.
fn held_out(a: &Article, share: f64) -> bool {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in a.slug.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % 10_000) as f64 / 10_000.0 < share
}

async fn measure(
    name: &str,
    index: &SearchIndex,
    model: Option<&CategoryModel>,
    test: &[Article],
    opts: ClassifyOptions,
) -> Result<Row> {
    let admin = Principal::system();
    let (mut cat, mut tag1, mut tag3) = (0usize, 0usize, 0usize);
    let t0 = Instant::now();
    for a in test {
        let c = classify_with(
            index,
            model,
            &admin,
            DraftText {
                title: a.title.clone(),
                summary: a.summary.clone(),
                body: a.body.clone(),
            },
            opts,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        if c.categories.first().map(|v| v.value.as_str()) == Some(a.category.as_str()) {
            cat += 1;
        }
        let truth = a.tags.first().map(String::as_str);
        if c.tags.first().map(|v| v.value.as_str()) == truth {
            tag1 += 1;
        }
        if c.tags
            .iter()
            .take(3)
            .any(|v| Some(v.value.as_str()) == truth)
        {
            tag3 += 1;
        }
    }
    let n = test.len().max(1) as f64;
    Ok(Row {
        name: name.to_string(),
        category_at1: cat as f64 / n,
        tag_at1: tag1 as f64 / n,
        tag_in3: tag3 as f64 / n,
        ms_per_draft: t0.elapsed().as_secs_f64() * 1000.0 / n,
    })
}

/// Runs the benchmark.
pub async fn run(spec: ClassifySpec) -> Result<()> {
    if !spec.corpus.exists() {
        bail!(
            "no corpus at {} (pass --corpus ../shared/corpora/pgdocs/corpus.jsonl)",
            spec.corpus.display()
        );
    }
    let articles = load_articles(&spec.corpus)?;
    let (test, train): (Vec<Article>, Vec<Article>) = articles
        .into_iter()
        .partition(|a| held_out(a, spec.holdout));
    eprintln!("{} published, {} held out", train.len(), test.len());
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for a in &train {
        *counts.entry(a.category.as_str()).or_default() += 1;
    }
    let majority = counts
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(c, _)| c.to_string())
        .unwrap_or_default();
    let majority_at1 =
        test.iter().filter(|a| a.category == majority).count() as f64 / test.len().max(1) as f64;

    let index = SearchIndex::in_memory()?;
    let mut u = index.updater()?;
    for a in &train {
        u.upsert(a)?;
    }
    u.commit(1)?;
    drop(u);
    // The classifier the product trains (`Recommender`): on the published
    // articles, the same text and settings.
    let t0 = Instant::now();
    let cfg = CategoryConfig::default();
    let mut corpus = CategoryCorpus::default();
    for a in &train {
        corpus.add(
            &[a.title.as_str(), &a.summary, &a.body].join("\n"),
            &a.category,
            &cfg,
        );
    }
    let model = CategoryModel::train(corpus, &cfg)
        .ok_or_else(|| anyhow::anyhow!("no classifier trained"))?;
    let train_s = t0.elapsed().as_secs_f64();
    let product = ClassifyOptions::default();
    let vote_only = ClassifyOptions {
        use_classifier: false,
        ..product
    };
    let mut rows = vec![
        measure("lexical vote (no embedder)", &index, None, &test, vote_only).await?,
        measure(
            "classifier; tags by lexical vote (product, no embedder)",
            &index,
            Some(&model),
            &test,
            product,
        )
        .await?,
    ];
    for e in &spec.embedders {
        let model_e = e.load(&spec.model_dir)?;
        let (m, cache, tr) = (model_e.clone(), spec.cache.clone(), train.clone());
        let vecs = tokio::task::spawn_blocking(move || vectors(&tr, &*m, &cache)).await??;
        if let Some(dir) = &spec.dump {
            let all: Vec<Article> = train.iter().chain(&test).cloned().collect();
            let (m, cache, dir) = (model_e.clone(), spec.cache.clone(), dir.clone());
            let n_train = train.len();
            tokio::task::spawn_blocking(move || dump(&dir, &all, n_train, &*m, &cache)).await??;
        }
        index.attach_semantic(Arc::new(Semantic {
            embedder: QueryEmbedder::new(model_e.clone(), 1024),
            vectors: VectorIndex::build(model_e.dim(), vecs),
            params: SearchParams::default(),
        }));
        rows.push(
            measure(
                &format!("classifier; tags by {} vote (product)", e.name()),
                &index,
                Some(&model),
                &test,
                product,
            )
            .await?,
        );
        // The neighbour votes the classifier replaced, measured beside it.
        for (mode, voters) in [
            (SearchMode::Semantic, product.voters),
            (SearchMode::Hybrid, product.voters),
            (SearchMode::Semantic, 15),
        ] {
            let opts = ClassifyOptions {
                semantic_mode: mode,
                voters,
                ..vote_only
            };
            let name = format!("{} vote, {mode:?} neighbours, k={voters}", e.name());
            rows.push(measure(&name, &index, None, &test, opts).await?);
        }
    }
    eprintln!("classifier trained in {train_s:.2} s");
    let md = markdown(&spec, &rows, majority_at1, train.len(), test.len(), train_s);
    println!("{md}");
    if let Some(out) = &spec.out {
        write_section(out, &md)?;
        eprintln!("updated {}", out.display());
    }
    Ok(())
}

/// Writes `meta.jsonl` (one line per article: slug, title, category,
/// tags, held out, passages), `passages.f32` and `queries.f32` (the
/// vector of the text `classify` embeds for a draft), little-endian.
fn dump(
    dir: &Path,
    articles: &[Article],
    n_train: usize,
    model: &dyn engine::embed::Embedder,
    cache: &Path,
) -> Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let vecs = vectors(articles, model, cache)?;
    let mut meta = std::io::BufWriter::new(std::fs::File::create(dir.join("meta.jsonl"))?);
    let mut pass = std::io::BufWriter::new(std::fs::File::create(dir.join("passages.f32"))?);
    for (i, (a, (_, _, v))) in articles.iter().zip(&vecs).enumerate() {
        let line = serde_json::json!({
            "slug": a.slug, "title": a.title, "category": a.category,
            "tags": a.tags, "held_out": i >= n_train, "passages": v.len(),
            "body": a.body,
        });
        writeln!(meta, "{line}")?;
        for x in v.iter().flatten() {
            pass.write_all(&x.to_le_bytes())?;
        }
    }
    let texts: Vec<String> = articles
        .iter()
        .map(|a| {
            engine::prompts::draft_query(
                &DraftText {
                    title: a.title.clone(),
                    summary: a.summary.clone(),
                    body: a.body.clone(),
                },
                true,
            )
        })
        .collect();
    let mut q = std::io::BufWriter::new(std::fs::File::create(dir.join("queries.f32"))?);
    for chunk in texts.chunks(32) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        for v in model.embed(&refs)? {
            for x in v {
                q.write_all(&x.to_le_bytes())?;
            }
        }
    }
    eprintln!("dumped {} articles to {}", articles.len(), dir.display());
    Ok(())
}

fn markdown(
    spec: &ClassifySpec,
    rows: &[Row],
    majority: f64,
    train: usize,
    test: usize,
    train_s: f64,
) -> String {
    let mut s = String::new();
    s.push_str("## Record-type prediction (issue 5)\n\n");
    s.push_str(&format!(
        "`{}` — pgdocs: {train} articles published, {test} held out ({:.0} %, by slug hash); each held-out \
         article's title, summary and body go through `engine::prompts::classify_with` (the code behind \
         `POST /v1/prompts/classify`). **Classifier** rows: the category comes from the record-type \
         classifier (`engine::prompts::CategoryModel`, TF-IDF + multinomial logistic regression, \
         trained on the {train} published articles in {train_s:.2} s with the product's settings); \
         the tags from the neighbour vote. **Vote** rows: the draft's nearest published articles \
         (the first 200 words embedded, or lexically the title and most frequent words) vote with \
         weight 1/rank for category and tags. Categories: 9; the tag is the article's chapter (93). \
         Majority-category baseline: {:.3}. Goal: category accuracy@1 ≥ 0.80. ms per draft: \
         the first MiniLM row embeds every draft; the rows after it find the draft's vector in \
         the query-embedding cache.\n\n",
        spec.command,
        spec.holdout * 100.0,
        majority
    ));
    s.push_str(
        "| method | category acc@1 | chapter tag acc@1 | chapter in top 3 tags | ms per draft |\n",
    );
    s.push_str("|---|---:|---:|---:|---:|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.1} |\n",
            r.name, r.category_at1, r.tag_at1, r.tag_in3, r.ms_per_draft
        ));
    }
    s
}

/// Replaces the section between `<!-- bench:classify -->` markers
/// (appended when absent).
fn write_section(path: &Path, md: &str) -> Result<()> {
    const BEGIN: &str = "<!-- bench:classify -->";
    const END: &str = "<!-- /bench:classify -->";
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{BEGIN}\n{md}{END}\n");
    let out = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if e > b => format!(
            "{}{block}{}",
            &text[..b],
            &text[e + END.len()..].trim_start_matches('\n')
        ),
        _ => format!("{}\n{block}", text.trim_end()),
    };
    std::fs::write(path, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_replaced_not_duplicated() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("B.md");
        std::fs::write(&p, "# B\n").unwrap();
        write_section(&p, "one\n").unwrap();
        write_section(&p, "two\n").unwrap();
        let t = std::fs::read_to_string(&p).unwrap();
        assert_eq!(t.matches("<!-- bench:classify -->").count(), 1);
        assert!(t.contains("two") && !t.contains("one"));
    }
}
