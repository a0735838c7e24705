//! The engine without a database: interleaving order and the stop rule.

use super::*;
use std::collections::HashMap;

#[test]
fn rounds_rotate_and_alternate_so_no_arm_always_follows_another() {
    assert_eq!(round_order(0, 2), vec![0, 1]);
    assert_eq!(round_order(1, 2), vec![1, 0]);
    assert_eq!(round_order(2, 2), vec![1, 0]);
    assert_eq!(round_order(3, 2), vec![0, 1]);
    for n in 1..=7 {
        let rounds = 2 * n;
        let mut position = vec![vec![0usize; n]; n];
        let mut before: HashMap<usize, Vec<usize>> = HashMap::new();
        for r in 0..rounds {
            let order = round_order(r, n);
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(
                sorted,
                (0..n).collect::<Vec<_>>(),
                "every arm once per round"
            );
            for (pos, arm) in order.iter().enumerate() {
                position[*arm][pos] += 1;
            }
            for w in order.windows(2) {
                before.entry(w[1]).or_default().push(w[0]);
            }
        }
        // Every arm takes every position equally often over 2n rounds.
        for arm in &position {
            assert!(arm.iter().all(|c| *c == 2), "n={n}: {position:?}");
        }
        // With three or more arms, no arm is always preceded by the same one.
        if n >= 3 {
            for (arm, prev) in &before {
                assert!(prev.iter().any(|p| *p != prev[0]), "n={n}: {arm} {prev:?}");
            }
        }
    }
}

fn opts(percentiles: &[f64], max_rounds: usize, budget_ms: u64) -> EngineOptions {
    EngineOptions::new(2, max_rounds, Duration::from_millis(budget_ms), percentiles)
}

fn wide() -> Option<Interval> {
    Some(Interval {
        estimate: 1.0,
        low: 0.8,
        high: 1.2,
    })
}

fn narrow() -> Option<Interval> {
    Some(Interval {
        estimate: 1.0,
        low: 0.99,
        high: 1.01,
    })
}

#[test]
fn stop_rule_honours_the_percentile_floor_then_budget_rounds_and_width() {
    let o = opts(&[50.0, 95.0], 30, 100);
    assert_eq!(o.floor(), 72, "p95 needs 72 rounds");
    assert_eq!(opts(&[50.0], 30, 100).floor(), 6);
    assert_eq!(opts(&[99.0], 30, 100).floor(), 368);
    let late = Duration::from_millis(150);
    // Below the floor only the hard budget stops, whatever the budget or width.
    assert_eq!(decide(&o, 71, late, &[narrow()]), None);
    assert_eq!(
        decide(&o, 10, Duration::from_millis(400), &[wide()]),
        Some(StopReason::HardBudget)
    );
    // At the floor: max_rounds (raised to the floor) is reached.
    assert_eq!(
        decide(&o, 72, Duration::ZERO, &[wide()]),
        Some(StopReason::MaxRounds)
    );
    let o = opts(&[50.0], 1000, 100);
    assert_eq!(decide(&o, 10, Duration::ZERO, &[wide()]), None);
    assert_eq!(
        decide(&o, 10, Duration::ZERO, &[narrow(), narrow()]),
        Some(StopReason::Narrow)
    );
    assert_eq!(decide(&o, 10, Duration::ZERO, &[narrow(), wide()]), None);
    assert_eq!(decide(&o, 10, Duration::ZERO, &[narrow(), None]), None);
    assert_eq!(decide(&o, 10, late, &[wide()]), Some(StopReason::Budget));
    assert_eq!(
        decide(&o, 1000, Duration::ZERO, &[wide()]),
        Some(StopReason::MaxRounds)
    );
}

/// Arms with fixed service times and a per-round drift that hits every arm alike.
struct Fake {
    micros: Vec<u64>,
    calls: Vec<usize>,
    fail_after: Option<(usize, usize)>,
}

impl Runner for Fake {
    fn arms(&self) -> usize {
        self.micros.len()
    }

