//! Embeds the web application into the binary: every file under `web/app/`
//! becomes a static asset (so deploying `kmt` deploys its pages, and adding
//! a page needs no Rust change). Generates `$OUT_DIR/assets.rs`, a sorted
//! table of (name, bytes, content type).

use std::{
    env, fs,
    path::{Path, PathBuf},
};

fn main() {
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
