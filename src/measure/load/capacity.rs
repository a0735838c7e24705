//! Capacity search: open-model steps of a scenario at increasing arrival rates (doubling, then
//! bisection with longer steps) until the latency SLO or the error budget breaks; then both
//! ends of the bracket are repeated (interleaved) and decided by the majority of their
//! repeats, so two identical searches agree. Reports the highest sustainable rate with the
//! interval the capacity lies in, the knee, what saturated at the breaking rate, and the
//! equivalent number of app users by Little's law.

pub mod flatten;
pub mod growth;
pub(crate) mod probe;
mod saturation;
pub mod scales;
mod search;
pub mod sharded;
pub mod stats;
mod step;

use crate::latency::LatencySummary;
use crate::scenario::Scenario;
use crate::target::Target;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A latency objective such as `p95<50ms`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Slo {
    pub text: String,
    pub stat: crate::latency::Stat,
    pub limit_ms: f64,
}

impl Slo {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.replace(' ', "");
        let (stat, limit) = t
            .split_once("<=")
            .or_else(|| t.split_once('<'))
            .ok_or_else(|| format!("SLO {text:?}: write it as STAT<LIMIT, e.g. p95<50ms"))?;
        let Some(stat) = crate::latency::Stat::parse(stat) else {
            return Err(format!(
                "SLO {text:?}: unknown statistic {stat:?} (p50, p90, p95, p99, p999, max, mean)"
            ));
        };
        let limit = super::parse_duration(limit).map_err(|e| format!("SLO {text:?}: {e}"))?;
        if limit.is_zero() {
            return Err(format!("SLO {text:?}: the limit must be above zero"));
        }
        Ok(Self {
            text: text.to_string(),
            stat,
            limit_ms: limit.as_secs_f64() * 1000.0,
        })
    }

    pub fn value(&self, l: &LatencySummary) -> f64 {
        l.stat(self.stat)
    }
}

#[derive(Clone, Debug)]
pub struct CapacityOptions {
    pub slo: Slo,
    /// Largest failed share of transactions a step may have (0.01 = 1 %).
    pub error_budget: f64,
    pub start_rate: f64,
    pub max_rate: f64,
    /// Measured time of a climbing step (doubling the rate).
    pub step_duration: Duration,
    /// Measured time of a step near the boundary (bisection and repeats): longer, because
    /// these verdicts decide the answer.
    pub boundary_duration: Duration,
    /// A step is lengthened until it holds enough samples for its SLO statistic, up to this.
    pub max_step_duration: Duration,
    pub warmup: Duration,
    pub users: usize,
    pub pool: Option<u32>,
    pub max_steps: usize,
    /// Steps run at each end of the final bracket (majority decides); 1: no repeats.
    pub repeats: usize,
    /// Bisection stops when the bracket is this narrow (0.05: the failing rate is within 5 %
    /// of the passing one).
    pub resolution: f64,
    pub seed: u64,
    pub statement_timeout: Duration,
    /// Every step's users connect through this pooler.
    pub pooler: Option<std::sync::Arc<crate::pooler::Pooler>>,
    /// This process runs one shard of the search (the others meet it in the database).
    pub sharding: Option<sharded::Sharding>,
}

