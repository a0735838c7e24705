//! The change that flattens a query whose latency grows with the data: the explain stage's
//! index strategies run on the smallest and the largest scale's dataset, and each
//! strategy's work (shared buffers of the heavy user, deterministic for a plan and data)
//! fitted as buffers ∝ scale^k. A strategy whose k stays at or below the flat exponent
//! brings the query's work back flat; the plan shapes say how. A query reading `api_usage`
//! gets the other layout too (partitioned vs flat: every dataset holds both, chosen by
//! search_path, as the partitions stage compares them) as one more arm per strategy.

use crate::measure::explain::{self, ExplainOptions, ExplainSection};
use crate::params::Subject;
use crate::schema::Layout;
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
    /// Arms (strategy, or `strategy/layout` when both api_usage layouts were measured) whose
    /// work is flat in scale, lowest buffers at the largest scale first.
    pub flat: Vec<String>,
    /// The query reads or writes `api_usage`: both layouts were measured.
    #[serde(default)]
    pub reads_api_usage: bool,
    /// Why no strategy was measured (the query is not in the catalog, or explain failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StrategyWork {
    pub strategy: String,
    /// The api_usage layout the arm read.
    #[serde(default)]
    pub layout: Layout,
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
    let usage: Vec<String> = known
        .iter()
        .filter(|q| catalog.get(q).is_some_and(|s| s.has_tag("api_usage")))
        .cloned()
        .collect();
    let opts = ExplainOptions {
        queries: known.clone(),
        runs: 6,
        percentiles: vec![50.0],
        budget: std::time::Duration::from_millis(200),
        ..opts.clone()
    };
    let at_small = explain::run(small.0, &opts, &out_dir.join("scale_small")).await?;
    let at_large = explain::run(large.0, &opts, &out_dir.join("scale_large")).await?;
    // The other api_usage layout, for the queries that read it.
    let other = match at_large.layout {
        Layout::Partitioned => Layout::Flat,
        Layout::Flat => Layout::Partitioned,
    };
    let other_arms = if usage.is_empty() {
        None
    } else {
        let opts = ExplainOptions {
            queries: usage.clone(),
            ..opts.clone()
        };
        let dir = |d: &str| out_dir.join(format!("{d}_{}", other.name()));
        Some((
            explain::run_on_layout(small.0, &opts, &dir("scale_small"), Some(other)).await?,
            explain::run_on_layout(large.0, &opts, &dir("scale_large"), Some(other)).await?,
        ))
    };
    let span = (large.1 / small.1).ln();
    for query in known {
        let mut strategies = arms(&at_small, &at_large, &query, span);
        if let Some((s, l)) = &other_arms {
            strategies.extend(arms(s, l, &query, span));
        }
        let mut flat: Vec<&StrategyWork> = strategies.iter().filter(|s| s.flat).collect();
        flat.sort_by_key(|s| s.buffers_large.unwrap_or(u64::MAX));
        let both = other_arms.is_some() && usage.contains(&query);
        let flat = flat.iter().map(|s| s.label(both)).collect();
        let skipped = strategies
            .is_empty()
            .then(|| "the explain stage measured no work for it".to_string());
        out.push(Flattening {
            reads_api_usage: both,
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

/// One arm per strategy of `query`: its work at both scales and the exponent between them.
fn arms(
    at_small: &ExplainSection,
    at_large: &ExplainSection,
    query: &str,
    span: f64,
) -> Vec<StrategyWork> {
    let before = work_of(at_small, query);
    work_of(at_large, query)
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
                layout: at_large.layout,
                buffers_small,
                buffers_large,
                exponent,
                shape_large,
            }
        })
        .collect()
}

impl StrategyWork {
    /// The arm's name: the strategy, and the layout when both layouts were measured.
    pub fn label(&self, with_layout: bool) -> String {
        if with_layout {
            format!("{}/{}", self.strategy, self.layout)
        } else {
            self.strategy.clone()
        }
    }
}
