//! The explain section of results.json: plans, latency and write cost per query × index
//! strategy, plan diffs, and verdicts derived from them.

use crate::latency::LatencySummary;
use crate::measure::engine::{Rounds, Work, WorkRatio};
use crate::plan::{PlanChange, PlanSummary};
use crate::stats::{Interval, Side};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExplainSection {
    /// api_usage layout the queries ran on.
    pub layout: crate::schema::Layout,
    pub runs: usize,
    pub strategies: Vec<StrategyFigures>,
    pub queries: Vec<QueryComparison>,
    pub overall: Vec<OverallVerdict>,
    pub errors: Vec<MeasureError>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StrategyFigures {
    pub name: String,
    /// Secondary indexes only (keys are the same in every strategy).
    pub index_bytes: u64,
    pub build_seconds: f64,
    /// Seconds to make this strategy's pristine copy of the dataset.
    #[serde(default)]
    pub copy_seconds: Option<f64>,
    /// WAL generated per story created by the catalog's create_story write (rolled back).
    pub wal_bytes_per_story: Option<f64>,
    /// Mean write latency (ms) over the catalog's write queries, heavy user.
    pub write_mean_ms: Option<f64>,
    /// Writes per second one connection sustains at that latency.
    pub write_ops_per_second: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct QueryComparison {
    pub name: String,
    pub description: String,
    pub role: crate::catalog::Role,
    pub kind: crate::catalog::Kind,
    pub subjects: Vec<SubjectComparison>,
    /// Verdict on the heavy user (the one index strategies matter for).
    pub verdict: Option<Verdict>,
    /// Every strategy returned the same rows (reads: same digest; writes: same row count).
    pub consistent: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SubjectComparison {
    /// `heavy` or `median`.
    pub subject: crate::params::Subject,
    pub user: String,
    pub params: Vec<String>,
    pub by_strategy: Vec<StrategyRun>,
    /// Plan changes from the first strategy (the baseline) to each other one.
    pub diffs: Vec<PlanDiff>,
    /// The interleaved rounds every strategy ran (each on its own pristine copy).
    #[serde(default)]
    pub rounds: Option<Rounds>,
    /// The strategy with the lowest paired ratio to the baseline.
    #[serde(default)]
    pub fastest: Option<String>,
    /// `fastest`, only when its paired interval against every other strategy lies
    /// below 1 (clearly faster than each); None: no clear winner.
    #[serde(default)]
    pub winner: Option<String>,
    /// Baseline time / fastest time, paired per round, with its interval.
    #[serde(default)]
    pub fastest_speedup: Option<Interval>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StrategyRun {
    pub strategy: String,
    pub plan: Option<PlanSummary>,
    /// Raw EXPLAIN JSON, relative to the run's output directory.
    pub plan_file: Option<String>,
    pub latency: Option<LatencySummary>,
    pub rows: Option<i64>,
    pub digest: Option<String>,
    /// This strategy's time / the baseline's, paired per round: median and interval.
    #[serde(default)]
    pub ratio_vs_baseline: Option<Interval>,
    /// `includes`: no measurable difference from the baseline.
    #[serde(default)]
    pub side: Option<Side>,
    /// Buffers, rows, executor time, WAL (writes) and plan shape after warm-up.
    #[serde(default)]
    pub work: Option<Work>,
    /// Work / the baseline's work.
    #[serde(default)]
    pub work_ratio: Option<WorkRatio>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PlanDiff {
    pub from: String,
    pub to: String,
    pub changes: Vec<PlanChange>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Verdict {
    pub fastest: String,
    /// Baseline p50 / fastest p50 (> 1: the fastest strategy is that many times faster).
    pub speedup_vs_baseline: f64,
    pub baseline: String,
    pub p50_ms: BTreeMap<String, f64>,
    /// Baseline / fastest, paired per round (heavy user), with its 95 % interval.
    #[serde(default)]
    pub speedup_interval: Option<Interval>,
    /// The fastest strategy is clearly faster than every other one (paired intervals
    /// all exclude 1); false: no clear winner.
    #[serde(default)]
    pub clear: bool,
    /// `fastest` when `clear`, else None.
    #[serde(default)]
    pub winner: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OverallVerdict {
    pub strategy: String,
    /// Geometric mean over read queries of baseline p50 / this strategy's p50.
    pub geomean_speedup: f64,
    /// Geometric mean over read queries of the paired speed-ups (baseline / this), with an
    /// interval combining the queries' intervals in log space (see `engine::geomean_interval`).
    #[serde(default)]
    pub geomean_interval: Option<Interval>,
    pub queries_fastest: usize,
    /// Read queries this strategy wins clearly (`Verdict::clear`).
    #[serde(default)]
    pub queries_won: usize,
    pub index_bytes: u64,
    /// This strategy's WAL per created story / the baseline's.
    pub wal_ratio_vs_baseline: Option<f64>,
    /// This strategy's mean write latency / the baseline's.
    pub write_latency_ratio_vs_baseline: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MeasureError {
    pub query: String,
    pub strategy: String,
    pub subject: crate::params::Subject,
    pub error: String,
}
