//! What changed between two plans of the same query (e.g. under two index strategies).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{PlanSummary, RelationAccess};

/// The kind of a plan change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChangeKind {
    /// Another access path on the same relation (e.g. Bitmap Heap Scan → Index Scan).
    AccessPath,
    /// Same access path, another index.
    IndexChanged,
    /// Join method changed (Hash Join → Nested Loop, …).
    JoinMethod,
    /// Sort method changed (top-N heapsort → Incremental Sort, quicksort → external merge, …).
    SortMethod,
    /// A relation is now read with a Seq Scan.
    NewSeqScan,
    /// A relation read through an index no longer is (and not by a Seq Scan), or vanished.
    LostIndex,
    /// The worst row misestimate got much worse.
    MisestimateGrew,
    /// A different number of partitions is scanned.
    PartitionsScanned,
}

/// One change, with a one-line explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanChange {
    pub kind: ChangeKind,
    pub relation: Option<String>,
    pub before: String,
    pub after: String,
    /// E.g. "Seq Scan on stories s → Index Scan using idx_stories_user_created".
    pub text: String,
}

/// A worst misestimate is reported as grown when it reaches this factor…
const MISESTIMATE_MIN: f64 = 10.0;
/// …and is at least this many times the previous one.
const MISESTIMATE_GROWTH: f64 = 2.0;

/// The changes from `before` to `after`. Relations are matched by (relation, alias) and
/// occurrence order; partitions are compared by count (PartitionsScanned), not one by one.
pub fn diff(before: &PlanSummary, after: &PlanSummary) -> Vec<PlanChange> {
    let mut out = Vec::new();
    relation_changes(before, after, &mut out);
    list_changes(
        ChangeKind::JoinMethod,
        "joins",
        &before.joins,
        &after.joins,
        |s| s.to_string(),
        &mut out,
    );
    list_changes(
        ChangeKind::SortMethod,
        "sorts",
        &before.sorts,
        &after.sorts,
        sort_method,
        &mut out,
    );
    misestimate_change(before, after, &mut out);
    partition_change(before, after, &mut out);
    out
}

fn is_partition(r: &RelationAccess) -> bool {
    r.partition_parent.is_some()
}

/// (relation, alias) keys in first-seen order, and the occurrences of each.
type Grouped<'a> = (Vec<RelKey>, HashMap<RelKey, Vec<&'a RelationAccess>>);
type RelKey = (String, String);

fn grouped(s: &PlanSummary) -> Grouped<'_> {
    let mut order = Vec::new();
    let mut map: HashMap<RelKey, Vec<&RelationAccess>> = HashMap::new();
    for r in s.relations.iter().filter(|r| !is_partition(r)) {
        let key = (r.relation.clone(), r.alias.clone());
        if !map.contains_key(&key) {
            order.push(key.clone());
        }
        map.entry(key).or_default().push(r);
    }
    (order, map)
}

fn relation_changes(before: &PlanSummary, after: &PlanSummary, out: &mut Vec<PlanChange>) {
    let (b_order, b_map) = grouped(before);
    let (a_order, a_map) = grouped(after);
    let empty = Vec::new();
    for key in &b_order {
        let bs = &b_map[key];
        let as_ = a_map.get(key).unwrap_or(&empty);
        for (i, b) in bs.iter().enumerate() {
            match as_.get(i) {
                Some(a) => compare_access(b, a, out),
                None => {
                    if b.index.is_some() {
                        out.push(PlanChange {
                            kind: ChangeKind::LostIndex,
                            relation: Some(b.relation.clone()),
                            before: b.describe(),
                            after: "(not scanned)".into(),
                            text: format!("{} → not scanned", b.describe()),
                        });
                    }
                }
            }
        }
    }
    for key in &a_order {
        let nb = b_map.get(key).map_or(0, Vec::len);
        for a in a_map[key].iter().skip(nb) {
            if a.access == "Seq Scan" {
                out.push(PlanChange {
                    kind: ChangeKind::NewSeqScan,
                    relation: Some(a.relation.clone()),
                    before: "(not scanned)".into(),
                    after: a.describe(),
                    text: format!("new {}", a.describe()),
                });
            }
        }
    }
}

