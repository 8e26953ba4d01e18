//! Hand-written SVG latency plots.
//!
//! One figure, two panels sharing a logarithmic latency axis: on top a
//! histogram (share of requests per log-spaced bin, at least 10 bins per
//! decade and 30 in all), below
//! the cumulative distribution (share of requests completed within a latency),
//! with guide lines at p50, p90 and p99. Each system is one coloured series;
//! the legend repeats its p50/p99 and throughput. No plotting crate: the SVG is
//! plain text, so the file diffs and renders anywhere (browsers, GitHub).

use std::fmt::Write as _;

use crate::stats::Series;

const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
const WIDTH: f64 = 860.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const BINS_PER_DECADE: usize = 10;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A latency label for an axis tick (value in ms).
fn tick_label(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", trim_num(ms / 1000.0))
    } else {
        format!("{} ms", trim_num(ms))
    }
}

fn trim_num(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The CDF (a step function) at `x`.
fn cdf_at(cdf: &[(f64, f64)], x: f64) -> f64 {
    match cdf.partition_point(|&(v, _)| v <= x) {
        0 => 0.0,
        i => cdf[i - 1].1,
    }
}

struct Axis {
    lo: f64,
    hi: f64,
    x0: f64,
    x1: f64,
}

impl Axis {
    fn x(&self, ms: f64) -> f64 {
        let t = (ms.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10());
        self.x0 + t.clamp(0.0, 1.0) * (self.x1 - self.x0)
    }

    /// Powers of ten from the one at or below `lo` up to `hi`.
    fn decades(&self) -> impl Iterator<Item = f64> + '_ {
        let (a, b) = (
            (self.lo.log10() + 1e-9).floor() as i32,
            (self.hi.log10() + 1e-9).floor() as i32,
        );
        (a..=b).map(|e| 10f64.powi(e))
    }
}

fn x_axis(svg: &mut String, ax: &Axis, top: f64, bottom: f64, labels: bool) {
    // Narrow ranges get 2× and 5× labels too, so that there are a few to read.
    let labelled: &[u32] = if ax.hi / ax.lo < 100.0 {
        &[1, 2, 5]
    } else {
        &[1]
    };
    for d in ax.decades() {
        for m in 1..10 {
            let v = d * m as f64;
            if v > ax.hi * 1.0001 {
                break;
            }
            if v < ax.lo * 0.9999 {
                continue;
            }
            let x = ax.x(v);
            let (stroke, width) = if m == 1 { ("#bbb", 1.0) } else { ("#eee", 0.8) };
            let _ = writeln!(
                svg,
                r#"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="{stroke}" stroke-width="{width}"/>"#
            );
            if labels && labelled.contains(&m) {
                let _ = writeln!(
                    svg,
                    r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                    bottom + 16.0,
                    tick_label(v)
                );
            }
        }
    }
}

fn frame(svg: &mut String, ax: &Axis, top: f64, bottom: f64) {
    let _ = writeln!(
        svg,
        r##"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#444"/>"##,
        ax.x0,
        ax.x1 - ax.x0,
        bottom - top
    );
}

