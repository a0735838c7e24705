//! The one measurement engine for timed statements. The arms being compared run in
//! interleaved rounds (each round runs every arm once, in a rotated and alternately
//! reversed order, so drift hits every arm alike and no arm always follows the same one),
//! after an untimed warm-up. Each round gives one paired ratio per arm against its
//! reference arm; the median of those ratios with its sign-test interval
//! (`stats::paired_ratio_ci`) is the comparison. Beside the time, one
//! `EXPLAIN (ANALYZE, BUFFERS)` after warm-up gives the deterministic work figures.
//!
//! Stop rule: never before the rounds every reported percentile needs
//! (`stats::min_samples`); then at `max_rounds`, at the time budget, or as soon as every
//! ratio interval is narrower than `target_half_width`. `hard_budget` bounds a stage whose
//! statements are too slow for its percentiles: the summary's `supported_percentile` then
//! says what the count supports.

use crate::auth::Principal;
use crate::catalog::QuerySpec;
use crate::latency::Latency;
use crate::measure::exec::{self, RequestContext};
use crate::params::ParamValue;
use crate::plan::{self, PlanSummary};
use crate::stats::{self, Interval, Side};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use std::time::{Duration, Instant};

/// `fn engine(&self) -> EngineOptions` for a stage's options struct holding the engine's
/// four fields (`warmup`, `runs`, `budget`, `percentiles`) under those names. A macro, not a
/// flattened struct: the options deny unknown keys, which serde cannot do with `flatten`.
#[macro_export]
macro_rules! engine_options_from_fields {
    () => {
        /// The engine settings of every timed comparison of the stage.
        pub fn engine(&self) -> $crate::measure::engine::EngineOptions {
            $crate::measure::engine::EngineOptions::new(
                self.warmup,
                self.runs,
                self.budget,
                &self.percentiles,
            )
        }
    };
}

/// How long and how much to measure.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Untimed rounds first.
    pub warmup: usize,
    pub min_rounds: usize,
    /// Cap on the rounds (raised to the rounds the percentiles need).
    pub max_rounds: usize,
    /// Once the floor is reached, stop after this long.
    pub budget: Duration,
    /// Stop even below the floor after this long (slow statements).
    pub hard_budget: Duration,
    /// Percentiles (0–100) the stage reports: their minimum sample counts set the floor.
    pub percentiles: Vec<f64>,
    /// Early stop when every ratio interval's relative half-width is below this.
    pub target_half_width: f64,
}

impl EngineOptions {
    /// `budget` per comparison; the hard budget is four times that.
    pub fn new(warmup: usize, max_rounds: usize, budget: Duration, percentiles: &[f64]) -> Self {
        Self {
            warmup,
            min_rounds: 0,
            max_rounds,
            budget,
            hard_budget: budget * 4,
            percentiles: percentiles.to_vec(),
            target_half_width: 0.02,
        }
    }

    /// Rounds needed before any stop but the hard budget.
    pub fn floor(&self) -> usize {
        let needed = self
            .percentiles
            .iter()
            .map(|p| stats::min_samples(p / 100.0, stats::CONFIDENCE) as usize)
            .max()
            .unwrap_or(0);
        needed.max(self.min_rounds).max(1)
    }
}

/// Why the rounds ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Every ratio interval was narrower than the target.
    Narrow,
    #[default]
    Budget,
    MaxRounds,
    /// The hard budget ran out before the percentiles' floor.
    HardBudget,
    /// Every arm failed.
    Failed,
    Interrupted,
}

/// What the rounds of one comparison came to (recorded beside its arms).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Rounds {
    pub rounds: usize,
    pub warmup: usize,
    /// The floor the reported percentiles asked for.
    pub floor: usize,
    pub stop: StopReason,
    pub seconds: f64,
}

/// Deterministic work of one execution, from its EXPLAIN (ANALYZE, BUFFERS) (and, for
/// writes, the WAL one execution generates).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Work {
    pub shared_hit: u64,
    pub shared_read: u64,
    pub temp_read: u64,
    pub temp_written: u64,
    /// Rows the plan's root returned (all loops).
    pub rows: f64,
    pub planning_ms: f64,
    pub execution_ms: f64,
    /// Plan shape: every scan with its access path, then the join methods.
    pub shape: Vec<String>,
    pub wal_bytes: Option<f64>,
}

