//! The partitions section's verdicts in words, each derived from the section's own figures
//! (the stage returns numbers only; `annotate` records these beside them).

use crate::format::human_bytes;
use crate::measure::partitions::*;
use crate::stats::geomean;

fn faster_or_slower(ratio: f64) -> String {
    if ratio >= 1.0 {
        format!("{ratio:.2}× slower")
    } else {
        format!("{:.2}× faster", 1.0 / ratio)
    }
}

pub fn derive(s: &PartitionsSection) -> Vec<String> {
    let mut v = Vec::new();
    v.push(if s.layouts_identical {
        format!(
            "Both layouts hold the same {} rows (identical digests); the partitioned one has {} partitions.",
            s.rows, s.partitions_total
        )
    } else {
        "The layouts do NOT hold the same rows: the comparisons below are not like for like."
            .to_string()
    });
    for q in &s.queries {
        let Some(r) = q.ratio_p50 else { continue };
        let p = q.partitioned.custom.latency.as_ref();
        let f = q.flat.custom.latency.as_ref();
        let scanned = q.partitioned.custom.scanned.len();
        v.push(format!(
            "{}: partitioned is {} than flat at p50 ({:.2} vs {:.2} ms), scanning {} of {} partitions{}{}.",
            q.name,
            faster_or_slower(r),
            p.map_or(0.0, |l| l.p50_ms),
            f.map_or(0.0, |l| l.p50_ms),
            scanned,
            s.partitions_total,
            if q.pruning.is_empty() {
                String::new()
            } else {
                format!(" (pruning: {})", q.pruning.join(", "))
            },
            if q.consistent {
                ""
            } else {
                "; RESULTS DIFFER between layouts"
            }
        ));
    }
    let ratios: Vec<f64> = s.queries.iter().filter_map(|q| q.ratio_p50).collect();
    if let Some(g) = geomean(ratios.iter().copied()) {
        v.push(format!(
            "Over {} analytics queries the partitioned layout is {} (geometric mean of p50 ratios).",
            ratios.len(),
            faster_or_slower(g)
        ));
    }
    let generic: Vec<&QueryLayouts> = s
        .queries
        .iter()
        .filter(|q| {
            q.partitioned
                .generic
                .partitions
                .as_ref()
                .is_some_and(|p| p.subplans_removed > 0)
        })
        .collect();
    if !generic.is_empty() {
        v.push(format!(
            "Generic plans prune at executor start (Subplans Removed) on {}: partitions are still pruned when the plan is reused without parameter values.",
            generic.iter().map(|q| q.name.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    let gen_ratios: Vec<f64> = s
        .queries
        .iter()
        .filter_map(|q| q.generic_ratio_p50)
        .collect();
    if let Some(g) = geomean(gen_ratios.iter().copied()) {
        v.push(format!(
            "With generic plans the partitioned layout is {} than flat (geometric mean of p50 ratios).",
            faster_or_slower(g)
        ));
    }
    for p in &s.partitionwise {
        if let Some(r) = p.ratio_p50 {
            v.push(format!(
                "{}: enable_partitionwise_aggregate = on {} ({} vs off at p50){}.",
                p.query,
                if p.applied {
                    "aggregates per partition"
                } else {
                    "does not change the plan's aggregation"
                },
                faster_or_slower(r),
                if p.consistent { "" } else { "; RESULTS DIFFER" }
            ));
        }
    }
    if let Some(ix) = &s.indexes {
        index_verdicts(ix, &mut v);
    }
    if let Some(sc) = &s.scaling {
        v.extend(sc.crossovers.iter().map(|c| c.verdict.clone()));
    }
    if let Some(m) = &s.maintenance {
        maintenance_verdicts(m, &mut v);
    }
    v
}

fn index_verdicts(ix: &IndexComparison, v: &mut Vec<String>) {
    let kind = |k: &str| ix.kinds.iter().find(|x| x.kind == k);
    if let (Some(b), Some(r)) = (kind("btree"), kind("brin")) {
        v.push(format!(
            "created_at index size: btree {} vs BRIN {} on the flat table, {} vs {} over the partitions.",
            human_bytes(b.flat_bytes as f64),
            human_bytes(r.flat_bytes as f64),
            human_bytes(b.partitioned_bytes as f64),
            human_bytes(r.partitioned_bytes as f64)
        ));
    }
    for layout in crate::schema::Layout::ALL {
        let ratios: Vec<f64> =
            ix.queries
                .iter()
                .filter(|q| q.layout == layout && q.kind == "brin")
                .filter_map(|brin| {
                    let btree = ix.queries.iter().find(|q| {
                        q.layout == layout && q.kind == "btree" && q.query == brin.query
                    })?;
                    Some(brin.latency.as_ref()?.p50_ms / btree.latency.as_ref()?.p50_ms.max(1e-6))
                })
                .collect();
        let used = ix
            .queries
            .iter()
            .filter(|q| q.layout == layout && q.kind == "brin" && q.index_used)
            .count();
        if let Some(g) = geomean(ratios.iter().copied()) {
            v.push(format!(
                "Range queries on the {layout} layout: BRIN is {} than btree (geometric mean of p50 ratios); the planner used BRIN for {used} of {} queries.",
                faster_or_slower(g),
                ratios.len()
            ));
        }
    }
}

fn maintenance_verdicts(m: &Maintenance, v: &mut Vec<String>) {
    let op = |n: &str| m.operations.iter().find(|o| o.name == n);
    let drop_ms = op("detach_partition").map(|o| o.ms).unwrap_or(0.0)
        + op("drop_partition").map(|o| o.ms).unwrap_or(0.0);
    if let Some(delete) = op("delete_month") {
        v.push(format!(
            "Removing month {} ({} rows): detach + drop took {:.1} ms on the partitioned copy, DELETE {:.1} ms on the flat one (DELETE {}){}.",
            m.month,
            m.month_rows,
            drop_ms,
            delete.ms,
            if drop_ms > 0.0 {
                faster_or_slower(delete.ms / drop_ms)
            } else {
                "—".to_string()
            },
            op("vacuum").map_or(String::new(), |o| format!(", plus VACUUM {:.1} ms", o.ms))
        ));
    }
    let size = |w: &str| m.sizes.iter().find(|s| s.what == w).map(|s| s.bytes);
    if let (Some(pb), Some(pa), Some(fb), Some(fa)) = (
        size("partitioned before"),
        size("partitioned after drop"),
        size("flat before"),
        size("flat after vacuum").or(size("flat after delete")),
    ) {
        v.push(format!(
            "Disk after removing the month: partitioned {} → {}, flat {} → {} (DELETE and VACUUM leave the space to the table for reuse).",
            human_bytes(pb as f64),
            human_bytes(pa as f64),
            human_bytes(fb as f64),
            human_bytes(fa as f64)
        ));
    }
    let baseline = |layout: crate::schema::Layout| {
        m.inserts
            .iter()
            .find(|i| i.phase == "baseline" && i.layout == layout)
            .map(|i| i.latency.p99_ms)
    };
    for i in m.inserts.iter().filter(|i| i.phase != "baseline") {
        let layout_of_op = op(&i.phase).map(|o| o.layout);
        if layout_of_op != Some(i.layout) {
            continue; // Inserts into the other copy: not blocked by this operation.
        }
        if let Some(b) = baseline(i.layout) {
            v.push(format!(
                "During {} inserts into the {} copy waited up to {:.1} ms (baseline p99 {:.2} ms).",
                i.phase, i.layout, i.latency.max_ms, b
            ));
        }
    }
    v.push(if m.consistency.consistent {
        format!(
            "After maintenance both copies hold the same {} rows (seeded rows outside {} plus {} concurrent inserts).",
            m.consistency.partitioned_rows, m.month, m.consistency.inserted_rows
        )
    } else {
        format!(
            "After maintenance the copies DIFFER: partitioned {} rows, flat {}, expected {}.",
            m.consistency.partitioned_rows, m.consistency.flat_rows, m.consistency.expected_rows
        )
    });
}