/// Renders `series` (one per system) as an SVG document.
pub fn latency_svg(title: &str, series: &[Series]) -> String {
    let legend_h = 20.0 * series.len() as f64;
    let hist_top = 50.0 + legend_h + 10.0;
    let hist_bottom = hist_top + 170.0;
    let cdf_top = hist_bottom + 40.0;
    let cdf_bottom = cdf_top + 250.0;
    let height = cdf_bottom + 60.0;

    let (mut lo, mut hi) = (f64::INFINITY, 0f64);
    for s in series {
        if let (Some(first), Some(last)) = (s.cdf.first(), s.cdf.last()) {
            lo = lo.min(first.0);
            hi = hi.max(last.0);
        }
    }
    if !lo.is_finite() || hi <= 0.0 {
        (lo, hi) = (0.1, 100.0);
    }
    let lo = nice_floor(lo.max(0.001));
    let mut hi = nice_ceiling(hi.max(lo));
    if hi <= lo * 1.0001 {
        hi = nice_ceiling(lo * 10.0);
    }
    let ax = Axis {
        lo,
        hi,
        x0: LEFT,
        x1: WIDTH - RIGHT,
    };

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{:.1}" y="26" font-size="16" font-weight="bold" text-anchor="middle">{}</text>"#,
        WIDTH / 2.0,
        esc(title)
    );
    for (i, s) in series.iter().enumerate() {
        let y = 50.0 + 20.0 * i as f64;
        let c = COLORS[i % COLORS.len()];
        let m = &s.summary;
        let _ = writeln!(
            svg,
            r#"<rect x="{LEFT}" y="{:.1}" width="18" height="4" fill="{c}"/><text x="{:.1}" y="{:.1}">{} — p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, {:.0} req/s, concurrency {}</text>"#,
            y - 4.0,
            LEFT + 26.0,
            y + 1.0,
            esc(&m.system),
            m.p50_ms,
            m.p90_ms,
            m.p99_ms,
            m.qps,
            m.concurrency
        );
    }

    // Histogram panel.
    // At least ~30 bins: narrow ranges get finer than BINS_PER_DECADE.
    let span = ax.hi.log10() - ax.lo.log10();
    let per_decade = (BINS_PER_DECADE as f64).max((30.0 / span).ceil());
    let nbins = (span * per_decade - 1e-6).ceil() as usize;
    let edge = |i: usize| (ax.lo * 10f64.powf(i as f64 / per_decade)).min(ax.hi);
    let shares: Vec<Vec<f64>> = series
        .iter()
        .map(|s| {
            (0..nbins)
                .map(|b| cdf_at(&s.cdf, edge(b + 1)) - cdf_at(&s.cdf, edge(b)))
                .collect()
        })
        .collect();
    let peak = shares
        .iter()
        .flatten()
        .cloned()
        .fold(0.0, f64::max)
        .max(1e-9);
    let ymax = nice_ceiling(peak * 100.0);
    let hy = |share: f64| hist_bottom - (share * 100.0 / ymax) * (hist_bottom - hist_top);
    x_axis(&mut svg, &ax, hist_top, hist_bottom, false);
    for k in 0..=4 {
        let v = ymax * k as f64 / 4.0;
        let y = hy(v / 100.0);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}%</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            trim_num(v)
        );
    }
    for (i, bins) in shares.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let mut d = format!("M{:.1},{:.1}", ax.x(edge(0)), hist_bottom);
        for (b, share) in bins.iter().enumerate() {
            let y = hy(*share);
            let _ = write!(
                d,
                " L{:.1},{y:.1} L{:.1},{y:.1}",
                ax.x(edge(b)),
                ax.x(edge(b + 1))
            );
        }
        let _ = write!(d, " L{:.1},{:.1} Z", ax.x(edge(nbins)), hist_bottom);
        let _ = writeln!(
            svg,
            r#"<path d="{d}" fill="{c}" fill-opacity="0.18" stroke="{c}" stroke-width="1.5"/>"#
        );
    }
    frame(&mut svg, &ax, hist_top, hist_bottom);
    let _ = writeln!(
        svg,
        r#"<text transform="translate(22,{:.1}) rotate(-90)" text-anchor="middle">share of requests per bin</text>"#,
        (hist_top + hist_bottom) / 2.0
    );

    // CDF panel.
    let cy = |f: f64| cdf_bottom - f * (cdf_bottom - cdf_top);
    x_axis(&mut svg, &ax, cdf_top, cdf_bottom, true);
    for (f, label, strong) in [
        (0.0, "0%", false),
        (0.25, "25%", false),
        (0.5, "p50", true),
        (0.75, "75%", false),
        (0.9, "p90", true),
        (0.99, "p99", true),
        (1.0, "", false),
    ] {
        let y = cy(f);
        let (stroke, dash) = if strong {
            ("#999", r#" stroke-dasharray="4 3""#)
        } else {
            ("#eee", "")
        };
        let _ = writeln!(
            svg,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{stroke}"{dash}/><text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
    }
    for (i, s) in series.iter().enumerate() {
        let Some(first) = s.cdf.first() else {
            continue;
        };
        let c = COLORS[i % COLORS.len()];
        let mut d = format!("M{:.1},{:.1}", ax.x(first.0), cy(0.0));
        let mut prev = 0.0;
        for &(v, f) in &s.cdf {
            let x = ax.x(v);
            let _ = write!(d, " L{x:.1},{:.1} L{x:.1},{:.1}", cy(prev), cy(f));
            prev = f;
        }
        let _ = writeln!(
            svg,
            r#"<path d="{d}" fill="none" stroke="{c}" stroke-width="2"/>"#
        );
    }
    frame(&mut svg, &ax, cdf_top, cdf_bottom);
    let _ = writeln!(
        svg,
        r#"<text transform="translate(22,{:.1}) rotate(-90)" text-anchor="middle">requests completed within latency</text>"#,
        (cdf_top + cdf_bottom) / 2.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">latency per request (log scale)</text>"#,
        (LEFT + WIDTH - RIGHT) / 2.0,
        cdf_bottom + 40.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// The largest of 1, 2, 5 × 10^k that is at most `v`.
fn nice_floor(v: f64) -> f64 {
    let base = 10f64.powf(v.log10().floor());
    [5.0, 2.0, 1.0]
        .iter()
        .map(|m| m * base)
        .find(|&c| c <= v * 1.0001)
        .unwrap_or(base)
}

/// The smallest of 1, 2, 2.5, 5 × 10^k that is at least `v`.
fn nice_ceiling(v: f64) -> f64 {
    let base = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * base)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Outcome, Recorder};
    use std::time::Duration;

    #[test]
    fn renders_two_series() {
        let mut series = Vec::new();
        for (name, base) in [("kmt", 2u64), ("pg <fts>", 20)] {
            let mut r = Recorder::new();
            for i in 0..1000u64 {
                r.record(Outcome {
                    elapsed: Duration::from_micros(base * 1000 + i * base),
                    ok: true,
                    total: None,
                    error: None,
                });
            }
            series.push(Series::new(name, 4, &r, Duration::from_secs(1)));
        }
        let svg = latency_svg("t & t", &series);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("pg &lt;fts&gt;") && svg.contains("t &amp; t"));
        assert!(svg.contains(">10 ms<") && svg.contains(">5 ms<"), "{svg}");
        assert!(!svg.contains(">1 ms<"));
        assert_eq!(svg.matches("<path").count(), 4);
    }

    #[test]
    fn nice_numbers() {
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(12.0), 20.0);
        assert_eq!(nice_ceiling(0.21), 0.25);
        assert_eq!(nice_floor(0.021), 0.02);
        assert_eq!(nice_floor(7.0), 5.0);
    }
}
