//! The search itself, apart from how a step runs (so its rules are unit-tested on made-up
//! steps): climb by doubling with short steps, bisect the bracket geometrically with longer
//! steps until it is within the resolution, then repeat both ends, alternating, until each
//! has `repeats` steps; a rate's verdict is the majority of its repeats. A repeat that flips
//! an end moves the bracket and the search goes on from there.

use super::stats::{self, planned_samples};
use super::{CapacityOptions, CapacitySection, CapacityStep, RateVerdict};
use anyhow::Result;
use std::future::Future;
use std::time::Duration;

/// Rates below this are not tried.
const MIN_RATE: f64 = 0.1;

/// One step to run.
#[derive(Clone, Debug)]
pub struct StepPlan {
    pub rate: f64,
    pub phase: &'static str,
    pub duration: Duration,
    /// The duration asked for before lengthening.
    pub asked: Duration,
}

/// Step length for a rate: the phase's duration, lengthened so the expected arrivals hold
/// enough samples for the SLO statistic (capped at max_step_duration).
pub fn plan(opts: &CapacityOptions, rate: f64, phase: &'static str) -> StepPlan {
    let asked = if phase == "climb" {
        opts.step_duration
    } else {
        opts.boundary_duration
    };
    let want = Duration::from_secs_f64(planned_samples(opts.slo.stat) / rate);
    StepPlan {
        rate,
        phase,
        duration: asked.max(want.min(opts.max_step_duration)),
        asked,
    }
}

/// Runs steps until the bracket is settled or the budget is spent; returns the steps and
/// whether the budget ran out.
pub async fn drive<F, Fut>(opts: &CapacityOptions, mut run: F) -> Result<(Vec<CapacityStep>, bool)>
where
    F: FnMut(StepPlan) -> Fut,
    Fut: Future<Output = Result<CapacityStep>>,
{
    let mut steps: Vec<CapacityStep> = Vec::new();
    let mut next = Some((opts.start_rate, "climb"));
    while let Some((rate, phase)) = next {
        if steps.len() >= opts.max_steps {
            return Ok((steps, true));
        }
        if crate::interrupt::interrupted() {
            break; // keep the finished steps: the partial results report them
        }
        match run(plan(opts, rate, phase)).await {
            Ok(step) if !crate::interrupt::interrupted() => steps.push(step),
            // A step cut short by the interrupt is no measurement.
            Ok(_) => break,
            Err(_) if crate::interrupt::interrupted() => break,
            Err(e) => return Err(e),
        }
        next = choose(&verdicts(&steps, opts), opts);
    }
    Ok((steps, false))
}

/// The bracket: the lowest rate that broke, and the highest sustained rate below it.
fn bracket(table: &[RateVerdict]) -> (Option<&RateVerdict>, Option<&RateVerdict>) {
    let bad = table.iter().find(|v| !v.sustained);
    let good = table
        .iter()
        .rev()
        .find(|v| v.sustained && bad.is_none_or(|b| v.rate < b.rate));
    (good, bad)
}

/// The next step, or None when done.
fn choose(table: &[RateVerdict], opts: &CapacityOptions) -> Option<(f64, &'static str)> {
    let unsettled = |v: &RateVerdict| v.repeats < opts.repeats || 2 * v.passed == v.repeats;
    match bracket(table) {
        (Some(g), None) if g.rate >= opts.max_rate * (1.0 - 1e-9) => None,
        (Some(g), None) => Some(((g.rate * 2.0).min(opts.max_rate), "climb")),
        (None, Some(b)) if b.rate / 2.0 < MIN_RATE.max(opts.start_rate / 16.0) => None,
        (None, Some(_)) if latency_floor(table, opts).is_some() => None,
        (None, Some(b)) => Some((b.rate / 2.0, "climb")),
        (Some(g), Some(b)) if b.rate / g.rate - 1.0 > opts.resolution * (1.0 + 1e-9) => {
            Some(((g.rate * b.rate).sqrt(), "bisect"))
        }
        (Some(g), Some(b)) => {
            // Alternate the ends (the one with fewer repeats first) so drift hits both alike.
            let end = [g, b]
                .into_iter()
                .filter(|v| unsettled(v))
                .min_by_key(|v| v.repeats)?;
            Some((end.rate, "repeat"))
        }
        (None, None) => None,
    }
}

/// Halving the rate did not bring the SLO statistic down (by 20 %): the limit is the latency
/// at light load (the queries, or a busy machine), not the load. The two lowest rates.
fn latency_floor<'a>(
    table: &'a [RateVerdict],
    opts: &CapacityOptions,
) -> Option<(&'a RateVerdict, &'a RateVerdict)> {
    let (low, next) = (table.first()?, table.get(1)?);
    (!low.sustained
        && low.slo_value_ms > opts.slo.limit_ms
        && low.slo_value_ms >= 0.8 * next.slo_value_ms)
        .then_some((low, next))
}

