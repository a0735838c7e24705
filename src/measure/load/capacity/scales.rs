//! Capacity as the data grows (`capacity --scales`): per scale the capacity search and one
//! step at a common moderate rate (the same for every scale) that gives each query's p95 with
//! its interval; then the power-law fits across scales (see `growth`): capacity against
//! data size, extrapolated to the launch scale, and each query's p95 against data size at the
//! common rate, flagged when its exponent is significantly above 0 (latency that grows with
//! the data, not with the load).

use super::growth::{self, FitPoint, PowerFit};
use super::search::plan;
use super::{step, CapacityOptions, CapacitySection};
use crate::latency::Latency;
use crate::scenario::Scenario;
use crate::stats::{Interval, CONFIDENCE};
use crate::target::Target;
use anyhow::Result;
use serde::{Deserialize, Serialize};

/// The `capacity_scales` section of results.json.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ScalesSection {
    pub scenario: String,
    pub profile: String,
    pub seed: u64,
    pub anchor: Option<chrono::NaiveDate>,
    /// The scale extrapolated to (`--launch-scale`).
    pub launch_scale: f64,
    /// Every scale's per-query p95 is measured at this rate (half the smallest scale's
    /// sustainable rate, or `--common-rate`).
    pub common_rate: Option<f64>,
    pub scales: Vec<ScaleRun>,
    /// Capacity (the SLO crossing, else the sustainable rate) against scale; its
    /// prediction is the capacity at `launch_scale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_fit: Option<PowerFit>,
    /// Per query: p95 at the common rate against scale.
    pub queries: Vec<QueryGrowth>,
    /// For each query whose latency grows with the data: the index strategies' work at the
    /// smallest and largest scale.
    pub flattening: Vec<super::flatten::Flattening>,
    /// Work exponent at or below which a strategy counts as flat (buffers ∝ scale^k).
    pub flat_exponent: f64,
    /// Whether the api_usage layout (partitioned vs flat) was an arm of the flattening
    /// comparison, in words (`findings::scales::partitioning_words`, set when written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioning: Option<String>,
    /// Measured facts a reader should know (points left out of a fit, and why).
    pub notes: Vec<String>,
}

/// One scale: its dataset, its capacity search, and the step at the common rate.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ScaleRun {
    pub scale: f64,
    /// The database holding this scale's dataset (the template of its copies).
    pub database: String,
    /// The dataset's streamed fingerprint: one per scale.
    pub fingerprint: Option<String>,
    /// This command seeded it, in this many seconds (None: reused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_seconds: Option<f64>,
    pub data_bytes: i64,
    pub users: Option<u64>,
    pub sustainable_rate: Option<f64>,
    pub crossing_rate: Option<f64>,
    /// The interval the capacity lies in (the search's bracket).
    pub sustainable_low: Option<f64>,
    pub sustainable_high: Option<f64>,
    /// The machine-speed probe around this scale's search (ms).
    pub speed_probe_ms: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_common_rate: Option<CommonStep>,
    /// The search is `run`'s own capacity stage's, on this same dataset with the same
    /// scenario and options: not searched a second time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub search_from_run: bool,
    /// The whole search.
    pub capacity: CapacitySection,
}

/// The step at the common rate, on the same copy right after the search.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CommonStep {
    pub rate: f64,
    pub seconds: f64,
    pub achieved_tps: f64,
    pub transaction_p95_ms: f64,
    pub failed: u64,
    pub blocks_read: i64,
    pub wal_bytes: i64,
    pub cpu_busy: f64,
    pub queries: Vec<QueryAtRate>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct QueryAtRate {
    pub name: String,
    pub samples: u64,
    pub rows: u64,
    pub p95_ms: f64,
    /// The p95's 95 % interval (None: too few samples for one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ci_ms: Option<Interval>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct QueryGrowth {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<PowerFit>,
    /// The exponent's interval lies above 0: p95 grows with the data at a fixed rate.
    pub grows: bool,
}

/// The capacity of a scale as a fit point: the crossing (else the sustainable rate) in the
/// search's bracket. None when nothing broke (no upper end) or nothing passed.
pub fn capacity_point(r: &ScaleRun) -> Option<FitPoint> {
    let (low, high) = (r.sustainable_low?, r.sustainable_high?);
    let value = r.crossing_rate.or(r.sustainable_rate)?;
    Some(FitPoint {
        size: r.scale,
        value,
        low: low.min(value),
        high: high.max(value),
    })
}

