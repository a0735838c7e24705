//! Distribution-free statistics shared by every stage, the gate and the report: quantile
//! confidence intervals from histogram counts (order statistics of Binomial(n, q)), ratio
//! intervals, the sample count a percentile needs, and the few summary helpers (median,
//! geometric mean) that used to be written in several places.
//!
//! Why order statistics: latency distributions are skewed and multi-modal, so intervals that
//! assume normality lie; the rank interval needs only cumulative counts, which an HDR
//! histogram has (see `docs/statistics.md`).

use crate::latency::Latency;
use serde::{Deserialize, Serialize};

/// Confidence used for every interval storybench reports unless a caller says otherwise.
pub const CONFIDENCE: f64 = 0.95;

/// An estimate with its confidence interval (same unit as the estimate).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

/// Which side of a reference value an interval lies on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Below,
    /// The interval includes the reference: no measurable difference.
    Includes,
    Above,
}

impl Interval {
    pub fn includes(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }

    /// Where the interval lies relative to `x`.
    pub fn side_of(&self, x: f64) -> Side {
        if self.high < x {
            Side::Below
        } else if self.low > x {
            Side::Above
        } else {
            Side::Includes
        }
    }

    /// Relative half-width (0.05 = ±5 % of the estimate).
    pub fn relative_half_width(&self) -> f64 {
        if self.estimate.abs() < 1e-12 {
            return f64::INFINITY;
        }
        (self.high - self.low) / 2.0 / self.estimate.abs()
    }
}

/// 1-based ranks (lo, hi) of the order statistics that bound the `q` quantile of `n` samples
/// with at least `confidence` coverage (equal tails), or None when `n` is too small for a
/// finite interval. Coverage of [X(lo), X(hi)] is F(hi-1) - F(lo-1), F the Binomial(n, q) CDF.
fn quantile_ranks(n: u64, q: f64, confidence: f64) -> Option<(u64, u64)> {
    if n == 0 || q <= 0.0 || q >= 1.0 {
        return None;
    }
    let tail = (1.0 - confidence) / 2.0;
    if n > 5000 {
        // Normal approximation of the binomial: the ranks are far from the ends.
        let z = normal_quantile(1.0 - tail);
        let sd = (n as f64 * q * (1.0 - q)).sqrt();
        let lo = (n as f64 * q - z * sd).floor();
        let hi = (n as f64 * q + z * sd).ceil() + 1.0;
        if lo < 1.0 || hi > n as f64 {
            return None;
        }
        return Some((lo as u64, hi as u64));
    }
    // The pmf iteratively in log space (no underflow of (1-q)^n for large n).
    let (lq, lp) = ((1.0 - q).ln(), q.ln());
    let mut ln_pmf = n as f64 * lq; // P(X = 0)
    let mut cdf = ln_pmf.exp(); // F(r-1) for r = 1
    let (mut lo, mut hi) = (None, None);
    for r in 1..=n {
        if cdf <= tail {
            lo = Some(r);
        }
        if cdf >= 1.0 - tail {
            hi = Some(r);
            break;
        }
        // Advance to F(r): add P(X = r).
        ln_pmf += ((n - r + 1) as f64).ln() - (r as f64).ln() + lp - lq;
        cdf += ln_pmf.exp();
    }
    match (lo, hi) {
        (Some(l), Some(h)) => Some((l, h)),
        _ => None,
    }
}

/// Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Smallest sample count with a finite two-sided interval for the `q` quantile
/// (6 for p50, 72 for p95, 368 for p99 at 95 %).
pub fn min_samples(q: f64, confidence: f64) -> u64 {
    let mut n = 1;
    while quantile_ranks(n, q, confidence).is_none() {
        n += 1;
        if n > 1_000_000 {
            break;
        }
    }
    n
}

