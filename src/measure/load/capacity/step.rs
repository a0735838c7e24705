//! One step: the scenario at one open-model rate for a planned time, with the server's
//! counters and the machine's CPU around it, judged against the SLO, the error budget and
//! the arrivals it had to keep up with.

use super::probe::{self, CpuSampler, CpuShares, IoCounters};
use super::search::StepPlan;
use super::{stats, CapacityOptions, CapacityStep};
use crate::measure::load::scenario_run::{self, ScenarioOptions};
use crate::measure::load::shard::Shard;
use crate::measure::load::{LoadFigures, LoadShape};
use crate::measure::server_view::{self, ServerView, WaitSampler};
use crate::scenario::Scenario;
use crate::target::Target;
use anyhow::Result;
use std::time::{Duration, Instant};

const SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// What this process measured of one step: the load's client figures (its own part when
/// sharded), the server's counters, and the machine's CPU and I/O around it.
pub struct Measured {
    pub figures: LoadFigures,
    server: ServerView,
    cpu: CpuShares,
    io: IoCounters,
    wall_s: f64,
}

/// Runs the step's load (shard `part` of it: rate/N, its users, its own arrivals) and
/// measures around it.
pub async fn measure(
    target: &Target,
    scenario: &Scenario,
    opts: &CapacityOptions,
    postmaster: Option<i64>,
    plan: &StepPlan,
    part: Option<Shard>,
) -> Result<Measured> {
    let run = ScenarioOptions {
        shape: LoadShape {
            clients: part.map_or(opts.users, |s| s.users(opts.users)),
            duration: plan.duration,
            warmup: opts.warmup,
            ramp: Duration::ZERO,
            rate: Some(part.map_or(plan.rate, |s| s.rate(plan.rate))),
            latency_limit: None,
            seed: part.map_or(opts.seed, |s| s.seed(opts.seed)),
        },
        pool: opts.pool,
        goose_report: None,
        statement_timeout: opts.statement_timeout,
        think_scale: 0.0,
        query_seconds: false,
        measure_start: None,
        shard: part,
        start_at: None,
        pooler: opts.pooler.clone(),
    };
    let mut conn = target.connect().await?;
    let before = server_view::snapshot(&mut conn).await?;
    let io_before = probe::io_counters(&mut conn).await?;
    let waits = WaitSampler::start(target.connect().await?, SAMPLE_EVERY);
    let cpu = CpuSampler::start(postmaster, SAMPLE_EVERY);
    let started = Instant::now();
    let outcome = scenario_run::run(target, scenario, &run).await;
    waits.stop();
    let outcome = outcome?;
    let wall_s = started.elapsed().as_secs_f64();
    let cpu = cpu.finish(outcome.window.0, outcome.window.1);
    let after = server_view::snapshot(&mut conn).await?;
    let io = probe::io_counters(&mut conn).await?.since(&io_before);
    let server = server_view::delta(&before, &after, &waits);
    Ok(Measured {
        figures: outcome.figures,
        server,
        cpu,
        io,
        wall_s,
    })
}

/// The step's verdict from what was measured (with the figures of every shard added up
/// when sharded: each shard then reaches the same verdict).
pub fn judged(plan: &StepPlan, m: &Measured, opts: &CapacityOptions) -> CapacityStep {
    let mut step = judge(plan, &m.figures, &m.server, opts);
    add_resources(&mut step, &m.cpu, &m.io, m.wall_s);
    step
}

/// Fewest started transactions that still count as keeping up with `expected` arrivals
/// (Poisson noise allowed for); fewer is a backlog.
pub fn backlog_floor(expected: f64) -> f64 {
    0.9 * expected - 3.0 * expected.sqrt()
}

