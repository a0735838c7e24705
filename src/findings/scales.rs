//! Capacity as the data grows: the curve and its extrapolation to launch, the queries whose
//! latency grows with the data, and the index strategy that keeps their work flat.

use super::topics::{fig, finding};
use super::{Finding, Interval, Tone, Topic};
use crate::measure::load::capacity::growth::{FitBasis, PowerFit};
use crate::measure::load::capacity::scales::ScalesSection;

/// An extrapolation whose interval spans more than this factor (high / low) is too wide to
/// plan with.
pub const TOO_WIDE: f64 = 2.0;

/// Whether the launch extrapolation is narrow enough to use.
pub fn usable(fit: &PowerFit) -> bool {
    fit.predicted_spread() <= TOO_WIDE
}

fn basis_words(b: FitBasis) -> &'static str {
    match b {
        FitBasis::PointsAndScatter => "the scales' capacity brackets and the scatter about the line (t-interval)",
        FitBasis::PointsOnly => "the two scales' capacity brackets only (two points cannot show the scatter about the line)",
    }
}

/// The capacity curve's finding: exponent and the capacity at the launch scale.
pub fn curve(s: &ScalesSection) -> Finding {
    let Some(f) = &s.capacity_fit else {
        return finding(
            Topic::Capacity,
            Tone::Unclear,
            format!(
                "No capacity curve for {}: fewer than two scales have a bounded capacity (see the notes).",
                s.scenario
            ),
            "capacity-scales",
        );
    };
    if let Some(b) = s.below_curve.first() {
        return below_curve(s, f, b);
    }
    let k = f.exponent;
    let shape = if k.high < 0.0 {
        format!(
            "capacity falls as the data grows (∝ size^{:.2}, 95 % interval {:.2} to {:.2})",
            k.estimate, k.low, k.high
        )
    } else if k.low > 0.0 {
        format!(
            "capacity rises with the data (∝ size^{:.2}, {:.2} to {:.2}): check the scales' probes",
            k.estimate, k.low, k.high
        )
    } else {
        format!(
            "no measurable change of capacity with data size (exponent {:.2}, {:.2} to {:.2})",
            k.estimate, k.low, k.high
        )
    };
    let (tone, launch) = match f.predicted {
        Some(p) if usable(f) => (
            Tone::Clear,
            format!(
                "At launch scale {}: ≈ {:.0} tx/s [{:.0}–{:.0}].",
                s.launch_scale, p.estimate, p.low, p.high
            ),
        ),
        Some(p) => (
            Tone::Unclear,
            format!(
                "At launch scale {}: ≈ {:.0} tx/s, but its interval [{:.0}–{:.0}] spans {:.1}×: too wide to plan with; measure more or larger scales.",
                s.launch_scale,
                p.estimate,
                p.low,
                p.high,
                f.predicted_spread()
            ),
        ),
        None => (Tone::Unclear, String::new()),
    };
    let mut out = finding(
        Topic::Capacity,
        tone,
        format!("{}: {shape}. {launch}", s.scenario),
        "capacity-scales",
    );
    for p in &f.points {
        out.figures.push(fig(
            &format!("scale {}", p.size),
            format!("{:.1} tx/s [{:.1}–{:.1}]", p.value, p.low, p.high),
        ));
    }
    if let Some(p) = f.predicted {
        out.interval = Some(Interval {
            low: p.low,
            high: p.high,
            kind: format!("95 % interval from {}", basis_words(f.basis)),
        });
    }
    out
}

