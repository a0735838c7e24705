//! Power-law fits across data sizes: log(value) against log(size), the exponent with its
//! interval and the value extrapolated to a launch size with its interval.
//!
//! Two sources of uncertainty, combined as the union of their intervals:
//! - the points' own intervals (a capacity's bracket, a p95's order-statistic interval): the
//!   fit redone through every combination of the points' low and high ends (the envelope);
//! - the scatter about the line: with n ≥ 3 points, the t-interval of the least-squares fit
//!   (df = n − 2; at 3 points t = 12.7, so it is honest and wide). With 2 points there is no
//!   scatter to measure and only the envelope is known, which the basis says.

use crate::stats::Interval;
use serde::{Deserialize, Serialize};

/// One measured point: a size and a value with its interval (all > 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FitPoint {
    pub size: f64,
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// What the fit's interval is made of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitBasis {
    /// The points' intervals and the t-interval of the scatter (n ≥ 3).
    #[default]
    PointsAndScatter,
    /// Two points: only their intervals; the scatter about the line is unmeasured.
    PointsOnly,
}

/// value ≈ c · size^exponent.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PowerFit {
    pub points: Vec<FitPoint>,
    /// The exponent (slope of log value against log size), with its 95 % interval.
    pub exponent: Interval,
    pub basis: FitBasis,
    /// The size extrapolated to, and the value there with its 95 % interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_size: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted: Option<Interval>,
}

impl PowerFit {
    /// The fitted line's value at `size` (least squares through the points' values).
    pub fn value_at(&self, size: f64) -> f64 {
        let x: Vec<f64> = self.points.iter().map(|p| p.size.ln()).collect();
        let y: Vec<f64> = self.points.iter().map(|p| p.value.ln()).collect();
        let (slope, intercept, ..) = least_squares(&x, &y);
        (intercept + slope * size.ln()).exp()
    }

    /// high / low of the prediction (∞ when its low end is 0 or absent).
    pub fn predicted_spread(&self) -> f64 {
        match self.predicted {
            Some(p) if p.low > 0.0 => p.high / p.low,
            _ => f64::INFINITY,
        }
    }
}

/// Most points the envelope enumerates (2^n fits).
const MAX_POINTS: usize = 12;

/// Two-sided 95 % Student t quantile (df ≥ 1); the normal's beyond the table.
pub fn t975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        d if d <= TABLE.len() => TABLE[d - 1],
        _ => 1.960,
    }
}

/// Least squares of y on x: (slope, intercept, residual sum of squares, Sxx, mean x).
fn least_squares(x: &[f64], y: &[f64]) -> (f64, f64, f64, f64, f64) {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let sse = x
        .iter()
        .zip(y)
        .map(|(a, b)| (b - intercept - slope * a).powi(2))
        .sum();
    (slope, intercept, sse, sxx, mx)
}