/// Whether `n` samples support reporting the percentile `p` (0–100) at [`CONFIDENCE`].
pub fn supports(n: u64, p: f64) -> bool {
    quantile_ranks(n, p / 100.0, CONFIDENCE).is_some()
}

/// The `q` quantile of a latency histogram with its interval, in milliseconds.
pub fn quantile_ci(l: &Latency, q: f64, confidence: f64) -> Option<Interval> {
    let (lo, hi) = quantile_ranks(l.count(), q, confidence)?;
    Some(Interval {
        estimate: l.percentile_ms(q * 100.0),
        low: l.value_at_rank_ms(lo),
        high: l.value_at_rank_ms(hi),
    })
}

/// The `q` quantile of a sample with its interval (the values need not be sorted).
pub fn sample_quantile_ci(values: &[f64], q: f64, confidence: f64) -> Option<Interval> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let (lo, hi) = quantile_ranks(v.len() as u64, q, confidence)?;
    Some(Interval {
        estimate: quantile_of_sorted(&v, q),
        low: v[lo as usize - 1],
        high: v[hi as usize - 1],
    })
}

/// Ratio `b / a` of the `q` quantiles of two independent histograms, with an interval that
/// covers at least `confidence` (each side's interval at 1 - (1-confidence)/2, Bonferroni).
pub fn quantile_ratio_ci(a: &Latency, b: &Latency, q: f64, confidence: f64) -> Option<Interval> {
    let each = 1.0 - (1.0 - confidence) / 2.0;
    let (ia, ib) = (quantile_ci(a, q, each)?, quantile_ci(b, q, each)?);
    if ia.low <= 0.0 || ia.estimate <= 0.0 {
        return None;
    }
    Some(Interval {
        estimate: ib.estimate / ia.estimate,
        low: ib.low / ia.high,
        high: ib.high / ia.low,
    })
}

/// Median of paired per-round ratios with its sign-test interval: the estimate for
/// interleaved A/B rounds, where each round gives one ratio measured side by side.
pub fn paired_ratio_ci(ratios: &[f64], confidence: f64) -> Option<Interval> {
    let logs: Vec<f64> = ratios
        .iter()
        .filter(|r| **r > 0.0 && r.is_finite())
        .map(|r| r.ln())
        .collect();
    let i = sample_quantile_ci(&logs, 0.5, confidence)?;
    Some(Interval {
        estimate: i.estimate.exp(),
        low: i.low.exp(),
        high: i.high.exp(),
    })
}

/// Linear-interpolated quantile of sorted values (empty → NaN).
pub fn quantile_of_sorted(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let (i, frac) = (pos.floor() as usize, pos.fract());
            if i + 1 < n {
                sorted[i] * (1.0 - frac) + sorted[i + 1] * frac
            } else {
                sorted[n - 1]
            }
        }
    }
}

/// Q3 + k·IQR (Tukey's outer fence; rustc-perf's noise bound with k = 3) of the values,
/// which it sorts. Empty → NaN.
pub fn iqr_fence(values: &mut [f64], k: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let (q1, q3) = (
        quantile_of_sorted(values, 0.25),
        quantile_of_sorted(values, 0.75),
    );
    q3 + k * (q3 - q1)
}

/// Median of unsorted values (empty → NaN).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    quantile_of_sorted(&v, 0.5)
}

/// Geometric mean of positive values (empty → None; non-positive values are skipped).
pub fn geomean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for v in values.into_iter().filter(|v| *v > 0.0 && v.is_finite()) {
        sum += v.ln();
        n += 1;
    }
    (n > 0).then(|| (sum / n as f64).exp())
}

/// Holm–Bonferroni: which of the p-values are rejected at family-wise level `alpha`.
pub fn holm(pvalues: &[f64], alpha: f64) -> Vec<bool> {
    let mut order: Vec<usize> = (0..pvalues.len()).collect();
    order.sort_by(|a, b| pvalues[*a].total_cmp(&pvalues[*b]));
    let m = pvalues.len();
    let mut out = vec![false; m];
    for (rank, &i) in order.iter().enumerate() {
        if pvalues[i] <= alpha / (m - rank) as f64 {
            out[i] = true;
        } else {
            break;
        }
    }
    out
}