/// A scale where nothing passed lies under the curve fitted on the others: capacity falls
/// faster than the curve there, so no extrapolation from it is given.
fn below_curve(
    s: &ScalesSection,
    f: &PowerFit,
    b: &crate::measure::load::capacity::scales::BelowCurve,
) -> Finding {
    let fitted: Vec<String> = f.points.iter().map(|p| p.size.to_string()).collect();
    let mut out = finding(
        Topic::Capacity,
        Tone::Bad,
        format!(
            "{}: at scale {} not even {:.1} tx/s met the limit, under the curve fitted on scales {} (≈ {:.0} tx/s there): capacity falls faster than that curve, so it gives no launch figure; at launch scale {} expect less than {:.1} tx/s.",
            s.scenario,
            b.scale,
            b.capacity_below,
            fitted.join(", "),
            b.curve_says,
            s.launch_scale,
            b.capacity_below
        ),
        "capacity-scales",
    );
    for p in &f.points {
        out.figures.push(fig(
            &format!("scale {}", p.size),
            format!("{:.1} tx/s [{:.1}–{:.1}]", p.value, p.low, p.high),
        ));
    }
    for x in &s.below_curve {
        out.figures.push(fig(
            &format!("scale {}", x.scale),
            format!("below {:.1} tx/s (nothing passed)", x.capacity_below),
        ));
    }
    out
}