impl Work {
    pub fn from_plan(p: &PlanSummary) -> Self {
        let mut shape: Vec<String> = p.relations.iter().map(|r| r.describe()).collect();
        shape.extend(p.joins.iter().cloned());
        Self {
            shared_hit: p.shared_hit,
            shared_read: p.shared_read,
            temp_read: p.temp_read,
            temp_written: p.temp_written,
            rows: p
                .nodes
                .first()
                .map_or(0.0, |n| n.actual_rows * n.loops.max(1) as f64),
            planning_ms: p.planning_ms,
            execution_ms: p.execution_ms,
            shape,
            wal_bytes: None,
        }
    }

    pub fn shared_buffers(&self) -> u64 {
        self.shared_hit + self.shared_read
    }
}

/// Work of an arm divided by its reference's.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkRatio {
    /// Shared buffers (hit + read).
    pub buffers: Option<f64>,
    /// Executor time of the plans (EXPLAIN ANALYZE's Execution Time).
    pub execution: Option<f64>,
    pub wal: Option<f64>,
}

impl WorkRatio {
    pub fn of(arm: &Work, reference: &Work) -> Self {
        let r = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        Self {
            buffers: r(
                arm.shared_buffers() as f64,
                reference.shared_buffers() as f64,
            ),
            execution: r(arm.execution_ms, reference.execution_ms),
            wal: arm
                .wal_bytes
                .zip(reference.wal_bytes)
                .and_then(|(a, b)| r(a, b)),
        }
    }
}

/// What one arm's work step hands back: the raw plan and, for writes, WAL per execution.
#[derive(Default)]
pub struct WorkSample {
    pub plan: Option<serde_json::Value>,
    pub wal_bytes: Option<f64>,
}

/// How the engine runs arms: one timed execution, and the work step after warm-up.
/// (Only awaited in place, never spawned: no Send bound is needed.)
#[allow(async_fn_in_trait)]
pub trait Runner {
    fn arms(&self) -> usize;
    /// The execution's own time and the rows it returned or changed.
    async fn time(&mut self, arm: usize) -> Result<(Duration, u64)>;
    async fn work(&mut self, arm: usize) -> Result<WorkSample>;
}

/// One arm's figures.
#[derive(Clone, Debug, Default)]
pub struct ArmOutcome {
    pub latency: Latency,
    /// Paired ratio arm / reference (median of per-round ratios) with its interval.
    pub ratio: Option<Interval>,
    /// Where that interval lies relative to 1 (`Includes`: no measurable difference).
    pub side: Option<Side>,
    pub raw_plan: Option<serde_json::Value>,
    pub plan: Option<PlanSummary>,
    pub work: Option<Work>,
    pub work_ratio: Option<WorkRatio>,
    /// Rows of the last timed execution.
    pub rows: Option<u64>,
    pub error: Option<String>,
}

/// The whole comparison: per arm, plus the per-round times for further pairings.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub arms: Vec<ArmOutcome>,
    pub rounds: Rounds,
    /// Seconds per round and arm (None: the arm did not run in that round).
    times: Vec<Vec<Option<f64>>>,
}

impl Outcome {
    /// Paired ratio `a / b` over the rounds both ran, with its interval.
    pub fn paired(&self, a: usize, b: usize) -> Option<Interval> {
        stats::paired_ratio_ci(&ratios(&self.times, a, b), stats::CONFIDENCE)
    }
}

fn ratios(times: &[Vec<Option<f64>>], a: usize, b: usize) -> Vec<f64> {
    times
        .iter()
        .filter_map(|t| match (t[a], t[b]) {
            (Some(x), Some(y)) if y > 0.0 => Some(x / y),
            _ => None,
        })
        .collect()
}

/// The order of round `r` over `n` arms: rotated by r/2, reversed on odd rounds
/// (two arms: AB BA BA AB …; every arm takes every position equally often).
pub fn round_order(r: usize, n: usize) -> Vec<usize> {
    let shift = (r / 2) % n.max(1);
    let mut order: Vec<usize> = (0..n).map(|i| (i + shift) % n).collect();
    if r % 2 == 1 {
        order.reverse();
    }
    order
}

/// The stop rule, on the state after `rounds` rounds.
pub fn decide(
    opts: &EngineOptions,
    rounds: usize,
    elapsed: Duration,
    intervals: &[Option<Interval>],
) -> Option<StopReason> {
    let floor = opts.floor();
    if rounds < floor {
        return (elapsed >= opts.hard_budget).then_some(StopReason::HardBudget);
    }
    if rounds >= opts.max_rounds.max(floor) {
        return Some(StopReason::MaxRounds);
    }
    let narrow = !intervals.is_empty()
        && intervals
            .iter()
            .all(|i| i.is_some_and(|i| i.relative_half_width() < opts.target_half_width));
    if narrow {
        return Some(StopReason::Narrow);
    }
    (elapsed >= opts.budget).then_some(StopReason::Budget)
}

