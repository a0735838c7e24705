//! Charts of the ops section: each affected query's slowest latency per second, with the
//! operation's window marked, so a stall reads as a spike between the two lines.

use super::{lines, Series};
use crate::results::RunResults;
use std::collections::BTreeMap;

pub fn charts(results: &RunResults, out: &mut BTreeMap<String, String>) {
    let Some(s) = &results.ops else { return };
    for (i, op) in s.operations.iter().enumerate() {
        let len = op
            .affected_seconds
            .iter()
            .map(|q| q.seconds.len())
            .max()
            .unwrap_or(0);
        let xs: Vec<f64> = (0..len).map(|x| x as f64 + 0.5).collect();
        // The per-second max: a second rarely holds the samples a p99 needs.
        let mut series: Vec<Series> = op
            .affected_seconds
            .iter()
            .take(6)
            .map(|q| Series {
                name: q.name.clone(),
                values: (0..len)
                    .map(|x| q.seconds.get(x).and_then(|s| s.max_ms).unwrap_or(f64::NAN))
                    .collect(),
            })
            .collect();
        let top = series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .filter(|v| v.is_finite())
            .fold(1.0_f64, f64::max);
        let (a, b) = (op.under_load.started_s, op.under_load.finished_s);
        series.push(Series {
            name: format!("operation {a:.1}–{b:.1} s"),
            values: xs
                .iter()
                .map(|x| {
                    if *x >= a.floor() && *x <= b.ceil() {
                        top
                    } else {
                        f64::NAN
                    }
                })
                .collect(),
        });
        if let Some(svg) = lines(
            &format!(
                "{}: slowest request per second of the affected queries (log scale)",
                op.name
            ),
            "second of the load",
            "ms (max of the second)",
            &xs,
            &series,
            true,
        ) {
            out.insert(format!("ops_{i}"), svg);
        }
    }
}
