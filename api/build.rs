//! Embeds into the binary, so that `kmt` (and `kmt demo`) works from the
//! binary alone:
//! - the web application: every file under `web/app/` becomes a static asset
//!   (deploying `kmt` deploys its pages; adding a page needs no Rust change),
//!   in `$OUT_DIR/assets.rs`, a sorted table of (name, bytes, content type);
//! - the sample corpus (`corpus/articles/*.md`) in `$OUT_DIR/corpus.rs`.

use std::{
    env, fs,
    path::{Path, PathBuf},
};

fn main() {
    web_assets();
    sample_corpus();
}

fn web_assets() {
    let app = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("../web/app");
    // A directory here makes cargo rescan every file below it.
    println!("cargo:rerun-if-changed={}", app.display());
    let mut files = Vec::new();
    collect(&app, &app, &mut files);
    files.sort();
    let mut out =
        String::from("/// Embedded web assets: (name, bytes, content type), sorted by name.\n");
    out.push_str("pub static ASSETS: &[(&str, &[u8], &str)] = &[\n");
    for (name, path) in &files {
        let kind = match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
            "js" | "mjs" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "html" => "text/html; charset=utf-8",
            "svg" => "image/svg+xml",
            "json" => "application/json",
            "png" => "image/png",
            "ico" => "image/x-icon",
            other => panic!("web/app/{name}: no content type for .{other} files"),
        };
        out.push_str(&format!(
            "    ({name:?}, include_bytes!({:?}), {kind:?}),\n",
            path.canonicalize().unwrap()
        ));
    }
    out.push_str("];\n");
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("assets.rs"),
        out,
    )
    .unwrap();
}

/// Files below `dir`, named by their path relative to `root` with `/`.
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if !name.starts_with('.') {
                files.push((name, path));
            }
        }
    }
}

fn sample_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/articles");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "md"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = String::from("/// The sample corpus: (file name, content).\n");
    out.push_str("pub static SAMPLE_CORPUS: &[(&str, &str)] = &[\n");
    for p in files {
        println!("cargo:rerun-if-changed={}", p.display());
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let abs = p.canonicalize().expect("corpus file path");
        out.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            abs.display().to_string()
        ));
    }
    out.push_str("];\n");
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("corpus.rs"),
        out,
    )
    .unwrap();
}
