//! The foreground before, during and after an operation: each query's per-second samples
//! pooled over the three windows, with the percentiles the pooled counts support.

use crate::measure::load::recorder::{QuerySeconds, SecondStats};
use serde::{Deserialize, Serialize};

/// One query in one window: its seconds pooled (samples dropped once pooled).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PhaseStats {
    pub seconds: f64,
    #[serde(flatten)]
    pub figures: SecondStats,
}

/// One query before, during and after the operation.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct QueryPhases {
    pub query: String,
    /// The query reads or writes a table the operation changes or locks.
    pub affected: bool,
    pub before: PhaseStats,
    pub during: PhaseStats,
    pub after: PhaseStats,
}

impl QueryPhases {
    /// How many times the p99 (else the highest supported percentile, else the max)
    /// during the operation is that before it.
    pub fn slowdown(&self) -> Option<f64> {
        let pick = |p: &PhaseStats| {
            let f = &p.figures;
            f.p99_ms.or(f.p95_ms).or(f.max_ms)
        };
        let (b, d) = (pick(&self.before)?, pick(&self.during)?);
        (b > 0.0).then(|| d / b)
    }
}

/// The windows, in whole seconds of the measurement: before = [0, start), during =
/// [start, end] (every second the operation overlaps), after = the rest.
pub fn split(q: &QuerySeconds, start_s: f64, end_s: f64, affected: bool) -> QueryPhases {
    let first = start_s.floor().max(0.0) as usize;
    let last = end_s.ceil().max(start_s.floor() + 1.0) as usize;
    let n = q.seconds.len();
    QueryPhases {
        query: q.name.clone(),
        affected,
        before: pool(&q.seconds[..first.min(n)]),
        during: pool(&q.seconds[first.min(n)..last.min(n)]),
        after: pool(&q.seconds[last.min(n)..]),
    }
}

fn pool(seconds: &[SecondStats]) -> PhaseStats {
    let micros: Vec<u32> = seconds
        .iter()
        .flat_map(|s| s.micros.iter().copied())
        .collect();
    let mut figures = SecondStats::of(micros, seconds.iter().map(|s| s.errors).sum());
    figures.micros = Vec::new();
    PhaseStats {
        seconds: seconds.len() as f64,
        figures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_every_second_once() {
        let second = |ms: u32, n: usize| SecondStats::of(vec![ms * 1000; n], 0);
        let q = QuerySeconds {
            name: "q".into(),
            seconds: vec![
                second(1, 400),
                second(1, 400),
                second(90, 400),
                second(1, 400),
            ],
        };
        let p = split(&q, 2.2, 2.9, true);
        assert_eq!(
            (p.before.figures.ok, p.during.figures.ok, p.after.figures.ok),
            (800, 400, 400)
        );
        assert_eq!(p.during.figures.p99_ms, Some(90.0));
        assert_eq!(p.before.figures.p99_ms, Some(1.0));
        assert!((p.slowdown().unwrap() - 90.0).abs() < 1e-9);
        // Too few samples for a p99: none is reported, the max is.
        let few = split(
            &QuerySeconds {
                name: "f".into(),
                seconds: vec![second(2, 10)],
            },
            0.0,
            0.5,
            false,
        );
        assert_eq!(few.during.figures.p99_ms, None);
        assert_eq!(few.during.figures.max_ms, Some(2.0));
    }
}
