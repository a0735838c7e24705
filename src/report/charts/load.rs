//! Charts of the load section: percentile curve, throughput and latency over time.

use super::{lines, percentile_curves, Series};
use crate::results::RunResults;
use std::collections::BTreeMap;

pub fn charts(results: &RunResults, out: &mut BTreeMap<String, String>) {
    let Some(load) = &results.load else { return };
    let f = &load.figures;
    if let Some(svg) = percentile_curves(
        "Transaction latency by percentile (log scale)",
        &[(load.target.clone(), f.transaction_curve.clone())],
    ) {
        out.insert("load_percentiles".into(), svg);
    }
    let xs: Vec<f64> = f.timeline.iter().map(|p| p.second as f64).collect();
    let tput = [
        Series {
            name: "ok/s".into(),
            values: f.timeline.iter().map(|p| p.ok as f64).collect(),
        },
        Series {
            name: "errors/s".into(),
            values: f.timeline.iter().map(|p| p.errors as f64).collect(),
        },
    ];
    if let Some(svg) = lines(
        "Throughput over time",
        "second",
        "transactions/s",
        &xs,
        &tput,
        false,
    ) {
        out.insert("load_throughput".into(), svg);
    }
    let lat = [
        Series {
            name: "p50".into(),
            values: f.timeline.iter().map(|p| p.p50_ms).collect(),
        },
        Series {
            name: "p95".into(),
            values: f.timeline.iter().map(|p| p.p95_ms).collect(),
        },
        Series {
            name: "p99".into(),
            values: f.timeline.iter().map(|p| p.p99_ms).collect(),
        },
    ];
    if let Some(svg) = lines(
        "Latency over time (log scale)",
        "second",
        "ms",
        &xs,
        &lat,
        true,
    ) {
        out.insert("load_latency".into(), svg);
    }
}
