//! The figures a load run reports (results.json): totals, per-operation statistics, the
//! per-second timeline and errors. The recorder makes them; merge adds shards' together.

use crate::latency::LatencySummary;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Client-side figures of a load run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LoadFigures {
    pub measured_seconds: f64,
    /// Transactions started during measurement: `ok + failed` (dropped ones never started).
    pub attempted: u64,
    pub ok: u64,
    pub failed: u64,
    /// Open model: arrivals skipped because they were later than the latency limit.
    pub dropped: u64,
    pub tps: f64,
    /// Latency of all transactions, from the intended start in the open model.
    pub transaction_latency: LatencySummary,
    pub transaction_curve: Vec<(f64, f64)>,
    pub transactions: Vec<OpStats>,
    pub queries: Vec<OpStats>,
    pub schedule_lag: Option<LatencySummary>,
    /// Open model: the part of the schedule lag of arrivals a free user slept for (the
    /// generator waking late), without the arrivals that queued for a busy user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_lag: Option<LatencySummary>,
    pub pool_wait: Option<LatencySummary>,
    pub timeline: Vec<TimelinePoint>,
    pub errors: Vec<ErrorCount>,
    /// Per query, one entry per second of the measurement (only when asked for: operations
    /// under load).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_seconds: Vec<QuerySeconds>,
}

/// One query's seconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct QuerySeconds {
    pub name: String,
    pub seconds: Vec<SecondStats>,
}

/// One second of one query: its count and the percentiles its sample count supports
/// (none from fewer samples than `crate::stats::min_samples` asks: a p99 of 20 samples
/// would be their max). `micros` keeps the samples so phases can be pooled exactly.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SecondStats {
    pub ok: u64,
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub micros: Vec<u32>,
}

impl SecondStats {
    pub fn of(mut micros: Vec<u32>, errors: u64) -> Self {
        micros.sort_unstable();
        let ms: Vec<f64> = micros.iter().map(|v| *v as f64 / 1000.0).collect();
        let at = |p: f64| {
            crate::stats::supports(ms.len() as u64, p)
                .then(|| crate::stats::quantile_of_sorted(&ms, p / 100.0))
        };
        Self {
            ok: micros.len() as u64,
            errors,
            p50_ms: at(50.0),
            p95_ms: at(95.0),
            p99_ms: at(99.0),
            max_ms: ms.last().copied(),
            micros,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OpStats {
    pub name: String,
    pub ok: u64,
    pub errors: u64,
    pub rows: u64,
    pub per_second: f64,
    pub latency: LatencySummary,
}

/// A second's histogram for [`TimelinePoint`]: microseconds, 2 significant digits.
pub fn second_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 2).expect("valid bounds")
}

impl TimelinePoint {
    /// A second's point from its counts and histogram; `keep` writes the histogram into it.
    pub fn of(second: u32, ok: u64, errors: u64, hist: &Histogram<u64>, keep: bool) -> Self {
        let q = |p: f64| {
            if hist.is_empty() {
                0.0
            } else {
                hist.value_at_quantile(p) as f64 / 1000.0
            }
        };
        Self {
            second,
            ok,
            errors,
            p50_ms: q(0.5),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            histogram: if keep {
                crate::latency::encode_histogram(hist)
            } else {
                String::new()
            },
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TimelinePoint {
    pub second: u32,
    pub ok: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// The second's histogram (base64 HdrHistogram V2), kept by the shards of a sharded
    /// load so that `storybench merge` adds seconds exactly.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub histogram: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ErrorCount {
    pub query: String,
    /// SQLSTATE, or `connection` when the connection itself failed.
    pub sqlstate: String,
    pub count: u64,
    pub message: String,
    /// First and last occurrence, in seconds since measurement started: the affected window.
    pub first_at_s: f64,
    pub last_at_s: f64,
}
