//! Charts of the explain section: per-query p50 latency by index strategy.

use super::{grouped_bars, Series};
use crate::results::RunResults;
use std::collections::BTreeMap;

pub fn charts(results: &RunResults, out: &mut BTreeMap<String, String>) {
    let Some(ex) = &results.explain else { return };
    let strategies: Vec<String> = ex.strategies.iter().map(|s| s.name.clone()).collect();
    for kind in [crate::catalog::Kind::Read, crate::catalog::Kind::Write] {
        let queries: Vec<_> = ex
            .queries
            .iter()
            .filter(|q| q.kind == kind && q.verdict.is_some())
            .collect();
        let labels: Vec<String> = queries.iter().map(|q| q.name.clone()).collect();
        let series: Vec<Series> = strategies
            .iter()
            .map(|s| Series {
                name: s.clone(),
                values: queries
                    .iter()
                    .map(|q| {
                        q.verdict
                            .as_ref()
                            .and_then(|v| v.p50_ms.get(s).copied())
                            .unwrap_or(f64::NAN)
                    })
                    .collect(),
            })
            .collect();
        let title =
            format!("p50 latency per {kind} query and index strategy (heavy user, log scale)");
        if let Some(svg) = grouped_bars(&title, "ms", &labels, &series, true) {
            out.insert(format!("explain_{kind}"), svg);
        }
    }
}
