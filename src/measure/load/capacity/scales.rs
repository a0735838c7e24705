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
    /// Scales where not even the lowest rate tried passed, whose bound (capacity below that
    /// rate) lies under the fitted curve: the curve does not hold there, nor beyond.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub below_curve: Vec<BelowCurve>,
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
    /// The rate is above this scale's sustainable rate (or it sustained nothing): its p95s may include queueing behind an overloaded
    /// server, so they are shown but left out of the growth fits.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub over_capacity: bool,
    /// The machine-speed probe before and after the step (median of three, ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_probe_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_probe_after_ms: Option<f64>,
    /// Measurements dropped because a probe around them was > 1.25× the fastest of the
    /// searches (as a search step; at most 2), and whether the one kept still was slow.
    #[serde(default, skip_serializing_if = "super::is_zero")]
    pub slow_machine_retries: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub machine_slow: bool,
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
    /// p95 at the largest scale over p95 at the smallest (at the common rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ratio: Option<f64>,
    /// The largest scale's p95 interval lies wholly above the smallest scale's. With few
    /// scales this is the sharper test: a power-law exponent fitted on three points has
    /// t(1 df) = 12.7 in its interval.
    #[serde(default)]
    pub endpoints_apart: bool,
    /// p95 grows with the data at a fixed rate: the exponent's interval lies above 0, or
    /// the endpoints are apart.
    pub grows: bool,
}

/// A scale where nothing passed, against the curve fitted on the others.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BelowCurve {
    pub scale: f64,
    /// Its capacity is below this (the lowest rate tried, which failed).
    pub capacity_below: f64,
    /// The fitted curve's capacity at this scale.
    pub curve_says: f64,
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

/// The rate every scale's per-query p95 is measured at: half the lowest sustainable rate
/// of the scales that sustained one, so each of them runs it with room to spare and a
/// query's p95 there is its own latency, not queueing. None when no scale sustained a rate.
pub fn common_rate(scales: &[ScaleRun]) -> Option<f64> {
    scales
        .iter()
        .filter_map(|r| r.sustainable_rate)
        .min_by(f64::total_cmp)
        .map(|r| r / 2.0)
}

/// Marks a common step taken above its scale's capacity.
pub fn over_capacity(run: &ScaleRun, mut step: CommonStep) -> CommonStep {
    // Above the highest rate the search saw pass, the scale is not known to sustain it.
    step.over_capacity = run.sustainable_rate.is_none_or(|r| r < step.rate);
    step
}

/// Fits capacity and every query's p95 across the scales (sorted by scale).
pub fn conclude(section: &mut ScalesSection) {
    section.scales.sort_by(|a, b| a.scale.total_cmp(&b.scale));
    fit_capacity(section);
    let over: Vec<String> = section
        .scales
        .iter()
        .filter(|s| s.at_common_rate.as_ref().is_some_and(|c| c.over_capacity))
        .map(|s| s.scale.to_string())
        .collect();
    if !over.is_empty() {
        section.notes.push(format!(
            "the common rate is above the capacity of scale {}: the per-query p95 there may include queueing and is left out of the growth fits",
            over.join(", ")
        ));
    }
    // The scales whose common step ran within capacity: a query's p95 there is its own.
    let within: Vec<&ScaleRun> = section
        .scales
        .iter()
        .filter(|s| s.at_common_rate.as_ref().is_some_and(|c| !c.over_capacity))
        .collect();
    let mut names: Vec<String> = within
        .iter()
        .filter_map(|s| s.at_common_rate.as_ref())
        .flat_map(|c| c.queries.iter().map(|q| q.name.clone()))
        .collect();
    names.sort();
    names.dedup();
    section.queries = names
        .into_iter()
        .map(|name| query_growth(name, &within))
        .collect();
    let unfit = section.queries.iter().filter(|q| q.fit.is_none()).count();
    if within.len() < 2 && section.scales.len() >= 2 {
        section.notes.push(
            "fewer than two scales ran the common rate within their capacity: no query's growth with the data can be judged (give a lower --common-rate)".into(),
        );
    } else if unfit > 0 {
        section.notes.push(format!(
            "{unfit} quer{} lack a p95 interval at some scale (too few samples at the common rate) and have no fit",
            if unfit == 1 { "y" } else { "ies" }
        ));
    }
}

/// Capacity against scale, extrapolated to the launch scale, and the scales where nothing
/// passed that lie under that curve.
fn fit_capacity(section: &mut ScalesSection) {
    let points: Vec<FitPoint> = section.scales.iter().filter_map(capacity_point).collect();
    if points.len() < section.scales.len() {
        section.notes.push(format!(
            "{} of {} scales have no bounded capacity (nothing broke up to --max-rate, or nothing passed) and are left out of the capacity fit",
            section.scales.len() - points.len(),
            section.scales.len()
        ));
    }
    section.capacity_fit = growth::fit(&points, Some(section.launch_scale));
    section.below_curve = match &section.capacity_fit {
        Some(f) => section
            .scales
            .iter()
            .filter(|r| r.sustainable_rate.is_none())
            .filter_map(|r| {
                let bound = r.sustainable_high?;
                let curve_says = f.value_at(r.scale);
                (curve_says > bound).then_some(BelowCurve {
                    scale: r.scale,
                    capacity_below: bound,
                    curve_says,
                })
            })
            .collect(),
        None => Vec::new(),
    };
}

