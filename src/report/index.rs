//! `reports/index.html`: every run under a reports directory with its headline figures
//! (capacity, best index strategy, RLS overhead, regressions vs the run before), and one
//! trend chart per figure across runs of the same command with its change points marked.

use super::charts::trend;
use super::trend::change_points;
use crate::paths::write_atomic;
use crate::results::{RunResults, RunStatus};
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
    pub capacity_users: Option<f64>,
    /// The cheapest policy set and its read overhead over bypass (×).
    pub rls_overhead: Option<(String, f64)>,
    /// Regressions vs the previous successful run of the same command (`compare`, 10 %).
    pub regressions: Option<usize>,
    pub previous_run: Option<String>,
}

/// A figure's trend across runs and the runs where its level changed.
#[derive(Debug, Clone, Serialize)]
struct Trend {
    pub command: String,
    pub figure: String,
    pub svg: String,
    /// "run 20261126-070053-run: 80.0 → 40.0 tx/s (median before → after)".
    pub changes: Vec<String>,
}

impl RunSummary {
    pub fn of(r: &RunResults, dir: &str) -> Self {
        Self {
            run_id: r.run_id.clone(),
            dir: dir.to_string(),
            command: r.command.clone(),
            status: if r.partial && r.status == RunStatus::Ok {
                "partial".into()
            } else {
                r.status.to_string()
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
            capacity_users: r.capacity.as_ref().and_then(|c| c.equivalent_users),
            rls_overhead: r.rls.as_ref().and_then(crate::findings::best_policy_set),
            regressions: None,
            previous_run: None,
        }
    }
}

const TEMPLATE: &str = include_str!("index.html.j2");

/// The threshold regressions vs the previous run are counted at (compare's default).
const MAX_REGRESSION: f64 = 0.10;

/// Median of the finite values (none → NaN).
fn median(v: &[f64]) -> f64 {
    let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    crate::stats::median(&finite)
}

/// The trend charts of one command's successful runs (oldest first).
fn trends(command: &str, of: &[&RunSummary]) -> Vec<Trend> {
    type Get = fn(&RunSummary) -> Option<f64>;
    let figures: [(&str, &str, Get); 7] = [
        ("capacity: sustainable rate", "tx/s", |r| r.capacity_rate),
        (
            "best index strategy: read speed-up",
            "× vs baseline",
            |r| r.best_strategy.as_ref().map(|b| b.1),
        ),
        ("RLS overhead (cheapest policy set)", "× vs bypass", |r| {
            r.rls_overhead.as_ref().map(|b| b.1)
        }),
        ("regressions vs the previous run", "count", |r| {
            r.regressions.map(|n| n as f64)
        }),
        ("load throughput", "tx/s", |r| r.load_tps),
        ("load p95 latency", "ms", |r| r.load_p95_ms),
        ("seed time", "s", |r| r.seed_seconds),
    ];
    let mut out = Vec::new();
    for (figure, unit, get) in figures {
        let values: Vec<f64> = of.iter().map(|r| get(r).unwrap_or(f64::NAN)).collect();
        let cps = change_points(&values);
        let title = format!("`{command}` runs: {figure} ({unit})");
        let Some(svg) = trend(&title, figure, unit, &values, &cps) else {
            continue;
        };
        let mut changes = Vec::new();
        let mut from = 0;
        for (i, cp) in cps.iter().enumerate() {
            let to = cps.get(i + 1).copied().unwrap_or(values.len());
            changes.push(format!(
                "from run {}: {:.2} → {:.2} {unit} (median of the runs before → after)",
                of[*cp].run_id,
                median(&values[from..*cp]),
                median(&values[*cp..to])
            ));
            from = *cp;
        }
        out.push(Trend {
            command: command.to_string(),
            figure: figure.to_string(),
            svg,
            changes,
        });
    }
    out
}

/// Rewrites `<reports>/index.html` from every `*/results.json` below it (unreadable or
/// foreign files are skipped, not fatal).
pub fn write_index(reports: &Path) -> Result<PathBuf> {
    let mut loaded: Vec<(RunSummary, RunResults)> = std::fs::read_dir(reports)?
        .flatten()
        .filter(|e| e.path().join(crate::results::RESULTS_FILE).is_file())
        .filter_map(|e| {
            let r = RunResults::read(&e.path().join(crate::results::RESULTS_FILE)).ok()?;
            Some((RunSummary::of(&r, &e.file_name().to_string_lossy()), r))
        })
        .collect();
    loaded.sort_by(|a, b| {
        a.0.started_at
            .cmp(&b.0.started_at)
            .then(a.0.run_id.cmp(&b.0.run_id))
    });
    // Regressions of each successful run vs the previous successful run of its command.
    for i in 0..loaded.len() {
        if loaded[i].0.status != "ok" {
            continue;
        }
        let prev = (0..i)
            .rev()
            .find(|j| loaded[*j].0.status == "ok" && loaded[*j].0.command == loaded[i].0.command);
        if let Some(j) = prev {
            let c = crate::compare::compare(&loaded[j].1, &loaded[i].1, MAX_REGRESSION);
            loaded[i].0.regressions = Some(c.regressions());
            loaded[i].0.previous_run = Some(loaded[j].0.run_id.clone());
        }
    }
    let runs: Vec<RunSummary> = loaded.into_iter().map(|x| x.0).collect();
    let mut commands: Vec<String> = runs.iter().map(|r| r.command.clone()).collect();
    commands.sort();
    commands.dedup();
    let mut trends_all = Vec::new();
    for command in &commands {
        let of: Vec<&RunSummary> = runs
            .iter()
            .filter(|r| &r.command == command && r.status == "ok")
            .collect();
        trends_all.extend(trends(command, &of));
    }
    let mut env = minijinja::Environment::new();
    env.add_template("index.html", TEMPLATE)?;
    env.add_filter("num", |v: f64, digits: Option<usize>| {
        format!("{:.*}", digits.unwrap_or(2), v)
    });
    let html = env.get_template("index.html")?.render(context! { runs => runs.iter().rev().collect::<Vec<_>>(), trends => trends_all, style => super::STYLE })?;
    let path = reports.join("index.html");
    write_atomic(&path, html.as_bytes())?;
    Ok(path)
}
