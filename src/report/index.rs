//! `reports/index.html`: every run under a reports directory with its key figures, and
//! trend charts across runs of the same command (the nightly history).

use super::charts::{lines, Series};
use crate::results::{write_atomic, RunResults};
use anyhow::Result;
use minijinja::context;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The headline figures of one run, as listed in the index.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub dir: String,
    pub command: String,
    pub status: String,
    pub started_at: String,
    pub dataset: Option<String>,
    pub variant: Option<String>,
    pub seed_seconds: Option<f64>,
    /// Best geometric-mean speed-up of an index strategy over the baseline, with its name.
    pub best_strategy: Option<(String, f64)>,
    pub rls_leaks: Option<u64>,
    pub load_tps: Option<f64>,
    pub load_p95_ms: Option<f64>,
    pub capacity_rate: Option<f64>,
}

impl RunSummary {
    pub fn of(r: &RunResults, dir: &str) -> Self {
        Self {
            run_id: r.run_id.clone(),
            dir: dir.to_string(),
            command: r.command.clone(),
            status: if r.partial && r.status == "ok" {
                "partial".into()
            } else {
                r.status.clone()
            },
            started_at: r.started_at.format("%Y-%m-%d %H:%M").to_string(),
            dataset: r
                .dataset
                .as_ref()
                .map(|d| format!("{} × {} (seed {})", d.profile, d.scale, d.seed)),
            variant: r
                .variant
                .as_ref()
                .map(|v| format!("{} / {} / {}", v.indexes, v.policies, v.api_usage)),
            seed_seconds: r.seed.as_ref().map(|s| s.seconds),
            best_strategy: r.explain.as_ref().and_then(|e| {
                e.overall
                    .iter()
                    .max_by(|a, b| a.geomean_speedup.total_cmp(&b.geomean_speedup))
                    .map(|o| (o.strategy.clone(), o.geomean_speedup))
            }),
            rls_leaks: r
                .rls
                .as_ref()
                .and_then(|s| s.audit.as_ref())
                .map(|a| a.leaks),
            load_tps: r.load.as_ref().map(|l| l.figures.tps),
            load_p95_ms: r
                .load
                .as_ref()
                .map(|l| l.figures.transaction_latency.p95_ms),
            capacity_rate: r.capacity.as_ref().and_then(|c| c.sustainable_rate),
        }
    }
}

const TEMPLATE: &str = include_str!("index.html.j2");

/// Rewrites `<reports>/index.html` from every `*/results.json` below it (unreadable or
/// foreign files are skipped, not fatal).
pub fn write_index(reports: &Path) -> Result<PathBuf> {
    let mut runs: Vec<RunSummary> = std::fs::read_dir(reports)?
        .flatten()
        .filter(|e| e.path().join(crate::results::RESULTS_FILE).is_file())
        .filter_map(|e| {
            let r = RunResults::read(&e.path().join(crate::results::RESULTS_FILE)).ok()?;
            Some(RunSummary::of(&r, &e.file_name().to_string_lossy()))
        })
        .collect();
    runs.sort_by(|a, b| {
        a.started_at
            .cmp(&b.started_at)
            .then(a.run_id.cmp(&b.run_id))
    });
    let mut trends = Vec::new();
    let mut commands: Vec<String> = runs.iter().map(|r| r.command.clone()).collect();
    commands.sort();
    commands.dedup();
    for command in &commands {
        let of: Vec<&RunSummary> = runs
            .iter()
            .filter(|r| &r.command == command && r.status == "ok")
            .collect();
        let xs: Vec<f64> = (1..=of.len()).map(|i| i as f64).collect();
        let figure = |name: &str, f: &dyn Fn(&RunSummary) -> Option<f64>| Series {
            name: name.into(),
            values: of.iter().map(|r| f(r).unwrap_or(f64::NAN)).collect(),
        };
        let charts = [
            (
                "throughput (tx/s)",
                vec![
                    figure("load tps", &|r| r.load_tps),
                    figure("sustainable rate /s", &|r| r.capacity_rate),
                ],
            ),
            (
                "latency (ms)",
                vec![figure("load p95 ms", &|r| r.load_p95_ms)],
            ),
            ("seconds", vec![figure("seed s", &|r| r.seed_seconds)]),
            (
                "speed-up (×)",
                vec![figure("best index strategy geomean", &|r| {
                    r.best_strategy.as_ref().map(|b| b.1)
                })],
            ),
        ];
        for (unit, series) in charts {
            let series: Vec<Series> = series
                .into_iter()
                .filter(|s| s.values.iter().filter(|v| v.is_finite()).count() >= 2)
                .collect();
            if series.is_empty() {
                continue;
            }
            if let Some(svg) = lines(
                &format!("`{command}` runs: {unit}"),
                "run (oldest → newest)",
                unit,
                &xs,
                &series,
                false,
            ) {
                trends.push(svg);
            }
        }
    }
    let mut env = minijinja::Environment::new();
    env.add_template("index.html", TEMPLATE)?;
    env.add_filter("num", |v: f64, digits: Option<usize>| {
        format!("{:.*}", digits.unwrap_or(2), v)
    });
    let html = env.get_template("index.html")?.render(context! { runs => runs.iter().rev().collect::<Vec<_>>(), trends => trends, style => super::STYLE })?;
    let path = reports.join("index.html");
    write_atomic(&path, html.as_bytes())?;
    Ok(path)
}
