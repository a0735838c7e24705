//! Inline SVG charts for the report, drawn with plotters into strings.

use crate::results::RunResults;
use plotters::prelude::*;
use std::collections::BTreeMap;

/// Every chart of a run, keyed by name, as inline SVG.
pub fn for_results(results: &RunResults) -> BTreeMap<String, String> {
    let mut charts = BTreeMap::new();
    if !results.stages.is_empty() {
        let bars: Vec<(String, f64)> = results
            .stages
            .iter()
            .map(|s| (s.name.clone(), s.seconds))
            .collect();
        if let Some(svg) = horizontal_bars("Stage wall time", "seconds", &bars) {
            charts.insert("stages".to_string(), svg);
        }
    }
    if let Some(seed) = &results.seed {
        let bars: Vec<(String, f64)> = seed
            .tables
            .iter()
            .map(|t| {
                (
                    t.table.clone(),
                    (t.heap_bytes + t.toast_bytes + t.index_bytes) as f64 / 1_048_576.0,
                )
            })
            .collect();
        if let Some(svg) = horizontal_bars("Size per table (heap + TOAST + indexes)", "MB", &bars) {
            charts.insert("seed_sizes".to_string(), svg);
        }
    }
    charts
}

/// A horizontal bar chart; `None` when there is nothing to draw or drawing fails.
pub fn horizontal_bars(title: &str, unit: &str, bars: &[(String, f64)]) -> Option<String> {
    if bars.is_empty() {
        return None;
    }
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max).max(1e-9);
    let height = 60 + 26 * bars.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, height)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(170)
            .build_cartesian_2d(0.0..max * 1.1, (0..bars.len()).into_segmented())
            .ok()?;
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(unit)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_labels(bars.len())
            .draw()
            .ok()?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(i)),
                        (*v, SegmentValue::Exact(i + 1)),
                    ],
                    RGBColor(66, 110, 180).filled(),
                );
                bar.set_margin(4, 4, 0, 0);
                bar
            }))
            .ok()?;
        root.present().ok()?;
    }
    Some(svg)
}
