//! Capacity search: open-model steps of a scenario at increasing arrival rates (geometric,
//! then bisection) until the latency SLO or the error budget breaks. Reports the highest
//! sustainable rate, the knee, what saturated (from each step's server-side deltas and the
//! client's lag and pool wait) and the equivalent number of app users by Little's law.

use super::scenario_run::{self, ScenarioOptions};
use super::{LoadFigures, LoadShape};
use crate::measure::latency::LatencySummary;
use crate::measure::server_view::{self, ServerView, WaitSampler};
use crate::scenario::Scenario;
use crate::target::Target;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A latency objective such as `p95<50ms`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Slo {
    pub text: String,
    /// p50, p90, p95, p99, p999, max or mean.
    pub stat: String,
    pub limit_ms: f64,
}

impl Slo {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.replace(' ', "");
        let (stat, limit) = t
            .split_once("<=")
            .or_else(|| t.split_once('<'))
            .ok_or_else(|| format!("SLO {text:?}: write it as STAT<LIMIT, e.g. p95<50ms"))?;
        let stat = stat.to_lowercase().replace("99.9", "999");
        if LatencySummary::default().percentile(&stat).is_none() {
            return Err(format!(
                "SLO {text:?}: unknown statistic {stat:?} (p50, p90, p95, p99, p999, max, mean)"
            ));
        }
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
        l.percentile(&self.stat).unwrap_or(f64::INFINITY)
    }
}

#[derive(Clone, Debug)]
pub struct CapacityOptions {
    pub slo: Slo,
    /// Largest failed share of transactions a step may have (0.01 = 1 %).
    pub error_budget: f64,
    pub start_rate: f64,
    pub max_rate: f64,
    pub step_duration: Duration,
    pub warmup: Duration,
    pub users: usize,
    pub pool: Option<u32>,
    pub max_steps: usize,
    pub seed: u64,
    pub statement_timeout: Duration,
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
}

/// One saturation signal at the breaking step, with the threshold it was judged against.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Signal {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub threshold: f64,
    pub saturated: bool,
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
    /// Highest rate that met the SLO and the error budget (None: not even the lowest).
    pub sustainable_rate: Option<f64>,
    /// Lowest rate that broke them (None: none did up to max_rate).
    pub breaking_rate: Option<f64>,
    /// Highest rate whose SLO statistic stayed within twice that of the lowest rate.
    pub knee_rate: Option<f64>,
    /// Signals at the breaking step (or the highest step when nothing broke).
    pub signals_at_rate: Option<f64>,
    pub signals: Vec<Signal>,
    pub saturated: Vec<String>,
    /// Little's law: users = rate × (response time + think time).
    pub mean_think_s: f64,
    pub response_s: Option<f64>,
    pub equivalent_users: Option<f64>,
}