/// Benjamini–Hochberg: which of the p-values are discoveries at false-discovery rate `q`.
pub fn benjamini_hochberg(pvalues: &[f64], q: f64) -> Vec<bool> {
    let m = pvalues.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|a, b| pvalues[*a].total_cmp(&pvalues[*b]));
    // The largest rank k with p(k) <= k q / m: it and every smaller p are discoveries.
    let k = order
        .iter()
        .enumerate()
        .rev()
        .find(|(rank, &i)| pvalues[i] <= (rank + 1) as f64 * q / m as f64)
        .map_or(0, |(rank, _)| rank + 1);
    let mut out = vec![false; m];
    for &i in &order[..k] {
        out[i] = true;
    }
    out
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 erfc, |error| < 1.5e-7).
fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let poly = t
        * (0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let erfc = poly * (-z * z).exp();
    if x >= 0.0 {
        1.0 - erfc / 2.0
    } else {
        erfc / 2.0
    }
}

/// Interval of `new / base` from independent intervals of two positive quantities (both at
/// `confidence`): in log space the half-widths add in quadrature, side by side (an interval
/// of a ratio is skewed, so the low and high sides are combined separately).
pub fn ratio_of_intervals(base: &Interval, new: &Interval) -> Option<Interval> {
    let ok = |i: &Interval| i.estimate > 0.0 && i.low > 0.0 && i.high >= i.estimate;
    if !ok(base) || !ok(new) {
        return None;
    }
    let ln = f64::ln;
    let d = ln(new.estimate) - ln(base.estimate);
    let down = (ln(new.estimate) - ln(new.low)).hypot(ln(base.high) - ln(base.estimate));
    let up = (ln(new.high) - ln(new.estimate)).hypot(ln(base.estimate) - ln(base.low));
    Some(Interval {
        estimate: d.exp(),
        low: (d - down).exp(),
        high: (d + up).exp(),
    })
}

