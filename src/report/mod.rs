//! `report.html`: one self-contained page per run (inline CSS and SVG, nothing from the
//! network), rendered from the run's [`RunResults`] only, so the HTML never shows a
//! figure that `results.json` does not hold.

pub(crate) mod charts;
mod collapse;
pub mod index;
pub(crate) mod plan_tree;
pub(crate) mod trend;

use crate::compare::Comparison;
use crate::format::{human_bytes, thousands};
use crate::paths::write_atomic;
use crate::plan::PlanSummary;
use crate::results::{RunResults, REPORT_FILE};
use anyhow::{Context, Result};
use minijinja::{context, Environment, Error, ErrorKind, Value};
use serde::Deserialize;
use std::path::{Path, PathBuf};

const TEMPLATE: &str = include_str!("report.html.j2");
pub(crate) const STYLE: &str = include_str!("report.css");

fn environment() -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE)?;
    // One partial per report section, each owned by its stage.
    env.add_template("sections/seed.html", include_str!("sections/seed.html.j2"))?;
    env.add_template(
        "sections/explain.html",
        include_str!("sections/explain.html.j2"),
    )?;
    env.add_template("sections/load.html", include_str!("sections/load.html.j2"))?;
    env.add_template(
        "sections/capacity.html",
        include_str!("sections/capacity.html.j2"),
    )?;
    env.add_template(
        "sections/capacity_scales.html",
        include_str!("sections/capacity_scales.html.j2"),
    )?;
    env.add_template(
        "sections/partitions.html",
        include_str!("sections/partitions.html.j2"),
    )?;
    env.add_template("sections/rls.html", include_str!("sections/rls.html.j2"))?;
    env.add_template("sections/ops.html", include_str!("sections/ops.html.j2"))?;
    env.add_template(
        "sections/ops_engine.html",
        include_str!("sections/ops_engine.html.j2"),
    )?;
    env.add_template(
        "sections/settings.html",
        include_str!("sections/settings.html.j2"),
    )?;
    env.add_template(
        "sections/monitoring.html",
        include_str!("sections/monitoring.html.j2"),
    )?;
    env.add_template(
        "sections/wal_archive.html",
        include_str!("sections/wal_archive.html.j2"),
    )?;
    env.add_template(
        "sections/citus.html",
        include_str!("sections/citus.html.j2"),
    )?;
    env.add_template(
        "sections/advice.html",
        include_str!("sections/advice.html.j2"),
    )?;
    env.add_filter("bytes", human_bytes);
    env.add_filter("num", |v: f64, digits: Option<usize>| {
        format!("{:.*}", digits.unwrap_or(2), v)
    });
    env.add_filter("thousands", |v: f64| thousands(v.round() as i64));
    env.add_function("plan_tree", |plan: Value| {
        Ok(plan_tree::tree(&plan_of(plan)?))
    });
    env.add_function(
        "plan_diff",
        |before: Value, after: Value, from: String, to: String| {
            Ok(plan_tree::diff(
                &plan_of(before)?,
                &plan_of(after)?,
                &from,
                &to,
            ))
        },
    );
    Ok(env)
}

fn plan_of(v: Value) -> Result<PlanSummary, Error> {
    PlanSummary::deserialize(v).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

/// Renders the report HTML of a run.
pub fn render(results: &RunResults) -> Result<String> {
    render_with(results, None)
}

/// Renders the report HTML of a run, with its comparison to a baseline when there is one.
fn render_with(results: &RunResults, baseline: Option<&Comparison>) -> Result<String> {
    let env = environment()?;
    let tmpl = env.get_template("report.html")?;
    let charts = charts::for_results(results);
    let html = tmpl
        .render(context! {
            r => results,
            findings => crate::findings::of(results, baseline),
            baseline => baseline,
            style => STYLE,
            charts => charts,
            generated_at => chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        })
        .context("rendering report.html")?;
    Ok(collapse::long_tables(&html))
}

/// Writes `report.html` beside `results.json` in `dir`.
pub fn write(results: &RunResults, dir: &Path) -> Result<PathBuf> {
    write_with(results, None, dir)
}

/// Writes `report.html` with the baseline comparison (`run --baseline`).
pub fn write_with(
    results: &RunResults,
    baseline: Option<&Comparison>,
    dir: &Path,
) -> Result<PathBuf> {
    let html = render_with(results, baseline)?;
    let path = dir.join(REPORT_FILE);
    write_atomic(&path, html.as_bytes())?;
    Ok(path)
}