impl CapacityOptions {
    pub fn validate(&self) -> Result<()> {
        if !(self.start_rate > 0.0 && self.max_rate >= self.start_rate) {
            bail!(
                "the start rate ({}) must be above 0 and at most --max-rate ({})",
                self.start_rate,
                self.max_rate
            );
        }
        if self.repeats == 0 || self.max_steps == 0 {
            bail!("--repeats and --max-steps must be at least 1");
        }
        if !(self.resolution > 0.0 && self.resolution < 1.0) {
            bail!("--resolution must be between 0 and 100 % (exclusive)");
        }
        if self.step_duration.is_zero() || self.boundary_duration.is_zero() {
            bail!("--step-duration and --boundary-duration must be above zero");
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CapacityStep {
    pub target_rate: f64,
    pub achieved_tps: f64,
    /// Arrivals the schedule made during measurement (rate × seconds) and those started.
    pub expected: f64,
    pub attempted: u64,
    pub failed: u64,
    pub error_rate: f64,
    pub latency: LatencySummary,
    pub slo_value_ms: f64,
    pub schedule_lag_p95_ms: f64,
    pub pool_wait_p95_ms: f64,
    /// Machine CPU over the measured window (0–1 of all cores), and its I/O wait.
    pub cpu_busy: f64,
    pub cpu_iowait: f64,
    /// Average active sessions waiting on heavyweight locks, I/O, LWLocks; and all active.
    pub lock_waits: f64,
    pub io_waits: f64,
    pub lwlock_waits: f64,
    pub active_sessions: f64,
    pub blocks_read: i64,
    pub wal_bytes: i64,
    pub deadlocks: i64,
    pub passed: bool,
    /// Why the step failed (empty when it passed).
    pub reason: String,
    /// `climb`, `bisect` or `repeat`.
    #[serde(default)]
    pub phase: String,
    /// Measured seconds the step was planned for.
    #[serde(default)]
    pub step_seconds: f64,
    /// Set when the step was lengthened (from this many seconds) to hold enough samples for
    /// its SLO statistic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lengthened_from_s: Option<f64>,
    /// Samples the SLO statistic needs for a finite two-sided 95 % CI (72 for p95).
    #[serde(default)]
    pub slo_samples_needed: u64,
    /// The step held that many: its SLO statistic is supported by its samples.
    #[serde(default)]
    pub slo_supported: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_ci_ms: Option<[f64; 2]>,
    /// CPU of the server's processes, of storybench itself and of everything else (0–1 of
    /// all cores; server None when it is not on this machine).
    #[serde(default)]
    pub cpu_server: Option<f64>,
    #[serde(default)]
    pub cpu_client: f64,
    #[serde(default)]
    pub cpu_other: f64,
    /// Mean share of the users inside a transaction (Little: started/s × service time / users).
    #[serde(default)]
    pub users_busy: f64,
    /// p95 lateness of free users waking for their arrival (the generator falling behind).
    #[serde(default)]
    pub wake_lag_p95_ms: f64,
    /// Average sessions reading data blocks (pg_stat_database blk_read_time per second).
    #[serde(default)]
    pub read_sessions: f64,
    #[serde(default)]
    pub temp_mb_per_s: f64,
    /// The most frequent error, `SQLSTATE ×count: message`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub top_error: String,
    /// A sharded search: the transactions each shard started (by shard number); the figures
    /// above are all shards' added up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shard_parts: Vec<u64>,
    /// The machine-speed probe just before this step (median of three, ms): how fast the
    /// server's CPU was when the step ran (the VM's speed moves within minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_probe_ms: Option<f64>,
    /// The same probe just after the step (median of three, ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_probe_after_ms: Option<f64>,
    /// A probe around this step was more than 1.25× the fastest of the search: the VM ran
    /// slow, and the step was measured again (up to twice); true here when it still was.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub machine_slow: bool,
    /// How many earlier measurements of this step were dropped because the VM ran slow.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub slow_machine_retries: u32,
    /// The WAL-flush probe just before this step (median of five commits, ms): how long a
    /// commit waited for the disk when the step ran (absent without superuser).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_probe_ms: Option<f64>,
}

/// The repeats of one rate, pooled.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RateVerdict {
    pub rate: f64,
    pub repeats: usize,
    pub passed: usize,
    /// The majority of the repeats passed (a tie: the pooled histogram decides).
    pub sustained: bool,
    /// Transactions in the pooled histogram, its SLO statistic and that statistic's 95 % CI.
    pub samples: u64,
    pub slo_value_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_ci_ms: Option<[f64; 2]>,
    pub error_rate: f64,
    /// max/min − 1 of the repeats' SLO statistic (None with one repeat): the step noise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_spread: Option<f64>,
}

/// One saturation signal at the breaking rate, with the threshold it was judged against.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Signal {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub threshold: f64,
    pub saturated: bool,
    /// What the value is made of, or what it means here.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CapacitySection {
    pub scenario: String,
    pub slo: Option<Slo>,
    pub error_budget: f64,
    pub users: usize,
    pub pool: Option<u32>,
    pub step_seconds: f64,
    pub warmup_seconds: f64,
    pub max_rate: f64,
    pub steps: Vec<CapacityStep>,
    /// Highest rate the majority of its repeats sustained below the lowest rate that broke
    /// (None: not even the lowest).
    pub sustainable_rate: Option<f64>,
    /// Lowest rate whose repeats mostly broke the SLO or budget (None: none up to max_rate).
    pub breaking_rate: Option<f64>,
    /// Highest rate whose SLO statistic stayed within twice that of the lowest rate.
    pub knee_rate: Option<f64>,
    /// Signals at the breaking rate (or the highest rate when nothing broke).
    pub signals_at_rate: Option<f64>,
    pub signals: Vec<Signal>,
    /// What saturated at the breaking rate; never empty when a rate broke ("no saturation
    /// signal found: …" when no signal crossed its threshold).
    pub saturated: Vec<String>,
    /// Little's law: users = rate × (response time + think time).
    pub mean_think_s: f64,
    pub response_s: Option<f64>,
    pub equivalent_users: Option<f64>,
    #[serde(default)]
    pub boundary_step_seconds: f64,
    #[serde(default)]
    pub max_step_seconds: f64,
    #[serde(default)]
    pub repeats: usize,
    #[serde(default)]
    pub resolution: f64,
    /// Every rate tried, its repeats pooled, by rate.
    #[serde(default)]
    pub rates: Vec<RateVerdict>,
    /// The capacity lies between these: the highest rate every repeat sustained and the
    /// lowest every repeat broke (high None: nothing broke up to max_rate).
    #[serde(default)]
    pub sustainable_low: Option<f64>,
    #[serde(default)]
    pub sustainable_high: Option<f64>,
    /// How the interval was derived, in words.
    #[serde(default)]
    pub interval_basis: String,
    /// Both ends of the bracket got their repeats (false: the step budget ran out first).
    #[serde(default)]
    pub confirmed: bool,
    /// Lengthened steps, budget, non-monotone verdicts: what a reader should know.
    #[serde(default)]
    pub notes: Vec<String>,
    /// How each step's starting state was restored, and the time that took in total.
    #[serde(default)]
    pub step_reset: StepReset,
    #[serde(default)]
    pub reset_seconds: f64,
    /// This shard of a sharded search (`--shard I/N`); its steps carry every shard's figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::measure::load::shard::ShardInfo>,
    /// The shards `storybench merge` checked agree (the merged results of a sharded search).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_shards: Vec<crate::measure::load::shard::ShardInfo>,
    /// Where the SLO statistic crosses its limit inside the final bracket, interpolated
    /// between the two ends' pooled values (log rate against log latency): an estimate
    /// off the search's grid, so two searches that ended one grid step apart agree closer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crossing_rate: Option<f64>,
    /// The machine-speed probe's times (ms), half before and half after the search: the
    /// server's CPU speed during it, which compare divides out of a capacity change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub speed_probe_ms: Vec<f64>,
}

/// How a capacity step starts from the same state as every other step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepReset {
    /// A fresh clone of the stage's copy per step: the same pages for every rate.
    Copy,
    /// VACUUM and a quiet server before each step on one shared database (results files
    /// written before step copies existed read as this).
    #[default]
    Vacuum,
}

