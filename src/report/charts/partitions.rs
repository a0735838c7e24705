//! Charts of the partitions section: per-query p50 partitioned vs flat, the scaling curve
//! (planning + execution vs partition count) and the maintenance comparison.

use super::{grouped_bars, lines, Series};
use crate::measure::partitions::{Maintenance, Scaling};
use crate::results::RunResults;
use std::collections::BTreeMap;

pub fn charts(results: &RunResults, out: &mut BTreeMap<String, String>) {
    let Some(p) = &results.partitions else { return };
    let p50 =
        |r: &crate::measure::partitions::ModeRun| r.latency.as_ref().map_or(f64::NAN, |l| l.p50_ms);
    let labels: Vec<String> = p.queries.iter().map(|q| q.name.clone()).collect();
    let series = vec![
        Series {
            name: "partitioned".into(),
            values: p
                .queries
                .iter()
                .map(|q| p50(&q.partitioned.custom))
                .collect(),
        },
        Series {
            name: "flat".into(),
            values: p.queries.iter().map(|q| p50(&q.flat.custom)).collect(),
        },
        Series {
            name: "partitioned, generic plan".into(),
            values: p
                .queries
                .iter()
                .map(|q| p50(&q.partitioned.generic))
                .collect(),
        },
        Series {
            name: "flat, generic plan".into(),
            values: p.queries.iter().map(|q| p50(&q.flat.generic)).collect(),
        },
    ];
    if let Some(svg) = grouped_bars(
        "p50 latency per analytics query: partitioned vs flat (log scale)",
        "ms",
        &labels,
        &series,
        true,
    ) {
        out.insert("partitions_layouts".into(), svg);
    }
    if let Some(sc) = &p.scaling {
        scaling(sc, out);
    }
    if let Some(m) = &p.maintenance {
        maintenance(m, out);
    }
}

/// Planning + execution per query and plan mode against the partition count.
fn scaling(sc: &Scaling, out: &mut BTreeMap<String, String>) {
    let xs: Vec<f64> = sc
        .layouts
        .iter()
        .map(|l| (l.partitions.max(1) as f64).log10())
        .collect();
    let mut keys: Vec<(String, String)> = sc
        .points
        .iter()
        .map(|pt| (pt.query.clone(), pt.mode.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    let series: Vec<Series> = keys
        .iter()
        .map(|(q, m)| Series {
            name: format!("{q} ({m})"),
            values: sc
                .layouts
                .iter()
                .map(|l| {
                    sc.points
                        .iter()
                        .find(|pt| &pt.query == q && &pt.mode == m && pt.layout == l.name)
                        .map_or(f64::NAN, |pt| pt.total_ms)
                })
                .collect(),
        })
        .collect();
    let x_desc = format!(
        "log10(partitions): {}",
        sc.layouts
            .iter()
            .zip(&xs)
            .map(|(l, x)| format!("{} {} = {x:.2}", l.name, l.partitions))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(svg) = lines(
        "Planning + execution vs partition count, same rows (log scales)",
        &x_desc,
        "ms",
        &xs,
        &series,
        true,
    ) {
        out.insert("partitions_scaling".into(), svg);
    }
}

/// Each maintenance operation's time beside the longest insert it held up.
fn maintenance(m: &Maintenance, out: &mut BTreeMap<String, String>) {
    let labels: Vec<String> = m
        .operations
        .iter()
        .map(|o| format!("{} ({})", o.name, o.layout))
        .collect();
    let wait = |name: &str, layout: crate::schema::Layout| {
        m.inserts
            .iter()
            .find(|i| i.phase == name && i.layout == layout)
            .map_or(f64::NAN, |i| i.latency.max_ms)
    };
    let series = vec![
        Series {
            name: "operation".into(),
            values: m.operations.iter().map(|o| o.ms).collect(),
        },
        Series {
            name: "longest insert meanwhile".into(),
            values: m
                .operations
                .iter()
                .map(|o| wait(&o.name, o.layout))
                .collect(),
        },
    ];
    if let Some(svg) = grouped_bars(
        "Maintenance: operation time and the longest concurrent insert into the same copy",
        "ms",
        &labels,
        &series,
        false,
    ) {
        out.insert("partitions_maintenance".into(), svg);
    }
}
