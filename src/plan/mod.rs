//! Plan summaries: the facts a user reads EXPLAIN for, extracted from the JSON of
//! `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`: access path per relation (which index),
//! join and sort methods, the worst row misestimate, buffers, InitPlans, partitions
//! scanned/pruned, and a flattened tree with inclusive and exclusive times for rendering.
//! [`diff`] compares two summaries of the same query (e.g. two index strategies).

mod diff;
mod render;

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use diff::{diff, ChangeKind, PlanChange};
pub use render::render_text;

/// Summary of one EXPLAIN ANALYZE plan (goes into results.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSummary {
    pub planning_ms: f64,
    pub execution_ms: f64,
    /// One per table scan node, in plan (pre-)order.
    pub relations: Vec<RelationAccess>,
    /// Join nodes in plan order: "Nested Loop", "Hash Join", "Merge Left Join", ….
    pub joins: Vec<String>,
    /// Sort nodes in plan order: "Sort (quicksort, 25kB)", "Sort (top-N heapsort, 26kB)",
    /// "Incremental Sort (quicksort, 26kB)", "Sort (external merge, disk 1024kB)".
    pub sorts: Vec<String>,
    pub worst_misestimate: Option<Misestimate>,
    /// Buffers of the execution (the root node's counters include every child).
    pub shared_hit: u64,
    pub shared_read: u64,
    pub temp_read: u64,
    pub temp_written: u64,
    /// Sub-plans named "InitPlan …" (e.g. a `(select auth.uid())` policy).
    pub initplans: usize,
    /// Sub-plans named "SubPlan …" (correlated, re-run per row).
    pub subplans: usize,
    pub partitions: Option<PartitionInfo>,
    /// The plan tree, flattened in pre-order.
    pub nodes: Vec<PlanNode>,
}

/// How one relation (table or partition) is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationAccess {
    pub relation: String,
    pub alias: String,
    /// "Seq Scan", "Index Scan", "Index Scan Backward", "Index Only Scan", "Bitmap Heap Scan", …
    pub access: String,
    /// The index used; for a bitmap heap scan its Bitmap Index Scan children's (", "-joined).
    pub index: Option<String>,
    /// Index Cond (bitmap: the Bitmap Index Scan's).
    pub index_cond: Option<String>,
    pub filter: Option<String>,
    pub rows_removed_by_filter: u64,
    pub est_rows: f64,
    /// Rows per loop, as EXPLAIN reports them.
    pub actual_rows: f64,
    pub loops: u64,
    pub never_executed: bool,
    /// The partitioned table this relation is a partition of (inferred from names).
    pub partition_parent: Option<String>,
}

impl RelationAccess {
    /// "Index Scan using idx on stories s", as EXPLAIN's text format would name the node.
    pub fn describe(&self) -> String {
        format!(
            "{} on {}",
            self.access_with_index(),
            self.relation_display()
        )
    }

    /// "Index Scan using idx" / "Seq Scan" / "Bitmap Heap Scan using idx".
    pub fn access_with_index(&self) -> String {
        match &self.index {
            Some(i) => format!("{} using {i}", self.access),
            None => self.access.clone(),
        }
    }

    /// "stories s", or "stories" when the alias is the table name.
    pub fn relation_display(&self) -> String {
        if self.alias.is_empty() || self.alias == self.relation {
            self.relation.clone()
        } else {
            format!("{} {}", self.relation, self.alias)
        }
    }
}

/// The node whose row estimate was furthest from the actual rows (per loop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Misestimate {
    pub node: String,
    pub est_rows: f64,
    pub actual_rows: f64,
    pub loops: u64,
    /// max(est, act) / max(min(est, act), 1).
    pub factor: f64,
    /// true when the planner expected fewer rows than it got.
    pub underestimate: bool,
}

/// Partitions seen in a plan (summed over every Append/MergeAppend of partitions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionInfo {
    /// Partition scans present in the plan (after plan-time pruning).
    pub in_plan: usize,
    /// Partition scans that ran (in_plan minus never_executed).
    pub scanned: usize,
    /// Pruned at executor start (`Subplans Removed`, generic plans).
    pub subplans_removed: usize,
    /// Pruned during execution (`never executed`, e.g. bounds from an InitPlan).
    pub never_executed: usize,
    /// Partitions the table has; the plan does not say, the caller fills it in.
    pub total: Option<usize>,
}

/// One node of the flattened tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanNode {
    pub depth: usize,
    /// "Index Scan using idx on stories s", "Hash Left Join", "HashAggregate", …
    pub label: String,
    pub node_type: String,
    /// "InitPlan 1 (returns $0)", "SubPlan 1", "CTE x" when the node heads a sub-plan.
    pub subplan: Option<String>,
    /// Inclusive time, all loops (Actual Total Time × loops).
    pub actual_total_ms: f64,
    /// Exclusive time: inclusive minus the children's inclusive, never negative.
    pub self_ms: f64,
    pub est_rows: f64,
    pub actual_rows: f64,
    pub loops: u64,
    /// self_ms / execution_ms.
    pub share_of_total: f64,
    pub never_executed: bool,
    /// "Index Cond: …", "Filter: …", "Rows Removed by Filter: 84", "Sort Key: …", …
    pub details: Vec<String>,
    /// Shared buffers of the node, children included (absent in older results).
    #[serde(default)]
    pub shared_hit: u64,
    #[serde(default)]
    pub shared_read: u64,
}

