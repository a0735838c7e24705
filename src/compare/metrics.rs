//! The comparable figures of a results file, flattened: one time metric per query, variant
//! and statistic with what its interval is computed from (a histogram, or the run's own
//! interval), plus the plans whose work and shape are compared exactly.

use crate::latency::{Latency, LatencySummary, Stat};
use crate::plan::PlanSummary;
use crate::results::RunResults;
use crate::stats::{self, Interval, CONFIDENCE};
use serde::Serialize;
use serde_json::Value;

/// One comparable time figure.
#[derive(Clone, Debug, Serialize)]
pub struct Metric {
    /// Stable key, e.g. `explain/recent_stories/doc/heavy/p95`.
    pub key: String,
    /// `explain`, `rls`, `partitions`, `load` or `capacity`.
    pub section: &'static str,
    /// The measurement phase of an absolute time (`explain/<strategy>`, `load`): its
    /// metrics were measured together and share the machine's drift. None for ratios
    /// measured interleaved and for single figures.
    #[serde(skip)]
    pub phase: Option<String>,
    pub unit: &'static str,
    pub value: f64,
    pub lower_is_better: bool,
    /// The run's own interval for the value at [`CONFIDENCE`], when its data support one.
    pub interval: Option<Interval>,
    /// Why the metric cannot be gated in this run (too few samples, no histogram).
    pub ungated: Option<String>,
    /// Percentile metrics: the histogram and quantile (the change's interval comes from both
    /// runs' histograms).
    #[serde(skip)]
    pub quantile: Option<(Latency, f64)>,
}

impl Metric {
    /// Relative half-width of the run's own interval (0 when it has none).
    pub fn noise(&self) -> f64 {
        self.interval
            .map_or(0.0, |i| i.relative_half_width())
            .min(1.0)
    }
}

/// A plan captured in a run, identified like its metrics.
#[derive(Clone, Debug)]
pub struct PlanAt {
    pub key: String,
    pub section: &'static str,
    pub plan: PlanSummary,
}

const PERCENTILES: [(Stat, f64); 3] = [(Stat::P50, 50.0), (Stat::P95, 95.0), (Stat::P99, 99.0)];

fn push_latency(
    out: &mut Vec<Metric>,
    section: &'static str,
    phase: &str,
    key: &str,
    l: &LatencySummary,
) {
    if l.count == 0 {
        return;
    }
    let hist = Latency::decode(&l.histogram).ok();
    for (name, p) in PERCENTILES {
        let value = l.stat(name);
        let (interval, ungated) = match &hist {
            None => (None, Some("no histogram in the results".to_string())),
            Some(_) if !stats::supports(l.count, p) => (
                None,
                Some(format!(
                    "{name} needs ≥ {} samples, the run has {}",
                    stats::min_samples(p / 100.0, CONFIDENCE),
                    l.count
                )),
            ),
            Some(h) => (stats::quantile_ci(h, p / 100.0, CONFIDENCE), None),
        };
        out.push(Metric {
            key: format!("{key}/{name}"),
            section,
            phase: Some(phase.to_string()),
            unit: "ms",
            value,
            lower_is_better: true,
            quantile: hist
                .clone()
                .filter(|_| ungated.is_none())
                .map(|h| (h, p / 100.0)),
            interval,
            ungated,
        });
    }
}

/// A ratio measured inside one run (lower is better): its own interval when the results
/// carry one, else the interval of the two histograms' medians.
fn push_ratio(
    out: &mut Vec<Metric>,
    section: &'static str,
    key: String,
    given: Option<(f64, Option<Interval>)>,
    num: Option<&LatencySummary>,
    den: Option<&LatencySummary>,
) {
    let decode = |l: Option<&LatencySummary>| l.and_then(|l| Latency::decode(&l.histogram).ok());
    let from_hist = match (decode(den), decode(num)) {
        (Some(d), Some(n)) => stats::quantile_ratio_ci(&d, &n, 0.5, CONFIDENCE),
        _ => None,
    };
    let (value, interval) = match (given, from_hist) {
        (Some((v, Some(i))), _) => (v, Some(i)),
        (_, Some(i)) => (i.estimate, Some(i)),
        (Some((v, None)), None) => (v, None),
        (None, None) => return,
    };
    out.push(Metric {
        key,
        section,
        phase: None,
        unit: "×",
        value,
        lower_is_better: true,
        ungated: interval
            .is_none()
            .then(|| "too few samples for a ratio interval".to_string()),
        interval,
        quantile: None,
    });
}

