//! What saturated at the breaking rate: each signal averaged over that rate's repeats and
//! judged against a threshold. Resources first (CPU of the machine, the server, the load
//! generator, other processes; I/O; locks), then their consequences (every user busy,
//! arrivals queueing, the generator waking late), then errors. When a rate broke and no
//! signal crossed its threshold, that is said in so many words.

use super::{CapacityOptions, CapacitySection, CapacityStep, Signal};

pub fn summarize(section: &mut CapacitySection, opts: &CapacityOptions) {
    let at_rate = section.breaking_rate.or_else(|| {
        section
            .steps
            .iter()
            .map(|s| s.target_rate)
            .max_by(f64::total_cmp)
    });
    let Some(rate) = at_rate else { return };
    let steps: Vec<&CapacityStep> = section
        .steps
        .iter()
        .filter(|s| (s.target_rate - rate).abs() <= 1e-9 * rate)
        .collect();
    section.signals_at_rate = Some(rate);
    section.signals = signals(&steps, opts);
    section.saturated = section
        .signals
        .iter()
        .filter(|s| s.saturated)
        .map(|s| {
            let detail = if s.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", s.detail)
            };
            format!("{} {:.1} {}{detail}", s.name, s.value, s.unit)
        })
        .collect();
    let failed = section.steps.iter().find(|s| !s.passed);
    if section.saturated.is_empty() && failed.is_some() {
        let why = steps
            .iter()
            .find(|s| !s.passed)
            .copied()
            .or(failed)
            .map_or(String::new(), |s| s.reason.clone());
        section.saturated.push(format!(
            "no saturation signal found: at {rate:.1}/s the step broke ({why}) with every signal below its threshold, so the limit is the queries' own latency"
        ));
    }
}

fn mean(steps: &[&CapacityStep], f: impl Fn(&CapacityStep) -> f64) -> f64 {
    steps.iter().map(|s| f(s)).sum::<f64>() / steps.len().max(1) as f64
}

/// Resources first, then their consequences, then errors (the report keeps this order).
fn signals(steps: &[&CapacityStep], opts: &CapacityOptions) -> Vec<Signal> {
    let mut out = cpu_signals(steps);
    out.extend(io_and_lock_signals(steps));
    out.extend(queueing_signals(steps, opts));
    out.push(error_signal(steps, opts));
    out
}

fn signal(name: &str, value: f64, unit: &str, threshold: f64, detail: String) -> Signal {
    Signal {
        name: name.into(),
        value,
        unit: unit.into(),
        threshold,
        saturated: value > threshold,
        detail,
    }
}

/// A fraction averaged over the steps, as a percentage.
fn pct(steps: &[&CapacityStep], f: impl Fn(&CapacityStep) -> f64) -> f64 {
    100.0 * mean(steps, f)
}

/// The machine's CPU, and its split between the server, the load generator and the rest.
fn cpu_signals(steps: &[&CapacityStep]) -> Vec<Signal> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let server = steps.iter().all(|s| s.cpu_server.is_some());
    let (busy, client, other) = (
        pct(steps, |s| s.cpu_busy),
        pct(steps, |s| s.cpu_client),
        pct(steps, |s| s.cpu_other),
    );
    let server_pct = pct(steps, |s| s.cpu_server.unwrap_or(0.0));
    let split = if server {
        format!(
            "of {cores} cores: server backends {server_pct:.0} %, load generator {client:.0} %, other processes {other:.0} %"
        )
    } else {
        format!("of {cores} cores: load generator {client:.0} %, the rest other processes or a local server")
    };
    let mut out = vec![signal(
        "machine CPU busy (server and load generator share it)",
        busy,
        "%",
        85.0,
        split,
    )];
    if server {
        out.push(signal(
            "server backend CPU (postgres processes)",
            server_pct,
            "% of the machine",
            85.0,
            String::new(),
        ));
    }
    out.extend([
        signal(
            "load generator CPU (the storybench process)",
            client,
            "% of the machine",
            85.0,
            String::new(),
        ),
        signal(
            "other processes' CPU (neither storybench nor the server: the machine is shared)",
            other,
            "% of the machine",
            25.0,
            "figures measured while other work ran".into(),
        ),
    ]);
    out
}

