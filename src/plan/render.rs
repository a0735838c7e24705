//! Node labels and details as EXPLAIN's text format names them, and the text rendering.

use std::fmt::Write;

use serde_json::Value;

use super::{text, uint, PlanSummary};

/// The node's name as EXPLAIN's text format prints it: "Index Scan using idx on stories s",
/// "Hash Left Join", "HashAggregate", "Insert on stories", "CTE Scan on new_story", ….
pub(super) fn label(node: &Value) -> String {
    let t = text(node, "Node Type").unwrap_or_else(|| "?".into());
    let on = |name: String| {
        let alias = text(node, "Alias");
        match alias {
            Some(a) if a != name => format!("{name} {a}"),
            _ => name,
        }
    };
    let backward = text(node, "Scan Direction").as_deref() == Some("Backward");
    match t.as_str() {
        "Index Scan" | "Index Only Scan" => {
            let t = if backward {
                format!("{t} Backward")
            } else {
                t.clone()
            };
            let idx = text(node, "Index Name").unwrap_or_default();
            match text(node, "Relation Name") {
                Some(r) => format!("{t} using {idx} on {}", on(r)),
                None => format!("{t} using {idx}"),
            }
        }
        "Bitmap Index Scan" => format!(
            "Bitmap Index Scan on {}",
            text(node, "Index Name").unwrap_or_default()
        ),
        "Nested Loop" | "Hash Join" | "Merge Join" => {
            let jt = text(node, "Join Type").unwrap_or_else(|| "Inner".into());
            if jt == "Inner" {
                t.clone()
            } else if t == "Nested Loop" {
                format!("Nested Loop {jt} Join")
            } else {
                format!("{} {jt} Join", t.trim_end_matches(" Join"))
            }
        }
        "Aggregate" => {
            let strategy = match text(node, "Strategy").as_deref() {
                Some("Sorted") => "GroupAggregate",
                Some("Hashed") => "HashAggregate",
                Some("Mixed") => "MixedAggregate",
                _ => "Aggregate",
            };
            match text(node, "Partial Mode").as_deref() {
                Some("Partial") => format!("Partial {strategy}"),
                Some("Finalize") => format!("Finalize {strategy}"),
                _ => strategy.to_string(),
            }
        }
        "ModifyTable" => {
            let op = text(node, "Operation").unwrap_or_else(|| "Modify".into());
            match text(node, "Relation Name") {
                Some(r) => format!("{op} on {}", on(r)),
                None => op,
            }
        }
        "CTE Scan" => format!(
            "CTE Scan on {}",
            on(text(node, "CTE Name").unwrap_or_default())
        ),
        "Function Scan" => format!(
            "Function Scan on {}",
            on(text(node, "Function Name").unwrap_or_default())
        ),
        "Subquery Scan" => format!(
            "Subquery Scan on {}",
            text(node, "Alias").unwrap_or_default()
        ),
        _ => match text(node, "Relation Name") {
            Some(r) => format!("{t} on {}", on(r)),
            None => t.clone(),
        },
    }
}

/// "Sort (quicksort, 25kB)", "Sort (top-N heapsort, 26kB)", "Sort (external merge, disk 1024kB)",
/// "Incremental Sort (quicksort, 26kB)"; just the node type when it never ran.
pub(super) fn sort_label(node: &Value) -> String {
    let t = text(node, "Node Type").unwrap_or_else(|| "Sort".into());
    if let Some(method) = text(node, "Sort Method") {
        let space = uint(node, "Sort Space Used");
        return match text(node, "Sort Space Type").as_deref() {
            Some("Disk") => format!("{t} ({method}, disk {space}kB)"),
            _ => format!("{t} ({method}, {space}kB)"),
        };
    }
    // Incremental Sort: the full-sort groups (and pre-sorted groups) report their methods.
    let mut methods: Vec<String> = Vec::new();
    let mut peak = 0;
    for key in ["Full-sort Groups", "Pre-sorted Groups"] {
        if let Some(g) = node.get(key) {
            if let Some(ms) = g.get("Sort Methods Used").and_then(Value::as_array) {
                for m in ms.iter().filter_map(Value::as_str) {
                    if !methods.iter().any(|x| x == m) {
                        methods.push(m.to_string());
                    }
                }
            }
            if let Some(mem) = g.get("Sort Space Memory") {
                peak = peak.max(uint(mem, "Peak Sort Space Used"));
            }
        }
    }
    if methods.is_empty() {
        t
    } else {
        format!("{t} ({}, {peak}kB)", methods.join("+"))
    }
}

