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
    fn relation_display(&self) -> String {
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
    let raw_root = top
        .get("Plan")
        .ok_or_else(|| anyhow!("EXPLAIN JSON has no \"Plan\""))?;
    if !raw_root.is_object() {
        bail!("EXPLAIN \"Plan\" is not an object");
    }
    let root = Node::parse(raw_root);
    let times = Top::deserialize(top).unwrap_or_default();
    let execution_ms = times.execution_ms;
    let mut w = Walk {
        s: PlanSummary {
            planning_ms: times.planning_ms,
            execution_ms,
            relations: Vec::new(),
            joins: Vec::new(),
            sorts: Vec::new(),
            worst_misestimate: None,
            shared_hit: root.f.shared_hit,
            shared_read: root.f.shared_read,
            temp_read: root.f.temp_read,
            temp_written: root.f.temp_written,
            initplans: 0,
            subplans: 0,
            partitions: None,
            nodes: Vec::new(),
        },
        parts: PartitionInfo {
            in_plan: 0,
            scanned: 0,
            subplans_removed: 0,
            never_executed: 0,
            total: None,
        },
        saw_partitions: false,
    };
    w.walk(&root, 0, false, false);
    let mut s = w.s;
    if execution_ms > 0.0 {
        for n in &mut s.nodes {
            n.share_of_total = n.self_ms / execution_ms;
        }
    }
    if w.saw_partitions {
        s.partitions = Some(w.parts);
    }
    Ok(s)
}

/// The top level of EXPLAIN's JSON, beside "Plan".
#[derive(Deserialize, Default)]
#[serde(default)]
struct Top {
    #[serde(rename = "Planning Time", deserialize_with = "de::num")]
    planning_ms: f64,
    #[serde(rename = "Execution Time", deserialize_with = "de::num")]
    execution_ms: f64,
}

/// The EXPLAIN JSON fields of one plan node that the summary reads. Lenient, as the
/// summary always was: a missing or mistyped field reads as absent or 0 (EXPLAIN without
/// ANALYZE leaves the actual figures out).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Fields {
    #[serde(rename = "Node Type", deserialize_with = "de::text")]
    node_type: Option<String>,
    #[serde(rename = "Parent Relationship", deserialize_with = "de::text")]
    parent_relationship: Option<String>,
    #[serde(rename = "Subplan Name", deserialize_with = "de::text")]
    subplan_name: Option<String>,
    /// Present (whatever its value) only when the plan was run: EXPLAIN ANALYZE.
    #[serde(rename = "Actual Loops", deserialize_with = "de::present")]
    actual_loops: Option<Value>,
    #[serde(rename = "Plan Rows", deserialize_with = "de::num")]
    plan_rows: f64,
    #[serde(rename = "Actual Rows", deserialize_with = "de::num")]
    actual_rows: f64,
    #[serde(rename = "Actual Total Time", deserialize_with = "de::num")]
    actual_total_time: f64,
    #[serde(rename = "Subplans Removed", deserialize_with = "de::exact_uint")]
    subplans_removed: Option<u64>,
    #[serde(rename = "Relation Name", deserialize_with = "de::text")]
    relation_name: Option<String>,
    #[serde(rename = "Alias", deserialize_with = "de::text")]
    alias: Option<String>,
    #[serde(rename = "Index Name", deserialize_with = "de::text")]
    index_name: Option<String>,
    #[serde(rename = "Index Cond", deserialize_with = "de::text")]
    index_cond: Option<String>,
    #[serde(rename = "Recheck Cond", deserialize_with = "de::text")]
    recheck_cond: Option<String>,
    #[serde(rename = "Scan Direction", deserialize_with = "de::text")]
    scan_direction: Option<String>,
    #[serde(rename = "Filter", deserialize_with = "de::text")]
    filter: Option<String>,
    #[serde(rename = "Rows Removed by Filter", deserialize_with = "de::uint")]
    rows_removed_by_filter: u64,
    #[serde(rename = "Shared Hit Blocks", deserialize_with = "de::uint")]
    shared_hit: u64,
    #[serde(rename = "Shared Read Blocks", deserialize_with = "de::uint")]
    shared_read: u64,
    #[serde(rename = "Temp Read Blocks", deserialize_with = "de::uint")]
    temp_read: u64,
    #[serde(rename = "Temp Written Blocks", deserialize_with = "de::uint")]
    temp_written: u64,
}

