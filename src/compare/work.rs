//! Work and plan shape, compared exactly: for the same data, statistics and plan, buffers,
//! rows and the plan tree are deterministic, so they need no statistics — only a small
//! tolerance for page-level noise (hint bits, visibility map bits set between runs).

use super::metrics::PlanAt;
use crate::plan::{self, ChangeKind, PlanSummary};
use serde::Serialize;
use std::collections::BTreeMap;

/// Buffers (shared hit + read, or temp read + written) changed by more than this share…
pub const BUFFER_TOLERANCE: f64 = 0.10;
/// …and by more than this many buffers is a work change.
pub const BUFFER_SLACK: u64 = 8;
/// Rows (actual + removed by filter) above which a new Seq Scan is a regression.
const LARGE_TABLE_ROWS: f64 = 1000.0;
/// A worst misestimate that grew this many times is a regression.
const MISESTIMATE_GROWTH: f64 = 10.0;

/// One plan or work finding, with the plan diff that explains it.
#[derive(Clone, Debug, Serialize)]
pub struct PlanFinding {
    /// The plan's key, e.g. `explain/recent_stories/doc/heavy`.
    pub key: String,
    pub section: &'static str,
    /// `LostIndex`, `NewSeqScan`, `MisestimateGrew`, `MoreBuffers`, `MoreTempIo`,
    /// `FewerBuffers`, `PlanChanged`, `RowsChanged`.
    pub kind: String,
    /// Fails the gate (more work, or a known-bad plan change).
    pub regression: bool,
    pub text: String,
    /// `plan::diff` lines between the two plans (empty when the shape is the same).
    pub diff: Vec<String>,
}

/// Every plan found in both runs, compared.
pub fn findings(base: &[PlanAt], new: &[PlanAt]) -> (Vec<PlanFinding>, usize) {
    let new_by_key: BTreeMap<&str, &PlanAt> = new.iter().map(|p| (p.key.as_str(), p)).collect();
    let mut out = Vec::new();
    let mut same = 0;
    for b in base {
        let Some(n) = new_by_key.get(b.key.as_str()) else {
            continue;
        };
        let before = out.len();
        compare_one(b, n, &mut out);
        if out.len() == before {
            same += 1;
        }
    }
    (out, same)
}

fn compare_one(b: &PlanAt, n: &PlanAt, out: &mut Vec<PlanFinding>) {
    let changes = plan::diff(&b.plan, &n.plan);
    let diff: Vec<String> = changes.iter().map(|c| c.text.clone()).collect();
    let mut push = |kind: &str, regression: bool, text: String| {
        out.push(PlanFinding {
            key: b.key.clone(),
            section: b.section,
            kind: kind.to_string(),
            regression,
            text,
            diff: diff.clone(),
        })
    };
    let mut shape_flagged = false;
    for c in &changes {
        let bad = match c.kind {
            ChangeKind::LostIndex => true,
            ChangeKind::NewSeqScan => large_scan(&n.plan, c.relation.as_deref()),
            _ => false,
        };
        if bad {
            shape_flagged = true;
            push(&format!("{:?}", c.kind), true, c.text.clone());
        }
    }
    let factor = |p: &PlanSummary| p.worst_misestimate.as_ref().map_or(1.0, |m| m.factor);
    let (fb, fnew) = (factor(&b.plan), factor(&n.plan));
    if fnew >= MISESTIMATE_GROWTH && fnew >= fb * MISESTIMATE_GROWTH {
        let node = n.plan.worst_misestimate.as_ref().map(|m| m.node.as_str());
        push(
            "MisestimateGrew",
            true,
            format!(
                "worst misestimate grew from {fb:.0}× to {fnew:.0}× ({})",
                node.unwrap_or("")
            ),
        );
    }
    let shared = |p: &PlanSummary| p.shared_hit + p.shared_read;
    let temp = |p: &PlanSummary| p.temp_read + p.temp_written;
    let (sb, sn) = (shared(&b.plan), shared(&n.plan));
    if beyond(sb, sn) {
        let kind = if sn > sb {
            "MoreBuffers"
        } else {
            "FewerBuffers"
        };
        push(
            kind,
            sn > sb,
            format!("shared buffers (hit + read) {sb} → {sn} ({})", pct(sb, sn)),
        );
    }
    let (tb, tn) = (temp(&b.plan), temp(&n.plan));
    if beyond(tb, tn) && tn > tb {
        push(
            "MoreTempIo",
            true,
            format!("temp blocks (read + written) {tb} → {tn} ({})", pct(tb, tn)),
        );
    }
    if !shape_flagged && shape(&b.plan) != shape(&n.plan) {
        let text = if diff.is_empty() {
            format!(
                "plan tree changed ({} → {} nodes)",
                b.plan.nodes.len(),
                n.plan.nodes.len()
            )
        } else {
            "plan changed".to_string()
        };
        push("PlanChanged", false, text);
    }
    let (rb, rn) = (rows(&b.plan), rows(&n.plan));
    if rb != rn && beyond(rb, rn) {
        push(
            "RowsChanged",
            false,
            format!("rows read {rb} → {rn}: not the same data or parameters"),
        );
    }
}

/// Beyond the tolerance both relatively and absolutely.
fn beyond(b: u64, n: u64) -> bool {
    let d = b.abs_diff(n);
    d > BUFFER_SLACK && d as f64 > BUFFER_TOLERANCE * b.max(1) as f64
}

fn pct(b: u64, n: u64) -> String {
    if b == 0 {
        "new".into()
    } else {
        format!("{:+.0}%", (n as f64 / b as f64 - 1.0) * 100.0)
    }
}

/// The plan's tree shape: node types by depth, and how each relation is read.
fn shape(p: &PlanSummary) -> Vec<String> {
    let nodes = p
        .nodes
        .iter()
        .map(|n| format!("{}:{}", n.depth, n.node_type));
    let rels = p.relations.iter().map(|r| r.describe());
    nodes.chain(rels).collect()
}

/// Rows produced by every scan (per loop × loops) plus those its filters removed.
fn rows(p: &PlanSummary) -> u64 {
    p.relations
        .iter()
        .map(|r| (r.actual_rows * r.loops.max(1) as f64) as u64 + r.rows_removed_by_filter)
        .sum()
}

fn large_scan(p: &PlanSummary, relation: Option<&str>) -> bool {
    p.relations
        .iter()
        .filter(|r| {
            Some(r.relation.as_str()) == relation
                || relation.is_some_and(|c| c.starts_with(&r.relation))
        })
        .any(|r| {
            r.actual_rows * r.loops.max(1) as f64 + r.rows_removed_by_filter as f64
                >= LARGE_TABLE_ROWS
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_tolerance_needs_both_share_and_count() {
        assert!(!beyond(100, 108)); // 8 % and 8 buffers
        assert!(!beyond(10, 18)); // 80 % but only 8 buffers
        assert!(!beyond(1000, 1090)); // 90 buffers but 9 %
        assert!(beyond(100, 120));
        assert!(beyond(120, 100));
    }
}
