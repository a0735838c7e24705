//! `storybench compare BASE NEW`: the regression gate for nightly CI. Per metric, the delta
//! and whether it is beyond both the threshold and the runs' own noise; plan-shape
//! regressions flagged even when times are within the threshold.

mod export;
mod metrics;
mod render;

pub use export::{bencher_bmf, github_benchmark};
pub use metrics::{metrics, Metric, PlanAt};
pub use render::{render, Format};

use crate::plan::{self, ChangeKind};
use crate::results::RunResults;
use serde::Serialize;
use std::collections::BTreeMap;

/// Rows (actual + removed by filter) above which a new Seq Scan is a regression.
const LARGE_TABLE_ROWS: f64 = 1000.0;
/// A worst misestimate that grew this many times is a regression.
const MISESTIMATE_GROWTH: f64 = 10.0;

#[derive(Clone, Debug, Serialize)]
pub struct MetricDelta {
    pub key: String,
    pub unit: &'static str,
    pub base: f64,
    pub new: f64,
    /// Relative change in the "worse" direction (+0.30 = 30 % worse).
    pub worse_by: f64,
    /// Combined noise of both runs (relative).
    pub noise: f64,
    pub regression: bool,
    pub improvement: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlanRegression {
    pub key: String,
    pub kind: String,
    pub text: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub base_run: String,
    pub new_run: String,
    pub max_regression: f64,
    pub deltas: Vec<MetricDelta>,
    pub plan_regressions: Vec<PlanRegression>,
    /// Metrics present in only one of the runs.
    pub only_in_base: Vec<String>,
    pub only_in_new: Vec<String>,
}

impl Comparison {
    pub fn regressions(&self) -> usize {
        self.deltas.iter().filter(|d| d.regression).count() + self.plan_regressions.len()
    }
}

pub fn compare(base: &RunResults, new: &RunResults, max_regression: f64) -> Comparison {
    let (bm, bp) = metrics(base);
    let (nm, np) = metrics(new);
    let base_map: BTreeMap<&str, &Metric> = bm.iter().map(|m| (m.key.as_str(), m)).collect();
    let new_map: BTreeMap<&str, &Metric> = nm.iter().map(|m| (m.key.as_str(), m)).collect();
    let mut deltas = Vec::new();
    for (key, b) in &base_map {
        let Some(n) = new_map.get(key) else { continue };
        let change = if b.value.abs() < 1e-12 {
            0.0
        } else {
            (n.value - b.value) / b.value
        };
        let worse_by = if b.lower_is_better { change } else { -change };
        let noise = (b.noise.powi(2) + n.noise.powi(2)).sqrt();
        deltas.push(MetricDelta {
            key: key.to_string(),
            unit: b.unit,
            base: b.value,
            new: n.value,
            worse_by,
            noise,
            regression: worse_by > max_regression && worse_by > noise,
            improvement: -worse_by > max_regression && -worse_by > noise,
        });
    }
    Comparison {
        base_run: base.run_id.clone(),
        new_run: new.run_id.clone(),
        max_regression,
        plan_regressions: plan_regressions(&bp, &np),
        only_in_base: base_map
            .keys()
            .filter(|k| !new_map.contains_key(*k))
            .map(|k| k.to_string())
            .collect(),
        only_in_new: new_map
            .keys()
            .filter(|k| !base_map.contains_key(*k))
            .map(|k| k.to_string())
            .collect(),
        deltas,
    }
}

/// An index no longer used, a new Seq Scan on a large table, a misestimate grown tenfold.
fn plan_regressions(base: &[PlanAt], new: &[PlanAt]) -> Vec<PlanRegression> {
    let new_by_key: BTreeMap<&str, &PlanAt> = new.iter().map(|p| (p.key.as_str(), p)).collect();
    let mut out = Vec::new();
    for b in base {
        let Some(n) = new_by_key.get(b.key.as_str()) else {
            continue;
        };
        for change in plan::diff(&b.plan, &n.plan) {
            let flagged = match change.kind {
                ChangeKind::LostIndex => true,
                ChangeKind::NewSeqScan => n
                    .plan
                    .relations
                    .iter()
                    .filter(|r| {
                        Some(&r.relation) == change.relation.as_ref()
                            || change
                                .relation
                                .as_deref()
                                .is_some_and(|c| c.starts_with(&r.relation))
                    })
                    .any(|r| {
                        r.actual_rows * r.loops.max(1) as f64 + r.rows_removed_by_filter as f64
                            >= LARGE_TABLE_ROWS
                    }),
                _ => false,
            };
            if flagged {
                out.push(PlanRegression {
                    key: b.key.clone(),
                    kind: format!("{:?}", change.kind),
                    text: change.text.clone(),
                });
            }
        }
        let factor = |p: &PlanAt| p.plan.worst_misestimate.as_ref().map_or(1.0, |m| m.factor);
        let (fb, fnew) = (factor(b), factor(n));
        if fnew >= MISESTIMATE_GROWTH && fnew >= fb * MISESTIMATE_GROWTH {
            let node = n
                .plan
                .worst_misestimate
                .as_ref()
                .map(|m| m.node.clone())
                .unwrap_or_default();
            out.push(PlanRegression {
                key: b.key.clone(),
                kind: "MisestimateGrew".into(),
                text: format!("worst misestimate grew from {fb:.0}× to {fnew:.0}× ({node})"),
            });
        }
    }
    out
}

/// Parses `10%`, `10` (percent) or `0.1` (fraction ≤ 1 with no `%`… ambiguous, so a bare
/// number is always percent).
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let t = text.trim().trim_end_matches('%');
    let v: f64 = t
        .parse()
        .map_err(|_| format!("{text:?} is not a percentage (e.g. 10%)"))?;
    if !(0.0..=1000.0).contains(&v) {
        return Err(format!("{text:?} must be between 0% and 1000%"));
    }
    Ok(v / 100.0)
}