impl StepReset {
    /// Shards share one database across processes, and a pooler is configured for one
    /// database: both keep the shared database.
    fn for_options(opts: &CapacityOptions) -> Self {
        if opts.sharding.is_some() || opts.pooler.is_some() {
            Self::Vacuum
        } else {
            Self::Copy
        }
    }
}

/// Probe runs before each step (their median is the step's).
pub(crate) const STEP_PROBE_RUNS: usize = 3;
/// WAL-flushing commits timed before each step (median taken; ~5 ms each on a VM disk).
const FLUSH_PROBE_RUNS: usize = 5;

/// Probe runs before and after the search.
const SPEED_PROBE_RUNS: usize = 5;

/// A probe this much slower than the fastest seen in the search marks a step measured while
/// the VM ran slow. In two quiet `capacity --scales 1,3,10` runs (2026-12-08) the probe sat
/// at 58–63 ms and jumped to 82–96 ms for single steps; 9 of the 10 steps with such a probe
/// failed, and 3 of them at a rate that passed at normal speed.
const SLOW_MACHINE: f64 = 1.25;
/// How many times a step measured on a slow machine is measured again.
pub(crate) const SLOW_MACHINE_RETRIES: u32 = 2;

pub(crate) fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Whether the probe before or after a step was slow against the fastest seen.
pub(crate) fn machine_slow(before: f64, after: f64, fastest: f64) -> bool {
    fastest > 0.0 && before.max(after) > fastest * SLOW_MACHINE
}