/// Runs the comparison. `versus[i]` is the reference arm of arm `i` (None: no ratio).
/// A failing arm stops (its error is kept); the others go on.
pub async fn measure<R: Runner>(
    runner: &mut R,
    versus: &[Option<usize>],
    opts: &EngineOptions,
) -> Outcome {
    let n = runner.arms();
    let mut arms: Vec<ArmOutcome> = (0..n).map(|_| ArmOutcome::default()).collect();
    let started = Instant::now();
    let mut stop = None;
    for w in 0..opts.warmup {
        for a in round_order(w, n) {
            if arms[a].error.is_none() {
                if let Err(e) = runner.time(a).await {
                    arms[a].error = Some(format!("{e:#}"));
                }
            }
        }
    }
    for (a, arm) in arms.iter_mut().enumerate() {
        if arm.error.is_some() {
            continue;
        }
        if let Err(e) = work_step(runner, a, arm).await {
            arm.error = Some(format!("{e:#}"));
        }
    }
    let started_rounds = Instant::now();
    let mut times: Vec<Vec<Option<f64>>> = Vec::new();
    let compared: Vec<(usize, usize)> = versus
        .iter()
        .enumerate()
        .filter_map(|(a, v)| v.map(|b| (a, b)))
        .collect();
    while stop.is_none() {
        if crate::interrupt::interrupted() {
            stop = Some(StopReason::Interrupted);
            break;
        }
        if arms.iter().all(|a| a.error.is_some()) {
            stop = Some(StopReason::Failed);
            break;
        }
        let mut t = vec![None; n];
        for a in round_order(times.len(), n) {
            if arms[a].error.is_some() {
                continue;
            }
            match runner.time(a).await {
                Ok((d, rows)) => {
                    arms[a].rows = Some(rows);
                    arms[a].latency.record(d);
                    t[a] = Some(d.as_secs_f64());
                }
                Err(e) => arms[a].error = Some(format!("{e:#}")),
            }
        }
        times.push(t);
        // The interval check sorts every ratio: every eighth round is often enough.
        let intervals: Vec<Option<Interval>> = if times.len().is_multiple_of(8) {
            compared
                .iter()
                .filter(|(a, b)| arms[*a].error.is_none() && arms[*b].error.is_none())
                .map(|(a, b)| stats::paired_ratio_ci(&ratios(&times, *a, *b), stats::CONFIDENCE))
                .collect()
        } else {
            vec![None]
        };
        stop = decide(opts, times.len(), started_rounds.elapsed(), &intervals);
    }
    let mut out = Outcome {
        rounds: Rounds {
            rounds: times.len(),
            warmup: opts.warmup,
            floor: opts.floor(),
            stop: stop.unwrap_or_default(),
            seconds: started.elapsed().as_secs_f64(),
        },
        times,
        arms: Vec::new(),
    };
    for (a, b) in compared {
        let ratio = out.paired(a, b);
        arms[a].side = ratio.map(|r| r.side_of(1.0));
        arms[a].ratio = ratio;
        if let (Some(x), Some(y)) = (&arms[a].work, &arms[b].work) {
            arms[a].work_ratio = Some(WorkRatio::of(x, y));
        }
    }
    out.arms = arms;
    out
}

/// Saves a raw EXPLAIN under `out_dir/rel` (written atomically).
pub fn save_plan(out_dir: &std::path::Path, rel: &str, raw: &serde_json::Value) -> Result<()> {
    let path = out_dir.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::paths::write_atomic(&path, serde_json::to_string_pretty(raw)?.as_bytes())
}

/// Geometric mean of ratio intervals (one per query), combined in log space: each
/// interval's log half-width over z is taken as its standard error, the queries are
/// independent, so the mean's standard error is sqrt(Σ se²) / n (a normal approximation).
pub fn geomean_interval(intervals: &[Interval]) -> Option<Interval> {
    let valid: Vec<&Interval> = intervals
        .iter()
        .filter(|i| i.low > 0.0 && i.estimate > 0.0 && i.high.is_finite())
        .collect();
    if valid.is_empty() {
        return None;
    }
    let n = valid.len() as f64;
    let z = stats::normal_quantile(1.0 - (1.0 - stats::CONFIDENCE) / 2.0);
    let mean = valid.iter().map(|i| i.estimate.ln()).sum::<f64>() / n;
    let var: f64 = valid
        .iter()
        .map(|i| ((i.high.ln() - i.low.ln()) / (2.0 * z)).powi(2))
        .sum();
    let half = z * var.sqrt() / n;
    Some(Interval {
        estimate: mean.exp(),
        low: (mean - half).exp(),
        high: (mean + half).exp(),
    })
}

