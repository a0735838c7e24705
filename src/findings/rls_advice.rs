//! The RLS section's advice in words, each sentence built from figures of the section (no
//! canned verdicts: a sentence is only emitted when the measurements say so).

use crate::measure::rls::{Form, ModeRun, RlsQuery, RlsSection, BYPASS};
use crate::params::Subject;

/// Geometric mean of (query, ratio) pairs and the worst one.
fn geomean_and_worst(v: &[(String, f64)]) -> Option<(f64, String, f64)> {
    let g = crate::stats::geomean(v.iter().map(|x| x.1))?;
    let worst = v
        .iter()
        .filter(|x| x.1 > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    Some((g, worst.0.clone(), worst.1))
}

fn mode<'a>(modes: &'a [ModeRun], name: &str) -> Option<&'a ModeRun> {
    modes.iter().find(|m| m.mode == name)
}

/// (query, overhead median) of a mode over the read queries, for one subject.
fn overheads(queries: &[RlsQuery], subject: Subject, name: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for q in queries
        .iter()
        .filter(|q| q.kind == crate::catalog::Kind::Read)
    {
        for s in q.subjects.iter().filter(|s| s.subject == subject) {
            if let Some(r) = mode(&s.modes, name).and_then(|m| m.overhead.as_ref()) {
                out.push((q.name.clone(), r.median));
            }
        }
    }
    out
}

fn pct(r: f64) -> String {
    let p = (r - 1.0) * 100.0;
    if p >= 0.0 {
        format!("+{p:.0} %")
    } else {
        format!("{p:.0} %")
    }
}

pub fn derive(s: &RlsSection) -> Vec<String> {
    let subject = main_subject(s);
    let mut out = Vec::new();
    out.extend(doc_vs_initplan(s, subject));
    out.extend(absolute_initplan(s, subject));
    for set in ["doc", "initplan"] {
        out.extend(explicit_filter(s, subject, set));
    }
    out.extend(rls_seq_scans(s, subject));
    out.extend(child_tables(s));
    out.extend(leakproof_traps(s, subject));
    out.extend(setup_cost(s));
    out.extend(audit(s));
    out
}

/// The subject the advice speaks of: the heavy user if measured, else the first one.
fn main_subject(s: &RlsSection) -> Subject {
    if s.queries
        .iter()
        .any(|q| q.subjects.iter().any(|x| x.subject == Subject::Heavy))
    {
        Subject::Heavy
    } else {
        s.queries
            .first()
            .and_then(|q| q.subjects.first())
            .map_or(Subject::Heavy, |x| x.subject)
    }
}

/// The doc policies against the initplan ones, geometric mean of the reads.
fn doc_vs_initplan(s: &RlsSection, subject: Subject) -> Option<String> {
    let doc = geomean_and_worst(&overheads(&s.queries, subject, "doc"));
    let init = geomean_and_worst(&overheads(&s.queries, subject, "initplan"));
    let ((d, dq, dw), (i, iq, iw)) = (doc?, init?);
    let n = overheads(&s.queries, subject, "initplan").len();
    if d > i * 1.10 {
        Some(format!(
            "Wrap auth.uid() in (select auth.uid()) and scope policies TO authenticated: on the {subject} user, app reads \
             with the initplan policies cost {} over bypass (geometric mean of {n} queries; worst {iq} {iw:.2}×) while the \
             doc policies cost {d:.2}× bypass (worst {dq} {dw:.2}×).",
            pct(i)
        ))
    } else if i > d * 1.10 {
        Some(format!(
            "Unexpected: on the {subject} user the initplan policies ({i:.2}× bypass, geometric mean of {n} reads) are slower \
             than the doc policies ({d:.2}×); see the plans below."
        ))
    } else {
        Some(format!(
            "On the {subject} user, doc ({d:.2}× bypass) and initplan ({i:.2}×) policies cost the same within 10 % \
             (geometric mean of {n} reads with the explicit user filter): on this data the per-row auth.uid() is not \
             where the time goes."
        ))
    }
}

