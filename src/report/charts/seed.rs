//! Charts of the seed section.

use super::horizontal_bars;
use crate::results::RunResults;
use std::collections::BTreeMap;

pub fn charts(results: &RunResults, out: &mut BTreeMap<String, String>) {
    if !results.stages.is_empty() {
        let bars: Vec<(String, f64)> = results
            .stages
            .iter()
            .map(|s| (s.name.clone(), s.seconds))
            .collect();
        if let Some(svg) = horizontal_bars("Stage wall time", "seconds", &bars) {
            out.insert("stages".into(), svg);
        }
    }
    if let Some(seed) = &results.seed {
        let bars: Vec<(String, f64)> = seed
            .tables
            .iter()
            .map(|t| {
                (
                    t.table.trim_start_matches("public.").to_string(),
                    (t.heap_bytes + t.toast_bytes + t.index_bytes) as f64 / 1_048_576.0,
                )
            })
            .collect();
        if let Some(svg) = horizontal_bars("Size per table (heap + TOAST + indexes)", "MB", &bars) {
            out.insert("seed_sizes".into(), svg);
        }
    }
}