fn io_and_lock_signals(steps: &[&CapacityStep]) -> [Signal; 6] {
    [
        signal(
            "CPU I/O wait",
            pct(steps, |s| s.cpu_iowait),
            "%",
            20.0,
            String::new(),
        ),
        signal(
            "sessions reading data blocks (pg_stat_database blk_read_time per second)",
            mean(steps, |s| s.read_sessions),
            "sessions",
            0.5,
            String::new(),
        ),
        signal(
            "temp files written (work_mem spills)",
            mean(steps, |s| s.temp_mb_per_s),
            "MB/s",
            1.0,
            String::new(),
        ),
        signal(
            "sessions waiting on I/O (avg)",
            mean(steps, |s| s.io_waits),
            "sessions",
            0.5,
            String::new(),
        ),
        signal(
            "sessions waiting on locks (avg)",
            mean(steps, |s| s.lock_waits),
            "sessions",
            0.5,
            String::new(),
        ),
        signal(
            "sessions waiting on LWLocks (avg)",
            mean(steps, |s| s.lwlock_waits),
            "sessions",
            0.5,
            String::new(),
        ),
    ]
}

/// Consequences: the pool, the users and the open-model scheduler falling behind.
fn queueing_signals(steps: &[&CapacityStep], opts: &CapacityOptions) -> [Signal; 4] {
    let limit = opts.slo.limit_ms.max(0.001);
    let lat_p95 = mean(steps, |s| s.latency.p95_ms).max(0.001);
    [
        signal(
            "connection-pool wait p95 / latency p95",
            100.0 * mean(steps, |s| s.pool_wait_p95_ms) / lat_p95,
            "%",
            25.0,
            String::new(),
        ),
        signal(
            "users busy (mean transactions in flight / users)",
            pct(steps, |s| s.users_busy),
            "%",
            90.0,
            format!(
                "all {} users (each one connection{}) occupied: arrivals wait for a free one; a consequence when the server slowed, the limit itself when nothing else saturated (--users)",
                opts.users,
                if opts.pool.is_some() { ", pooled" } else { "" }
            ),
        ),
        signal(
            "schedule lag p95 / SLO limit (arrivals queued for a user)",
            100.0 * mean(steps, |s| s.schedule_lag_p95_ms) / limit,
            "%",
            50.0,
            String::new(),
        ),
        signal(
            "load generator late (free users' wake-up lag p95 / SLO limit)",
            100.0 * mean(steps, |s| s.wake_lag_p95_ms) / limit,
            "%",
            20.0,
            "the open-model scheduler falls behind its own arrivals: client-side CPU".into(),
        ),
    ]
}

fn error_signal(steps: &[&CapacityStep], opts: &CapacityOptions) -> Signal {
    let top = steps
        .iter()
        .map(|s| s.top_error.as_str())
        .find(|e| !e.is_empty())
        .unwrap_or_default();
    signal(
        "failed transactions",
        pct(steps, |s| s.error_rate),
        "%",
        opts.error_budget * 100.0,
        top.chars().take(160).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::load::capacity::Slo;
    use std::time::Duration;

    fn opts() -> CapacityOptions {
        let mut o = crate::config::RunConfig::preset("full")
            .unwrap()
            .capacity_options()
            .unwrap();
        o.slo = Slo::parse("p95<50ms").unwrap();
        o.warmup = Duration::ZERO;
        o
    }

    #[test]
    fn a_broken_step_always_names_something() {
        let step = |cpu: f64, passed: bool| CapacityStep {
            target_rate: 100.0,
            cpu_busy: cpu,
            cpu_client: cpu / 3.0,
            cpu_server: Some(cpu / 2.0),
            cpu_other: cpu / 6.0,
            passed,
            reason: if passed { "" } else { "p95 80 ms > 50 ms" }.into(),
            ..Default::default()
        };
        let mut s = CapacitySection {
            steps: vec![step(0.2, false)],
            breaking_rate: Some(100.0),
            ..Default::default()
        };
        summarize(&mut s, &opts());
        assert_eq!(s.saturated.len(), 1);
        assert!(
            s.saturated[0].starts_with("no saturation signal found"),
            "{:?}",
            s.saturated
        );
        s.steps = vec![step(0.97, false)];
        summarize(&mut s, &opts());
        assert!(
            s.saturated[0].starts_with("machine CPU busy")
                && s.saturated[0].contains("server backends 48 %"),
            "{:?}",
            s.saturated
        );
    }
}