/// The lines a reader looks for under a node.
pub(super) fn details(node: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in [
        "Index Cond",
        "Recheck Cond",
        "Hash Cond",
        "Merge Cond",
        "Join Filter",
        "Filter",
        "One-Time Filter",
        "Cache Key",
    ] {
        if let Some(v) = text(node, key) {
            out.push(format!("{key}: {v}"));
        }
    }
    for key in ["Sort Key", "Presorted Key", "Group Key"] {
        if let Some(a) = node.get(key).and_then(Value::as_array) {
            let items: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
            out.push(format!("{key}: {}", items.join(", ")));
        }
    }
    for key in [
        "Rows Removed by Filter",
        "Rows Removed by Index Recheck",
        "Rows Removed by Join Filter",
        "Heap Fetches",
        "Subplans Removed",
        "Cache Hits",
        "Cache Misses",
        "Hash Batches",
        "Workers Launched",
    ] {
        if let Some(v) = node.get(key).and_then(Value::as_u64) {
            if v > 0 || key == "Subplans Removed" {
                out.push(format!("{key}: {v}"));
            }
        }
    }
    let (exact, lossy) = (
        uint(node, "Exact Heap Blocks"),
        uint(node, "Lossy Heap Blocks"),
    );
    if exact + lossy > 0 {
        out.push(format!("Heap Blocks: exact={exact} lossy={lossy}"));
    }
    if text(node, "Node Type").as_deref() == Some("Sort")
        || text(node, "Node Type").as_deref() == Some("Incremental Sort")
    {
        let l = sort_label(node);
        if let Some(i) = l.find(" (") {
            out.push(format!("Sort Method: {}", l[i + 2..].trim_end_matches(')')));
        }
    }
    out
}

fn fmt_rows(r: f64) -> String {
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.2}")
    }
}

/// The plan as an indented tree, one node per line with inclusive and exclusive times,
/// share of the execution time, and actual vs estimated rows; key details in brackets.
pub fn render_text(s: &PlanSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "planning {:.3} ms · execution {:.3} ms · shared hit {} read {}{}",
        s.planning_ms,
        s.execution_ms,
        s.shared_hit,
        s.shared_read,
        if s.temp_read + s.temp_written > 0 {
            format!(" · temp read {} written {}", s.temp_read, s.temp_written)
        } else {
            String::new()
        }
    );
    for n in &s.nodes {
        let indent = "  ".repeat(n.depth);
        let arrow = if n.depth == 0 { "" } else { "-> " };
        let sub = n
            .subplan
            .as_ref()
            .map(|p| format!("[{p}] "))
            .unwrap_or_default();
        let figures = if n.never_executed {
            format!("(never executed; est {} rows)", fmt_rows(n.est_rows))
        } else {
            format!(
                "({:.3} ms, self {:.3} ms {:.0}% · rows {} of {} est × {} loop{})",
                n.actual_total_ms,
                n.self_ms,
                n.share_of_total * 100.0,
                fmt_rows(n.actual_rows),
                fmt_rows(n.est_rows),
                n.loops,
                if n.loops == 1 { "" } else { "s" }
            )
        };
        let details = if n.details.is_empty() {
            String::new()
        } else {
            format!("  [{}]", n.details.join("; "))
        };
        let _ = writeln!(out, "{indent}{arrow}{sub}{} {figures}{details}", n.label);
    }
    if let Some(m) = &s.worst_misestimate {
        let _ = writeln!(
            out,
            "worst misestimate: {:.1}× on {} ({} est vs {} actual rows per loop)",
            m.factor,
            m.node,
            fmt_rows(m.est_rows),
            fmt_rows(m.actual_rows)
        );
    }
    if let Some(p) = &s.partitions {
        let total = p.total.map(|t| format!(" of {t}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "partitions: {} scanned{total} · {} in plan · {} removed at executor start · {} never executed",
            p.scanned, p.in_plan, p.subplans_removed, p.never_executed
        );
    }
    out
}