async fn work_step<R: Runner>(runner: &mut R, a: usize, arm: &mut ArmOutcome) -> Result<()> {
    let sample = runner.work(a).await?;
    if let Some(raw) = sample.plan {
        let summary = plan::summarize(&raw)?;
        let mut work = Work::from_plan(&summary);
        work.wal_bytes = sample.wal_bytes;
        arm.work = Some(work);
        arm.plan = Some(summary);
        arm.raw_plan = Some(raw);
    } else if sample.wal_bytes.is_some() {
        arm.work = Some(Work {
            wal_bytes: sample.wal_bytes,
            ..Default::default()
        });
    }
    Ok(())
}

/// A catalog statement as one arm: which connection, what to run, as whom, where.
pub struct SqlArm<'a> {
    pub conn: usize,
    pub spec: &'a QuerySpec,
    pub sql: &'a str,
    pub params: &'a [ParamValue],
    pub who: Principal,
    pub ctx: &'a RequestContext,
}

/// Statements timed as interleaved arms on `conns`, each arm after the first against the
/// first (its paired ratio and interval): how two or more copies are compared.
pub async fn against_first(
    conns: &mut [&mut PgConnection],
    arms: &[SqlArm<'_>],
    opts: &EngineOptions,
) -> Outcome {
    let versus: Vec<Option<usize>> = (0..arms.len()).map(|i| (i > 0).then_some(0)).collect();
    measure(&mut SqlRunner { conns, arms }, &versus, opts).await
}

/// One statement as two interleaved arms, the second against the first: each arm is a
/// connection of `conns` and who runs it.
pub async fn two_arms(
    conns: &mut [&mut PgConnection],
    arms: [(usize, Principal); 2],
    spec: &QuerySpec,
    params: &[ParamValue],
    ctx: &RequestContext,
    opts: &EngineOptions,
) -> Outcome {
    let arms: Vec<SqlArm> = arms
        .into_iter()
        .map(|(conn, who)| SqlArm {
            conn,
            spec,
            sql: &spec.sql,
            params,
            who,
            ctx,
        })
        .collect();
    against_first(conns, &arms, opts).await
}

/// The common runner: arms executed with `exec::timed` (writes rolled back), EXPLAINed
/// with `exec::explain`, writes' WAL from `exec::wal_per_execution` (median of
/// [`WAL_SAMPLES`] executions).
const WAL_SAMPLES: usize = 3;

pub struct SqlRunner<'a, 'c> {
    pub conns: &'a mut [&'c mut PgConnection],
    pub arms: &'a [SqlArm<'a>],
}

impl Runner for SqlRunner<'_, '_> {
    fn arms(&self) -> usize {
        self.arms.len()
    }

    async fn time(&mut self, a: usize) -> Result<(Duration, u64)> {
        let arm = &self.arms[a];
        let conn = &mut *self.conns[arm.conn];
        exec::timed(
            conn, arm.spec, arm.sql, arm.params, &arm.who, arm.ctx, false,
        )
        .await
    }

    async fn work(&mut self, a: usize) -> Result<WorkSample> {
        let arm = &self.arms[a];
        let conn = &mut *self.conns[arm.conn];
        let plan = exec::explain(conn, arm.sql, arm.params, &arm.who, arm.ctx).await?;
        let wal_bytes = if arm.spec.is_read() {
            None
        } else {
            // The median of three executions, each rolled back in its own transaction: a
            // checkpoint landing just before one makes it write full-page images, which
            // the steady state of a warmed-up write path does not.
            let p = [arm.params.to_vec()];
            let mut each = Vec::with_capacity(WAL_SAMPLES);
            for _ in 0..WAL_SAMPLES {
                each.push(exec::wal_per_execution(conn, arm.sql, &p, &arm.who, arm.ctx).await?);
            }
            Some(crate::stats::median(&each))
        };
        Ok(WorkSample {
            plan: Some(plan),
            wal_bytes,
        })
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
