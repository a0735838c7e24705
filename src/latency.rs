//! Latency recording in HDR histograms (never sample vectors), and their serialized form
//! in results.json so histograms from several runs or machines merge exactly.

use anyhow::{Context, Result};
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Highest latency recorded exactly: one hour, in microseconds. Longer values saturate.
const MAX_MICROS: u64 = 3_600_000_000;

/// A latency histogram in microseconds, 3 significant digits.
#[derive(Clone, Debug)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    pub fn new() -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds"),
        }
    }

    pub fn record(&mut self, d: Duration) {
        let micros = (d.as_micros() as u64).clamp(1, MAX_MICROS);
        self.hist.saturating_record(micros);
    }

    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.hist.add(&other.hist);
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// Samples slower than `ms` milliseconds.
    pub fn count_above_ms(&self, ms: f64) -> u64 {
        let low = (ms * 1000.0) as u64 + 1;
        if self.hist.is_empty() || low > self.hist.max() {
            return 0;
        }
        self.hist.count_between(low, self.hist.max())
    }

    /// Value at a percentile (0–100), in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.hist.is_empty() {
            return 0.0;
        }
        self.hist.value_at_quantile(p / 100.0) as f64 / 1000.0
    }

    /// The value whose cumulative count first reaches `rank` (1-based), in milliseconds: the
    /// rank-th order statistic, as far as the histogram's precision tells.
    pub fn value_at_rank_ms(&self, rank: u64) -> f64 {
        if self.hist.is_empty() {
            return 0.0;
        }
        let q = (rank as f64 / self.count() as f64).clamp(0.0, 1.0);
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.count(),
            min_ms: if self.is_empty() {
                0.0
            } else {
                self.hist.min() as f64 / 1000.0
            },
            mean_ms: self.hist.mean() / 1000.0,
            stdev_ms: self.hist.stdev() / 1000.0,
            p50_ms: self.percentile_ms(50.0),
            p90_ms: self.percentile_ms(90.0),
            p95_ms: self.percentile_ms(95.0),
            p99_ms: self.percentile_ms(99.0),
            p999_ms: self.percentile_ms(99.9),
            max_ms: if self.is_empty() {
                0.0
            } else {
                self.hist.max() as f64 / 1000.0
            },
            histogram: self.encode(),
            supported_percentile: supported_percentile(self.count()),
        }
    }

    /// Points of the percentile curve for charts: (percentile, ms), log-spaced toward the tail.
    pub fn curve(&self) -> Vec<(f64, f64)> {
        let mut points = Vec::new();
        for nines in [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0] {
            let p = 100.0 * (1.0 - 10f64.powf(-nines));
            if self.count() as f64 * (100.0 - p) / 100.0 < 0.5 && nines > 0.0 {
                break;
            }
            points.push((p, self.percentile_ms(p)));
        }
        points.push((100.0, self.summary().max_ms));
        points
    }

    /// Base64 of HdrHistogram's V2 compressed encoding (readable by every HdrHistogram port).
    fn encode(&self) -> String {
        encode_histogram(&self.hist)
    }

    pub fn decode(encoded: &str) -> Result<Self> {
        let hist = decode_histogram(encoded)?;
        let mut out = Self::new();
        out.hist.add(&hist).context("histogram out of range")?;
        Ok(out)
    }
}

/// Base64 of a histogram's HdrHistogram V2 compressed encoding.
pub fn encode_histogram(hist: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(hist, &mut buf)
        .expect("serializing into a Vec cannot fail");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// The histogram [`encode_histogram`] wrote.
pub fn decode_histogram(encoded: &str) -> Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .context("histogram is not base64")?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .context("histogram does not decode")
}

/// Percentiles of a histogram, plus the histogram itself so results can be merged exactly.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub stdev_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Base64 HdrHistogram V2 (deflate) encoding, microseconds.
    #[serde(default)]
    pub histogram: String,
    /// Highest of p50/p90/p95/p99/p99.9 whose 95 % interval the count supports
    /// (`stats::supports`); 0 when none is, or in files written before this field.
    /// Percentiles above it are shown by the summary but are not estimates.
    #[serde(default)]
    pub supported_percentile: f64,
}

/// The percentiles a summary carries, in increasing order.
pub const PERCENTILES: [f64; 5] = [50.0, 90.0, 95.0, 99.0, 99.9];

/// Highest of [`PERCENTILES`] that `count` samples support (0 when none).
pub fn supported_percentile(count: u64) -> f64 {
    PERCENTILES
        .iter()
        .copied()
        .filter(|p| crate::stats::supports(count, *p))
        .fold(0.0, f64::max)
}

impl LatencySummary {
    /// Whether the sample count supports the percentile `p` (0–100). Files without the
    /// field are judged from their count.
    pub fn supports(&self, p: f64) -> bool {
        crate::stats::supports(self.count, p)
    }

    /// The value (ms) of a statistic.
    pub fn stat(&self, stat: Stat) -> f64 {
        match stat {
            Stat::P50 => self.p50_ms,
            Stat::P90 => self.p90_ms,
            Stat::P95 => self.p95_ms,
            Stat::P99 => self.p99_ms,
            Stat::P999 => self.p999_ms,
            Stat::Max => self.max_ms,
            Stat::Mean => self.mean_ms,
        }
    }
}

/// A latency statistic a summary carries, as SLOs and gates name it (`p95`, `p999`, `max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stat {
    P50,
    P90,
    P95,
    P99,
    P999,
    Max,
    Mean,
}

impl Stat {
    pub const ALL: [Stat; 7] = [
        Stat::P50,
        Stat::P90,
        Stat::P95,
        Stat::P99,
        Stat::P999,
        Stat::Max,
        Stat::Mean,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
            Stat::P999 => "p999",
            Stat::Max => "max",
            Stat::Mean => "mean",
        }
    }

    /// `p95`, `P95`, `p99.9`, `max`, `mean`; None for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim().to_lowercase().replace("99.9", "999");
        Self::ALL.into_iter().find(|s| s.name() == t)
    }

    /// The quantile (0–1) a percentile names; None for `mean` and `max`.
    pub fn quantile(self) -> Option<f64> {
        Some(match self {
            Stat::P50 => 0.5,
            Stat::P90 => 0.9,
            Stat::P95 => 0.95,
            Stat::P99 => 0.99,
            Stat::P999 => 0.999,
            Stat::Max | Stat::Mean => return None,
        })
    }
}

impl std::fmt::Display for Stat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_round_trip() {
        let mut l = Latency::new();
        for ms in 1..=1000u64 {
            l.record(Duration::from_millis(ms));
        }
        let s = l.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 500.0).abs() < 1.0, "{}", s.p50_ms);
        assert!((s.p99_ms - 990.0).abs() < 2.0, "{}", s.p99_ms);
        let back = Latency::decode(&s.histogram).unwrap();
        assert_eq!(back.summary().p99_ms, s.p99_ms);
        let mut merged = back.clone();
        merged.merge(&l);
        assert_eq!(merged.count(), 2000);
        assert!(l.curve().len() >= 4);
        assert_eq!(s.supported_percentile, 99.0);
        assert!(s.supports(99.0) && !s.supports(99.9));
    }

    #[test]
    fn supported_percentiles_follow_the_sample_count() {
        assert_eq!(supported_percentile(5), 0.0);
        assert_eq!(supported_percentile(6), 50.0);
        assert_eq!(supported_percentile(20), 50.0);
        assert_eq!(supported_percentile(72), 95.0);
        assert_eq!(supported_percentile(368), 99.0);
    }
}
