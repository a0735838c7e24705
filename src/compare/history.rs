//! Noise floors from A/A history: the earlier runs of the same configuration (same command,
//! dataset, variant and options) found in a directory of run directories (`reports/`).
//! Samples inside one run miss the drift between runs (machine load, caches, clock); the
//! spread of a metric between consecutive history runs measures it (rustc-perf).

use super::metrics::{metrics, Metric};
use crate::results::{RunResults, RESULTS_FILE};
use crate::stats;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Fewer history runs than this: the section's default floor applies.
const MIN_HISTORY_RUNS: usize = 5;
/// Floor = Q3 + K·IQR of |log ratio| between consecutive runs (rustc-perf's outlier fence).
pub const IQR_K: f64 = 3.0;

/// Config keys that differ between runs of the same configuration.
const PER_RUN_KEYS: &[&str] = &["out", "baseline", "max_regression"];

/// Default noise floor (relative) per section when history is too short: the outlier
/// fence (Q3 + 3·IQR of |log ratio|, as for history) of every metric of three A/A runs of
/// the full `run` on the shared 2-core machine (docs/statistics.md, "Calibration"). RLS
/// overhead ratios of sub-millisecond reads move up to 3× between identical runs there
/// (single arms gain ~1 ms in one run and not the next, with the same plan and buffers),
/// so its wall-clock gate is coarse and the exact work checks carry it.
pub fn default_floor(section: &str) -> f64 {
    match section {
        "rls" => 3.00,
        "partitions" => 0.35,
        // The SLO crossing of identical searches on the 2-core VM, three A/A pairs
        // (docs/statistics.md, "Capacity on a VM"): 436/436, 524/354, 350/259 tx/s, the
        // largest |log ratio| 0.39 (1.48×) with the CPU probe flat: the VM's WAL-flush
        // latency and CPU speed drift over minutes, and near saturation p95 follows them.
        "capacity" => 0.50,
        _ => 1.00,
    }
}

/// The floor of each metric key that has enough history, with the runs it came from.
#[derive(Clone, Debug, Default)]
pub struct Floors {
    pub dir: Option<PathBuf>,
    /// Matching runs found (excluding NEW).
    pub runs: usize,
    pub by_key: BTreeMap<String, f64>,
}

impl Floors {
    /// (floor, source) for a metric: its history floor, or the section default.
    pub fn of(&self, m: &Metric) -> (f64, String) {
        match self.by_key.get(&m.key) {
            Some(f) => (*f, format!("history of {} runs", self.runs)),
            None => (default_floor(m.section), "section default".to_string()),
        }
    }
}

/// The default history directory: the one holding BASE's run directory, when BASE is a
/// run's `results.json` (a file elsewhere has no run history around it).
pub fn default_dir(base: &Path) -> Option<PathBuf> {
    if base.file_name()? != RESULTS_FILE {
        return None;
    }
    let run_dir = base.parent()?;
    let run_dir = if run_dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        run_dir
    };
    let parent = run_dir.canonicalize().ok()?.parent()?.to_path_buf();
    Some(parent)
}

/// Same command, dataset (profile, scale, seed), variant and options.
fn same_configuration(a: &RunResults, b: &RunResults) -> bool {
    let dataset = |r: &RunResults| {
        r.dataset
            .as_ref()
            .map(|d| (d.profile.clone(), d.scale.to_bits(), d.seed))
    };
    let config = |r: &RunResults| {
        let mut c = r.config.clone();
        if let Some(o) = c.as_object_mut() {
            for k in PER_RUN_KEYS {
                o.remove(*k);
            }
        }
        c
    };
    a.command == b.command
        && dataset(a) == dataset(b)
        && a.variant
            .as_ref()
            .map(|v| (&v.indexes, &v.policies, &v.api_usage))
            == b.variant
                .as_ref()
                .map(|v| (&v.indexes, &v.policies, &v.api_usage))
        && config(a) == config(b)
}

/// Reads `dir/*/results.json` of the same configuration as `like` (NEW excluded by run id,
/// unreadable or other-version files skipped), oldest first.
pub fn load(dir: &Path, like: &RunResults, exclude_run: &str) -> Vec<RunResults> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut runs: Vec<RunResults> = entries
        .flatten()
        .map(|e| e.path().join(RESULTS_FILE))
        .filter(|p| p.is_file())
        .filter_map(|p| RunResults::read(&p).ok())
        .filter(|r| r.run_id != exclude_run && r.status == crate::results::RunStatus::Ok)
        .filter(|r| same_configuration(r, like))
        .collect();
    runs.sort_by_key(|r| r.started_at);
    runs
}

/// Per metric, Q3 + 3·IQR of |ln(v[i+1]/v[i])| over consecutive history runs, as a relative
/// change (exp − 1). Metrics with fewer than MIN_HISTORY_RUNS values get no entry.
pub fn floors(dir: Option<PathBuf>, history: &[RunResults]) -> Floors {
    let mut series: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in history {
        for m in metrics(r).0 {
            if m.value > 0.0 && m.value.is_finite() {
                series.entry(m.key).or_default().push(m.value);
            }
        }
    }
    let by_key = series
        .into_iter()
        .filter(|(_, v)| v.len() >= MIN_HISTORY_RUNS)
        .map(|(k, v)| {
            let mut d: Vec<f64> = v.windows(2).map(|w| (w[1] / w[0]).ln().abs()).collect();
            (k, stats::iqr_fence(&mut d, IQR_K).exp_m1())
        })
        .collect();
    Floors {
        dir,
        runs: history.len(),
        by_key,
    }
}