/// Runs the search on `target` (the stage's pristine copy of the dataset).
///
/// The bedtime mix writes: every play inserts a play event and its trigger rewrites the
/// story's row, so the 32 users' stories and events spread over new pages as a search runs
/// (~40,000 transactions). Measured on one copy, the server's CPU per transaction at the
/// same rate grew 1.6× from the first steps to the last (3.7 → 6.3 ms at 160/s), and two
/// identical searches ended 14 % apart. Vacuuming between steps removed dead tuples but
/// not the drift. So every step runs on its own fresh clone of the stage's copy
/// ([`StepReset::Copy`], ~3 s at scale 1): each rate is measured on the same pages. A
/// sharded search and one through a pooler share one database across processes or the
/// pooler's configuration, and keep the older reset: vacuum and quiesce before each step.
pub async fn search(
    target: &Target,
    scenario: &Scenario,
    opts: &CapacityOptions,
) -> Result<CapacitySection> {
    opts.validate()?;
    let (postmaster, mut speed_probe_ms) = {
        let mut conn = target.connect().await?;
        let pm = probe::local_postmaster(&mut conn).await;
        (pm, probe::speed_probe(&mut conn, SPEED_PROBE_RUNS).await?)
    };
    let resetter = StepResetter::new(target, StepReset::for_options(opts));
    let rendezvous = match opts.sharding {
        Some(s) => Some(tokio::sync::Mutex::new(
            sharded::Rendezvous::open(target, s).await?,
        )),
        None => None,
    };
    let next_step = std::cell::Cell::new(0usize);
    // The fastest probe seen so far: the machine's own speed, which slow phases of the VM
    // are judged against.
    let fastest = std::cell::Cell::new(crate::stats::median(&speed_probe_ms));
    let searched = search::drive(opts, |plan| {
        let (resetter, rendezvous, next_step, fastest) =
            (&resetter, &rendezvous, &next_step, &fastest);
        async move {
            let index = next_step.replace(next_step.get() + 1);
            let mut meeting = match rendezvous {
                Some(r) => Some(r.lock().await),
                None => None,
            };
            let mut slow_retries = 0;
            let mut kept: Option<CapacityStep> = None;
            loop {
                let attempt = async {
                    let on = match meeting.as_mut() {
                        Some(r) => {
                            r.start(index, async { resetter.reset().await.map(|_| ()) })
                                .await?;
                            None
                        }
                        None => resetter.reset().await?,
                    };
                    let on = on.as_ref().unwrap_or(target);
                    let (speed, flush) = {
                        let mut conn = on.connect().await?;
                        let runs = probe::speed_probe(&mut conn, STEP_PROBE_RUNS).await?;
                        let flush = probe::flush_probe(&mut conn, FLUSH_PROBE_RUNS).await;
                        (crate::stats::median(&runs), flush)
                    };
                    let mut measured = measure_step(on, scenario, opts, postmaster, &plan).await?;
                    let after = {
                        let mut conn = on.connect().await?;
                        crate::stats::median(&probe::speed_probe(&mut conn, STEP_PROBE_RUNS).await?)
                    };
                    fastest.set(fastest.get().min(speed).min(after));
                    let mut parts = Vec::new();
                    if let Some(r) = meeting.as_mut() {
                        let (all, p) = r.exchange(index, &measured.figures, plan.duration).await?;
                        measured.figures = all;
                        parts = p;
                    }
                    let mut step = step::judged(&plan, &measured, opts);
                    step.shard_parts = parts;
                    step.speed_probe_ms = Some(speed);
                    step.speed_probe_after_ms = Some(after);
                    step.flush_probe_ms = flush;
                    step.slow_machine_retries = slow_retries;
                    step.machine_slow = machine_slow(speed, after, fastest.get());
                    Ok::<CapacityStep, anyhow::Error>(step)
                };
                let step = match attempt.await {
                    Ok(step) => step,
                    // Stopped while measuring a slow step again: the measurement made counts.
                    Err(_) if crate::interrupt::interrupted() && kept.is_some() => {
                        return Ok(kept.take().expect("checked"));
                    }
                    Err(e) => return Err(e),
                };
                crate::say!("{}", step::line(&step, opts));
                // Shards take their steps together, so only a search of its own repeats one.
                let again = step.machine_slow
                    && slow_retries < SLOW_MACHINE_RETRIES
                    && meeting.is_none()
                    && !crate::interrupt::interrupted();
                if !again {
                    return Ok(step);
                }
                crate::say!(
                    "    the machine ran slow around that step (probe {:.0} → {:.0} ms, fastest {:.0} ms): measuring it again",
                    step.speed_probe_ms.unwrap_or(0.0),
                    step.speed_probe_after_ms.unwrap_or(0.0),
                    fastest.get()
                );
                kept = Some(step);
                slow_retries += 1;
            }
        }
    })
    .await;
    // The last step's clone goes whatever the search returned (kept with --keep-copies).
    resetter.finish().await?;
    let (steps, exhausted) = searched?;
    if !crate::interrupt::interrupted() {
        let mut conn = target.connect().await?;
        speed_probe_ms.extend(probe::speed_probe(&mut conn, SPEED_PROBE_RUNS).await?);
    }
    let mut section = CapacitySection {
        speed_probe_ms,
        step_reset: resetter.mode,
        reset_seconds: resetter.seconds.get(),
        steps,
        ..section_of(scenario, opts)
    };
    if postmaster.is_none() {
        section.notes.push(
            "the server is not on this machine (or its processes are unreadable): no server CPU split"
                .into(),
        );
    }
    if let (Some(r), Some(s)) = (rendezvous, opts.sharding) {
        section.shard = Some(crate::measure::load::shard::ShardInfo {
            index: s.shard.index,
            count: s.shard.count,
            start_at: s.start_at,
            measure_started_at: r.into_inner().first_start.unwrap_or(s.start_at),
            // The command that made or found the shared copy names it.
            copy: String::new(),
        });
    }
    search::conclude(&mut section, opts, exhausted);
    saturation::summarize(&mut section, opts);
    Ok(section)
}