/// With a policy set, the explicit user_id filter against the policy alone.
fn explicit_filter(s: &RlsSection, subject: Subject, set: &str) -> Option<String> {
    let with = overheads(&s.queries, subject, set);
    let without = overheads(&s.queries, subject, &format!("{set}_policy_only"));
    let pairs: Vec<(String, f64)> = without
        .iter()
        .filter_map(|(q, po)| {
            with.iter()
                .find(|(w, _)| w == q)
                .map(|(_, f)| (q.clone(), po / f))
        })
        .collect();
    let (g, wq, w) = geomean_and_worst(&pairs)?;
    if g > 1.10 {
        Some(format!(
            "Keep the explicit user_id filter in app queries: with the {set} policies, relying on the policy alone is \
             {g:.2}× slower than with the filter (geometric mean, {subject} user; worst {wq} {w:.2}×)."
        ))
    } else if g < 0.90 {
        Some(format!(
            "With the {set} policies, the policy-only form is {:.2}× faster than the form with the explicit user_id \
             filter (geometric mean, {subject} user; compare their plans below).",
            1.0 / g
        ))
    } else {
        Some(format!(
            "With the {set} policies, dropping the explicit user_id filter changes little ({}, geometric mean, \
             {subject} user): the policy alone is as selective as the filter.",
            pct(g)
        ))
    }
}

/// Sequential scans that only RLS introduces.
fn rls_seq_scans(s: &RlsSection, subject: Subject) -> Option<String> {
    let mut seq: Vec<String> = Vec::new();
    let mut ored = false;
    for q in &s.queries {
        for x in q.subjects.iter().filter(|x| x.subject == subject) {
            let bypass_seq = mode(&x.modes, BYPASS)
                .and_then(|m| m.evidence.as_ref())
                .is_some_and(|e| e.seq_scan);
            for m in x.modes.iter().filter(|m| m.mode != BYPASS) {
                if let Some(e) = &m.evidence {
                    if e.seq_scan && !bypass_seq {
                        seq.push(format!("{} ({})", q.name, m.mode));
                        ored |= e.service_policy_in_qual;
                    }
                }
            }
        }
    }
    if seq.is_empty() {
        return None;
    }
    Some(format!(
        "RLS turns index scans into sequential scans on the {subject} user in {} case(s): {}.{}",
        seq.len(),
        seq.join(", "),
        if ored {
            " Their filters OR the service-role check into the user's predicate (a policy without TO applies to every \
             role): scope service policies TO service_role."
        } else {
            ""
        }
    ))
}

/// The SECURITY DEFINER helper against the EXISTS policy on the child tables.
fn child_tables(s: &RlsSection) -> Vec<String> {
    s.child_tables
        .iter()
        .filter(|c| c.form == Form::Sql)
        .map(|c| {
            let r = c.definer_vs_exists;
            let verdict = if r > 1.05 {
                format!("the SECURITY DEFINER helper is {r:.2}× slower than the EXISTS policy")
            } else if r < 0.95 {
                format!(
                    "the SECURITY DEFINER helper is {:.2}× faster than the EXISTS policy",
                    1.0 / r
                )
            } else {
                "the SECURITY DEFINER helper and the EXISTS policy cost the same within 5 %"
                    .to_string()
            };
            format!(
                "Child tables, {} ({} user): {verdict} (p50 {:.3} ms vs {:.3} ms).",
                c.query, c.subject, c.definer_p50_ms, c.exists_p50_ms
            )
        })
        .collect()
}