/// One query's p95 against scale over `within` (the scales that ran the common rate within
/// capacity): fitted when every one of them has an interval for it.
fn query_growth(name: String, within: &[&ScaleRun]) -> QueryGrowth {
    let points: Vec<FitPoint> = within
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
    let complete = points.len() == within.len();
    let fit = complete.then(|| growth::fit(&points, None)).flatten();
    let ends = (complete && points.len() >= 2).then(|| (points[0], points[points.len() - 1]));
    let endpoints_apart = ends.is_some_and(|(a, b)| b.low > a.high);
    QueryGrowth {
        grows: endpoints_apart || fit.as_ref().is_some_and(|f| f.exponent.low > 0.0),
        p95_ratio: ends.map(|(a, b)| b.value / a.value),
        endpoints_apart,
        name,
        fit,
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

/// The fastest machine-speed probe of every scale's search: the machine's own speed.
pub fn fastest_probe(scales: &[ScaleRun]) -> Option<f64> {
    scales
        .iter()
        .flat_map(|r| {
            let steps = r
                .capacity
                .steps
                .iter()
                .flat_map(|s| s.speed_probe_ms.into_iter().chain(s.speed_probe_after_ms));
            r.speed_probe_ms.iter().copied().chain(steps)
        })
        .filter(|p| *p > 0.0)
        .min_by(f64::total_cmp)
}

/// [`at_rate`] with the search steps' guard: measured again (at most twice) while a probe
/// before or after it is more than 1.25× `fastest`. A p95 taken while the VM ran slow moved
/// the growth verdict in an A/A pair (every query 2–8× slower at scale 1 only).
pub async fn at_rate_steady(
    target: &Target,
    scenario: &Scenario,
    opts: &CapacityOptions,
    rate: f64,
    fastest: Option<f64>,
) -> Result<CommonStep> {
    let mut retries = 0;
    let mut kept: Option<CommonStep> = None;
    loop {
        let probe = async || -> Result<f64> {
            let mut conn = target.connect().await?;
            let runs = super::probe::speed_probe(&mut conn, super::STEP_PROBE_RUNS).await?;
            Ok(crate::stats::median(&runs))
        };
        let attempt = async {
            let before = probe().await?;
            let step = at_rate(target, scenario, opts, rate).await?;
            Ok::<_, anyhow::Error>((before, step, probe().await?))
        };
        let (before, mut step, after) = match attempt.await {
            Ok(m) => m,
            // Stopped while measuring a slow step again: the measurement made counts.
            Err(_) if crate::interrupt::interrupted() && kept.is_some() => {
                return Ok(kept.take().expect("checked"));
            }
            Err(e) => return Err(e),
        };
        step.speed_probe_ms = Some(before);
        step.speed_probe_after_ms = Some(after);
        step.slow_machine_retries = retries;
        step.machine_slow = fastest.is_some_and(|f| super::machine_slow(before, after, f));
        if !step.machine_slow
            || retries >= super::SLOW_MACHINE_RETRIES
            || crate::interrupt::interrupted()
        {
            return Ok(step);
        }
        retries += 1;
        crate::say!(
            "    the machine ran slow around the step at {rate:.1}/s (probe {before:.0} → {after:.0} ms, fastest {:.0} ms): measuring it again",
            fastest.unwrap_or(0.0)
        );
        kept = Some(step);
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
        // Set against the scale's search by `over_capacity`.
        over_capacity: false,
        queries,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(name: &str, p95: f64, low: f64, high: f64) -> QueryAtRate {
        QueryAtRate {
            name: name.into(),
            samples: 500,
            rows: 10,
            p95_ms: p95,
            p95_ci_ms: Some(Interval {
                estimate: p95,
                low,
                high,
            }),
        }
    }

    fn scale(scale: f64, capacity: Option<(f64, f64, f64)>, queries: Vec<QueryAtRate>) -> ScaleRun {
        scale_at(140.5, scale, capacity, queries)
    }

    fn scale_at(
        rate: f64,
        scale: f64,
        capacity: Option<(f64, f64, f64)>,
        queries: Vec<QueryAtRate>,
    ) -> ScaleRun {
        let run = ScaleRun {
            scale,
            sustainable_rate: capacity.map(|c| c.0),
            sustainable_low: Some(capacity.map_or(0.0, |c| c.1)),
            sustainable_high: Some(capacity.map_or(10.0, |c| c.2)),
            ..Default::default()
        };
        let step = CommonStep {
            rate,
            queries,
            ..Default::default()
        };
        ScaleRun {
            at_common_rate: Some(over_capacity(&run, step)),
            ..run
        }
    }

    /// The second quiet run (2026-12-08): the common rate was half of scale 1's 415/s, above
    /// scale 3's 190/s and scale 10's < 10/s, and every query was flagged, also those whose
    /// own work is flat. The rate now is half the lowest capacity, and a scale the rate
    /// overloads is left out of the growth fits.
    #[test]
    fn a_common_rate_above_a_scales_capacity_does_not_make_flat_queries_grow() {
        let runs = [
            scale_at(0.0, 1.0, Some((415.0, 380.5, 452.5)), vec![]),
            scale_at(0.0, 3.0, Some((190.3, 182.2, 226.3)), vec![]),
            scale_at(0.0, 10.0, None, vec![]),
        ];
        assert!((common_rate(&runs).unwrap() - 190.3 / 2.0).abs() < 1e-9);
        assert_eq!(common_rate(&runs[2..]), None);
        // At 207.5/s (half of 415): scale 3 and 10 overloaded, one scale within: no verdict.
        let mut s = ScalesSection {
            scales: vec![
                scale_at(
                    207.5,
                    1.0,
                    Some((415.0, 380.5, 452.5)),
                    vec![at("story_detail", 1.6, 1.4, 1.9)],
                ),
                scale_at(
                    207.5,
                    3.0,
                    Some((190.3, 182.2, 226.3)),
                    vec![at("story_detail", 1.8, 1.5, 2.1)],
                ),
                scale_at(207.5, 10.0, None, vec![at("story_detail", 6.5, 5.9, 7.2)]),
            ],
            ..Default::default()
        };
        conclude(&mut s);
        let sd = &s.queries;
        assert!(sd.iter().all(|q| !q.grows && q.fit.is_none()), "{sd:?}");
        assert!(
            s.notes.iter().any(|n| n.contains("scale 3, 10")),
            "{:?}",
            s.notes
        );
        assert!(
            s.notes.iter().any(|n| n.contains("fewer than two scales")),
            "{:?}",
            s.notes
        );
        // At 95/s both smaller scales run within capacity, and the flat query stays flat.
        for r in &mut s.scales {
            let step = CommonStep {
                rate: 95.0,
                ..r.at_common_rate.take().unwrap()
            };
            r.at_common_rate = Some(over_capacity(r, step));
        }
        s.notes.clear();
        conclude(&mut s);
        let q = &s.queries[0];
        assert!(!q.grows && q.fit.is_some(), "{q:?}");
        assert!((q.p95_ratio.unwrap() - 1.8 / 1.6).abs() < 1e-9, "{q:?}");
    }

    /// The figures of a quiet `capacity --scales 1,3,10` of bedtime (2026-12-07): scale 10
    /// passed nothing down to 10/s, and recently_played's p95 went 20.5 → 43.2 → 419.6 ms.
    #[test]
    fn a_scale_under_the_curve_and_a_p95_twenty_times_higher_are_both_called() {
        let mut s = ScalesSection {
            scenario: "bedtime".into(),
            launch_scale: 100.0,
            scales: vec![
                scale(
                    1.0,
                    Some((281.0, 269.1, 293.4)),
                    vec![
                        at("recently_played", 20.5, 18.0, 24.0),
                        at("favorite_stories", 1.57, 1.4, 1.8),
                    ],
                ),
                scale(
                    3.0,
                    Some((198.7, 198.7, 226.3)),
                    vec![
                        at("recently_played", 43.2, 38.0, 50.0),
                        at("favorite_stories", 1.73, 1.5, 2.0),
                    ],
                ),
                scale(
                    10.0,
                    None,
                    vec![
                        at("recently_played", 419.6, 300.0, 520.0),
                        at("favorite_stories", 4.66, 1.2, 9.0),
                    ],
                ),
            ],
            ..Default::default()
        };
        conclude(&mut s);
        let fit = s.capacity_fit.as_ref().expect("fitted on scales 1 and 3");
        assert_eq!(fit.points.len(), 2);
        assert_eq!(s.below_curve.len(), 1, "{:?}", s.below_curve);
        assert_eq!(s.below_curve[0].scale, 10.0);
        assert!(s.below_curve[0].curve_says > 100.0, "{:?}", s.below_curve);
        let q = |n: &str| s.queries.iter().find(|q| q.name == n).unwrap();
        let rp = q("recently_played");
        assert!(rp.endpoints_apart && rp.grows, "{rp:?}");
        // Scale 10 could not run the common rate: its p95 is not in the fit.
        assert!((rp.p95_ratio.unwrap() - 43.2 / 20.5).abs() < 1e-9);
        let fav = q("favorite_stories");
        assert!(!fav.endpoints_apart && !fav.grows, "{fav:?}");
        let words = crate::findings::scales::findings(&s);
        assert!(
            words[0].headline.contains("not even 10.0 tx/s")
                && words[0].headline.contains("no launch figure"),
            "{}",
            words[0].headline
        );
        assert!(
            words[1].headline.contains("recently_played"),
            "{}",
            words[1].headline
        );
        // A scale that passes above the curve is no contradiction.
        s.scales[2].sustainable_high = Some(500.0);
        conclude(&mut s);
        assert!(s.below_curve.is_empty());
    }
}