/// Steps of the same rate (the search reuses exact rates, so equality up to rounding).
fn same_rate(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Every rate tried, its repeats pooled, by rate.
pub fn verdicts(steps: &[CapacityStep], opts: &CapacityOptions) -> Vec<RateVerdict> {
    let mut rates: Vec<f64> = steps.iter().map(|s| s.target_rate).collect();
    rates.sort_by(f64::total_cmp);
    rates.dedup_by(|a, b| same_rate(*a, *b));
    rates
        .into_iter()
        .map(|rate| {
            let at: Vec<&CapacityStep> = steps
                .iter()
                .filter(|s| same_rate(s.target_rate, rate))
                .collect();
            pool(rate, &at, opts)
        })
        .collect()
}

fn pool(rate: f64, at: &[&CapacityStep], opts: &CapacityOptions) -> RateVerdict {
    let hist = stats::pooled(at.iter().map(|s| &s.latency));
    let (attempted, failed, expected) = at.iter().fold((0, 0, 0.0), |(a, f, e), s| {
        (a + s.attempted, f + s.failed, e + s.expected)
    });
    let error_rate = failed as f64 / attempted.max(1) as f64;
    let values: Vec<f64> = at.iter().map(|s| s.slo_value_ms).collect();
    let slo_value = if hist.is_empty() {
        median(&values)
    } else {
        opts.slo.value(&hist.summary())
    };
    let passed = at.iter().filter(|s| s.passed).count();
    let sustained = match (2 * passed).cmp(&at.len()) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        // A tie: the pooled steps decide, by the same rules as one step.
        std::cmp::Ordering::Equal => {
            slo_value <= opts.slo.limit_ms
                && error_rate <= opts.error_budget
                && attempted as f64 >= super::step::backlog_floor(expected)
        }
    };
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(l, h), v| (l.min(*v), h.max(*v)));
    RateVerdict {
        rate,
        repeats: at.len(),
        passed,
        sustained,
        samples: hist.count(),
        slo_value_ms: slo_value,
        slo_ci_ms: stats::slo_ci(&hist, opts.slo.stat),
        error_rate,
        slo_spread: (at.len() > 1 && lo > 0.0 && hi.is_finite()).then(|| hi / lo - 1.0),
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::INFINITY)
}

/// The answer, its interval and how it was derived, the knee, Little's law, and the notes.
pub fn conclude(section: &mut CapacitySection, opts: &CapacityOptions, exhausted: bool) {
    let table = verdicts(&section.steps, opts);
    let (good, bad) = bracket(&table);
    let (good, bad) = (good.cloned(), bad.cloned());
    section.sustainable_rate = good.as_ref().map(|g| g.rate);
    section.breaking_rate = bad.as_ref().map(|b| b.rate);
    let settled = |v: &RateVerdict| v.repeats >= opts.repeats && 2 * v.passed != v.repeats;
    // Only a bracket gets repeats; nothing broke, or nothing passed, needs none.
    section.confirmed = !exhausted
        && match (&good, &bad) {
            (Some(g), Some(b)) => settled(g) && settled(b),
            _ => true,
        };
    let unanimous_pass = |v: &&RateVerdict| v.passed == v.repeats;
    let unanimous_fail = |v: &&RateVerdict| v.passed == 0;
    if let Some(g) = &good {
        let low = table
            .iter()
            .rev()
            .find(|v| v.rate <= g.rate && unanimous_pass(v))
            .unwrap_or(g);
        let high = bad.as_ref().map(|b| {
            table
                .iter()
                .find(|v| v.rate >= b.rate && unanimous_fail(v))
                .unwrap_or(b)
        });
        section.sustainable_low = Some(low.rate);
        section.sustainable_high = high.map(|h| h.rate);
        section.interval_basis = basis(g, low, bad.as_ref(), high, opts);
    } else if let Some(b) = &bad {
        section.sustainable_high = Some(b.rate);
        section.interval_basis = format!(
            "not even {:.1}/s was sustained ({} of {} repeats passed, {} {:.1} ms)",
            b.rate, b.passed, b.repeats, opts.slo.stat, b.slo_value_ms
        );
        if let Some((low, next)) = latency_floor(&table, opts) {
            section.interval_basis += &format!(
                "; halving the rate did not lower the {} ({:.1} ms at {:.1}/s vs {:.1} ms at {:.1}/s): the latency at light load is above the limit (the queries themselves, or a busy machine), not the load",
                opts.slo.stat, low.slo_value_ms, low.rate, next.slo_value_ms, next.rate
            );
        }
    }
    section.crossing_rate = match (&good, &bad) {
        (Some(_), Some(b)) => crossing(&table, b, opts.slo.limit_ms),
        _ => None,
    };
    section.knee_rate = knee(&table);
    if let Some(g) = &good {
        let at: Vec<&CapacityStep> = section
            .steps
            .iter()
            .filter(|s| same_rate(s.target_rate, g.rate))
            .collect();
        let hist = stats::pooled(at.iter().map(|s| &s.latency));
        let r = hist.summary().mean_ms / 1000.0;
        section.response_s = Some(r);
        section.equivalent_users = Some(g.rate * (r + section.mean_think_s));
    }
    notes(section, &table, opts, exhausted);
    section.rates = table;
}

