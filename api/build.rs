//! Embeds the sample corpus (`../corpus/articles/*.md`) into the binary so
//! that `kmt demo` works from the binary alone.

use std::io::Write;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/articles");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "md"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("corpus.rs");
    let mut f = std::fs::File::create(out).expect("writing corpus.rs");
    writeln!(f, "/// The sample corpus: (file name, content).").unwrap();
    writeln!(f, "pub static SAMPLE_CORPUS: &[(&str, &str)] = &[").unwrap();
    for p in files {
        println!("cargo:rerun-if-changed={}", p.display());
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let abs = p.canonicalize().expect("corpus file path");
        writeln!(
            f,
            "    ({name:?}, include_str!({:?})),",
            abs.display().to_string()
        )
        .unwrap();
    }
    writeln!(f, "];").unwrap();
}