fn compare_access(b: &RelationAccess, a: &RelationAccess, out: &mut Vec<PlanChange>) {
    if b.access == a.access && b.index == a.index {
        return;
    }
    let kind = if b.access == a.access {
        ChangeKind::IndexChanged
    } else if a.access == "Seq Scan" {
        ChangeKind::NewSeqScan
    } else if b.index.is_some() && a.index.is_none() {
        ChangeKind::LostIndex
    } else {
        ChangeKind::AccessPath
    };
    out.push(PlanChange {
        kind,
        relation: Some(b.relation.clone()),
        before: b.describe(),
        after: a.describe(),
        text: format!("{} → {}", b.describe(), a.access_with_index()),
    });
}

/// "Sort (quicksort, 25kB)" → "Sort (quicksort)": memory use is not a method change.
fn sort_method(s: &str) -> String {
    match (s.find(" ("), s.rfind(", ")) {
        (Some(open), Some(comma)) if comma > open => format!("{})", &s[..comma]),
        _ => s.to_string(),
    }
}

fn list_changes(
    kind: ChangeKind,
    what: &str,
    before: &[String],
    after: &[String],
    norm: impl Fn(&str) -> String,
    out: &mut Vec<PlanChange>,
) {
    let b: Vec<String> = before.iter().map(|s| norm(s)).collect();
    let a: Vec<String> = after.iter().map(|s| norm(s)).collect();
    if a == b {
        return;
    }
    if a.len() == b.len() {
        for (x, y) in b.iter().zip(&a) {
            if x != y {
                out.push(PlanChange {
                    kind,
                    relation: None,
                    before: x.clone(),
                    after: y.clone(),
                    text: format!("{x} → {y}"),
                });
            }
        }
    } else {
        let show = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        let (x, y) = (show(&b), show(&a));
        out.push(PlanChange {
            kind,
            relation: None,
            before: x.clone(),
            after: y.clone(),
            text: format!("{what}: {x} → {y}"),
        });
    }
}

fn misestimate_change(before: &PlanSummary, after: &PlanSummary, out: &mut Vec<PlanChange>) {
    let Some(m) = &after.worst_misestimate else {
        return;
    };
    let prev = before.worst_misestimate.as_ref().map_or(1.0, |m| m.factor);
    if m.factor >= MISESTIMATE_MIN && m.factor >= prev * MISESTIMATE_GROWTH {
        let b = format!("{prev:.1}×");
        let a = format!("{:.1}×", m.factor);
        out.push(PlanChange {
            kind: ChangeKind::MisestimateGrew,
            relation: None,
            text: format!(
                "worst misestimate {b} → {a} ({}: {} est vs {} actual rows per loop)",
                m.node, m.est_rows, m.actual_rows
            ),
            before: b,
            after: a,
        });
    }
}

fn partition_change(before: &PlanSummary, after: &PlanSummary, out: &mut Vec<PlanChange>) {
    if before.partitions.is_none() && after.partitions.is_none() {
        return;
    }
    let count = |s: &PlanSummary| s.partitions.as_ref().map_or(0, |p| p.scanned);
    let (b, a) = (count(before), count(after));
    if b != a {
        let parent = after
            .relations
            .iter()
            .chain(&before.relations)
            .find_map(|r| r.partition_parent.clone());
        out.push(PlanChange {
            kind: ChangeKind::PartitionsScanned,
            text: format!(
                "partitions scanned{}: {b} → {a}",
                parent
                    .as_ref()
                    .map(|p| format!(" of {p}"))
                    .unwrap_or_default()
            ),
            relation: parent,
            before: b.to_string(),
            after: a.to_string(),
        });
    }
}