fn basis(
    g: &RateVerdict,
    low: &RateVerdict,
    bad: Option<&RateVerdict>,
    high: Option<&RateVerdict>,
    opts: &CapacityOptions,
) -> String {
    let of = |v: &RateVerdict| {
        let ci = v
            .slo_ci_ms
            .map(|[a, b]| format!(" [95 % CI {a:.1}–{b:.1}]"))
            .unwrap_or_default();
        format!(
            "{:.1}/s: {} of {} repeats passed, pooled {} {:.1} ms{ci} over {} transactions",
            v.rate, v.passed, v.repeats, opts.slo.stat, v.slo_value_ms, v.samples
        )
    };
    let mut text = format!("answer {}", of(g));
    match (bad, high) {
        (Some(b), Some(h)) => {
            text += &format!("; lowest breaking rate {}", of(b));
            if h.rate > b.rate {
                text += &format!("; every repeat broke only from {}", of(h));
            }
            text += &format!(
                "; the capacity lies in [{:.1}, {:.1}]/s (bracket {:.1} %, resolution {:.0} %)",
                low.rate,
                h.rate,
                (b.rate / g.rate - 1.0) * 100.0,
                opts.resolution * 100.0
            );
        }
        _ => {
            text += &format!(
                "; nothing broke up to --max-rate {:.1}/s: the capacity is at least {:.1}/s",
                opts.max_rate, low.rate
            )
        }
    }
    if low.rate < g.rate {
        text += &format!(
            "; some repeats failed at the answer, so the interval starts at {}",
            of(low)
        );
    }
    text
}

/// The rate where the SLO statistic reaches `limit`, read off every rate tried. Near
/// saturation one rate's pooled p95 swings between repeats (41 ms, 43 ms, then 178 ms at
/// one rate on this 2-core VM), so the bracket's two ends alone move the answer by ±15 %
/// run to run. The pooled values of all rates, weighted by their transactions, are made
/// non-decreasing in rate (pool-adjacent-violators on the log latency); the crossing is the
/// chord, in log rate against log latency, between the last fitted value within the limit
/// and the first above it. Latency bends upward toward saturation, so the chord errs low.
/// None when the break was not the latency's (errors, a backlog) or nothing was within it.
fn crossing(table: &[RateVerdict], bad: &RateVerdict, limit: f64) -> Option<f64> {
    if bad.slo_value_ms <= limit {
        return None;
    }
    let points: Vec<&RateVerdict> = table
        .iter()
        .filter(|v| v.slo_value_ms > 0.0 && v.slo_value_ms.is_finite())
        .collect();
    let fitted = monotone_fit(
        &points
            .iter()
            .map(|v| (v.slo_value_ms.ln(), v.samples.max(1) as f64))
            .collect::<Vec<_>>(),
    );
    let above = fitted.iter().position(|y| *y > limit.ln())?;
    let (lo, hi) = (points.get(above.checked_sub(1)?)?, points[above]);
    let (ylo, yhi) = (fitted[above - 1], fitted[above]);
    let t = (limit.ln() - ylo) / (yhi - ylo);
    Some((lo.rate.ln() + t * (hi.rate.ln() - lo.rate.ln())).exp())
}

/// The weighted least-squares non-decreasing fit of (value, weight) points in order:
/// adjacent blocks that decrease are merged into their weighted mean until none does.
fn monotone_fit(points: &[(f64, f64)]) -> Vec<f64> {
    // Each block: (mean, total weight, points in it).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(points.len());
    for &(y, w) in points {
        blocks.push((y, w, 1));
        while blocks.len() > 1 && blocks[blocks.len() - 2].0 > blocks[blocks.len() - 1].0 {
            let (y2, w2, n2) = blocks.pop().expect("two blocks");
            let (y1, w1, n1) = blocks.pop().expect("two blocks");
            blocks.push(((y1 * w1 + y2 * w2) / (w1 + w2), w1 + w2, n1 + n2));
        }
    }
    blocks
        .into_iter()
        .flat_map(|(y, _, n)| std::iter::repeat_n(y, n))
        .collect()
}

