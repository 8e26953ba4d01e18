//! The `ann` benchmark's report: goal and crossover sentences, and the
//! BENCHMARKS.md section writer.

use std::path::Path;

use anyhow::{Context, Result};
use engine::vector::SearchParams;

use super::{FilterRow, Row, GOAL_RECALL, GOAL_SPEEDUP, K};

/// Whether graph rows meet the goal against the exact scan's `exact_mean`.
pub(super) fn goal_text<'a>(
    who: &str,
    rows: impl Iterator<Item = &'a Row>,
    exact_mean: f64,
) -> String {
    let rows: Vec<(usize, f64, f64)> = rows
        .map(|r| {
            (
                r.ef.unwrap_or(0),
                r.recall,
                exact_mean / r.lat.mean_ms().max(1e-9),
            )
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let goal = format!("recall@{K} ≥ {GOAL_RECALL} at ≥ {GOAL_SPEEDUP:.0}× the exact scan");
    if let Some((ef, rec, sp)) = rows
        .iter()
        .find(|r| r.1 >= GOAL_RECALL && r.2 >= GOAL_SPEEDUP)
    {
        return format!("{who} meets the goal ({goal}) from ef {ef} (recall {rec:.3}, {sp:.1}×).");
    }
    match rows
        .iter()
        .filter(|r| r.1 >= GOAL_RECALL)
        .max_by(|a, b| a.2.total_cmp(&b.2))
    {
        Some((ef, rec, sp)) => format!(
            "{who} does **not** meet the goal ({goal}): its fastest setting with recall ≥ \
             {GOAL_RECALL} is ef {ef} (recall {rec:.3}, {sp:.1}×)."
        ),
        None => format!("{who} reaches recall@{K} ≥ {GOAL_RECALL} at no measured ef."),
    }
}

/// Where the exact scan of the allowed vectors stops being faster than the
/// filtered walk, interpolated between the measured allow-lists.
pub(super) fn crossover_text(frows: &[FilterRow]) -> String {
    // Rows that really ran on the graph, largest allow-list first.
    let pts: Vec<(usize, f64, f64)> = frows
        .iter()
        .filter(|f| f.graph_plans * 2 > f.graph.0.len())
        .map(|f| (f.vectors, f.exact.mean_ms(), f.graph.mean_ms()))
        .collect();
    let forced: Vec<String> = frows
        .iter()
        .filter(|f| f.graph_plans * 2 <= f.graph.0.len())
        .map(|f| format!("{}%", f.share * 100.0))
        .collect();
    let mut out = String::new();
    if !forced.is_empty() {
        out.push_str(&format!(
            "At {} the graph walk could not be forced: `search` scans exactly whenever the \
             allowed vectors are under 5% of the index, whatever `exact_below` says. ",
            forced.join(", ")
        ));
    }
    let mut cross = None;
    for w in pts.windows(2) {
        let (big, small) = (w[0], w[1]);
        // exact - graph changes sign between the two sizes.
        let (db, ds) = (big.1 - big.2, small.1 - small.2);
        if db > 0.0 && ds <= 0.0 {
            // Linear in the number of vectors.
            let f = db / (db - ds);
            cross = Some(big.0 as f64 - f * (big.0 as f64 - small.0 as f64));
        }
    }
    match (cross, pts.first(), pts.last()) {
        (Some(c), _, _) => out.push_str(&format!(
            "The exact scan of the allowed vectors is faster than the filtered walk below about \
             {:.0} allowed vectors (linear interpolation between the measured lists): the \
             measured crossover, to compare with `SearchParams::default().exact_below` = {}.",
            c,
            SearchParams::default().exact_below
        )),
        (None, Some(first), Some(last)) if first.1 <= first.2 => out.push_str(&format!(
            "The exact scan was faster than the filtered walk at every measured size up to {} \
             allowed vectors: the crossover lies above that.",
            first.0.max(last.0)
        )),
        (None, Some(_), Some(last)) => out.push_str(&format!(
            "The filtered walk was faster at every measured size down to {} allowed vectors.",
            last.0
        )),
        _ => {}
    }
    out
}

/// Replaces the `## Vector index (ANN)` section of `file` with `section`
/// (between `<!-- bench:ann -->` markers; appended when absent).
pub fn write_section(file: &Path, section: &str) -> Result<()> {
    const BEGIN: &str = "<!-- bench:ann -->";
    const END: &str = "<!-- /bench:ann -->";
    const HEADING: &str = "## Vector index (ANN)";
    let block = format!("{BEGIN}\n{}\n{END}", section.trim_end());
    let existing = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# KMT benchmarks\n".into(),
        Err(e) => return Err(e).with_context(|| format!("read {}", file.display())),
    };
    let updated = if let (Some(b), Some(e)) = (existing.find(BEGIN), existing.find(END)) {
        format!("{}{block}{}", &existing[..b], &existing[e + END.len()..])
    } else if let Some(b) = existing
        .match_indices(HEADING)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || existing.as_bytes()[i - 1] == b'\n')
    {
        // A hand-written section without markers: up to the next level-2
        // heading or another tool's marker.
        let rest = &existing[b + HEADING.len()..];
        let end = rest
            .match_indices('\n')
            .map(|(i, _)| i + 1)
            .find(|&i| rest[i..].starts_with("## ") || rest[i..].starts_with("<!-- bench:"))
            .map_or(existing.len(), |i| b + HEADING.len() + i);
        format!(
            "{}{block}\n\n{}",
            &existing[..b],
            existing[end..].trim_start()
        )
    } else {
        format!("{}\n\n{block}\n", existing.trim_end())
    };
    std::fs::write(file, updated).with_context(|| format!("write {}", file.display()))
}