fn judge(plan: &StepPlan, f: &LoadFigures, s: &ServerView, opts: &CapacityOptions) -> CapacityStep {
    let waits = |prefix: &str| -> f64 {
        s.waits
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    };
    let rate = plan.rate;
    let expected = rate * f.measured_seconds;
    let error_rate = f.failed as f64 / f.attempted.max(1) as f64;
    let need = stats::min_samples(opts.slo.stat);
    let hist = stats::pooled([&f.transaction_latency]);
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
    // Arrivals no user ever took (a backlog at the end) count as not keeping up.
    if (f.attempted as f64) < backlog_floor(expected) {
        reasons.push(format!(
            "started {} of ~{:.0} arrivals (backlog)",
            f.attempted, expected
        ));
    }
    let lag_mean = f.schedule_lag.as_ref().map_or(0.0, |l| l.mean_ms);
    let service_s = (f.transaction_latency.mean_ms - lag_mean).max(0.0) / 1000.0;
    let started_per_s = f.attempted as f64 / f.measured_seconds.max(1e-9);
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
        phase: plan.phase.into(),
        step_seconds: plan.duration.as_secs_f64(),
        lengthened_from_s: (plan.duration > plan.asked).then_some(plan.asked.as_secs_f64()),
        slo_samples_needed: need,
        slo_supported: f.ok >= need,
        slo_ci_ms: stats::slo_ci(&hist, opts.slo.stat),
        users_busy: started_per_s * service_s / opts.users.max(1) as f64,
        wake_lag_p95_ms: f.wake_lag.as_ref().map_or(0.0, |l| l.p95_ms),
        top_error: f
            .errors
            .iter()
            .max_by_key(|e| e.count)
            .map(|e| format!("{} ×{}: {}", e.sqlstate, e.count, e.message))
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// The machine's CPU over the measured window (replacing the whole-run figure of the
/// server view) and the server's I/O over the step.
fn add_resources(step: &mut CapacityStep, cpu: &CpuShares, io: &IoCounters, wall_s: f64) {
    step.cpu_busy = cpu.busy;
    step.cpu_iowait = cpu.iowait;
    step.cpu_server = cpu.server;
    step.cpu_client = cpu.client;
    step.cpu_other = cpu.other;
    let wall_ms = (wall_s * 1000.0).max(1.0);
    step.read_sessions = io.read_ms / wall_ms;
    step.temp_mb_per_s = io.temp_bytes as f64 / 1e6 / wall_s.max(1e-3);
}

/// The terminal line of a step.
pub fn line(s: &CapacityStep, opts: &CapacityOptions) -> String {
    let longer = s
        .lengthened_from_s
        .map(|f| {
            format!(
                " (lengthened from {f:.1} s: {} needs ≥ {} samples)",
                opts.slo.stat, s.slo_samples_needed
            )
        })
        .unwrap_or_default();
    let server = s
        .cpu_server
        .map(|v| format!(", server {:.0} %", v * 100.0))
        .unwrap_or_default();
    let probe = match (s.speed_probe_ms, s.speed_probe_after_ms) {
        (Some(p), Some(a)) => format!(", probe {p:.0}→{a:.0} ms"),
        (Some(p), None) => format!(", probe {p:.0} ms"),
        _ => String::new(),
    };
    let probe = if s.machine_slow {
        format!("{probe} (machine slow)")
    } else {
        probe
    };
    let flush = s
        .flush_probe_ms
        .map(|f| format!(", flush {f:.1} ms"))
        .unwrap_or_default();
    format!(
        "  {:<6} {:>8.1}/s {:>5.1} s{longer} → {:>8.1} tx/s, {} {:.2} ms, errors {:.2} %, CPU {:.0} %{server}, storybench {:.0} %{probe}{flush}{}",
        s.phase,
        s.target_rate,
        s.step_seconds,
        s.achieved_tps,
        opts.slo.stat,
        s.slo_value_ms,
        s.error_rate * 100.0,
        s.cpu_busy * 100.0,
        s.cpu_client * 100.0,
        if s.passed {
            String::new()
        } else {
            format!(" ✗ {}", s.reason)
        }
    )
}