    async fn time(&mut self, arm: usize) -> Result<(Duration, u64)> {
        self.calls.push(arm);
        let done = self.calls.iter().filter(|a| **a == arm).count();
        if let Some((a, n)) = self.fail_after {
            if a == arm && done > n {
                anyhow::bail!("arm {arm} broke");
            }
        }
        // Drift: every third round is twice as slow for everyone.
        let slow = if ((self.calls.len() - 1) / self.micros.len()).is_multiple_of(3) {
            2
        } else {
            1
        };
        Ok((Duration::from_micros(self.micros[arm] * slow), 1))
    }

    async fn work(&mut self, _arm: usize) -> Result<WorkSample> {
        Ok(WorkSample::default())
    }
}

#[tokio::test]
async fn paired_rounds_cancel_drift_and_stop_when_narrow() {
    let mut fake = Fake {
        micros: vec![1000, 2000, 1000],
        calls: Vec::new(),
        fail_after: None,
    };
    let o = opts(&[50.0], 10_000, 60_000);
    let out = measure(&mut fake, &[None, Some(0), Some(0)], &o).await;
    assert_eq!(out.rounds.stop, StopReason::Narrow);
    assert_eq!(out.rounds.rounds, 8, "first interval check after the floor");
    assert_eq!(
        fake.calls.len(),
        3 * (2 + 8),
        "warm-up rounds are not counted"
    );
    let slower = out.arms[1].ratio.unwrap();
    assert!((slower.estimate - 2.0).abs() < 1e-9, "{slower:?}");
    assert_eq!(out.arms[1].side, Some(Side::Above));
    assert_eq!(
        out.arms[2].side,
        Some(Side::Includes),
        "same speed: no difference"
    );
    assert_eq!(out.arms[0].ratio, None, "the reference has no ratio");
    assert_eq!(out.arms[0].latency.count(), 8);
    let inverse = out.paired(0, 1).unwrap();
    assert!((inverse.estimate - 0.5).abs() < 1e-9);
}

#[tokio::test]
async fn a_failing_arm_stops_alone_and_the_floor_is_kept() {
    let mut fake = Fake {
        micros: vec![1000, 1500],
        calls: Vec::new(),
        fail_after: Some((1, 5)),
    };
    let mut o = opts(&[50.0, 95.0], 0, 0);
    o.hard_budget = Duration::from_secs(60);
    let out = measure(&mut fake, &[None, Some(0)], &o).await;
    assert_eq!(
        out.rounds.rounds, 72,
        "a zero budget still gives p95's floor"
    );
    assert_eq!(out.arms[0].latency.count(), 72);
    assert!(out.arms[1].error.as_deref().unwrap().contains("broke"));
    assert_eq!(
        out.arms[1].latency.count(),
        3,
        "two warm-up runs, three timed"
    );
    assert_eq!(out.arms[1].ratio, None, "too few pairs for an interval");
    assert_eq!(out.arms[0].latency.summary().supported_percentile, 95.0);
    // With no hard budget left either, one round is all there is, and it is said.
    o.hard_budget = Duration::ZERO;
    let out = measure(&mut fake, &[None, Some(0)], &o).await;
    assert_eq!(out.rounds.rounds, 1);
    assert_eq!(out.rounds.stop, StopReason::HardBudget);
    assert_eq!(out.arms[0].latency.summary().supported_percentile, 0.0);
}

#[test]
fn geomean_interval_narrows_with_more_queries() {
    let one = Interval {
        estimate: 2.0,
        low: 1.0,
        high: 4.0,
    };
    let g1 = geomean_interval(&[one]).unwrap();
    assert!((g1.estimate - 2.0).abs() < 1e-9);
    assert!((g1.low - 1.0).abs() < 1e-9 && (g1.high - 4.0).abs() < 1e-9);
    let g4 = geomean_interval(&[one; 4]).unwrap();
    assert!((g4.estimate - 2.0).abs() < 1e-9);
    assert!(g4.low > 1.0 && g4.high < 4.0, "{g4:?}");
    let exact = Interval {
        estimate: 1.0,
        low: 1.0,
        high: 1.0,
    };
    let g = geomean_interval(&[exact, exact]).unwrap();
    assert_eq!(g.side_of(1.0), Side::Includes);
    assert_eq!(geomean_interval(&[]), None);
}