/// Runs the search.
pub async fn search(
    target: &Target,
    scenario: &Scenario,
    opts: &CapacityOptions,
) -> Result<CapacitySection> {
    if !(opts.start_rate > 0.0 && opts.max_rate >= opts.start_rate) {
        bail!(
            "the start rate ({}) must be above 0 and at most --max-rate ({})",
            opts.start_rate,
            opts.max_rate
        );
    }
    let mut section = CapacitySection {
        scenario: scenario.name.clone(),
        slo: Some(opts.slo.clone()),
        error_budget: opts.error_budget,
        users: opts.users,
        pool: opts.pool,
        step_seconds: opts.step_duration.as_secs_f64(),
        warmup_seconds: opts.warmup.as_secs_f64(),
        max_rate: opts.max_rate,
        mean_think_s: scenario.mean_think().as_secs_f64(),
        ..Default::default()
    };
    let (mut good, mut bad): (Option<f64>, Option<f64>) = (None, None);
    let mut rate = opts.start_rate;
    while section.steps.len() < opts.max_steps && !crate::interrupt::interrupted() {
        let step = match run_step(target, scenario, opts, rate).await {
            Err(_) if crate::interrupt::interrupted() => break,
            step => step?,
        };
        if crate::interrupt::interrupted() {
            break; // a cut-short step is no measurement: keep the finished ones
        }
        eprintln!(
            "  {:>9.1}/s → {:>9.1} tx/s, {} {:.2} ms, errors {:.2} %{}",
            rate,
            step.achieved_tps,
            opts.slo.stat,
            step.slo_value_ms,
            step.error_rate * 100.0,
            if step.passed {
                String::new()
            } else {
                format!(" ✗ {}", step.reason)
            }
        );
        let passed = step.passed;
        section.steps.push(step);
        if passed {
            good = Some(good.map_or(rate, |g: f64| g.max(rate)));
        } else {
            bad = Some(bad.map_or(rate, |b: f64| b.min(rate)));
        }
        rate = match (good, bad) {
            // Geometric climb until something breaks or the ceiling.
            (Some(g), None) if g >= opts.max_rate => break,
            (Some(g), None) => (g * 2.0).min(opts.max_rate),
            // Even the lowest rate broke: halve.
            (None, Some(b)) if b / 2.0 < 0.1 => break,
            (None, Some(b)) => b / 2.0,
            // Bisect until within 10 %.
            (Some(g), Some(b)) if (b - g) / g <= 0.1 => break,
            (Some(g), Some(b)) => (g * b).sqrt(),
            (None, None) => break,
        };
    }
    section.sustainable_rate = good;
    section.breaking_rate = bad;
    summarize(&mut section, opts);
    Ok(section)
}

async fn run_step(
    target: &Target,
    scenario: &Scenario,
    opts: &CapacityOptions,
    rate: f64,
) -> Result<CapacityStep> {
    let run = ScenarioOptions {
        shape: LoadShape {
            clients: opts.users,
            duration: opts.step_duration,
            warmup: opts.warmup,
            ramp: Duration::ZERO,
            rate: Some(rate),
            latency_limit: None,
            seed: opts.seed,
        },
        pool: opts.pool,
        goose_report: None,
        statement_timeout: opts.statement_timeout,
        think_scale: 0.0,
    };
    let mut conn = target.connect().await?;
    let before = server_view::snapshot(&mut conn).await?;
    let sampler = WaitSampler::start(target.connect().await?, Duration::from_millis(200));
    let outcome = scenario_run::run(target, scenario, &run).await;
    sampler.stop();
    let outcome = outcome?;
    let after = server_view::snapshot(&mut conn).await?;
    let server = server_view::delta(&before, &after, &sampler);
    Ok(judge(rate, &outcome.figures, &server, opts))
}

fn judge(rate: f64, f: &LoadFigures, s: &ServerView, opts: &CapacityOptions) -> CapacityStep {
    let waits = |prefix: &str| -> f64 {
        s.waits
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    };
    let expected = rate * f.measured_seconds;
    let error_rate = f.failed as f64 / f.attempted.max(1) as f64;
    let slo_value = if f.ok > 0 {
        opts.slo.value(&f.transaction_latency)
    } else {
        f64::INFINITY
    };
    let mut reasons = Vec::new();
    if slo_value > opts.slo.limit_ms {
        reasons.push(format!(
            "{} {:.2} ms > {:.2} ms",
            opts.slo.stat, slo_value, opts.slo.limit_ms
        ));
    }
    if error_rate > opts.error_budget {
        reasons.push(format!(
            "errors {:.2} % > {:.2} %",
            error_rate * 100.0,
            opts.error_budget * 100.0
        ));
    }
    // Arrivals no user ever took (a backlog at the end) count as not keeping up; Poisson
    // noise allowed for.
    let floor = 0.9 * expected - 3.0 * expected.sqrt();
    if (f.attempted as f64) < floor {
        reasons.push(format!(
            "started {} of ~{:.0} arrivals (backlog)",
            f.attempted, expected
        ));
    }
    CapacityStep {
        target_rate: rate,
        achieved_tps: f.tps,
        expected,
        attempted: f.attempted,
        failed: f.failed,
        error_rate,
        latency: f.transaction_latency.clone(),
        slo_value_ms: slo_value,
        schedule_lag_p95_ms: f.schedule_lag.as_ref().map_or(0.0, |l| l.p95_ms),
        pool_wait_p95_ms: f.pool_wait.as_ref().map_or(0.0, |l| l.p95_ms),
        cpu_busy: s.cpu_busy,
        cpu_iowait: s.cpu_iowait,
        lock_waits: waits("Lock:"),
        io_waits: waits("IO:"),
        lwlock_waits: waits("LWLock:"),
        active_sessions: s.waits.values().sum(),
        blocks_read: s.blocks_read,
        wal_bytes: s.wal_bytes,
        deadlocks: s.deadlocks,
        passed: reasons.is_empty(),
        reason: reasons.join("; "),
    }
}