/// The queries whose p95 grows with the data at the common rate, and what flattens them.
pub fn growth(s: &ScalesSection) -> Finding {
    let rate = s.common_rate.unwrap_or(0.0);
    let grows: Vec<_> = s.queries.iter().filter(|q| q.grows).collect();
    // The scales whose common step ran within capacity: the growth fits' points.
    let within: Vec<f64> = s
        .scales
        .iter()
        .filter(|r| r.at_common_rate.as_ref().is_some_and(|c| !c.over_capacity))
        .map(|r| r.scale)
        .collect();
    if within.len() < 2 && s.scales.len() >= 2 {
        return finding(
            Topic::Capacity,
            Tone::Unclear,
            format!(
                "Growth with the data not judged: the common rate {rate:.1} tx/s ran within capacity at fewer than two of scales {} (above a scale's sustainable rate a p95 may be queueing, not the query).",
                scale_list(s)
            ),
            "capacity-scales",
        );
    }
    if grows.is_empty() {
        let fitted = s.queries.iter().filter(|q| q.fit.is_some()).count();
        return finding(
            Topic::Capacity,
            Tone::Unclear,
            format!(
                "No query's p95 at {rate:.1} tx/s measurably grows with the data ({fitted} of {} queries fitted): no measurable difference across scales {} (those that ran it within capacity).",
                s.queries.len(),
                within.iter().map(f64::to_string).collect::<Vec<_>>().join(", ")
            ),
            "capacity-scales",
        );
    }
    let mut out = finding(
        Topic::Capacity,
        Tone::Bad,
        format!(
            "{} quer{} slower with more data at the same {rate:.1} tx/s (the largest scale's p95 interval above the smallest's, or the exponent k of p95 ∝ size^k above 0): {}.",
            grows.len(),
            if grows.len() == 1 { "y gets" } else { "ies get" },
            grows.iter().map(|q| q.name.as_str()).collect::<Vec<_>>().join(", ")
        ),
        "capacity-scales",
    );
    for q in &grows {
        if let Some(r) = q.p95_ratio {
            out.figures.push(fig(
                &format!("{} p95", q.name),
                format!(
                    "×{r:.1} from scale {} to {}{}",
                    within.first().copied().unwrap_or(0.0),
                    within.last().copied().unwrap_or(0.0),
                    if q.endpoints_apart {
                        " (95 % intervals apart)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        if let Some(f) = &q.fit {
            out.figures.push(super::Figure {
                label: format!("{} exponent", q.name),
                value: format!("{:.2}", f.exponent.estimate),
                interval: Some(format!(
                    "[{:.2}–{:.2}], 95 %",
                    f.exponent.low, f.exponent.high
                )),
            });
        }
        out.figures.push(fig(
            &format!("{} fix", q.name),
            flattening_words(s, &q.name),
        ));
    }
    out.figures.push(fig("partitioning", partitioning_words(s)));
    out
}

/// Whether the partitioned-vs-flat api_usage layout was an arm of the comparison, and why not.
pub fn partitioning_words(s: &ScalesSection) -> String {
    let usage: Vec<&str> = s
        .flattening
        .iter()
        .filter(|f| f.reads_api_usage)
        .map(|f| f.query.as_str())
        .collect();
    if usage.is_empty() {
        format!(
            "not compared: no query whose p95 grows reads api_usage (the only partitioned table) in {}",
            s.scenario
        )
    } else {
        format!(
            "partitioned and flat api_usage measured as arms for {}",
            usage.join(", ")
        )
    }
}

/// What the strategies do to one query's work between the smallest and the largest scale.
pub fn flattening_words(s: &ScalesSection, query: &str) -> String {
    let Some(f) = s.flattening.iter().find(|f| f.query == query) else {
        return "not measured".into();
    };
    if let Some(why) = &f.skipped {
        return format!("not measured: {why}");
    }
    let work: Vec<String> = f
        .strategies
        .iter()
        .map(|w| {
            let arm = w.label(f.reads_api_usage);
            match (w.buffers_small, w.buffers_large, w.exponent) {
                (Some(a), Some(b), Some(k)) => format!("{arm} {a} → {b} buffers (k {k:.2})"),
                _ => format!("{arm} not measured"),
            }
        })
        .collect();
    match f.flat.first() {
        Some(best) => format!(
            "{best} keeps its work flat from scale {} to {} ({})",
            f.small_scale,
            f.large_scale,
            work.join("; ")
        ),
        None if f.reads_api_usage => format!(
            "neither an index strategy nor the api_usage layout (partitioned, flat) keeps its work flat (k ≤ {}) from scale {} to {} ({}): the work grows with the user's data; look at a narrower query",
            s.flat_exponent,
            f.small_scale,
            f.large_scale,
            work.join("; ")
        ),
        None => format!(
            "no index strategy keeps its work flat (k ≤ {}) from scale {} to {} ({}): the work grows with the user's data; it reads no api_usage, so partitioning does not apply: look at a narrower query",
            s.flat_exponent,
            f.small_scale,
            f.large_scale,
            work.join("; ")
        ),
    }
}

fn scale_list(s: &ScalesSection) -> String {
    s.scales
        .iter()
        .map(|r| r.scale.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every finding of the section.
pub fn findings(s: &ScalesSection) -> Vec<Finding> {
    vec![curve(s), growth(s)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::load::capacity::flatten::{Flattening, StrategyWork};
    use crate::schema::Layout;

    fn arm(strategy: &str, layout: Layout, small: u64, large: u64) -> StrategyWork {
        let k = (large as f64 / small as f64).ln() / 10f64.ln();
        StrategyWork {
            strategy: strategy.into(),
            layout,
            buffers_small: Some(small),
            buffers_large: Some(large),
            exponent: Some(k),
            flat: k <= 0.2,
            shape_large: Vec::new(),
        }
    }

    #[test]
    fn partitioning_is_an_arm_only_for_a_growing_query_reading_api_usage() {
        let mut s = ScalesSection {
            scenario: "bedtime".into(),
            flat_exponent: 0.2,
            ..Default::default()
        };
        s.flattening.push(Flattening {
            query: "recent_stories".into(),
            small_scale: 1.0,
            large_scale: 10.0,
            strategies: vec![arm("tuned", Layout::Partitioned, 10, 100)],
            ..Default::default()
        });
        assert!(partitioning_words(&s)
            .starts_with("not compared: no query whose p95 grows reads api_usage"));
        let w = flattening_words(&s, "recent_stories");
        assert!(
            w.contains("tuned 10 → 100 buffers") && w.contains("reads no api_usage"),
            "{w}"
        );
        s.flattening.push(Flattening {
            query: "user_usage_30d".into(),
            small_scale: 1.0,
            large_scale: 10.0,
            strategies: vec![
                arm("tuned", Layout::Partitioned, 10, 100),
                arm("tuned", Layout::Flat, 10, 12),
            ],
            flat: vec!["tuned/flat".into()],
            reads_api_usage: true,
            skipped: None,
        });
        assert_eq!(
            partitioning_words(&s),
            "partitioned and flat api_usage measured as arms for user_usage_30d"
        );
        let w = flattening_words(&s, "user_usage_30d");
        assert!(
            w.starts_with("tuned/flat keeps its work flat from scale 1 to 10")
                && w.contains("tuned/partitioned 10 → 100 buffers"),
            "{w}"
        );
    }
}
