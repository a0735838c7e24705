//! The SLO statistics the search decides with, named as the SLO names them (`p95`): how
//! many samples a percentile needs, its distribution-free confidence interval, and the
//! pooled histogram of repeated steps. The arithmetic is `crate::stats`'s.

use crate::latency::{Latency, LatencySummary, Stat};
use crate::stats;

/// Fewest samples for which the statistic has a finite two-sided 95 % CI (72 for p95, 368
/// for p99: [`crate::stats::min_samples`]). A mean asks for 30 (the usual floor for its
/// normal interval); a max for none.
pub fn min_samples(stat: Stat) -> u64 {
    match (stat.quantile(), stat) {
        (Some(q), _) => stats::min_samples(q, stats::CONFIDENCE),
        (None, Stat::Mean) => 30,
        _ => 1,
    }
}

/// Samples to plan a step for so that it holds `min_samples` even when the Poisson count of
/// arrivals comes out two standard deviations low.
pub fn planned_samples(stat: Stat) -> f64 {
    let n = min_samples(stat) as f64;
    if n <= 1.0 {
        1.0
    } else {
        n + 2.0 * n.sqrt()
    }
}

/// 95 % CI (ms) of the statistic on a histogram; None for mean/max or too few samples.
pub fn slo_ci(l: &Latency, stat: Stat) -> Option<[f64; 2]> {
    let i = stats::quantile_ci(l, stat.quantile()?, stats::CONFIDENCE)?;
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
        assert_eq!(min_samples(Stat::P50), 6);
        assert_eq!(min_samples(Stat::P90), 36);
        assert_eq!(min_samples(Stat::P95), 72);
        assert_eq!(min_samples(Stat::P99), 368);
        assert_eq!(min_samples(Stat::P999), 3688);
        assert_eq!(min_samples(Stat::Max), 1);
        assert_eq!(min_samples(Stat::Mean), 30);
        assert_eq!(Stat::parse("P99.9"), Some(Stat::P999));
        assert_eq!(Stat::parse("p42"), None);
    }

    #[test]
    fn ci_brackets_the_percentile() {
        let mut h = Latency::new();
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        let [lo, hi] = slo_ci(&h, Stat::P95).unwrap();
        let p95 = h.percentile_ms(95.0);
        assert!(lo <= p95 && p95 <= hi && hi - lo < 40.0, "{lo} {p95} {hi}");
        let twice = pooled([&h.summary(), &h.summary()]);
        assert_eq!(twice.count(), 2000);
    }
}