/// An interval field of a section object, read defensively: the measurement engineers add
/// them as optional fields, so any of the usual names and shapes is accepted.
fn interval_field(v: &Value, names: &[&str]) -> Option<Interval> {
    let obj = v.as_object()?;
    let f = |x: &Value| x.as_f64();
    names.iter().find_map(|n| {
        let i = obj.get(*n)?;
        let pair = |a: &str, b: &str| Some((f(i.get(a)?)?, f(i.get(b)?)?));
        let (low, high) = pair("low", "high")
            .or_else(|| pair("lo", "hi"))
            .or_else(|| pair("lower", "upper"))
            .or_else(|| Some((f(i.get(0)?)?, f(i.get(1)?)?)))?;
        let estimate = i.get("estimate").and_then(f).unwrap_or((low * high).sqrt());
        (low > 0.0 && high >= low).then_some(Interval {
            estimate,
            low,
            high,
        })
    })
}

fn json<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// The metrics and plans of one run, collected section by section.
#[derive(Default)]
struct Collected {
    out: Vec<Metric>,
    plans: Vec<PlanAt>,
}

impl Collected {
    fn plan(&mut self, section: &'static str, key: String, p: &Option<PlanSummary>) {
        if let Some(p) = p {
            self.plans.push(PlanAt {
                key,
                section,
                plan: p.clone(),
            });
        }
    }
}

pub fn metrics(r: &RunResults) -> (Vec<Metric>, Vec<PlanAt>) {
    let mut c = Collected::default();
    if let Some(s) = &r.explain {
        explain(&mut c, s);
    }
    if let Some(s) = &r.rls {
        rls(&mut c, s);
    }
    if let Some(s) = &r.partitions {
        partitions(&mut c, s);
    }
    if let Some(s) = &r.load {
        load(&mut c, s);
    }
    if let Some(s) = &r.capacity {
        capacity(&mut c, s);
    }
    (c.out, c.plans)
}

fn explain(c: &mut Collected, ex: &crate::measure::explain::ExplainSection) {
    for q in &ex.queries {
        for s in &q.subjects {
            for run in s.by_strategy.iter().filter(|r| r.error.is_none()) {
                let key = format!("explain/{}/{}/{}", q.name, run.strategy, s.subject);
                if let Some(l) = &run.latency {
                    let phase = format!("explain/{}", run.strategy);
                    push_latency(&mut c.out, "explain", &phase, &key, l);
                }
                c.plan("explain", key, &run.plan);
            }
        }
    }
}

fn rls(c: &mut Collected, rls: &crate::measure::rls::RlsSection) {
    for q in &rls.queries {
        for s in &q.subjects {
            let bypass = s.modes.iter().find(|m| m.mode == "bypass");
            for m in s.modes.iter().filter(|m| m.error.is_none()) {
                let key = format!("rls/{}/{}/{}", q.name, s.subject, m.mode);
                if m.mode != "bypass" && m.config_error.is_none() {
                    let given = m.overhead.as_ref().map(|o| {
                        let i = interval_field(&json(o), &["interval", "ci", "confidence"]);
                        (i.map_or(o.median, |i| i.estimate), i)
                    });
                    let num = m.latency.as_ref();
                    let den = bypass.and_then(|b| b.latency.as_ref());
                    push_ratio(
                        &mut c.out,
                        "rls",
                        format!("{key}/overhead"),
                        given,
                        num,
                        den,
                    );
                }
                c.plan("rls", key, &m.plan);
            }
        }
    }
}

fn partitions(c: &mut Collected, p: &crate::measure::partitions::PartitionsSection) {
    for q in &p.queries {
        let v = json(q);
        for (mode, ratio, names) in [
            (
                "custom",
                q.ratio_p50,
                ["ratio_p50_interval", "ratio_p50_ci"],
            ),
            (
                "generic",
                q.generic_ratio_p50,
                ["generic_ratio_p50_interval", "generic_ratio_p50_ci"],
            ),
        ] {
            let (part, flat) = match mode {
                "custom" => (&q.partitioned.custom, &q.flat.custom),
                _ => (&q.partitioned.generic, &q.flat.generic),
            };
            if part.error.is_some() || flat.error.is_some() {
                continue;
            }
            let i = interval_field(&v, &names);
            let given = ratio.map(|r| (i.map_or(r, |i| i.estimate), i));
            let key = format!("partitions/{}/{mode}/ratio_p50", q.name);
            push_ratio(
                &mut c.out,
                "partitions",
                key,
                given,
                part.latency.as_ref(),
                flat.latency.as_ref(),
            );
            c.plan(
                "partitions",
                format!("partitions/{}/partitioned/{mode}", q.name),
                &part.plan,
            );
            c.plan(
                "partitions",
                format!("partitions/{}/flat/{mode}", q.name),
                &flat.plan,
            );
        }
    }
}

