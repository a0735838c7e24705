//! Inline SVG charts for the report, drawn with plotters into strings. Generic chart kinds
//! live here; each report section builds its charts in its own file.

mod capacity;
mod explain;
mod load;
mod ops;
mod partitions;
mod rls;
mod seed;

use crate::results::RunResults;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::collections::BTreeMap;

/// Every chart of a run, keyed by name, as inline SVG.
pub fn for_results(results: &RunResults) -> BTreeMap<String, String> {
    let mut charts = BTreeMap::new();
    seed::charts(results, &mut charts);
    explain::charts(results, &mut charts);
    load::charts(results, &mut charts);
    capacity::charts(results, &mut charts);
    partitions::charts(results, &mut charts);
    rls::charts(results, &mut charts);
    ops::charts(results, &mut charts);
    charts
}

/// Colours of successive series (colour-blind friendly, print well).
const PALETTE: [RGBColor; 8] = [
    RGBColor(66, 110, 180),
    RGBColor(230, 140, 30),
    RGBColor(60, 160, 90),
    RGBColor(200, 60, 60),
    RGBColor(140, 100, 190),
    RGBColor(120, 120, 120),
    RGBColor(30, 170, 190),
    RGBColor(190, 160, 40),
];

const WIDTH: u32 = 860;

/// A series of values, one per label (bars) or per x (lines).
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
}

/// A horizontal bar chart; `None` when there is nothing to draw or drawing fails.
pub(crate) fn horizontal_bars(title: &str, unit: &str, bars: &[(String, f64)]) -> Option<String> {
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    // Named after its unit, so even a one-series chart has a legend.
    let series = [Series {
        name: unit.to_string(),
        values: bars.iter().map(|b| b.1).collect(),
    }];
    grouped_bars(title, unit, &labels, &series, false)
}

/// Horizontal grouped bars: one group per label, one bar per series (e.g. query × strategy).
/// With `log`, the value axis is logarithmic (latencies spanning orders of magnitude).
pub(crate) fn grouped_bars(
    title: &str,
    unit: &str,
    labels: &[String],
    series: &[Series],
    log: bool,
) -> Option<String> {
    if labels.is_empty() || series.is_empty() {
        return None;
    }
    let values = || {
        series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .filter(|v| v.is_finite())
    };
    let max = values().fold(0.0_f64, f64::max).max(1e-9);
    let legend = series.len() > 1 || !series[0].name.is_empty();
    let row = (8 + 11 * series.len() as u32).max(22);
    let height = 80 + row * labels.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(210);
        let y = 0.0..labels.len() as f64;
        if log {
            let lo = (values()
                .filter(|v| *v > 0.0)
                .fold(f64::INFINITY, f64::min)
                .min(max)
                / 2.0)
                .max(1e-4);
            let mut chart = builder
                .build_cartesian_2d((lo..max * 2.0).log_scale(), y)
                .ok()?;
            draw_bars(&mut chart, unit, labels, series, lo, legend)?;
        } else {
            let mut chart = builder.build_cartesian_2d(0.0..max * 1.12, y).ok()?;
            draw_bars(&mut chart, unit, labels, series, 0.0, legend)?;
        }
        root.present().ok()?;
    }
    Some(svg)
}

fn draw_bars<'a, X>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, RangedCoordf64>>,
    unit: &str,
    labels: &[String],
    series: &[Series],
    floor: f64,
    legend: bool,
) -> Option<()>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let n = labels.len();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(unit)
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|v| {
            // Labels sit at the middle of each band; the axis runs top to bottom in label order.
            let pos = *v - v.floor();
            let idx = n as isize - 1 - v.floor() as isize;
            if (pos - 0.5).abs() < 0.01 && idx >= 0 && (idx as usize) < n {
                labels[idx as usize].clone()
            } else {
                String::new()
            }
        })
        .draw()
        .ok()?;
    let k = series.len() as f64;
    for (si, s) in series.iter().enumerate() {
        let color = PALETTE[si % PALETTE.len()];
        let bars = s
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite() && **v > floor)
            .map(move |(li, v)| {
                let band = (n - 1 - li) as f64;
                let top = band + 0.9 - 0.8 * si as f64 / k;
                let bottom = top - 0.8 / k + 0.02;
                Rectangle::new([(floor, bottom), (*v, top)], color.filled())
            });
        let drawn = chart.draw_series(bars).ok()?;
        if legend {
            drawn.label(s.name.clone()).legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
            });
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .ok()?;
    }
    Some(())
}