/// Summarizes the JSON of `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` (the one-element
/// array, or its element). Works without ANALYZE too (actual figures are then 0).
pub fn summarize(explain: &Value) -> Result<PlanSummary> {
    let top = match explain {
        Value::Array(a) => a.first().ok_or_else(|| anyhow!("empty EXPLAIN output"))?,
        v => v,
    };
    // psql -A may hand over the JSON as a string.
    if let Value::String(s) = top {
        let v: Value = serde_json::from_str(s)?;
        return summarize(&v);
    }
    let root = top
        .get("Plan")
        .ok_or_else(|| anyhow!("EXPLAIN JSON has no \"Plan\""))?;
    if !root.is_object() {
        bail!("EXPLAIN \"Plan\" is not an object");
    }
    let execution_ms = num(top, "Execution Time");
    let mut s = PlanSummary {
        planning_ms: num(top, "Planning Time"),
        execution_ms,
        relations: Vec::new(),
        joins: Vec::new(),
        sorts: Vec::new(),
        worst_misestimate: None,
        shared_hit: uint(root, "Shared Hit Blocks"),
        shared_read: uint(root, "Shared Read Blocks"),
        temp_read: uint(root, "Temp Read Blocks"),
        temp_written: uint(root, "Temp Written Blocks"),
        initplans: 0,
        subplans: 0,
        partitions: None,
        nodes: Vec::new(),
    };
    let mut parts = PartitionInfo {
        in_plan: 0,
        scanned: 0,
        subplans_removed: 0,
        never_executed: 0,
        total: None,
    };
    let mut saw_partitions = false;
    walk(
        root,
        0,
        false,
        false,
        &mut s,
        &mut parts,
        &mut saw_partitions,
    );
    if execution_ms > 0.0 {
        for n in &mut s.nodes {
            n.share_of_total = n.self_ms / execution_ms;
        }
    }
    if saw_partitions {
        s.partitions = Some(parts);
    }
    Ok(s)
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

fn uint(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(|x| x.as_u64().or_else(|| x.as_f64().map(|f| f.max(0.0) as u64)))
        .unwrap_or(0)
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn children(v: &Value) -> &[Value] {
    v.get("Plans")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

const JOIN_TYPES: [&str; 3] = ["Nested Loop", "Hash Join", "Merge Join"];

#[allow(clippy::too_many_arguments)]
fn walk(
    node: &Value,
    depth: usize,
    under_append: bool,
    under_limit: bool,
    s: &mut PlanSummary,
    parts: &mut PartitionInfo,
    saw_partitions: &mut bool,
) {
    let node_type = text(node, "Node Type").unwrap_or_else(|| "?".into());
    let loops = uint(node, "Actual Loops");
    let analyzed = node.get("Actual Loops").is_some();
    let never_executed = analyzed && loops == 0;
    let est_rows = num(node, "Plan Rows");
    let actual_rows = num(node, "Actual Rows");
    let subplan = text(node, "Subplan Name");
    match subplan.as_deref() {
        Some(n) if n.starts_with("InitPlan") => s.initplans += 1,
        Some(n) if n.starts_with("SubPlan") => s.subplans += 1,
        _ => {}
    }

    let label = render::label(node);
    let kids = children(node);
    let inclusive = num(node, "Actual Total Time") * loops as f64;
    // An InitPlan (or CTE) runs inside whichever node first needs its value, so its time is
    // already in that descendant's; subtracting it from the parent would count it twice.
    let kids_inclusive: f64 = kids
        .iter()
        .filter(|k| k.get("Parent Relationship").and_then(Value::as_str) != Some("InitPlan"))
        .map(|k| num(k, "Actual Total Time") * uint(k, "Actual Loops") as f64)
        .sum();

    if JOIN_TYPES.contains(&node_type.as_str()) {
        s.joins.push(label.clone());
    }
    if node_type == "Sort" || node_type == "Incremental Sort" {
        s.sorts.push(render::sort_label(node));
    }

    let is_append = node_type == "Append" || node_type == "Merge Append";
    if is_append {
        if let Some(r) = node.get("Subplans Removed").and_then(Value::as_u64) {
            parts.subplans_removed += r as usize;
            if r > 0 {
                *saw_partitions = true;
            }
        }
    }

    if let (Some(relation), true) = (text(node, "Relation Name"), node_type != "ModifyTable") {
        let alias = text(node, "Alias").unwrap_or_else(|| relation.clone());
        let (index, index_cond) = if node_type == "Bitmap Heap Scan" {
            bitmap_indexes(node)
        } else {
            (text(node, "Index Name"), text(node, "Index Cond"))
        };
        let access = match (node_type.as_str(), text(node, "Scan Direction").as_deref()) {
            ("Index Scan" | "Index Only Scan", Some("Backward")) => format!("{node_type} Backward"),
            _ => node_type.clone(),
        };
        let partition_parent = partition_parent(&relation, &alias, under_append);
        if partition_parent.is_some() {
            *saw_partitions = true;
            parts.in_plan += 1;
            if never_executed {
                parts.never_executed += 1;
            } else {
                parts.scanned += 1;
            }
        }
        s.relations.push(RelationAccess {
            relation,
            alias,
            access,
            index,
            index_cond,
            filter: text(node, "Filter"),
            rows_removed_by_filter: uint(node, "Rows Removed by Filter"),
            est_rows,
            actual_rows,
            loops,
            never_executed,
            partition_parent,
        });
    }

    // Misestimate: per-loop rows. Below a Limit a node may stop early, so there only
    // underestimates count.
    if analyzed && !never_executed && (!under_limit || actual_rows > est_rows) {
        let (lo, hi) = if est_rows < actual_rows {
            (est_rows, actual_rows)
        } else {
            (actual_rows, est_rows)
        };
        let factor = hi / lo.max(1.0);
        if factor > s.worst_misestimate.as_ref().map_or(1.0, |m| m.factor) {
            s.worst_misestimate = Some(Misestimate {
                node: label.clone(),
                est_rows,
                actual_rows,
                loops,
                factor,
                underestimate: actual_rows > est_rows,
            });
        }
    }

    s.nodes.push(PlanNode {
        depth,
        label,
        node_type: node_type.clone(),
        subplan,
        actual_total_ms: inclusive,
        self_ms: (inclusive - kids_inclusive).max(0.0),
        est_rows,
        actual_rows,
        loops,
        share_of_total: 0.0,
        never_executed,
        details: render::details(node),
        shared_hit: uint(node, "Shared Hit Blocks"),
        shared_read: uint(node, "Shared Read Blocks"),
    });

    let child_under_limit = under_limit || node_type == "Limit";
    for k in kids {
        let member = k.get("Parent Relationship").and_then(Value::as_str) == Some("Member");
        walk(
            k,
            depth + 1,
            is_append && member,
            child_under_limit,
            s,
            parts,
            saw_partitions,
        );
    }
}

/// Index names and conditions of a Bitmap Heap Scan's Bitmap Index Scan descendants
/// (through BitmapAnd / BitmapOr).
fn bitmap_indexes(node: &Value) -> (Option<String>, Option<String>) {
    fn collect(v: &Value, names: &mut Vec<String>, conds: &mut Vec<String>) {
        for k in children(v) {
            if k.get("Node Type").and_then(Value::as_str) == Some("Bitmap Index Scan") {
                names.extend(text(k, "Index Name"));
                conds.extend(text(k, "Index Cond"));
            } else if matches!(
                k.get("Node Type").and_then(Value::as_str),
                Some("BitmapAnd" | "BitmapOr")
            ) {
                collect(k, names, conds);
            }
        }
    }
    let (mut names, mut conds) = (Vec::new(), Vec::new());
    collect(node, &mut names, &mut conds);
    let cond = if conds.is_empty() {
        text(node, "Recheck Cond")
    } else {
        Some(conds.join(" ; "))
    };
    ((!names.is_empty()).then(|| names.join(", ")), cond)
}

/// The partitioned table a scanned relation belongs to, inferred from names: a member of
/// an Append whose alias is `<stem>_<n>` (PostgreSQL's alias for the n-th partition) and
/// whose relation is not `<stem>` itself (that would be a UNION ALL of the same table);
/// or, outside an Append (pruned to one partition), a relation named `<alias>_…`.
fn partition_parent(relation: &str, alias: &str, under_append: bool) -> Option<String> {
    let stem = match alias.rfind('_') {
        Some(i)
            if i > 0
                && i + 1 < alias.len()
                && alias[i + 1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            &alias[..i]
        }
        _ => alias,
    };
    if under_append && stem != alias && relation != stem {
        if relation.starts_with(&format!("{stem}_")) {
            return Some(stem.to_string());
        }
        // An explicit alias (`FROM api_usage u` → u_1): strip the partition suffix.
        return Some(strip_partition_suffix(relation).to_string());
    }
    if !under_append && relation != alias && relation.starts_with(&format!("{alias}_")) {
        let rest = &relation[alias.len() + 1..];
        let rest = rest.strip_prefix('p').unwrap_or(rest);
        if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
            return Some(alias.to_string());
        }
    }
    None
}

fn strip_partition_suffix(relation: &str) -> &str {
    match relation.rfind('_') {
        Some(i) if i > 0 => {
            let rest = &relation[i + 1..];
            let rest = rest.strip_prefix('p').unwrap_or(rest);
            if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
                &relation[..i]
            } else {
                relation
            }
        }
        _ => relation,
    }
}
