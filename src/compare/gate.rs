//! Time metrics judged by statistics: the change's interval from both runs' data, a margin
//! of max(threshold, noise floor from A/A history), a one-sided p-value per metric, and the
//! family controlled with Holm (fail) and Benjamini–Hochberg (warn). See docs/statistics.md.

use super::history::Floors;
use super::metrics::Metric;
use crate::stats::{self, Interval, CONFIDENCE};
use serde::Serialize;

/// Family-wise error rate of the failing verdict (Holm across all gated time metrics).
pub const FAIL_ALPHA: f64 = 0.01;
/// False-discovery rate of the warnings (Benjamini–Hochberg).
pub const WARN_FDR: f64 = 0.05;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Regression,
    Warning,
    Improvement,
    Unchanged,
    /// Too few samples (or no histogram) in one of the runs to judge.
    NotGated,
}

#[derive(Clone, Debug, Serialize)]
pub struct MetricDelta {
    pub key: String,
    pub section: &'static str,
    pub unit: &'static str,
    pub base: f64,
    pub new: f64,
    /// Relative change in the "worse" direction (+0.30 = 30 % worse), relative to the
    /// section's common shift where one was removed.
    pub worse_by: f64,
    /// Interval of `worse_by` at 95 % (from both runs' histograms or intervals).
    pub worse_by_low: Option<f64>,
    pub worse_by_high: Option<f64>,
    /// The noise floor (relative) and where it came from.
    pub floor: f64,
    pub floor_source: String,
    /// max(threshold, floor): the change must lie beyond it with confidence.
    pub margin: f64,
    /// p-value of "changed by at most the margin" in the direction the estimate moved
    /// (one-sided, doubled).
    pub p_value: Option<f64>,
    pub status: Status,
    /// Why a metric is not gated.
    pub note: Option<String>,
    pub regression: bool,
    pub improvement: bool,
}

/// The worse-direction ratio of two runs' metric (above 1 = worse) with its interval.
fn worse_ratio(b: &Metric, n: &Metric) -> Option<Interval> {
    let i = match (&b.quantile, &n.quantile) {
        (Some((hb, q)), Some((hn, _))) => stats::quantile_ratio_ci(hb, hn, *q, CONFIDENCE),
        _ => match (&b.interval, &n.interval) {
            (Some(ib), Some(inew)) => stats::ratio_of_intervals(ib, inew),
            _ => None,
        },
    }?;
    Some(if b.lower_is_better {
        i
    } else {
        // Higher is better: worse means base / new.
        Interval {
            estimate: 1.0 / i.estimate,
            low: 1.0 / i.high,
            high: if i.low > 0.0 {
                1.0 / i.low
            } else {
                f64::INFINITY
            },
        }
    })
}

/// Fewest gated metrics of a phase for its common shift to be estimated and removed.
const MIN_COMMON: usize = 20;

/// The shift every time metric of a measurement phase shares (explain: one index strategy,
/// measured in one stretch; load: the run): the median of their change ratios, with its
/// order-statistic interval. A loaded machine slows every query of a stretch alike; one
/// query's regression leaves the median where it was.
#[derive(Clone, Debug, Serialize)]
pub struct CommonShift {
    pub phase: String,
    pub metrics: usize,
    /// Worse-direction ratio (1.8 = the whole section 80 % slower).
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
    /// Q3 + 3·IQR of the metrics' |change| once the shift is removed (relative): how far
    /// single queries of this pair drift apart with nothing changed — the pair's own A/A
    /// noise, a floor for each of its metrics.
    pub spread_floor: f64,
}

/// The machine-speed shift between two capacity searches: the ratio of their probes'
/// medians (new / base: above 1 = the machine was slower, which lowers a capacity alike),
/// with its interval. None unless both runs carry the probe.
pub fn machine_shift(base: &[f64], new: &[f64], phase: &str) -> Option<CommonShift> {
    let b = stats::sample_quantile_ci(base, 0.5, CONFIDENCE)?;
    let n = stats::sample_quantile_ci(new, 0.5, CONFIDENCE)?;
    let i = stats::ratio_of_intervals(&b, &n)?;
    Some(CommonShift {
        phase: phase.to_string(),
        metrics: base.len().min(new.len()),
        ratio: i.estimate,
        low: i.low,
        high: i.high,
        spread_floor: 0.0,
    })
}

