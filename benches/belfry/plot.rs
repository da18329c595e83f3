//! Draws the report's plots as plain SVG from the JSON results: append throughput against
//! concurrency (with the raw limits as flat lines) and the end-to-end latency distribution.
//! Every `append-*.json` and `live-*.json` in the input folder becomes a series named after
//! its file, so a saved earlier run (e.g. `append-postgres-before.json`) shows beside a new one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder with the JSON results.
    #[arg(long, default_value = "target/bench")]
    input: PathBuf,
    /// Folder the SVG files go to.
    #[arg(long, default_value = "docs/bench")]
    out: PathBuf,
}

struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    /// Index into [`COLORS`]: the series of one results file share a colour.
    color: usize,
    /// `None`: solid with dots; otherwise an SVG dash pattern.
    dash: Option<&'static str>,
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

fn results(dir: &Path, prefix: &str) -> anyhow::Result<Vec<(String, Value)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            continue;
        };
        if stem.starts_with(prefix) && path.extension().is_some_and(|e| e == "json") {
            let value: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
            found.push((stem[prefix.len()..].to_owned(), value));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)?;

    let mut series = Vec::new();
    let mut max_x: f64 = 1.0;
    for (color, (name, v)) in results(&args.input, "append-")?.into_iter().enumerate() {
        let points: Vec<(f64, f64)> = v["engine"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| Some((r["concurrency"].as_f64()?.log2(), r["per_second"].as_f64()?)))
            .collect();
        max_x = points.iter().map(|p| p.0).fold(max_x, f64::max);
        series.push(Series {
            name: format!("{name}: engine"),
            points,
            color,
            dash: None,
        });
        for (key, label, dash) in [
            ("raw_a_best_per_second", "raw (a)", "8 4"),
            ("raw_b_best_per_second", "raw (b)", "2 3"),
        ] {
            if let Some(y) = v["ratios"][key].as_f64() {
                series.push(Series {
                    name: format!("{name}: {label}"),
                    points: vec![(0.0, y), (f64::NAN, y)],
                    color,
                    dash: Some(dash),
                });
            }
        }
    }
    for s in &mut series {
        if let Some(p) = s.points.get_mut(1).filter(|p| p.0.is_nan()) {
            p.0 = max_x;
        }
    }
    if !series.is_empty() {
        let ticks = (0..=max_x as u32)
            .step_by(1)
            .map(|k| (f64::from(k), format!("{}", 1_u64 << k)))
            .collect();
        let path = args.out.join("append-throughput.svg");
        std::fs::write(
            &path,
            chart(
                "Append throughput: one-recipient sends per second",
                "concurrent senders",
                "sends/s",
                &series,
                ticks,
            ),
        )?;
        println!("wrote {}", path.display());
    }

    // Latency distribution: x is the percentile on a "nines" scale (0, 90, 99, 99.9, 99.99).
    let nines = |p: f64| -(1.0 - p).max(1e-4).log10();
    let mut series = Vec::new();
    for (color, (name, v)) in results(&args.input, "live-")?.into_iter().enumerate() {
        for step in v["steps"].as_array().into_iter().flatten() {
            let points: Vec<(f64, f64)> = step["delivery"]["curve"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| Some((nines(c[0].as_f64()?), c[1].as_f64()?)))
                .filter(|p| p.1.is_finite())
                .collect();
            let rate = step["rate"].as_str().unwrap_or("");
            series.push(Series {
                name: format!("{name}, {rate}/s"),
                points,
                color,
                dash: (rate == "max").then_some("8 4"),
            });
        }
    }
    if !series.is_empty() {
        let ticks = vec![
            (0.0, "0".to_owned()),
            (nines(0.5), "50".to_owned()),
            (1.0, "90".to_owned()),
            (2.0, "99".to_owned()),
            (3.0, "99.9".to_owned()),
            (4.0, "max".to_owned()),
        ];
        let path = args.out.join("live-latency.svg");
        std::fs::write(
            &path,
            chart(
                "End-to-end latency, send start to receipt on the socket",
                "percentile",
                "ms",
                &series,
                ticks,
            ),
        )?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// A line chart: series of (x, y) points, x ticks as given, y from 0 with rounded ticks.
fn chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    x_ticks: Vec<(f64, String)>,
) -> String {
    let (w, h) = (860.0, 420.0);
    let (left, right, top, bottom) = (70.0, 300.0, 40.0, 50.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let x_min = x_ticks.first().map_or(0.0, |t| t.0);
    let x_max = x_ticks.last().map_or(1.0, |t| t.0).max(x_min + 1e-9);
    let y_top = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite())
        .fold(0.0, f64::max)
        * 1.08;
    let step = nice_step(y_top / 5.0);
    let y_max = (y_top / step).ceil() * step;
    let sx = |x: f64| left + (x - x_min) / (x_max - x_min) * pw;
    let sy = |y: f64| top + ph - y / y_max.max(1e-9) * ph;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>
"#,
        left + pw / 2.0,
        escape(title)
    );
    let mut y = 0.0;
    while y <= y_max + step / 2.0 {
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + pw,
            left - 6.0,
            sy(y) + 4.0,
            fmt_tick(y),
            py = sy(y)
        );
        y += step;
    }
    for (x, label) in &x_ticks {
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" x2="{px:.1}" y1="{top}" y2="{}" stroke="#eee"/><text x="{px:.1}" y="{}" text-anchor="middle">{}</text>"##,
            top + ph,
            top + ph + 16.0,
            escape(label),
            px = sx(*x)
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"##,
        left + pw / 2.0,
        h - 10.0,
        escape(x_label),
        top + ph / 2.0,
        top + ph / 2.0,
        escape(y_label)
    );
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[s.color % COLORS.len()];
        let points: Vec<String> = s
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|p| format!("{:.1},{:.1}", sx(p.0), sy(p.1)))
            .collect();
        let dash = s
            .dash
            .map(|d| format!(r#" stroke-dasharray="{d}""#))
            .unwrap_or_default();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"#,
            points.join(" ")
        );
        if s.dash.is_none() {
            for p in &points {
                let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(svg, r#"<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>"#);
            }
        }
        let ly = top + 10.0 + i as f64 * 18.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            left + pw + 12.0,
            left + pw + 36.0,
            left + pw + 42.0,
            ly + 4.0,
            escape(&s.name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let f = raw / magnitude;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

fn fmt_tick(v: f64) -> String {
    if v >= 1000.0 {
        format!("{}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