/// One-sided p-value of "the true ratio is at most `x`" for a positive ratio estimated with
/// the interval `i` at `confidence`: the interval's low side read as a normal in log space.
/// Small when the whole interval lies far above `x`.
pub fn pvalue_above(i: &Interval, x: f64, confidence: f64) -> f64 {
    if i.estimate <= 0.0 || x <= 0.0 {
        return 1.0;
    }
    let gap = i.estimate.ln() - x.ln();
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let se = if i.low > 0.0 {
        (i.estimate.ln() - i.low.ln()) / z
    } else {
        f64::INFINITY
    };
    if se <= 0.0 {
        // A degenerate interval (every sample in one histogram bucket): decided by the estimate.
        return if gap > 0.0 { 0.0 } else { 1.0 };
    }
    1.0 - normal_cdf(gap / se)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn minimum_sample_counts_match_the_published_ones() {
        assert_eq!(min_samples(0.5, 0.95), 6);
        assert_eq!(min_samples(0.95, 0.95), 72);
        assert_eq!(min_samples(0.99, 0.95), 368);
        assert!(!supports(20, 99.0));
        assert!(supports(400, 99.0));
    }

    #[test]
    fn ranks_cover_the_quantile() {
        // n = 100, median: the classic 95 % ranks are 40 and 61.
        let (lo, hi) = quantile_ranks(100, 0.5, 0.95).unwrap();
        assert!((39..=41).contains(&lo), "{lo}");
        assert!((60..=62).contains(&hi), "{hi}");
        // The normal branch agrees with the exact one near its boundary.
        let exact = quantile_ranks(5000, 0.9, 0.95).unwrap();
        let approx = quantile_ranks(5001, 0.9, 0.95).unwrap();
        assert!((exact.0 as i64 - approx.0 as i64).abs() <= 2);
        assert!((exact.1 as i64 - approx.1 as i64).abs() <= 2);
    }

    #[test]
    fn histogram_interval_brackets_its_estimate() {
        let mut l = Latency::new();
        for ms in 1..=1000u64 {
            l.record(Duration::from_micros(ms * 100));
        }
        let i = quantile_ci(&l, 0.5, 0.95).unwrap();
        assert!(i.low <= i.estimate && i.estimate <= i.high);
        assert!(i.low > 45.0 && i.high < 55.0, "{i:?}");
        // Same distribution twice: the ratio interval includes 1.
        let r = quantile_ratio_ci(&l, &l, 0.5, 0.95).unwrap();
        assert_eq!(r.side_of(1.0), Side::Includes);
        // Twice as slow: clearly above 1.
        let mut slow = Latency::new();
        for ms in 1..=1000u64 {
            slow.record(Duration::from_micros(ms * 200));
        }
        let r = quantile_ratio_ci(&l, &slow, 0.5, 0.95).unwrap();
        assert_eq!(r.side_of(1.0), Side::Above, "{r:?}");
        assert!((r.estimate - 2.0).abs() < 0.05);
    }

    #[test]
    fn paired_ratios_and_helpers() {
        let r = paired_ratio_ci(&[1.1, 1.2, 1.15, 1.05, 1.3, 1.12, 1.18, 1.22], 0.95).unwrap();
        assert_eq!(r.side_of(1.0), Side::Above);
        assert!(paired_ratio_ci(&[1.0, 1.1], 0.95).is_none());
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!((geomean([1.0, 4.0]).unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(geomean([]), None);
        assert_eq!(holm(&[0.001, 0.04, 0.03], 0.05), vec![true, false, false]);
        assert_eq!(holm(&[0.001, 0.01, 0.02], 0.05), vec![true, true, true]);
        assert!((normal_quantile(0.975) - 1.959964).abs() < 1e-5);
    }

    #[test]
    fn fdr_cdf_and_ratio_of_intervals() {
        // Step-up: 0.03 > 2·0.05/4, yet 0.036 ≤ 3·0.05/4 makes all three discoveries.
        assert_eq!(
            benjamini_hochberg(&[0.01, 0.036, 0.03, 0.5], 0.05),
            vec![true, true, true, false]
        );
        assert_eq!(benjamini_hochberg(&[0.2, 0.5], 0.05), vec![false, false]);
        assert!((normal_cdf(1.959964) - 0.975).abs() < 1e-6);
        // Q1 0.02, Q3 0.04 → 0.04 + 3·0.02.
        assert!((iqr_fence(&mut [0.05, 0.01, 0.03, 0.02, 0.04], 3.0) - 0.10).abs() < 1e-12);
        assert!((normal_cdf(-1.0) - 0.158655).abs() < 1e-6);
        let base = Interval {
            estimate: 1.0,
            low: 0.9,
            high: 1.1,
        };
        let slow = Interval {
            estimate: 2.0,
            low: 1.8,
            high: 2.2,
        };
        let r = ratio_of_intervals(&base, &slow).unwrap();
        assert!(
            (r.estimate - 2.0).abs() < 1e-12 && r.low > 1.5 && r.high < 2.6,
            "{r:?}"
        );
        // Far above 1.2: tiny p; the same interval against 3: p near 1.
        assert!(pvalue_above(&r, 1.2, CONFIDENCE) < 1e-4);
        assert!(pvalue_above(&r, 3.0, CONFIDENCE) > 0.99);
        // An estimate at its low bound of 95 %: p = 0.025.
        let edge = Interval {
            estimate: 1.0,
            low: 0.8,
            high: 1.2,
        };
        assert!((pvalue_above(&edge, 0.8, 0.95) - 0.025).abs() < 1e-4);
    }
}
