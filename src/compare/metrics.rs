//! The comparable figures of a results file, flattened: one metric per query, variant and
//! statistic, each with its direction and its own noise estimate, plus the plans to check
//! for shape regressions.

use crate::measure::latency::LatencySummary;
use crate::plan::PlanSummary;
use crate::results::RunResults;
use serde::Serialize;

/// One comparable figure.
#[derive(Clone, Debug, Serialize)]
pub struct Metric {
    /// Stable key, e.g. `explain/recent_stories/doc/heavy/p95`.
    pub key: String,
    pub unit: &'static str,
    pub value: f64,
    pub lower_is_better: bool,
    /// Relative uncertainty of the value (0.05 = ±5 %) from the run's own spread.
    pub noise: f64,
}

/// A plan captured in a run, identified like its latency metrics.
#[derive(Clone, Debug)]
pub struct PlanAt {
    pub key: String,
    pub plan: PlanSummary,
}

/// Smallest noise assumed for any measurement on a shared machine.
const NOISE_FLOOR: f64 = 0.02;

/// Relative uncertainty of a latency percentile: about two standard errors of the mean,
/// relative to the mean, scaled up for tail percentiles (fewer samples lie beyond them).
fn latency_noise(l: &LatencySummary, tail_share: f64) -> f64 {
    if l.count == 0 || l.mean_ms <= 0.0 {
        return 1.0;
    }
    let n_tail = (l.count as f64 * tail_share).max(1.0);
    (2.0 * l.stdev_ms / l.mean_ms / n_tail.sqrt()).max(NOISE_FLOOR)
}

fn push_latency(out: &mut Vec<Metric>, key: &str, l: &LatencySummary) {
    for (name, value, tail) in [
        ("p50", l.p50_ms, 0.5),
        ("p95", l.p95_ms, 0.05),
        ("p99", l.p99_ms, 0.01),
    ] {
        out.push(Metric {
            key: format!("{key}/{name}"),
            unit: "ms",
            value,
            lower_is_better: true,
            noise: latency_noise(l, tail),
        });
    }
}

pub fn metrics(r: &RunResults) -> (Vec<Metric>, Vec<PlanAt>) {
    let mut out = Vec::new();
    let mut plans = Vec::new();
    if let Some(ex) = &r.explain {
        for q in &ex.queries {
            for s in &q.subjects {
                for run in &s.by_strategy {
                    let key = format!("explain/{}/{}/{}", q.name, run.strategy, s.subject);
                    if let Some(l) = &run.latency {
                        push_latency(&mut out, &key, l);
                    }
                    if let Some(p) = &run.plan {
                        plans.push(PlanAt {
                            key,
                            plan: p.clone(),
                        });
                    }
                }
            }
        }
    }
    if let Some(load) = &r.load {
        let f = &load.figures;
        let key = format!("load/{}", load.target);
        let noise = throughput_noise(&f.timeline.iter().map(|p| p.ok as f64).collect::<Vec<_>>());
        out.push(Metric {
            key: format!("{key}/throughput"),
            unit: "tx/s",
            value: f.tps,
            lower_is_better: false,
            noise,
        });
        push_latency(
            &mut out,
            &format!("{key}/transactions"),
            &f.transaction_latency,
        );
        for q in &f.queries {
            push_latency(&mut out, &format!("{key}/query/{}", q.name), &q.latency);
        }
    }
    (out, plans)
}

/// Relative standard error of mean throughput from per-second counts.
fn throughput_noise(per_second: &[f64]) -> f64 {
    let n = per_second.len();
    if n < 3 {
        return 0.1;
    }
    let mean = per_second.iter().sum::<f64>() / n as f64;
    if mean <= 0.0 {
        return 1.0;
    }
    let var = per_second.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (2.0 * var.sqrt() / mean / (n as f64).sqrt()).max(NOISE_FLOOR)
}
