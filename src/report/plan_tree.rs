//! Plans a person can read, without script: each plan node a `<details>` holding its
//! children, the node's figures on its summary line, its conditions inside; costly nodes
//! highlighted. A plan diff is two such trees side by side with the changed nodes marked.

use crate::plan::{PlanNode, PlanSummary};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Self time share above which a node is "hot" (and "warm" above the second).
const HOT: f64 = 0.30;
const WARM: f64 = 0.10;
/// Row misestimate (either way) that is flagged on the node.
const MISESTIMATE: f64 = 10.0;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn rows(r: f64) -> String {
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.2}")
    }
}

/// How a node differs from the other side of a diff.
#[derive(Clone, Copy, PartialEq)]
enum Mark {
    None,
    /// Its label does not occur (as often) on the other side.
    Changed,
}

fn node_html(n: &PlanNode, mark: Mark, has_children: bool, out: &mut String) {
    let mut class = vec!["pn"];
    if !n.never_executed {
        if n.share_of_total > HOT {
            class.push("hot");
        } else if n.share_of_total > WARM {
            class.push("warm");
        }
    }
    if mark == Mark::Changed {
        class.push("changed");
    }
    let factor = n.est_rows.max(n.actual_rows) / n.est_rows.min(n.actual_rows).max(1.0);
    let misestimated = !n.never_executed && factor >= MISESTIMATE;
    let sub = n
        .subplan
        .as_ref()
        .map(|s| format!("<span class=\"sp\">{}</span> ", escape(s)))
        .unwrap_or_default();
    let figures = if n.never_executed {
        format!("never executed · est {} rows", rows(n.est_rows))
    } else {
        let share = format!("{:.0} %", n.share_of_total * 100.0);
        format!(
            "{:.3} ms · self {:.3} ms ({}) · rows {} of {} est{} × {} loop{}",
            n.actual_total_ms,
            n.self_ms,
            if n.share_of_total > WARM {
                format!("<b class=\"share\">{share} of the time</b>")
            } else {
                share
            },
            rows(n.actual_rows),
            rows(n.est_rows),
            if misestimated {
                format!(" <b class=\"mis\">{factor:.0}× off</b>")
            } else {
                String::new()
            },
            n.loops,
            if n.loops == 1 { "" } else { "s" }
        )
    };
    let buffers = if n.shared_hit + n.shared_read > 0 {
        format!(" · buffers hit {} read {}", n.shared_hit, n.shared_read)
    } else {
        String::new()
    };
    let changed = if mark == Mark::Changed {
        "<b class=\"chg\">changed</b> "
    } else {
        ""
    };
    let line = format!(
        "{changed}{sub}<span class=\"nl\">{}</span> <span class=\"nf\">{figures}{buffers}</span>",
        escape(&n.label)
    );
    if !has_children && n.details.is_empty() {
        let _ = write!(out, "<div class=\"{} leaf\">{line}</div>", class.join(" "));
        return;
    }
    let _ = write!(
        out,
        "<details open class=\"{}\"><summary>{line}</summary>",
        class.join(" ")
    );
    if !n.details.is_empty() {
        out.push_str("<ul class=\"nd\">");
        for d in &n.details {
            let _ = write!(out, "<li><code>{}</code></li>", escape(d));
        }
        out.push_str("</ul>");
    }
}

/// The tree of `plan`; nodes whose index is in `changed` are marked.
fn tree_marked(plan: &PlanSummary, changed: &[bool]) -> String {
    let nodes = &plan.nodes;
    let mut out = format!(
        "<div class=\"ptree\"><p class=\"pt\">planning {:.3} ms · execution {:.3} ms · buffers hit {} read {}{}</p>",
        plan.planning_ms,
        plan.execution_ms,
        plan.shared_hit,
        plan.shared_read,
        plan.worst_misestimate
            .as_ref()
            .map(|m| format!(
                " · worst misestimate {:.1}× on {}",
                m.factor,
                escape(&m.node)
            ))
            .unwrap_or_default()
    );
    // Open <details> per depth: closed when the walk comes back up to (or above) it.
    let mut open: Vec<usize> = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        while open.last().is_some_and(|d| *d >= n.depth) {
            open.pop();
            out.push_str("</details>");
        }
        let has_children = nodes.get(i + 1).is_some_and(|x| x.depth > n.depth);
        let mark = if changed.get(i).copied().unwrap_or(false) {
            Mark::Changed
        } else {
            Mark::None
        };
        node_html(n, mark, has_children, &mut out);
        if has_children || !n.details.is_empty() {
            open.push(n.depth);
        }
    }
    for _ in open {
        out.push_str("</details>");
    }
    out.push_str("</div>");
    out
}

/// One plan as a tree of nested `<details>`.
pub fn tree(plan: &PlanSummary) -> String {
    tree_marked(plan, &[])
}

/// Per node of `side`: its label occurs more often there than in `other` (so it is new or
/// replaced, e.g. "Seq Scan on stories" → "Index Scan using … on stories").
fn changed_nodes(side: &PlanSummary, other: &PlanSummary) -> Vec<bool> {
    let mut budget: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &other.nodes {
        *budget.entry(n.label.as_str()).or_default() += 1;
    }
    side.nodes
        .iter()
        .map(|n| match budget.get_mut(n.label.as_str()) {
            Some(c) if *c > 0 => {
                *c -= 1;
                false
            }
            _ => true,
        })
        .collect()
}

/// Two plans side by side, the nodes that differ marked on both sides.
pub fn diff(before: &PlanSummary, after: &PlanSummary, from: &str, to: &str) -> String {
    format!(
        "<div class=\"pdiff\"><div><p class=\"ph\">{}</p>{}</div><div><p class=\"ph\">{}</p>{}</div></div>",
        escape(from),
        tree_marked(before, &changed_nodes(before, after)),
        escape(to),
        tree_marked(after, &changed_nodes(after, before))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PlanSummary {
        let path = format!(
            "{}/tests/fixtures/plans/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        crate::plan::summarize(&v).unwrap()
    }

    #[test]
    fn a_plan_is_nested_details_with_figures_on_each_node() {
        let p = fixture("recent_stories_fk_only");
        let html = tree(&p);
        assert_eq!(
            html.matches("<details").count(),
            html.matches("</details>").count()
        );
        assert!(html.contains("<summary>"));
        assert!(html.contains(" est"), "rows estimated vs actual");
        assert!(html.contains("buffers hit"), "buffers on the node");
        assert!(!html.contains("<script"));
        for n in &p.nodes {
            assert!(html.contains(&escape(&n.label)), "{}", n.label);
        }
    }

    #[test]
    fn a_diff_marks_only_the_nodes_that_differ() {
        let p = fixture("recent_stories_fk_only");
        let same = diff(&p, &p, "a", "b");
        assert!(!same.contains("changed"));
        let mut q = p.clone();
        q.nodes[0].label = "Something Else".into();
        let d = diff(&p, &q, "a", "b");
        assert_eq!(d.matches("class=\"chg\"").count(), 2, "one node each side");
    }
}
