//! Plan evidence (where the policy qual runs, InitPlans, rows filtered away) and the
//! findings built from it: the leakproof trap and the child-table policy forms.

use super::matrix::BYPASS;
use super::types::{ChildTableCost, Form, ModeRun, PlanEvidence, RlsQuery, TrapFinding, TrapMode};
use crate::plan::PlanSummary;

/// Qual keys whose lines say where a predicate is evaluated.
const QUAL_KEYS: [&str; 6] = [
    "Index Cond",
    "Recheck Cond",
    "Filter",
    "One-Time Filter",
    "Join Filter",
    "Hash Cond",
];

/// Operators that are not LEAKPROOF, so never index conditions under RLS.
const NON_LEAKPROOF: [&str; 5] = ["~~", "~>=~", "~<~", "->>", "@@"];

/// A qual that comes from a policy: the inlined auth.uid()/auth.role() (`current_setting`),
/// an InitPlan's output (`$0`, or `(InitPlan 1).col1` on PostgreSQL 17+), a sub-plan, or a helper.
fn is_policy_qual(q: &str) -> bool {
    q.contains("current_setting(")
        || q.contains("auth.uid()")
        || q.contains("auth.role()")
        || q.contains("InitPlan")
        || q.contains("SubPlan")
        || q.contains("storybench_private.")
        || has_exec_param(q)
}

fn has_exec_param(q: &str) -> bool {
    let b = q.as_bytes();
    (0..b.len().saturating_sub(1)).any(|i| b[i] == b'$' && b[i + 1].is_ascii_digit())
}

pub fn of_plan(p: &PlanSummary) -> PlanEvidence {
    let mut e = PlanEvidence {
        initplans: p.initplans,
        subplans: p.subplans,
        execution_ms: p.execution_ms,
        ..Default::default()
    };
    for n in &p.nodes {
        for d in &n.details {
            let Some((key, qual)) = d.split_once(": ") else {
                continue;
            };
            if !QUAL_KEYS.contains(&key) {
                continue;
            }
            if qual.contains("'service_role'") {
                e.service_policy_in_qual = true;
            }
            if is_policy_qual(qual) {
                if !e.policy_locations.iter().any(|l| l == key) {
                    e.policy_locations.push(key.to_string());
                }
                match key {
                    "Index Cond" => e.policy_in_index_cond = true,
                    "Filter" | "Join Filter" => e.policy_in_filter = true,
                    _ => {}
                }
            }
            if NON_LEAKPROOF.iter().any(|op| qual.contains(op)) {
                let line = format!("{key}: {qual}");
                if key == "Index Cond" {
                    e.nonleakproof_index_cond.push(line);
                } else if key == "Filter" {
                    e.nonleakproof_filter.push(line);
                }
            }
        }
    }
    for r in &p.relations {
        e.rows_removed_by_filter += r.rows_removed_by_filter * r.loops.max(1);
        e.scans.push(r.describe());
        if r.access == "Seq Scan" {
            e.seq_scan = true;
        }
    }
    e
}

fn p50(m: &ModeRun) -> Option<f64> {
    m.latency.as_ref().map(|l| l.p50_ms)
}

/// The leakproof trap per trap query and subject: is the non-leakproof qual an index
/// condition bypassing RLS, and what becomes of it under each RLS mode.
pub fn trap_findings(queries: &[RlsQuery], indexes: &str) -> Vec<TrapFinding> {
    let mut out = Vec::new();
    for q in queries
        .iter()
        .filter(|q| q.tags.iter().any(|t| t == "leakproof_trap"))
    {
        for s in &q.subjects {
            let Some(bypass) = s.modes.iter().find(|m| m.mode == BYPASS) else {
                continue;
            };
            let Some(be) = &bypass.evidence else { continue };
            let mut f = TrapFinding {
                query: q.name.clone(),
                subject: s.subject,
                indexes: indexes.to_string(),
                bypass_uses_index: !be.nonleakproof_index_cond.is_empty(),
                bypass_access: be.scans.clone(),
                bypass_p50_ms: p50(bypass),
                ..Default::default()
            };
            for m in s.modes.iter().filter(|m| m.mode != BYPASS) {
                let Some(me) = &m.evidence else { continue };
                f.under_rls.push(TrapMode {
                    mode: m.mode.clone(),
                    uses_index: !me.nonleakproof_index_cond.is_empty(),
                    access: me.scans.clone(),
                    filter: me.nonleakproof_filter.clone(),
                    rows_removed_by_filter: me.rows_removed_by_filter,
                    p50_ms: p50(m),
                    overhead: m.overhead.as_ref().map(|r| r.median),
                });
            }
            f.explanation = explain_trap(&f, be.nonleakproof_index_cond.first());
            out.push(f);
        }
    }
    out
}

