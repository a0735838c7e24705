//! The statistics the search decides with: how many samples an SLO percentile needs, the
//! distribution-free confidence interval of a percentile from histogram counts, and the
//! pooled histogram of repeated steps. Rules from `reference/regression-gates.md` §6.

use crate::measure::latency::{Latency, LatencySummary};

/// Two-sided 95 %: each tail 2.5 %.
const TAIL: f64 = 0.025;

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

/// Fewest samples for which the statistic has a finite two-sided 95 % CI: the top order
/// statistic must reach past the quantile, q^n ≤ 2.5 % (72 for p95, 368 for p99). A mean
/// asks for 30 (the usual floor for its normal interval); a max for none.
pub fn min_samples(stat: &str) -> u64 {
    match (quantile_of(stat), stat) {
        (Some(q), _) => (TAIL.ln() / q.ln()).ceil() as u64,
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

/// 1-based ranks (l, u) of the order statistics bounding the q-quantile with ≥ 95 %
/// coverage: P(B < l) ≤ 2.5 % and P(B ≥ u) ≤ 2.5 % for B ~ Binomial(n, q). None when n is
/// too small for either bound to exist.
pub fn ci_ranks(n: u64, q: f64) -> Option<(u64, u64)> {
    if n == 0 || !(0.0..1.0).contains(&q) || q <= 0.0 {
        return None;
    }
    // pmf in log space: (1-q)^n underflows for large n.
    let (lq, lp) = (q.ln(), (1.0 - q).ln());
    let mut log_pmf = n as f64 * lp;
    let mut cdf = 0.0; // P(B ≤ k)
    let (mut lower, mut upper) = (None, None);
    for k in 0..=n {
        if k > 0 {
            log_pmf += ((n - k + 1) as f64).ln() - (k as f64).ln() + lq - lp;
        }
        cdf += log_pmf.exp();
        // X(k+1) is a lower bound while P(B ≤ k) ≤ tail.
        if cdf <= TAIL {
            lower = Some(k + 1);
        }
        // X(k+1) is an upper bound once P(B ≥ k+1) = 1 − P(B ≤ k) ≤ tail.
        if upper.is_none() && 1.0 - cdf <= TAIL {
            upper = Some(k + 1);
        }
    }
    match (lower, upper) {
        (Some(l), Some(u)) if u <= n => Some((l, u)),
        _ => None,
    }
}

/// The value of the r-th smallest sample (1-based) of a histogram, in ms.
fn at_rank(l: &Latency, r: u64) -> f64 {
    let n = l.count().max(1) as f64;
    l.percentile_ms(100.0 * (r as f64 - 0.5) / n)
}

/// 95 % CI (ms) of the statistic on a histogram; None for mean/max or too few samples.
pub fn slo_ci(l: &Latency, stat: &str) -> Option<[f64; 2]> {
    let q = quantile_of(stat)?;
    let (lo, hi) = ci_ranks(l.count(), q)?;
    Some([at_rank(l, lo), at_rank(l, hi)])
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
        assert!(ci_ranks(71, 0.95).is_none());
        assert!(ci_ranks(72, 0.95).is_some());
        assert!(ci_ranks(367, 0.99).is_none());
        assert!(ci_ranks(368, 0.99).is_some());
    }

    #[test]
    fn ci_brackets_the_percentile() {
        let (l, u) = ci_ranks(1000, 0.95).unwrap();
        // Normal approximation: 950 ± 1.96·√47.5 ≈ 936–964.
        assert!(
            (934..=938).contains(&l) && (963..=966).contains(&u),
            "{l} {u}"
        );
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