/// One plan node: its typed fields, its children ("Plans"), and its JSON, from which the
/// labels and detail lines are rendered (`render`).
struct Node<'a> {
    f: Fields,
    raw: &'a Value,
    plans: Vec<Node<'a>>,
}

impl<'a> Node<'a> {
    fn parse(raw: &'a Value) -> Self {
        let plans = raw
            .get("Plans")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        Node {
            // A node that is not an object has no fields, as `Value::get` saw it.
            f: Fields::deserialize(raw).unwrap_or_default(),
            raw,
            plans: plans.iter().map(Node::parse).collect(),
        }
    }

    fn node_type(&self) -> &str {
        self.f.node_type.as_deref().unwrap_or("?")
    }

    fn loops(&self) -> u64 {
        self.f.actual_loops.as_ref().map_or(0, de::uint_of)
    }

    /// Inclusive time, all loops.
    fn inclusive_ms(&self) -> f64 {
        self.f.actual_total_time * self.loops() as f64
    }
}

/// Lenient readers of EXPLAIN JSON values: any JSON is accepted, a mistyped one reads as
/// absent or 0.
mod de {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    pub(super) fn num<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Value::deserialize(d)?.as_f64().unwrap_or(0.0))
    }

    pub(super) fn uint_of(v: &Value) -> u64 {
        v.as_u64()
            .or_else(|| v.as_f64().map(|f| f.max(0.0) as u64))
            .unwrap_or(0)
    }

    pub(super) fn uint<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Ok(uint_of(&Value::deserialize(d)?))
    }

    pub(super) fn exact_uint<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(Value::deserialize(d)?.as_u64())
    }

    pub(super) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Value::deserialize(d)?.as_str().map(str::to_string))
    }

    pub(super) fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
        Ok(Some(Value::deserialize(d)?))
    }
}

/// A node's integer field, as the labels read it (`render`).
fn uint(v: &Value, key: &str) -> u64 {
    v.get(key).map_or(0, de::uint_of)
}

/// A node's text field, as the labels read it (`render`).
fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

const JOIN_TYPES: [&str; 3] = ["Nested Loop", "Hash Join", "Merge Join"];

/// What the walk gathers: the summary, and the partitions it saw.
struct Walk {
    s: PlanSummary,
    parts: PartitionInfo,
    saw_partitions: bool,
}

impl Walk {
    /// One node, then its children in order (pre-order).
    fn walk(&mut self, node: &Node, depth: usize, under_append: bool, under_limit: bool) {
        let node_type = node.node_type();
        match node.f.subplan_name.as_deref() {
            Some(n) if n.starts_with("InitPlan") => self.s.initplans += 1,
            Some(n) if n.starts_with("SubPlan") => self.s.subplans += 1,
            _ => {}
        }
        let label = render::label(node.raw);
        if JOIN_TYPES.contains(&node_type) {
            self.s.joins.push(label.clone());
        }
        if node_type == "Sort" || node_type == "Incremental Sort" {
            self.s.sorts.push(render::sort_label(node.raw));
        }
        let is_append = node_type == "Append" || node_type == "Merge Append";
        if is_append {
            if let Some(r) = node.f.subplans_removed {
                self.parts.subplans_removed += r as usize;
                if r > 0 {
                    self.saw_partitions = true;
                }
            }
        }
        if node_type != "ModifyTable" {
            if let Some(relation) = &node.f.relation_name {
                self.relation(node, relation, under_append);
            }
        }
        self.misestimate(node, &label, under_limit);
        self.s.nodes.push(plan_node(node, depth, label));

        let child_under_limit = under_limit || node_type == "Limit";
        for k in &node.plans {
            let member = k.f.parent_relationship.as_deref() == Some("Member");
            self.walk(k, depth + 1, is_append && member, child_under_limit);
        }
    }