fn explain_trap(f: &TrapFinding, bypass_cond: Option<&String>) -> String {
    let rls_index: Vec<&str> = f
        .under_rls
        .iter()
        .filter(|m| m.uses_index)
        .map(|m| m.mode.as_str())
        .collect();
    let worst = f
        .under_rls
        .iter()
        .filter_map(|m| m.overhead.map(|o| (o, m.mode.as_str())))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let cost = worst
        .map(|(o, m)| format!(" The slowest RLS mode here, {m}, runs at {o:.2}× the bypass p50."))
        .unwrap_or_default();
    match (f.bypass_uses_index, rls_index.is_empty()) {
        (true, true) => format!(
            "Bypassing RLS the planner uses the index for the non-leakproof qual ({}; {}). Under every RLS mode the same qual \
             is only a Filter, applied after the policy ({}): the operator is not LEAKPROOF, and PostgreSQL never evaluates a \
             non-leakproof qual on rows the policy has not admitted yet — an index condition would do exactly that — so the \
             index cannot serve it. Only the leakproof part (user_id) narrows the scan.{cost}",
            bypass_cond.map(String::as_str).unwrap_or(""),
            f.bypass_access.join(", "),
            f.under_rls
                .iter()
                .map(|m| format!("{}: {}", m.mode, m.access.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        (true, false) => format!(
            "The non-leakproof qual is an index condition bypassing RLS and also under {} — unexpected for a non-leakproof \
             operator; check the plans.{cost}",
            rls_index.join(", ")
        ),
        (false, _) => format!(
            "On index strategy {} the planner does not use an index for the non-leakproof qual even bypassing RLS ({}), so \
             the trap costs nothing measurable on this data: either no index serves the qual or it is not selective enough \
             for the planner to prefer it.{cost}",
            f.indexes,
            f.bypass_access.join(", ")
        ),
    }
}

/// EXISTS (initplan set) vs SECURITY DEFINER helper (definer set) on the child-table queries.
pub fn child_table_costs(queries: &[RlsQuery]) -> Vec<ChildTableCost> {
    let mut out = Vec::new();
    for q in queries
        .iter()
        .filter(|q| q.tags.iter().any(|t| t == "child_tables"))
    {
        for s in &q.subjects {
            for (form, suffix) in [(Form::Sql, ""), (Form::PolicyOnly, "_policy_only")] {
                let find = |set: &str| s.modes.iter().find(|m| m.mode == format!("{set}{suffix}"));
                let (Some(ex), Some(de)) = (find("initplan"), find("definer")) else {
                    continue;
                };
                let (Some(a), Some(b)) = (p50(ex), p50(de)) else {
                    continue;
                };
                out.push(ChildTableCost {
                    query: q.name.clone(),
                    subject: s.subject,
                    form,
                    exists_p50_ms: a,
                    definer_p50_ms: b,
                    exists_overhead: ex.overhead.as_ref().map(|r| r.median),
                    definer_overhead: de.overhead.as_ref().map(|r| r.median),
                    definer_vs_exists: if a > 0.0 { b / a } else { 0.0 },
                    exists_evidence: ex.evidence.clone(),
                    definer_evidence: de.evidence.clone(),
                });
            }
        }
    }
    out
}