/// Fits capacity and every query's p95 across the scales (sorted by scale).
pub fn conclude(section: &mut ScalesSection) {
    section.scales.sort_by(|a, b| a.scale.total_cmp(&b.scale));
    let points: Vec<FitPoint> = section.scales.iter().filter_map(capacity_point).collect();
    if points.len() < section.scales.len() {
        section.notes.push(format!(
            "{} of {} scales have no bounded capacity (nothing broke up to --max-rate, or nothing passed) and are left out of the capacity fit",
            section.scales.len() - points.len(),
            section.scales.len()
        ));
    }
    section.capacity_fit = growth::fit(&points, Some(section.launch_scale));
    let mut names: Vec<String> = section
        .scales
        .iter()
        .filter_map(|s| s.at_common_rate.as_ref())
        .flat_map(|c| c.queries.iter().map(|q| q.name.clone()))
        .collect();
    names.sort();
    names.dedup();
    section.queries = names
        .into_iter()
        .map(|name| {
            let points: Vec<FitPoint> = section
                .scales
                .iter()
                .filter_map(|s| {
                    let q = s
                        .at_common_rate
                        .as_ref()?
                        .queries
                        .iter()
                        .find(|q| q.name == name)?;
                    let ci = q.p95_ci_ms?;
                    Some(FitPoint {
                        size: s.scale,
                        value: q.p95_ms,
                        low: ci.low,
                        high: ci.high,
                    })
                })
                .collect();
            let fit = (points.len() == section.scales.len())
                .then(|| growth::fit(&points, None))
                .flatten();
            QueryGrowth {
                grows: fit.as_ref().is_some_and(|f| f.exponent.low > 0.0),
                name,
                fit,
            }
        })
        .collect();
    let unfit = section.queries.iter().filter(|q| q.fit.is_none()).count();
    if unfit > 0 {
        section.notes.push(format!(
            "{unfit} quer{} lack a p95 interval at some scale (too few samples at the common rate) and have no fit",
            if unfit == 1 { "y" } else { "ies" }
        ));
    }
}

/// A scale's row from its dataset and search.
pub fn scale_run(
    ds: &crate::scale_datasets::ScaleDataset,
    capacity: CapacitySection,
    at_common_rate: Option<CommonStep>,
) -> ScaleRun {
    ScaleRun {
        scale: ds.info.scale,
        database: ds.database.clone(),
        fingerprint: ds.info.fingerprint.clone(),
        seed_seconds: ds.seeded.as_ref().map(|r| r.seconds),
        data_bytes: ds.bytes,
        users: ds
            .info
            .row_counts
            .get("auth.users")
            .and_then(|v| v.as_u64()),
        sustainable_rate: capacity.sustainable_rate,
        crossing_rate: capacity.crossing_rate,
        sustainable_low: capacity.sustainable_low,
        sustainable_high: capacity.sustainable_high,
        speed_probe_ms: capacity.speed_probe_ms.clone(),
        at_common_rate,
        search_from_run: false,
        capacity,
    }
}

/// One step of the scenario at `rate` on `target` (after a vacuum and quiesce, as every
/// search step), long enough for its SLO statistic; per query p95 with its interval.
pub async fn at_rate(
    target: &Target,
    scenario: &Scenario,
    opts: &CapacityOptions,
    rate: f64,
) -> Result<CommonStep> {
    crate::pristine::vacuum_tables(target).await?;
    crate::pristine::quiesce(target).await;
    let postmaster = {
        let mut conn = target.connect().await?;
        super::probe::local_postmaster(&mut conn).await
    };
    let mut p = plan(opts, rate, "common");
    // Every query needs its own p95 samples: twice the boundary step, within the cap.
    p.duration = p
        .duration
        .max(opts.boundary_duration * 2)
        .min(opts.max_step_duration.max(p.duration));
    let m = step::measure(target, scenario, opts, postmaster, &p, None).await?;
    let judged = step::judged(&p, &m, opts);
    let queries = m
        .figures
        .queries
        .iter()
        .map(|q| QueryAtRate {
            name: q.name.clone(),
            samples: q.latency.count,
            rows: q.rows,
            p95_ms: q.latency.p95_ms,
            p95_ci_ms: Latency::decode(&q.latency.histogram)
                .ok()
                .and_then(|l| crate::stats::quantile_ci(&l, 0.95, CONFIDENCE)),
        })
        .collect();
    Ok(CommonStep {
        rate,
        seconds: m.figures.measured_seconds,
        achieved_tps: judged.achieved_tps,
        transaction_p95_ms: judged.latency.p95_ms,
        failed: judged.failed,
        blocks_read: judged.blocks_read,
        wal_bytes: judged.wal_bytes,
        cpu_busy: judged.cpu_busy,
        queries,
    })
}