/// Knee, saturation signals and Little's law from the steps.
fn summarize(section: &mut CapacitySection, opts: &CapacityOptions) {
    let mut by_rate: Vec<&CapacityStep> = section.steps.iter().collect();
    by_rate.sort_by(|a, b| a.target_rate.total_cmp(&b.target_rate));
    if let Some(lowest) = by_rate.first() {
        let base = lowest.slo_value_ms.max(0.001);
        section.knee_rate = by_rate
            .iter()
            .take_while(|s| s.slo_value_ms <= 2.0 * base && s.error_rate <= opts.error_budget)
            .map(|s| s.target_rate)
            .last();
    }
    let at = by_rate
        .iter()
        .find(|s| Some(s.target_rate) == section.breaking_rate)
        .or(by_rate.last());
    if let Some(s) = at {
        let lag_share = s.schedule_lag_p95_ms / opts.slo.limit_ms;
        let pool_share = s.pool_wait_p95_ms / s.latency.p95_ms.max(0.001);
        let sig = |name: &str, value: f64, unit: &str, threshold: f64| Signal {
            name: name.into(),
            value,
            unit: unit.into(),
            threshold,
            saturated: value > threshold,
        };
        section.signals_at_rate = Some(s.target_rate);
        section.signals = vec![
            sig(
                "machine CPU busy (server and load generator share it)",
                s.cpu_busy * 100.0,
                "%",
                85.0,
            ),
            sig("CPU I/O wait", s.cpu_iowait * 100.0, "%", 20.0),
            sig(
                "sessions waiting on locks (avg)",
                s.lock_waits,
                "sessions",
                0.5,
            ),
            sig("sessions waiting on I/O (avg)", s.io_waits, "sessions", 0.5),
            sig(
                "sessions waiting on LWLocks (avg)",
                s.lwlock_waits,
                "sessions",
                0.5,
            ),
            sig(
                "connection-pool wait p95 / latency p95",
                pool_share * 100.0,
                "%",
                25.0,
            ),
            sig(
                "schedule lag p95 / SLO limit (all users busy: arrivals queued)",
                lag_share * 100.0,
                "%",
                50.0,
            ),
        ];
        section.saturated = section
            .signals
            .iter()
            .filter(|x| x.saturated)
            .map(|x| x.name.clone())
            .collect();
    }
    if let Some(rate) = section.sustainable_rate {
        let r = section
            .steps
            .iter()
            .find(|s| s.target_rate == rate)
            .map(|s| s.latency.mean_ms / 1000.0);
        section.response_s = r;
        section.equivalent_users = r.map(|r| rate * (r + section.mean_think_s));
    }
}

/// `1%`, `0.5 %` or `0.01` → a fraction.
pub fn parse_budget(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("{text:?} is not an error budget (write 1% or 0.01)"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("error budget {text:?} must be between 0 and 100 %"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slo_and_budget_parse() {
        let s = Slo::parse("p95<50ms").unwrap();
        assert_eq!((s.stat.as_str(), s.limit_ms), ("p95", 50.0));
        assert_eq!(Slo::parse("p99.9 <= 1s").unwrap().stat, "p999");
        assert!(Slo::parse("p42<5ms").is_err());
        assert!(Slo::parse("p95>5ms").is_err());
        assert_eq!(parse_budget("1%").unwrap(), 0.01);
        assert_eq!(parse_budget("0.05").unwrap(), 0.05);
        assert!(parse_budget("150%").is_err());
    }
}
