//! Charts of the capacity section: the knee (latency against achieved throughput) and the
//! server's saturation signals against the offered rate.

use super::{lines, Series};
use crate::results::RunResults;
use std::collections::BTreeMap;

pub fn charts(results: &RunResults, out: &mut BTreeMap<String, String>) {
    let Some(c) = &results.capacity else { return };
    let mut steps: Vec<_> = c.steps.iter().collect();
    steps.sort_by(|a, b| a.target_rate.total_cmp(&b.target_rate));
    let xs: Vec<f64> = steps.iter().map(|s| s.achieved_tps).collect();
    let lat = [
        Series {
            name: "p50".into(),
            values: steps.iter().map(|s| s.latency.p50_ms).collect(),
        },
        Series {
            name: "p95".into(),
            values: steps.iter().map(|s| s.latency.p95_ms).collect(),
        },
        Series {
            name: "p99".into(),
            values: steps.iter().map(|s| s.latency.p99_ms).collect(),
        },
        Series {
            name: c
                .slo
                .as_ref()
                .map_or("SLO".into(), |s| format!("SLO {}", s.text)),
            values: steps
                .iter()
                .map(|_| c.slo.as_ref().map_or(f64::NAN, |s| s.limit_ms))
                .collect(),
        },
    ];
    if let Some(svg) = lines(
        "Knee: transaction latency against achieved throughput (log scale)",
        "achieved transactions/s",
        "ms (from intended start)",
        &xs,
        &lat,
        true,
    ) {
        out.insert("capacity_knee".into(), svg);
    }
    let rates: Vec<f64> = steps.iter().map(|s| s.target_rate).collect();
    let sat = [
        Series {
            name: "CPU busy %".into(),
            values: steps.iter().map(|s| s.cpu_busy * 100.0).collect(),
        },
        Series {
            name: "lock-waiting sessions ×100".into(),
            values: steps.iter().map(|s| s.lock_waits * 100.0).collect(),
        },
        Series {
            name: "I/O-waiting sessions ×100".into(),
            values: steps.iter().map(|s| s.io_waits * 100.0).collect(),
        },
        Series {
            name: "active sessions ×10".into(),
            values: steps.iter().map(|s| s.active_sessions * 10.0).collect(),
        },
    ];
    if let Some(svg) = lines(
        "Server signals by offered rate",
        "offered transactions/s",
        "",
        &rates,
        &sat,
        false,
    ) {
        out.insert("capacity_signals".into(), svg);
    }
}
