//! Exports of a run's metrics for CI dashboards: Bencher's BMF JSON and
//! github-action-benchmark's `customSmallerIsBetter` format.

use super::metrics;
use crate::results::RunResults;
use serde_json::{json, Map, Value};

/// Bencher Metric Format: `{ "<benchmark>": { "<measure>": { "value", "lower_value", "upper_value" } } }`.
/// The benchmark is the metric key without its last segment; the measure is that segment
/// (`p50`, `p95`, `throughput`…); bounds are the run's own 95 % interval where it has one.
pub fn bencher_bmf(r: &RunResults) -> Value {
    let (ms, _) = metrics(r);
    let mut out = Map::new();
    for m in ms {
        let (bench, measure) = m.key.rsplit_once('/').unwrap_or((m.key.as_str(), "value"));
        let entry = out
            .entry(bench.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(map) = entry {
            map.insert(
                measure.to_string(),
                json!({
                    "value": m.value,
                    "lower_value": m.interval.map_or(m.value, |i| i.low.min(m.value)),
                    "upper_value": m.interval.map_or(m.value, |i| finite_or(i.high, m.value).max(m.value)),
                }),
            );
        }
    }
    Value::Object(out)
}

/// github-action-benchmark `customSmallerIsBetter`: latencies only (smaller is better);
/// throughput is exported inverted as milliseconds per transaction so the direction holds.
pub fn github_benchmark(r: &RunResults) -> Value {
    let (ms, _) = metrics(r);
    let items: Vec<Value> = ms
        .into_iter()
        .map(|m| {
            if m.lower_is_better {
                json!({ "name": m.key, "unit": m.unit, "value": m.value, "range": format!("±{:.1}%", m.noise() * 100.0) })
            } else {
                json!({ "name": format!("{} (ms per tx)", m.key), "unit": "ms", "value": if m.value > 0.0 { 1000.0 / m.value } else { 0.0 }, "range": format!("±{:.1}%", m.noise() * 100.0) })
            }
        })
        .collect();
    Value::Array(items)
}

fn finite_or(x: f64, fallback: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        fallback
    }
}