/// Lines over a numeric x axis (e.g. seconds of a run), optionally with a log y axis.
pub fn lines(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    xs: &[f64],
    series: &[Series],
    log_y: bool,
) -> Option<String> {
    if xs.len() < 2 || series.is_empty() {
        return None;
    }
    let x_max = xs.iter().copied().fold(f64::MIN, f64::max);
    let x_min = xs.iter().copied().fold(f64::MAX, f64::min);
    let vals = || {
        series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .filter(|v| v.is_finite())
    };
    let y_max = vals().fold(0.0_f64, f64::max).max(1e-9);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 360)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(34)
            .y_label_area_size(60);
        if log_y {
            let lo = (vals()
                .filter(|v| *v > 0.0)
                .fold(f64::INFINITY, f64::min)
                .min(y_max)
                / 2.0)
                .max(1e-4);
            let mut chart = builder
                .build_cartesian_2d(x_min..x_max, (lo..y_max * 2.0).log_scale())
                .ok()?;
            draw_lines(&mut chart, x_desc, y_desc, xs, series, lo)?;
        } else {
            let mut chart = builder
                .build_cartesian_2d(x_min..x_max, 0.0..y_max * 1.1)
                .ok()?;
            draw_lines(&mut chart, x_desc, y_desc, xs, series, 0.0)?;
        }
        root.present().ok()?;
    }
    Some(svg)
}

fn draw_lines<'a, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    x_desc: &str,
    y_desc: &str,
    xs: &[f64],
    series: &[Series],
    floor: f64,
) -> Option<()>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .light_line_style(BLACK.mix(0.06))
        .draw()
        .ok()?;
    for (si, s) in series.iter().enumerate() {
        let color = PALETTE[si % PALETTE.len()];
        let points: Vec<(f64, f64)> = xs
            .iter()
            .zip(&s.values)
            .filter(|(_, v)| v.is_finite() && **v > floor)
            .map(|(x, v)| (*x, *v))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .ok()?
            .label(s.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 2, color.filled())))
            .ok()?;
    }
    if series.len() > 1 || !series[0].name.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .ok()?;
    }
    Some(())
}

/// One figure across runs (x = run number), with the change points (indices where a new
/// level starts, see `report::trend`) drawn as dashed vertical lines.
pub fn trend(
    title: &str,
    name: &str,
    unit: &str,
    values: &[f64],
    change_points: &[usize],
) -> Option<String> {
    let xs: Vec<f64> = (1..=values.len()).map(|i| i as f64).collect();
    if values.iter().filter(|v| v.is_finite()).count() < 2 {
        return None;
    }
    let y_max = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max)
        .max(1e-9)
        * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 300)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(34)
            .y_label_area_size(60)
            .build_cartesian_2d(0.5..values.len() as f64 + 0.5, 0.0..y_max)
            .ok()?;
        let red = PALETTE[3];
        for (i, cp) in change_points.iter().enumerate() {
            // Between the last run of the old level and the first of the new one.
            let x = *cp as f64 + 0.5;
            let dashes = (0..20).map(|k| {
                let y0 = y_max * k as f64 / 20.0;
                PathElement::new(vec![(x, y0), (x, y0 + y_max / 40.0)], red.stroke_width(2))
            });
            let drawn = chart.draw_series(dashes).ok()?;
            if i == 0 {
                drawn.label("change point").legend(move |(x, y)| {
                    PathElement::new(vec![(x, y - 6), (x, y + 6)], red.stroke_width(2))
                });
            }
        }
        // Drawn after the markers so its legend lists them too.
        let series = [Series {
            name: name.to_string(),
            values: values.to_vec(),
        }];
        draw_lines(
            &mut chart,
            "run (oldest → newest)",
            unit,
            &xs,
            &series,
            f64::MIN,
        )?;
        root.present().ok()?;
    }
    Some(svg)
}

