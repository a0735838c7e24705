//! The SLO statistics the search decides with, named as the SLO names them (`p95`): how
//! many samples a percentile needs, its distribution-free confidence interval, and the
//! pooled histogram of repeated steps. The arithmetic is `crate::stats`'s.

use crate::latency::{Latency, LatencySummary};
use crate::stats;

/// The quantile (0–1) a statistic names; None for `mean` and `max`.
pub fn quantile_of(stat: &str) -> Option<f64> {
    Some(match stat {
        "p50" => 0.5,
        "p90" => 0.9,
        "p95" => 0.95,
        "p99" => 0.99,
        "p999" => 0.999,
        _ => return None,
    })
}

/// Fewest samples for which the statistic has a finite two-sided 95 % CI (72 for p95, 368
/// for p99: [`crate::stats::min_samples`]). A mean asks for 30 (the usual floor for its
/// normal interval); a max for none.
pub fn min_samples(stat: &str) -> u64 {
    match (quantile_of(stat), stat) {
        (Some(q), _) => stats::min_samples(q, stats::CONFIDENCE),
        (None, "mean") => 30,
        _ => 1,
    }
}

/// Samples to plan a step for so that it holds `min_samples` even when the Poisson count of
/// arrivals comes out two standard deviations low.
pub fn planned_samples(stat: &str) -> f64 {
    let n = min_samples(stat) as f64;
    if n <= 1.0 {
        1.0
    } else {
        n + 2.0 * n.sqrt()
    }
}

/// 95 % CI (ms) of the statistic on a histogram; None for mean/max or too few samples.
pub fn slo_ci(l: &Latency, stat: &str) -> Option<[f64; 2]> {
    let i = stats::quantile_ci(l, quantile_of(stat)?, stats::CONFIDENCE)?;
    Some([i.low, i.high])
}

/// The histograms of several steps merged (steps without an encoded histogram are skipped).
pub fn pooled<'a>(summaries: impl IntoIterator<Item = &'a LatencySummary>) -> Latency {
    let mut all = Latency::new();
    for s in summaries {
        if let Ok(h) = Latency::decode(&s.histogram) {
            all.merge(&h);
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn minimum_samples_match_the_reference() {
        assert_eq!(min_samples("p50"), 6);
        assert_eq!(min_samples("p90"), 36);
        assert_eq!(min_samples("p95"), 72);
        assert_eq!(min_samples("p99"), 368);
        assert_eq!(min_samples("p999"), 3688);
        assert_eq!(min_samples("max"), 1);
    }

    #[test]
    fn ci_brackets_the_percentile() {
        let mut h = Latency::new();
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        let [lo, hi] = slo_ci(&h, "p95").unwrap();
        let p95 = h.percentile_ms(95.0);
        assert!(lo <= p95 && p95 <= hi && hi - lo < 40.0, "{lo} {p95} {hi}");
        let twice = pooled([&h.summary(), &h.summary()]);
        assert_eq!(twice.count(), 2000);
    }
}