/// Filters whose index serves only without RLS (not leakproof).
fn leakproof_traps(s: &RlsSection, subject: Subject) -> Vec<String> {
    let mut out = Vec::new();
    for t in s.trap.iter().filter(|t| t.subject == subject) {
        if t.bypass_uses_index && t.under_rls.iter().all(|m| !m.uses_index) {
            let costs: Vec<String> = t
                .under_rls
                .iter()
                .filter_map(|m| m.overhead.map(|o| format!("{} {o:.2}×", m.mode)))
                .collect();
            out.push(format!(
                "Leakproof trap, {}: the index serves the filter only without RLS; under RLS it is a Filter ({} bypass). \
                 Express such filters with leakproof operators (e.g. equality on a stored generated column) or accept the \
                 filter cost.",
                t.query,
                costs.join(", ")
            ));
        }
    }
    out
}

/// PostgREST's per-request set-up against the fastest app query.
fn setup_cost(s: &RlsSection) -> Option<String> {
    let c = s.setup_cost.as_ref()?;
    let fastest = s
        .queries
        .iter()
        .flat_map(|q| q.subjects.iter().map(move |x| (q, x)))
        .filter_map(|(q, x)| {
            mode(&x.modes, BYPASS)
                .and_then(|m| m.latency.as_ref())
                .map(|l| (q.name.clone(), l.p50_ms))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1));
    Some(format!(
        "PostgREST's per-request set-up (set_config of role and claims, one more round trip) adds {:.3} ms per \
         transaction at p50 ({} over a bare BEGIN/{}/COMMIT){}.",
        c.overhead_p50_ms,
        pct(c.ratio_p50),
        c.statement,
        fastest
            .filter(|f| f.1 > 0.0)
            .map(|(q, p)| format!(
                "; that is {:.0} % of the fastest app query's own time ({q}, {p:.3} ms bypass p50)",
                100.0 * c.overhead_p50_ms / p
            ))
            .unwrap_or_default()
    ))
}

/// The isolation audit, when it found no leak.
fn audit(s: &RlsSection) -> Option<String> {
    let a = s.audit.as_ref()?;
    (a.leaks == 0).then(|| {
        format!(
            "Isolation audit: no leak in {} attempts ({} users and anon, {} policy set(s)).",
            a.attempts,
            a.users.len(),
            a.sets.len()
        )
    })
}

/// The initplan overhead in milliseconds: a fixed per-statement cost shows as a large ratio
/// on sub-millisecond queries and vanishes on longer ones.
fn absolute_initplan(s: &RlsSection, subject: Subject) -> Option<String> {
    let mut added = Vec::new();
    let mut long = Vec::new();
    for q in s
        .queries
        .iter()
        .filter(|q| q.kind == crate::catalog::Kind::Read)
    {
        for x in q.subjects.iter().filter(|x| x.subject == subject) {
            let p = |name: &str| {
                mode(&x.modes, name)
                    .filter(|m| m.config_error.is_none())
                    .and_then(|m| m.latency.as_ref())
                    .map(|l| l.p50_ms)
            };
            if let (Some(b), Some(i)) = (p(BYPASS), p("initplan")) {
                added.push(i - b);
                if b >= LONG_QUERY_MS {
                    long.push((q.name.clone(), i / b));
                }
            }
        }
    }
    if added.len() < 2 {
        return None;
    }
    added.sort_by(|a, b| a.total_cmp(b));
    let median = added[added.len() / 2];
    let mut line = format!(
        "In absolute terms the initplan policies add a median {median:.3} ms per read on the {subject} user (range \
         {:.3} to {:.3} ms): a per-statement cost (each policy's InitPlan evaluates auth.uid() once), so the ratio is \
         large on sub-millisecond queries.",
        added[0],
        added[added.len() - 1]
    );
    if let Some((g, _, _)) = geomean_and_worst(&long) {
        line.push_str(&format!(
            " On the reads taking at least {LONG_QUERY_MS} ms bypass ({}), initplan costs {} over bypass (geometric mean).",
            long.iter().map(|l| l.0.as_str()).collect::<Vec<_>>().join(", "),
            pct(g)
        ));
    }
    Some(line)
}

/// Bypass p50 from which a query counts as long enough for a fixed cost to fade.
const LONG_QUERY_MS: f64 = 0.5;