fn load(c: &mut Collected, load: &crate::measure::load::LoadSection) {
    let f = &load.figures;
    let key = format!("load/{}", load.target);
    let per_second: Vec<f64> = f.timeline.iter().map(|p| p.ok as f64).collect();
    let interval = mean_interval(&per_second).map(|i| Interval {
        estimate: f.tps,
        low: f.tps * i.low / i.estimate,
        high: f.tps * i.high / i.estimate,
    });
    c.out.push(Metric {
        key: format!("{key}/throughput"),
        section: "load",
        phase: Some("load".into()),
        unit: "tx/s",
        value: f.tps,
        lower_is_better: false,
        ungated: interval
            .is_none()
            .then(|| "fewer than 3 seconds measured".to_string()),
        interval,
        quantile: None,
    });
    push_latency(
        &mut c.out,
        "load",
        "load",
        &format!("{key}/transactions"),
        &f.transaction_latency,
    );
    for t in &f.transactions {
        push_latency(
            &mut c.out,
            "load",
            "load",
            &format!("{key}/transaction/{}", t.name),
            &t.latency,
        );
    }
    for q in &f.queries {
        push_latency(
            &mut c.out,
            "load",
            "load",
            &format!("{key}/query/{}", q.name),
            &q.latency,
        );
    }
}

fn capacity(c: &mut Collected, cap: &crate::measure::load::capacity::CapacitySection) {
    if let Some(rate) = cap.sustainable_rate.filter(|r| *r > 0.0) {
        // The search's own interval when it carries one; else its bracket: the true
        // capacity lies between the highest passing and the lowest failing rate.
        let names = [
            "sustainable_interval",
            "sustainable_rate_interval",
            "sustainable_rate_ci",
            "interval",
        ];
        let bracket = interval_field(&json(cap), &names).unwrap_or(Interval {
            estimate: rate,
            low: rate,
            high: cap.breaking_rate.unwrap_or(f64::INFINITY).max(rate),
        });
        let capacity_metric = |key: &str, value: f64, interval: Interval, ungated| Metric {
            key: format!("capacity/{}/{key}", cap.scenario),
            section: "capacity",
            // Divided by the machine-speed probe's change when both runs carry one.
            phase: Some(MACHINE_PHASE.to_string()),
            unit: "tx/s",
            value,
            lower_is_better: false,
            interval: Some(interval),
            ungated,
            quantile: None,
        };
        // The interpolated crossing, off the search's grid, is what is gated when the
        // search has one (an older results file gates its sustainable rate).
        let crossing = cap.crossing_rate.filter(|x| *x > 0.0);
        c.out.push(capacity_metric(
            "sustainable_rate",
            rate,
            bracket,
            crossing.map(|_| "gated by its interpolated SLO crossing".to_string()),
        ));
        if let Some(x) = crossing {
            let interval = Interval {
                estimate: x,
                low: bracket.low.min(x),
                high: bracket.high.max(x),
            };
            c.out
                .push(capacity_metric("slo_crossing", x, interval, None));
        }
    }
}

/// The phase of the capacity metrics: their common shift is the machine-speed probe's.
pub const MACHINE_PHASE: &str = "capacity (machine speed)";

/// Mean of per-second counts with a Student-t-like interval (normal quantile, n ≥ 3).
fn mean_interval(per_second: &[f64]) -> Option<Interval> {
    let n = per_second.len();
    if n < 3 {
        return None;
    }
    let mean = per_second.iter().sum::<f64>() / n as f64;
    if mean <= 0.0 {
        return None;
    }
    let var = per_second.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = stats::normal_quantile(1.0 - (1.0 - CONFIDENCE) / 2.0) * (var / n as f64).sqrt();
    Some(Interval {
        estimate: mean,
        low: (mean - half).max(mean * 0.01),
        high: mean + half,
    })
}
