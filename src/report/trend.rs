//! Change points in a run-to-run series (regression-gates.md §3): a shift that persists
//! over several runs, not one noisy point. Deterministic binary segmentation: the split
//! with the largest Welch t between its two segments is kept when both segments hold at
//! least [`MIN_SEGMENT`] runs, t ≥ [`MIN_T`] and the medians differ by ≥ [`MIN_SHIFT`];
//! then each segment is searched again.

/// Runs on each side of a change point.
const MIN_SEGMENT: usize = 3;
/// Welch t of the split (|mean difference| / its standard error).
const MIN_T: f64 = 4.0;
/// Relative shift of the medians (0.10 = 10 %).
const MIN_SHIFT: f64 = 0.10;

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var)
}

/// Welch t of splitting `v` at `k` (segments `..k` and `k..`).
fn welch_t(v: &[f64], k: usize) -> f64 {
    let (a, b) = v.split_at(k);
    let (ma, va) = mean_var(a);
    let (mb, vb) = mean_var(b);
    // A floor on the variance: identical values must not make any shift "infinitely" sure.
    let floor = (1e-3 * ma.abs().max(mb.abs()).max(1e-9)).powi(2);
    let se = (va.max(floor) / a.len() as f64 + vb.max(floor) / b.len() as f64).sqrt();
    (mb - ma).abs() / se
}

fn split(v: &[f64], offset: usize, out: &mut Vec<usize>) {
    if v.len() < 2 * MIN_SEGMENT {
        return;
    }
    let best = (MIN_SEGMENT..=v.len() - MIN_SEGMENT)
        .map(|k| (k, welch_t(v, k)))
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
    let Some((k, t)) = best else { return };
    let (before, after) = (crate::stats::median(&v[..k]), crate::stats::median(&v[k..]));
    let shift = (after - before).abs() / before.abs().max(1e-12);
    if t < MIN_T || shift < MIN_SHIFT {
        return;
    }
    split(&v[..k], offset, out);
    out.push(offset + k);
    split(&v[k..], offset + k, out);
}

/// Indices (into `values`) where a new level starts. Non-finite values (runs that lack the
/// figure) are skipped, and the indices still point into `values`.
pub fn change_points(values: &[f64]) -> Vec<usize> {
    let kept: Vec<(usize, f64)> = values
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .collect();
    let v: Vec<f64> = kept.iter().map(|x| x.1).collect();
    let mut out = Vec::new();
    split(&v, 0, &mut out);
    out.into_iter().map(|i| kept[i].0).collect()
}

#[cfg(test)]
mod tests {
    use super::change_points;

    #[test]
    fn a_persistent_step_is_a_change_point() {
        let v = [10.0, 10.3, 9.8, 10.1, 9.9, 15.2, 14.8, 15.1, 15.0];
        assert_eq!(change_points(&v), vec![5]);
    }

    #[test]
    fn one_noisy_run_is_not() {
        let v = [10.0, 10.2, 9.9, 30.0, 10.1, 9.8, 10.0, 10.2];
        assert!(change_points(&v).is_empty());
        let v = [10.0, 10.2, 9.9, 10.1, 9.8, 10.0, 10.2, 16.0, 16.2];
        assert!(
            change_points(&v).is_empty(),
            "two runs are too few to call it"
        );
    }

    #[test]
    fn noise_and_small_shifts_are_not() {
        let v = [10.0, 10.6, 9.5, 10.4, 9.7, 10.3, 9.6, 10.5, 9.9];
        assert!(change_points(&v).is_empty());
        let v = [10.0, 10.01, 10.0, 10.02, 10.5, 10.51, 10.5, 10.52];
        assert!(change_points(&v).is_empty(), "5 % is below the magnitude");
    }

    #[test]
    fn two_steps_and_gaps() {
        let v = [
            5.0,
            5.1,
            4.9,
            f64::NAN,
            8.0,
            8.1,
            7.9,
            8.05,
            12.0,
            12.2,
            11.9,
        ];
        assert_eq!(change_points(&v), vec![4, 8]);
        assert!(change_points(&[1.0, 2.0]).is_empty());
    }
}