/// HDR-style percentile curves: x is the percentile on a "nines" scale (90, 99, 99.9 …
/// evenly spaced), y the latency in ms on a log scale.
pub(crate) fn percentile_curves(
    title: &str,
    curves: &[(String, Vec<(f64, f64)>)],
) -> Option<String> {
    let series: Vec<Series> = curves
        .iter()
        .map(|(n, pts)| Series {
            name: n.clone(),
            values: pts.iter().map(|p| p.1).collect(),
        })
        .collect();
    let xs: Vec<f64> = curves.first()?.1.iter().map(|p| nines(p.0)).collect();
    if curves.iter().any(|c| c.1.len() != xs.len()) {
        // Curves of different lengths: draw each on its own x positions.
        return percentile_curves_ragged(title, curves);
    }
    lines(
        title,
        "percentile (0 = p0, 1 = p90, 2 = p99, 3 = p99.9, 4 = p99.99)",
        "latency (ms)",
        &xs,
        &series,
        true,
    )
}

/// Curves sampled at different percentiles: drawn on one x axis holding every curve's
/// percentiles (see [`align_curves`]).
fn percentile_curves_ragged(title: &str, curves: &[(String, Vec<(f64, f64)>)]) -> Option<String> {
    let (xs, series) = align_curves(curves);
    lines(
        title,
        "percentile (0 = p0, 1 = p90, 2 = p99, 3 = p99.9, 4 = p99.99)",
        "latency (ms)",
        &xs,
        &series,
        true,
    )
}

/// The union of the curves' percentiles (as nines), each curve valued only where it has a
/// point: a short curve ends at its own max, not at a longer curve's percentile of the same
/// index.
fn align_curves(curves: &[(String, Vec<(f64, f64)>)]) -> (Vec<f64>, Vec<Series>) {
    let mut xs: Vec<f64> = curves
        .iter()
        .flat_map(|c| c.1.iter().map(|p| nines(p.0)))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    let series = curves
        .iter()
        .map(|(n, pts)| Series {
            name: n.clone(),
            values: xs
                .iter()
                .map(|x| {
                    pts.iter()
                        .find(|p| (nines(p.0) - x).abs() < 1e-9)
                        .map_or(f64::NAN, |p| p.1)
                })
                .collect(),
        })
        .collect();
    (xs, series)
}

/// p → number of nines: 90 → 1, 99 → 2, 100 → capped at 5.
pub fn nines(p: f64) -> f64 {
    if p >= 100.0 {
        5.0
    } else {
        (-(1.0 - p / 100.0).log10()).min(5.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ragged_curves_keep_their_own_percentiles() {
        let long = ("a".to_string(), vec![(50.0, 1.0), (90.0, 2.0), (99.0, 3.0)]);
        let short = ("b".to_string(), vec![(50.0, 1.5), (99.0, 4.0)]);
        let (xs, series) = align_curves(&[long, short]);
        assert_eq!(xs.len(), 3);
        assert_eq!(series[0].values, vec![1.0, 2.0, 3.0]);
        // b's max (p99) sits at a's p99, not at a's second point (p90).
        assert_eq!(series[1].values[0], 1.5);
        assert!(series[1].values[1].is_nan());
        assert_eq!(series[1].values[2], 4.0);
    }
}
