//! The change that flattens a query whose latency grows with the data: the explain stage's
//! index strategies run on the smallest and the largest scale's dataset, and each
//! strategy's work (shared buffers of the heavy user, deterministic for a plan and data)
//! fitted as buffers ∝ scale^k. A strategy whose k stays at or below the flat exponent
//! brings the query's work back flat; the plan shapes say how.

use crate::measure::explain::{self, ExplainOptions, ExplainSection};
use crate::params::Subject;
use crate::target::Target;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Buffers ∝ scale^k with k at most this count as flat (10× the data: ≤ 1.6× the buffers).
pub const FLAT_EXPONENT: f64 = 0.2;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Flattening {
    pub query: String,
    pub small_scale: f64,
    pub large_scale: f64,
    pub strategies: Vec<StrategyWork>,
    /// Strategies whose work is flat in scale, lowest buffers at the largest scale first.
    pub flat: Vec<String>,
    /// Why no strategy was measured (the query is not in the catalog, or explain failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StrategyWork {
    pub strategy: String,
    pub buffers_small: Option<u64>,
    pub buffers_large: Option<u64>,
    /// k of buffers ∝ scale^k between the two scales.
    pub exponent: Option<f64>,
    pub flat: bool,
    /// The plan's scans and joins at the largest scale.
    pub shape_large: Vec<String>,
}

/// Heavy-user buffers and plan shape per strategy for `query` in an explain section.
fn work_of(section: &ExplainSection, query: &str) -> Vec<(String, Option<u64>, Vec<String>)> {
    let Some(q) = section.queries.iter().find(|q| q.name == query) else {
        return Vec::new();
    };
    let Some(s) = q.subjects.iter().find(|s| s.subject == Subject::Heavy) else {
        return Vec::new();
    };
    s.by_strategy
        .iter()
        .map(|r| {
            let w = r.work.as_ref();
            (
                r.strategy.clone(),
                w.map(|w| w.shared_hit + w.shared_read),
                w.map(|w| w.shape.clone()).unwrap_or_default(),
            )
        })
        .collect()
}

/// Compares the strategies' work on `queries` at the two scales. `opts` are the explain
/// stage's options (their strategies; queries and rounds are set here: work is what counts).
pub async fn measure(
    small: (&Target, f64),
    large: (&Target, f64),
    queries: &[String],
    opts: &ExplainOptions,
    out_dir: &Path,
) -> Result<Vec<Flattening>> {
    let catalog = crate::catalog::load_default()?;
    let (known, unknown): (Vec<String>, Vec<String>) = queries
        .iter()
        .cloned()
        .partition(|q| catalog.get(q).is_some());
    let mut out: Vec<Flattening> = unknown
        .into_iter()
        .map(|query| Flattening {
            query,
            small_scale: small.1,
            large_scale: large.1,
            skipped: Some("not in the query catalog (scenarios/queries.toml)".into()),
            ..Default::default()
        })
        .collect();
    if known.is_empty() {
        return Ok(out);
    }
    let opts = ExplainOptions {
        queries: known.clone(),
        runs: 6,
        percentiles: vec![50.0],
        budget: std::time::Duration::from_millis(200),
        ..opts.clone()
    };
    let at_small = explain::run(small.0, &opts, &out_dir.join("scale_small")).await?;
    let at_large = explain::run(large.0, &opts, &out_dir.join("scale_large")).await?;
    let span = (large.1 / small.1).ln();
    for query in known {
        let before = work_of(&at_small, &query);
        let strategies: Vec<StrategyWork> = work_of(&at_large, &query)
            .into_iter()
            .map(|(strategy, buffers_large, shape_large)| {
                let buffers_small = before
                    .iter()
                    .find(|(s, ..)| *s == strategy)
                    .and_then(|(_, b, _)| *b);
                let exponent = match (buffers_small, buffers_large) {
                    (Some(a), Some(b)) if a > 0 && b > 0 && span > 0.0 => {
                        Some((b as f64 / a as f64).ln() / span)
                    }
                    _ => None,
                };
                StrategyWork {
                    flat: exponent.is_some_and(|k| k <= FLAT_EXPONENT),
                    strategy,
                    buffers_small,
                    buffers_large,
                    exponent,
                    shape_large,
                }
            })
            .collect();
        let mut flat: Vec<&StrategyWork> = strategies.iter().filter(|s| s.flat).collect();
        flat.sort_by_key(|s| s.buffers_large.unwrap_or(u64::MAX));
        let flat = flat.iter().map(|s| s.strategy.clone()).collect();
        let skipped = strategies
            .is_empty()
            .then(|| "the explain stage measured no work for it".to_string());
        out.push(Flattening {
            query,
            small_scale: small.1,
            large_scale: large.1,
            strategies,
            flat,
            skipped,
        });
    }
    Ok(out)
}
