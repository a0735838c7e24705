//! `storybench compare BASE NEW`: the regression gate for nightly CI. Time metrics of every
//! section (explain, rls, partitions, load, capacity) are judged by statistics: the change's
//! interval from both runs' histograms must lie beyond max(threshold, noise floor from A/A
//! history), with the family controlled by Holm (fail) and Benjamini–Hochberg (warn). Work
//! and plan shape are compared exactly. The statistics are in docs/statistics.md.

mod export;
mod gate;
mod history;
mod metrics;
mod render;
mod work;

pub use export::{bencher_bmf, github_benchmark};
pub use gate::{CommonShift, MetricDelta, Status, FAIL_ALPHA, WARN_FDR};
pub use history::{default_dir as default_history_dir, Floors};
pub use metrics::{metrics, Metric};
pub use render::{render, Format};
pub use work::PlanFinding;

use crate::results::RunResults;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub base_run: String,
    pub new_run: String,
    pub max_regression: f64,
    /// History directory searched for A/A runs, and how many matching runs it held.
    pub history_dir: Option<PathBuf>,
    pub history_runs: usize,
    pub deltas: Vec<MetricDelta>,
    /// The shift all absolute times of a section share (machine load), removed from each
    /// metric's change before it is judged.
    pub common_shifts: Vec<CommonShift>,
    /// Plan and work findings that fail the gate (lost index, more buffers, …).
    pub plan_regressions: Vec<PlanFinding>,
    /// Plan and work changes shown but not failing (another plan, fewer buffers, …).
    pub plan_changes: Vec<PlanFinding>,
    /// Plans compared and found the same (within the buffer tolerance).
    pub plans_unchanged: usize,
    /// Metrics present in only one of the runs.
    pub only_in_base: Vec<String>,
    pub only_in_new: Vec<String>,
}

impl Comparison {
    pub fn regressions(&self) -> usize {
        self.count(Status::Regression) + self.plan_regressions.len()
    }

    pub fn count(&self, s: Status) -> usize {
        self.deltas.iter().filter(|d| d.status == s).count()
    }
}

/// Compares two runs with no history (section default floors).
pub fn compare(base: &RunResults, new: &RunResults, max_regression: f64) -> Comparison {
    compare_with(base, new, max_regression, &Floors::default())
}

/// Floors from the runs of BASE's configuration in `dir` (NEW excluded).
pub fn floors_from(dir: Option<PathBuf>, base: &RunResults, new: &RunResults) -> Floors {
    let runs = dir
        .as_deref()
        .map(|d| history::load(d, base, &new.run_id))
        .unwrap_or_default();
    history::floors(dir, &runs)
}

pub fn compare_with(
    base: &RunResults,
    new: &RunResults,
    max_regression: f64,
    floors: &Floors,
) -> Comparison {
    let (bm, bp) = metrics(base);
    let (nm, np) = metrics(new);
    let base_map: BTreeMap<&str, &Metric> = bm.iter().map(|m| (m.key.as_str(), m)).collect();
    let new_map: BTreeMap<&str, &Metric> = nm.iter().map(|m| (m.key.as_str(), m)).collect();
    let pairs: Vec<(&Metric, &Metric)> = base_map
        .iter()
        .filter_map(|(k, b)| new_map.get(k).map(|n| (*b, *n)))
        .collect();
    let probes = |r: &RunResults| {
        r.capacity
            .as_ref()
            .map(|c| c.speed_probe_ms.clone())
            .unwrap_or_default()
    };
    let given: Vec<gate::CommonShift> =
        gate::machine_shift(&probes(base), &probes(new), metrics::MACHINE_PHASE)
            .into_iter()
            .collect();
    let (deltas, common_shifts) = gate::judge(&pairs, max_regression, floors, given);
    let (findings, plans_unchanged) = work::findings(&bp, &np);
    let (plan_regressions, plan_changes) = findings.into_iter().partition(|f| f.regression);
    Comparison {
        base_run: base.run_id.clone(),
        new_run: new.run_id.clone(),
        max_regression,
        history_dir: floors.dir.clone(),
        history_runs: floors.runs,
        plan_regressions,
        plan_changes,
        plans_unchanged,
        common_shifts,
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
