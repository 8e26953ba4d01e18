//! The Python library Surprise as a child process
//! (`benches/surprise_reference.py`): kmt-bench asks it for one model on
//! one split at a time, so Surprise's runs and ours alternate within the
//! same program run and machine noise falls on both.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Surprise's models measured, with their default settings.
pub const MODELS: [&str; 3] = ["BaselineOnly", "KNNBaseline", "SVD"];

/// One answer of the reference script.
#[derive(Debug, Clone, Deserialize)]
pub struct Measured {
    /// RMSE on the split's test ratings.
    pub rmse: f64,
    /// MAE on the split's test ratings.
    pub mae: f64,
    /// Seconds in `fit` alone.
    pub fit_s: f64,
}

/// The running reference process.
pub struct Surprise {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Version reported by the library.
    pub version: String,
}

impl Surprise {
    /// Starts `python benches/surprise_reference.py <data>` and waits until
    /// the library is imported.
    pub fn start(python: &Path, data: &Path) -> Result<Surprise> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("surprise_reference.py");
        let mut child = Command::new(python)
            .arg(&script)
            .arg(data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {} {}", python.display(), script.display()))?;
        let stdin = child.stdin.take().context("child stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("child stdout")?);
        let mut me = Surprise {
            child,
            stdin,
            stdout,
            version: String::new(),
        };
        let ready: serde_json::Value = serde_json::from_str(&me.line()?)?;
        me.version = ready["surprise"].as_str().unwrap_or("?").to_string();
        Ok(me)
    }

    fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("the Surprise reference process ended (see its error output above)");
        }
        Ok(line)
    }

    /// Fits and tests `model` on split `u<split>`.
    pub fn run(&mut self, split: usize, model: &str) -> Result<Measured> {
        writeln!(self.stdin, "u{split} {model}")?;
        self.stdin.flush()?;
        let line = self.line()?;
        serde_json::from_str(&line).with_context(|| format!("reference answer {line:?}"))
    }
}

impl Drop for Surprise {
    fn drop(&mut self) {
        // Closing stdin ends the script's loop.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