/// Highest sustained rate whose pooled SLO statistic stayed within twice the lowest rate's.
fn knee(table: &[RateVerdict]) -> Option<f64> {
    let base = table.first()?.slo_value_ms.max(0.001);
    table
        .iter()
        .take_while(|v| v.sustained && v.slo_value_ms <= 2.0 * base)
        .map(|v| v.rate)
        .last()
}

fn notes(
    section: &mut CapacitySection,
    table: &[RateVerdict],
    opts: &CapacityOptions,
    exhausted: bool,
) {
    let need = stats::min_samples(opts.slo.stat);
    let longer: Vec<String> = section
        .steps
        .iter()
        .filter_map(|s| {
            s.lengthened_from_s.map(|from| {
                format!(
                    "{:.1}/s ({from:.1} → {:.1} s)",
                    s.target_rate, s.step_seconds
                )
            })
        })
        .collect();
    if !longer.is_empty() {
        section.notes.push(format!(
            "lengthened so each holds ≥ {need} samples, the fewest with a finite 95 % CI of {}: {}",
            opts.slo.stat,
            dedup(longer).join(", ")
        ));
    }
    let short: Vec<String> = section
        .steps
        .iter()
        .filter(|s| !s.slo_supported && s.attempted > 0)
        .map(|s| format!("{:.1}/s ({} ok)", s.target_rate, s.latency.count))
        .collect();
    if !short.is_empty() {
        section.notes.push(format!(
            "too few samples for a supported {} (< {need}; capped at {:.0} s or the step broke): {}",
            opts.slo.stat,
            opts.max_step_duration.as_secs_f64(),
            dedup(short).join(", ")
        ));
    }
    if let Some(b) = section.breaking_rate {
        let above: Vec<String> = table
            .iter()
            .filter(|v| v.rate > b && v.sustained)
            .map(|v| format!("{:.1}/s", v.rate))
            .collect();
        if !above.is_empty() {
            section.notes.push(format!(
                "rates above the lowest breaking rate were sustained ({}): noisy verdicts; the lowest break counts",
                above.join(", ")
            ));
        }
    }
    let noise: Vec<String> = table
        .iter()
        .filter_map(|v| {
            v.slo_spread
                .map(|s| format!("{:.1}/s ±{:.0} %", v.rate, s * 50.0))
        })
        .collect();
    if !noise.is_empty() {
        section.notes.push(format!(
            "step-to-step noise of the {} over repeats (half the max/min spread): {}",
            opts.slo.stat,
            noise.join(", ")
        ));
    }
    let probe_range = |probe: fn(&CapacityStep) -> Option<f64>| {
        let seen: Vec<f64> = section.steps.iter().filter_map(probe).collect();
        let (low, high) = seen
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(l, h), p| (l.min(*p), h.max(*p)));
        (seen.len() > 1).then_some((low, high))
    };
    if let Some((fastest, slowest)) = probe_range(|s| s.speed_probe_ms)
        .filter(|(fastest, slowest)| slowest / fastest > 1.0 + MACHINE_DRIFT)
    {
        section.notes.push(format!(
            "the machine's speed moved during the search: the probe before each step took {fastest:.1}–{slowest:.1} ms ({:+.0} %); a CPU-bound answer moves with it",
            (slowest / fastest - 1.0) * 100.0
        ));
    }
    if let Some((quick, slow)) = probe_range(|s| s.flush_probe_ms)
        .filter(|(quick, slow)| slow / quick > 1.0 + DISK_DRIFT && slow - quick > DISK_DRIFT_MS)
    {
        section.notes.push(format!(
            "the disk's speed moved during the search: a WAL-flushing commit before each step took {quick:.1}–{slow:.1} ms ({:+.0} %); every write transaction waits for one",
            (slow / quick - 1.0) * 100.0
        ));
    }
    if exhausted {
        section.notes.push(format!(
            "the step budget (--max-steps {}) ran out before both ends had {} repeats: the interval is not confirmed",
            opts.max_steps, opts.repeats
        ));
    }
}

/// Step probes further apart than this (max/min − 1) are reported: the probe's own spread
/// within one moment is ~1 % on this VM.
const MACHINE_DRIFT: f64 = 0.10;
/// A WAL flush's latency moves more than the CPU's speed between quiet moments (a single
/// fdatasync on a VM disk: 4.6-5.3 ms back to back); beyond this spread it is worth a note.
const DISK_DRIFT: f64 = 0.50;
/// ... and by more than this (0.2 vs 0.4 ms on an idle disk is no news to a 50 ms SLO).
const DISK_DRIFT_MS: f64 = 1.0;

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}

#[cfg(test)]
mod tests;
