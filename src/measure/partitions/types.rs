//! The partitions section of results.json: api_usage partitioned vs flat per analytics
//! query (latency, pruning evidence, generic plans), partitionwise aggregation, btree vs
//! BRIN on created_at, the scaling curve over partition counts, and maintenance costs.

use crate::latency::LatencySummary;
use crate::measure::engine::{Rounds, Work, WorkRatio};
use crate::plan::{PartitionInfo, PlanSummary};
use crate::stats::{Interval, Side};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PartitionsSection {
    pub runs: usize,
    /// Rows in api_usage (each layout).
    pub rows: i64,
    /// Real partitions of public.api_usage (pg_inherits).
    pub partitions_total: usize,
    pub partitions: Vec<PartitionRows>,
    /// Both layouts hold the same rows (count and digest compared at the start).
    pub layouts_identical: bool,
    pub layout_digests: Vec<LayoutDigest>,
    pub queries: Vec<QueryLayouts>,
    /// Analytics queries left out, with the reason.
    pub skipped: Vec<Skipped>,
    pub partitionwise: Vec<PartitionwiseRun>,
    pub indexes: Option<IndexComparison>,
    pub scaling: Option<Scaling>,
    pub maintenance: Option<Maintenance>,
    /// Verdicts derived from the figures above.
    pub verdicts: Vec<String>,
    pub errors: Vec<PartError>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PartitionRows {
    pub name: String,
    pub bound: String,
    pub rows: i64,
    pub bytes: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LayoutDigest {
    pub layout: crate::schema::Layout,
    pub rows: i64,
    pub digest: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Skipped {
    pub query: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PartError {
    /// Which part of the stage: layouts, partitionwise, indexes, scaling, maintenance.
    pub part: String,
    pub query: Option<String>,
    pub error: String,
}

/// One analytics query on both layouts.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct QueryLayouts {
    pub name: String,
    pub description: String,
    pub params: Vec<String>,
    pub partitioned: LayoutRun,
    pub flat: LayoutRun,
    /// partitioned / flat, custom plans (prepared statements, planner's choice).
    pub ratio_p50: Option<f64>,
    pub ratio_p95: Option<f64>,
    /// partitioned / flat, both forced to generic plans.
    pub generic_ratio_p50: Option<f64>,
    /// partitioned / flat, custom plans: median of the paired per-round ratios and its
    /// 95 % interval; `ratio_side` `includes` means no measurable difference.
    #[serde(default)]
    pub ratio_interval: Option<Interval>,
    #[serde(default)]
    pub ratio_side: Option<Side>,
    /// The same for generic plans.
    #[serde(default)]
    pub generic_ratio_interval: Option<Interval>,
    #[serde(default)]
    pub generic_ratio_side: Option<Side>,
    /// partitioned / flat work of the custom plans (buffers, executor time).
    #[serde(default)]
    pub work_ratio: Option<WorkRatio>,
    /// The interleaved rounds the four arms ran.
    #[serde(default)]
    pub rounds: Option<Rounds>,
    /// Both layouts returned the same rows (row count and digest).
    pub consistent: bool,
    /// Pruning seen on the partitioned layout: "plan time", "executor start", "run time".
    pub pruning: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LayoutRun {
    pub layout: crate::schema::Layout,
    pub rows: Option<i64>,
    pub digest: Option<String>,
    /// Custom plans (the default plan_cache_mode with fresh parameters).
    pub custom: ModeRun,
    /// plan_cache_mode = force_generic_plan (transaction-local).
    pub generic: ModeRun,
}

/// One way of running a query: its latency histogram and one EXPLAIN ANALYZE of it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ModeRun {
    pub latency: Option<LatencySummary>,
    pub planning_ms: Option<f64>,
    pub execution_ms: Option<f64>,
    /// Partition counts of the plan; `total` is the table's real partition count.
    pub partitions: Option<PartitionInfo>,
    /// Partitions the plan actually scanned (not pruned, not never executed).
    pub scanned: Vec<String>,
    pub plan: Option<PlanSummary>,
    /// Raw EXPLAIN JSON, relative to the output directory.
    pub plan_file: Option<String>,
    /// Buffers, rows, executor time and plan shape of the EXPLAIN above.
    #[serde(default)]
    pub work: Option<Work>,
    pub error: Option<String>,
}

/// enable_partitionwise_aggregate off vs on, partitioned layout.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PartitionwiseRun {
    pub query: String,
    pub off: ModeRun,
    pub on: ModeRun,
    /// on / off, p50.
    pub ratio_p50: Option<f64>,
    /// on / off, paired per-round ratios: median and 95 % interval.
    #[serde(default)]
    pub ratio_interval: Option<Interval>,
    #[serde(default)]
    pub ratio_side: Option<Side>,
    #[serde(default)]
    pub rounds: Option<Rounds>,
    /// The "on" plan aggregates per partition (Partial aggregate nodes appear).
    pub applied: bool,
    /// Both settings returned the same rows.
    pub consistent: bool,
}

/// btree vs BRIN on created_at, built by the stage on both layouts inside one
/// transaction that is rolled back (so nothing it builds can outlive it).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IndexComparison {
    /// created_at-leading indexes of the current strategy, set aside during the comparison.
    pub set_aside: Vec<String>,
    pub kinds: Vec<IndexKind>,
    pub queries: Vec<IndexQueryRun>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IndexKind {
    /// `btree` or `brin`.
    pub kind: String,
    pub partitioned_bytes: i64,
    pub flat_bytes: i64,
    pub partitioned_build_ms: f64,
    pub flat_build_ms: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IndexQueryRun {
    pub query: String,
    pub layout: crate::schema::Layout,
    pub kind: String,
    pub latency: Option<LatencySummary>,
    /// Access paths of the api_usage scans in the plan (e.g. "Bitmap Heap Scan using …").
    pub access: Vec<String>,
    /// The plan used the comparison index.
    pub index_used: bool,
    pub error: Option<String>,
}

/// Planning and execution time as the partition count grows, over the same rows.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Scaling {
    pub rows: i64,
    pub repetitions: usize,
    pub layouts: Vec<ScalingLayout>,
    pub points: Vec<ScalingPoint>,
    pub crossovers: Vec<Crossover>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ScalingLayout {
    /// `flat`, `monthly`, `weekly`, `daily`.
    pub name: String,
    pub partitions: usize,
    pub load_seconds: f64,
    pub index_seconds: f64,
    pub bytes: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ScalingPoint {
    pub query: String,
    /// `custom` or `generic`.
    pub mode: String,
    pub layout: String,
    /// 1 for the flat table.
    pub partitions: usize,
    /// Medians over the repetitions (EXPLAIN ANALYZE's own figures).
    pub planning_ms: f64,
    pub execution_ms: f64,
    pub total_ms: f64,
    pub in_plan: usize,
    pub scanned: usize,
}

/// Where partitioning starts to cost more (planning + execution) than the flat table.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Crossover {
    pub query: String,
    pub mode: String,
    pub flat_total_ms: f64,
    /// Partition count where the partitioned total reaches the flat total (interpolated
    /// between measured points); `None` when no measured count crosses.
    pub partitions: Option<f64>,
    /// `crosses`, `never_cheaper` (costs more at every measured count) or `always_cheaper`.
    pub kind: String,
    pub verdict: String,
}

/// Partition maintenance vs DELETE, on scratch copies (the seeded tables stay as seeded).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Maintenance {
    pub rows: i64,
    /// The month dropped / deleted (YYYY-MM), and its rows.
    pub month: String,
    pub month_rows: i64,
    /// The month whose partition was created.
    pub next_month: String,
    pub writers: usize,
    pub insert_interval_ms: f64,
    pub operations: Vec<MaintenanceOp>,
    /// Insert latency per phase and table (phase = operation running when the insert began).
    pub inserts: Vec<InsertPhase>,
    pub sizes: Vec<SizeFigure>,
    pub consistency: Consistency,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MaintenanceOp {
    /// `create_partition`, `detach_partition`, `drop_partition`, `delete_month`, `vacuum`.
    pub name: String,
    /// `partitioned` or `flat`.
    pub layout: crate::schema::Layout,
    pub ms: f64,
    pub rows: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct InsertPhase {
    pub phase: String,
    /// `partitioned` or `flat`: the copy the inserts went to.
    pub layout: crate::schema::Layout,
    pub latency: LatencySummary,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SizeFigure {
    /// e.g. `partitioned before`, `flat after delete`, `flat after vacuum`.
    pub what: String,
    pub bytes: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Consistency {
    pub consistent: bool,
    pub partitioned_rows: i64,
    pub flat_rows: i64,
    pub partitioned_digest: String,
    pub flat_digest: String,
    /// Seeded rows outside the dropped month plus the rows inserted during the operations.
    pub expected_rows: i64,
    pub inserted_rows: i64,
    /// Rows per month (UTC) of each copy after maintenance.
    pub partitioned_months: Vec<(String, i64)>,
    pub flat_months: Vec<(String, i64)>,
}