/// Fits value = c · size^k through `points` and, with `at`, extrapolates to that size.
/// None with fewer than 2 points, two equal sizes, or a non-positive figure.
pub fn fit(points: &[FitPoint], at: Option<f64>) -> Option<PowerFit> {
    let n = points.len();
    let positive = |p: &FitPoint| p.size > 0.0 && p.value > 0.0 && p.low > 0.0 && p.high > 0.0;
    if !(2..=MAX_POINTS).contains(&n) || !points.iter().all(positive) {
        return None;
    }
    let x: Vec<f64> = points.iter().map(|p| p.size.ln()).collect();
    let y: Vec<f64> = points.iter().map(|p| p.value.ln()).collect();
    let (slope, intercept, sse, sxx, mx) = least_squares(&x, &y);
    if sxx <= 0.0 || !slope.is_finite() {
        return None;
    }
    let x0 = at.filter(|s| *s > 0.0).map(f64::ln);
    let predict = |b: f64, a: f64| x0.map(|x0| a + b * x0);
    // The envelope: the line through every combination of the points' ends.
    let (mut slo, mut shi) = (slope, slope);
    let (mut plo, mut phi) = predict(slope, intercept).map_or((0.0, 0.0), |p| (p, p));
    for mask in 0..(1u32 << n) {
        let ends: Vec<f64> = points
            .iter()
            .enumerate()
            .map(|(i, p)| if mask & (1 << i) == 0 { p.low } else { p.high }.ln())
            .collect();
        let (b, a, ..) = least_squares(&x, &ends);
        slo = slo.min(b);
        shi = shi.max(b);
        if let Some(p) = predict(b, a) {
            plo = plo.min(p);
            phi = phi.max(p);
        }
    }
    let basis = if n >= 3 {
        // The scatter: t-interval of the slope and of the line's value at x0.
        let t = t975(n - 2);
        let s = (sse / (n - 2) as f64).sqrt();
        let se_slope = s / sxx.sqrt();
        slo = slo.min(slope - t * se_slope);
        shi = shi.max(slope + t * se_slope);
        if let (Some(x0), Some(p)) = (x0, predict(slope, intercept)) {
            let se = s * (1.0 / n as f64 + (x0 - mx).powi(2) / sxx).sqrt();
            plo = plo.min(p - t * se);
            phi = phi.max(p + t * se);
        }
        FitBasis::PointsAndScatter
    } else {
        FitBasis::PointsOnly
    };
    Some(PowerFit {
        points: points.to_vec(),
        exponent: Interval {
            estimate: slope,
            low: slo,
            high: shi,
        },
        basis,
        at_size: at,
        predicted: predict(slope, intercept).map(|p| Interval {
            estimate: p.exp(),
            low: plo.exp(),
            high: phi.exp(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(size: f64, value: f64) -> FitPoint {
        FitPoint {
            size,
            value,
            low: value,
            high: value,
        }
    }

    #[test]
    fn exact_power_law_is_recovered_with_a_point_interval() {
        // capacity = 800 · size^-0.5: 800, 462, 253 at 1, 3, 10.
        let pts: Vec<FitPoint> = [1.0, 3.0, 10.0]
            .iter()
            .map(|s: &f64| exact(*s, 800.0 * s.powf(-0.5)))
            .collect();
        let f = fit(&pts, Some(100.0)).unwrap();
        assert!((f.exponent.estimate + 0.5).abs() < 1e-9, "{f:?}");
        assert!((f.exponent.high - f.exponent.low).abs() < 1e-9);
        let p = f.predicted.unwrap();
        assert!((p.estimate - 80.0).abs() < 1e-6, "{p:?}");
        assert!((p.high - p.low).abs() < 1e-6);
        assert_eq!(f.basis, FitBasis::PointsAndScatter);
    }

    #[test]
    fn scatter_widens_by_the_t_quantile() {
        // log y = 0, ln 2, 0 at log x = 0, 1, 2 (x = 1, e, e²): slope 0, intercept ln2/3,
        // residuals -ln2/3, 2ln2/3, -ln2/3: SSE = 6 (ln2/3)² = 2 ln²2 / 3, s² = SSE/1,
        // Sxx = 2, se(slope) = s/√2, interval = ±12.706 · se.
        let e = std::f64::consts::E;
        let pts = [exact(1.0, 1.0), exact(e, 2.0), exact(e * e, 1.0)];
        let f = fit(&pts, None).unwrap();
        let ln2 = 2f64.ln();
        let se = (2.0 * ln2 * ln2 / 3.0).sqrt() / 2f64.sqrt();
        assert!(f.exponent.estimate.abs() < 1e-12);
        assert!((f.exponent.high - 12.706 * se).abs() < 1e-9, "{f:?}");
        assert!((f.exponent.low + 12.706 * se).abs() < 1e-9);
        assert!(f.predicted.is_none());
    }

    #[test]
    fn two_points_take_the_envelope_of_their_intervals() {
        // 100 ∈ [90, 110] at size 1, 50 ∈ [45, 55] at size 10: the steepest line runs
        // 110 → 45, the flattest 90 → 55 (log10 slope = log(45/110), log(55/90)).
        let pts = [
            FitPoint {
                size: 1.0,
                value: 100.0,
                low: 90.0,
                high: 110.0,
            },
            FitPoint {
                size: 10.0,
                value: 50.0,
                low: 45.0,
                high: 55.0,
            },
        ];
        let f = fit(&pts, Some(100.0)).unwrap();
        assert_eq!(f.basis, FitBasis::PointsOnly);
        let l10 = 10f64.ln();
        assert!((f.exponent.estimate - (0.5f64).ln() / l10).abs() < 1e-12);
        assert!((f.exponent.low - (45.0f64 / 110.0).ln() / l10).abs() < 1e-12);
        assert!((f.exponent.high - (55.0f64 / 90.0).ln() / l10).abs() < 1e-12);
        let p = f.predicted.unwrap();
        assert!((p.estimate - 25.0).abs() < 1e-9);
        // Lowest: 110 at 1, 45 at 10 → 45²/110 at 100; highest: 90 → 55 → 55²/90.
        assert!((p.low - 45.0 * 45.0 / 110.0).abs() < 1e-9, "{p:?}");
        assert!((p.high - 55.0 * 55.0 / 90.0).abs() < 1e-9);
        assert!((f.predicted_spread() - (55.0 * 55.0 / 90.0) / (45.0 * 45.0 / 110.0)).abs() < 1e-9);
    }

    #[test]
    fn degenerate_inputs_give_no_fit() {
        assert!(fit(&[exact(1.0, 5.0)], Some(10.0)).is_none());
        assert!(fit(&[exact(2.0, 5.0), exact(2.0, 7.0)], None).is_none());
        assert!(fit(&[exact(1.0, 5.0), exact(3.0, 0.0)], None).is_none());
    }
}