    /// A scan of `relation`: its access path, and whether it is a partition.
    fn relation(&mut self, node: &Node, relation: &str, under_append: bool) {
        let f = &node.f;
        let node_type = node.node_type();
        let never_executed = f.actual_loops.is_some() && node.loops() == 0;
        let alias = f.alias.clone().unwrap_or_else(|| relation.to_string());
        let (index, index_cond) = if node_type == "Bitmap Heap Scan" {
            bitmap_indexes(node)
        } else {
            (f.index_name.clone(), f.index_cond.clone())
        };
        let access = match (node_type, f.scan_direction.as_deref()) {
            ("Index Scan" | "Index Only Scan", Some("Backward")) => format!("{node_type} Backward"),
            _ => node_type.to_string(),
        };
        let partition_parent = partition_parent(relation, &alias, under_append);
        if partition_parent.is_some() {
            self.saw_partitions = true;
            self.parts.in_plan += 1;
            if never_executed {
                self.parts.never_executed += 1;
            } else {
                self.parts.scanned += 1;
            }
        }
        self.s.relations.push(RelationAccess {
            relation: relation.to_string(),
            alias,
            access,
            index,
            index_cond,
            filter: f.filter.clone(),
            rows_removed_by_filter: f.rows_removed_by_filter,
            est_rows: f.plan_rows,
            actual_rows: f.actual_rows,
            loops: node.loops(),
            never_executed,
            partition_parent,
        });
    }

    /// Misestimate: per-loop rows. Below a Limit a node may stop early, so there only
    /// underestimates count.
    fn misestimate(&mut self, node: &Node, label: &str, under_limit: bool) {
        let (est_rows, actual_rows) = (node.f.plan_rows, node.f.actual_rows);
        let analyzed = node.f.actual_loops.is_some();
        let never_executed = analyzed && node.loops() == 0;
        if !analyzed || never_executed || (under_limit && actual_rows <= est_rows) {
            return;
        }
        let (lo, hi) = if est_rows < actual_rows {
            (est_rows, actual_rows)
        } else {
            (actual_rows, est_rows)
        };
        let factor = hi / lo.max(1.0);
        if factor > self.s.worst_misestimate.as_ref().map_or(1.0, |m| m.factor) {
            self.s.worst_misestimate = Some(Misestimate {
                node: label.to_string(),
                est_rows,
                actual_rows,
                loops: node.loops(),
                factor,
                underestimate: actual_rows > est_rows,
            });
        }
    }
}

/// The flattened tree's entry for `node` (share_of_total is filled in at the end).
fn plan_node(node: &Node, depth: usize, label: String) -> PlanNode {
    let f = &node.f;
    let inclusive = node.inclusive_ms();
    // An InitPlan (or CTE) runs inside whichever node first needs its value, so its time is
    // already in that descendant's; subtracting it from the parent would count it twice.
    let kids_inclusive: f64 = node
        .plans
        .iter()
        .filter(|k| k.f.parent_relationship.as_deref() != Some("InitPlan"))
        .map(Node::inclusive_ms)
        .sum();
    PlanNode {
        depth,
        label,
        node_type: node.node_type().to_string(),
        subplan: f.subplan_name.clone(),
        actual_total_ms: inclusive,
        self_ms: (inclusive - kids_inclusive).max(0.0),
        est_rows: f.plan_rows,
        actual_rows: f.actual_rows,
        loops: node.loops(),
        share_of_total: 0.0,
        never_executed: f.actual_loops.is_some() && node.loops() == 0,
        details: render::details(node.raw),
        shared_hit: f.shared_hit,
        shared_read: f.shared_read,
    }
}

/// Index names and conditions of a Bitmap Heap Scan's Bitmap Index Scan descendants
/// (through BitmapAnd / BitmapOr).
fn bitmap_indexes(node: &Node) -> (Option<String>, Option<String>) {
    fn collect(v: &Node, names: &mut Vec<String>, conds: &mut Vec<String>) {
        for k in &v.plans {
            match k.f.node_type.as_deref() {
                Some("Bitmap Index Scan") => {
                    names.extend(k.f.index_name.clone());
                    conds.extend(k.f.index_cond.clone());
                }
                Some("BitmapAnd" | "BitmapOr") => collect(k, names, conds),
                _ => {}
            }
        }
    }
    let (mut names, mut conds) = (Vec::new(), Vec::new());
    collect(node, &mut names, &mut conds);
    let cond = if conds.is_empty() {
        node.f.recheck_cond.clone()
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