/// Restores the state every step starts from: a fresh clone of the stage's copy (the
/// previous one discarded), or a vacuum and quiesce of the copy itself.
struct StepResetter<'a> {
    target: &'a Target,
    mode: StepReset,
    seconds: std::cell::Cell<f64>,
    copy: std::cell::RefCell<Option<crate::pristine::PristineCopy>>,
}

impl<'a> StepResetter<'a> {
    fn new(target: &'a Target, mode: StepReset) -> Self {
        Self {
            target,
            mode,
            seconds: std::cell::Cell::new(0.0),
            copy: std::cell::RefCell::new(None),
        }
    }

    /// Resets; returns the clone to measure on, if any.
    async fn reset(&self) -> Result<Option<Target>> {
        let started = std::time::Instant::now();
        let on = match self.mode {
            StepReset::Copy => {
                let previous = self.copy.borrow_mut().take();
                if let Some(previous) = previous {
                    previous.discard().await?;
                }
                let copy =
                    crate::pristine::PristineCopy::create(self.target, "capacity_step").await?;
                let on = self.target.on_database(copy.name());
                *self.copy.borrow_mut() = Some(copy);
                Some(on)
            }
            StepReset::Vacuum => {
                crate::pristine::vacuum_tables(self.target).await?;
                crate::pristine::quiesce(self.target).await;
                None
            }
        };
        self.seconds
            .set(self.seconds.get() + started.elapsed().as_secs_f64());
        Ok(on)
    }