/// Judges every metric both runs have (relative to its section's common shift: `given`
/// ones, measured apart like the machine-speed probe, or the median of the phase's
/// metrics), then applies Holm and BH across the family.
pub fn judge(
    pairs: &[(&Metric, &Metric)],
    threshold: f64,
    floors: &Floors,
    given: Vec<CommonShift>,
) -> (Vec<MetricDelta>, Vec<CommonShift>) {
    let ws: Vec<Option<Interval>> = pairs
        .iter()
        .map(|(b, n)| {
            let gated = b.ungated.is_none() && n.ungated.is_none();
            gated.then(|| worse_ratio(b, n)).flatten()
        })
        .collect();
    let mut phases: Vec<&String> = pairs.iter().filter_map(|(b, _)| b.phase.as_ref()).collect();
    phases.sort();
    phases.dedup();
    phases.retain(|p| !given.iter().any(|g| &g.phase == *p));
    let mut shifts = given;
    for phase in phases {
        let logs: Vec<f64> = pairs
            .iter()
            .zip(&ws)
            .filter(|((b, _), _)| b.phase.as_ref() == Some(phase))
            .filter_map(|(_, w)| w.map(|w| w.estimate.ln()))
            .collect();
        if logs.len() < MIN_COMMON {
            continue;
        }
        if let Some(i) = stats::sample_quantile_ci(&logs, 0.5, CONFIDENCE) {
            let mut resid: Vec<f64> = logs.iter().map(|l| (l - i.estimate).abs()).collect();
            shifts.push(CommonShift {
                phase: phase.clone(),
                metrics: logs.len(),
                ratio: i.estimate.exp(),
                low: i.low.exp(),
                high: i.high.exp(),
                spread_floor: stats::iqr_fence(&mut resid, super::history::IQR_K).exp_m1(),
            });
        }
    }
    let mut out: Vec<MetricDelta> = pairs
        .iter()
        .zip(ws)
        .map(|((b, n), w)| {
            let shift = shifts.iter().find(|s| Some(&s.phase) == b.phase.as_ref());
            // Relative to the common shift (its point estimate: a median of ≥ 20 ratios
            // moves little, and its interval would mostly repeat the metric's own).
            let w = match (w, shift) {
                (Some(w), Some(s)) => Some(Interval {
                    estimate: w.estimate / s.ratio,
                    low: w.low / s.ratio,
                    high: w.high / s.ratio,
                }),
                (w, _) => w,
            };
            let spread = shift.map_or(0.0, |s| s.spread_floor);
            one(b, n, w, threshold, floors, spread)
        })
        .collect();
    let gated: Vec<usize> = (0..out.len())
        .filter(|i| out[*i].p_value.is_some())
        .collect();
    let p: Vec<f64> = gated
        .iter()
        .map(|i| out[*i].p_value.unwrap_or(1.0))
        .collect();
    let fail = stats::holm(&p, FAIL_ALPHA);
    let warn = stats::benjamini_hochberg(&p, WARN_FDR);
    for (k, &i) in gated.iter().enumerate() {
        let d = &mut out[i];
        let beyond_low = d.worse_by_low.is_some_and(|l| l > d.margin);
        let beyond_high = d
            .worse_by_high
            .is_some_and(|h| h < -d.margin / (1.0 + d.margin));
        d.status = match (d.worse_by > 0.0, fail[k], warn[k]) {
            (true, true, _) if beyond_low => Status::Regression,
            (false, true, _) if beyond_high => Status::Improvement,
            (true, _, true) => Status::Warning,
            _ => Status::Unchanged,
        };
        d.regression = d.status == Status::Regression;
        d.improvement = d.status == Status::Improvement;
    }
    (out, shifts)
}

fn one(
    b: &Metric,
    n: &Metric,
    w: Option<Interval>,
    threshold: f64,
    floors: &Floors,
    spread: f64,
) -> MetricDelta {
    let (floor, floor_source) = floors.of(b);
    let (floor, floor_source) = if spread > floor {
        (spread, "this pair's spread".to_string())
    } else {
        (floor, floor_source)
    };
    let margin = threshold.max(floor);
    let raw = if b.value.abs() < 1e-12 || n.value.abs() < 1e-12 {
        1.0
    } else {
        n.value / b.value
    };
    let note = b.ungated.clone().or_else(|| n.ungated.clone());
    let note = note.or_else(|| {
        w.is_none()
            .then(|| "no interval for the change".to_string())
    });
    let worse_by = match w {
        Some(w) => w.estimate - 1.0,
        None if b.lower_is_better => raw - 1.0,
        None => 1.0 / raw - 1.0,
    };
    // Worse: H0 "ratio ≤ 1 + margin"; better: H0 "inverse ratio ≤ 1 + margin". The direction
    // is read from the data, so the one-sided p-value is doubled (two-sided).
    let p_value = w.map(|w| {
        let toward = if w.estimate >= 1.0 {
            w
        } else {
            Interval {
                estimate: 1.0 / w.estimate,
                low: 1.0 / w.high,
                high: 1.0 / w.low.max(1e-300),
            }
        };
        (2.0 * stats::pvalue_above(&toward, 1.0 + margin, CONFIDENCE)).min(1.0)
    });
    MetricDelta {
        key: b.key.clone(),
        section: b.section,
        unit: b.unit,
        base: b.value,
        new: n.value,
        worse_by,
        worse_by_low: w.map(|w| w.low - 1.0),
        worse_by_high: w.map(|w| w.high - 1.0),
        floor,
        floor_source,
        margin,
        p_value,
        status: if w.is_some() {
            Status::Unchanged
        } else {
            Status::NotGated
        },
        note,
        regression: false,
        improvement: false,
    }
}