    /// Drops the last step's clone (kept with --keep-copies).
    async fn finish(&self) -> Result<()> {
        let last = self.copy.borrow_mut().take();
        match last {
            Some(copy) => copy.drop().await,
            None => Ok(()),
        }
    }
}

/// One step's load, with a live line while it runs.
async fn measure_step(
    on: &Target,
    scenario: &Scenario,
    opts: &CapacityOptions,
    postmaster: Option<i64>,
    plan: &search::StepPlan,
) -> Result<step::Measured> {
    let live = crate::progress::bar(None, "  {spinner} capacity {wide_msg} {elapsed}");
    live.set_message(format!(
        "step at {:.1}/s ({}, {:.0} s)",
        plan.rate,
        plan.phase,
        plan.duration.as_secs_f64()
    ));
    let part = opts.sharding.map(|s| s.shard);
    let measured = step::measure(on, scenario, opts, postmaster, plan, part).await;
    live.finish_and_clear();
    measured
}

/// The search's options as its section records them.
fn section_of(scenario: &Scenario, opts: &CapacityOptions) -> CapacitySection {
    CapacitySection {
        scenario: scenario.name.clone(),
        slo: Some(opts.slo.clone()),
        error_budget: opts.error_budget,
        users: opts.users,
        pool: opts.pool,
        step_seconds: opts.step_duration.as_secs_f64(),
        warmup_seconds: opts.warmup.as_secs_f64(),
        max_rate: opts.max_rate,
        mean_think_s: scenario.mean_think().as_secs_f64(),
        boundary_step_seconds: opts.boundary_duration.as_secs_f64(),
        max_step_seconds: opts.max_step_duration.as_secs_f64(),
        repeats: opts.repeats,
        resolution: opts.resolution,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Probes of the 2026-12-08 runs: 58–63 ms normal, 82–96 ms in the VM's slow phases.
    #[test]
    fn a_step_is_slow_when_a_probe_around_it_is_a_quarter_above_the_fastest() {
        assert!(!machine_slow(60.0, 62.0, 58.0));
        assert!(!machine_slow(72.0, 58.0, 58.0));
        assert!(machine_slow(85.0, 60.0, 58.0));
        assert!(machine_slow(59.0, 90.0, 58.0));
        assert!(!machine_slow(90.0, 90.0, 0.0), "no reference, no verdict");
    }

    #[test]
    fn slo_and_budget_parse() {
        let s = Slo::parse("p95<50ms").unwrap();
        assert_eq!((s.stat, s.limit_ms), (crate::latency::Stat::P95, 50.0));
        assert_eq!(
            Slo::parse("p99.9 <= 1s").unwrap().stat,
            crate::latency::Stat::P999
        );
        assert!(Slo::parse("p42<5ms").is_err());
        assert!(Slo::parse("p95>5ms").is_err());
    }
}
