//! The index advice finding: what the advisor recommends, proven by its measurement, and the
//! variant's schema advisories.

use super::topics::{fig, finding};
use super::{Finding, Tone, Topic};
use crate::advise::indexes::{Action, AdviceSection, Verdict};

pub(super) fn advice(s: &AdviceSection) -> Finding {
    let recommended: Vec<_> = s
        .created
        .iter()
        .chain(&s.dropped)
        .filter(|v| v.verdict == Verdict::Recommended)
        .collect();
    let verified = s.created.len() + s.dropped.len();
    let headline = match recommended.first() {
        None => format!(
            "No index change on `{}` is confirmed: {verified} built or dropped for real and measured, none saved time clearly.",
            s.indexes
        ),
        Some(best) => {
            let creates = recommended.iter().filter(|v| v.action == Action::Create).count();
            format!(
                "{} of {verified} index changes to `{}` are confirmed by measurement ({creates} new, {} drops); the best, {}, saves {:.2} ms per 1,000 {} transactions.",
                recommended.len(),
                s.indexes,
                recommended.len() - creates,
                best.statement,
                best.net_ms_per_1000,
                s.scenario
            )
        }
    };
    let tone = if recommended.is_empty() {
        Tone::Unclear
    } else {
        Tone::Clear
    };
    let mut f = finding(Topic::Indexes, tone, headline, "advice");
    if let Some(file) = &s.advice_file {
        f.figures
            .push(fig("statements with their evidence", file.clone()));
    }
    f.figures.push(fig(
        "schema advisories",
        format!("{} (Supabase linter rules)", s.advisories.len()),
    ));
    f
}

/// One advisory's measured cost in words: what its fix changed for one statement.
pub fn advisory_cost(c: &crate::advise::costs::AdvisoryCost) -> String {
    use crate::stats::Side;
    let who = c
        .subject
        .as_deref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    // A foreign key's statement is its parent's DELETE: name the key too.
    let what = if c.rule == crate::advise::lint::Rule::UnindexedForeignKeys {
        format!("{} ({})", c.statement, c.object)
    } else {
        c.statement.clone()
    };
    let mut line = format!("{what}{who}: ");
    match (c.ratio, c.side) {
        (Some(r), Some(side)) => {
            let verdict = match side {
                Side::Below => "faster with the fix",
                Side::Above => "slower with the fix",
                Side::Includes => "no measurable difference",
            };
            line.push_str(&format!(
                "{verdict}, ×{:.2} [{:.2}–{:.2}]",
                r.estimate, r.low, r.high
            ));
        }
        _ => line.push_str("not compared"),
    }
    if let (Some(a), Some(b)) = (&c.as_is, &c.fixed) {
        line.push_str(&format!(", p50 {:.3} → {:.3} ms", a.p50_ms, b.p50_ms));
    }
    if let (Some(a), Some(b)) = (&c.work_as_is, &c.work_fixed) {
        line.push_str(&format!(
            ", buffers {} → {}, executor {:.2} → {:.2} ms",
            a.shared_buffers(),
            b.shared_buffers(),
            a.execution_ms,
            b.execution_ms
        ));
    }
    if let Some(w) = &c.work_bypass {
        line.push_str(&format!(
            " (bypassing RLS: {} buffers, executor {:.2} ms)",
            w.shared_buffers(),
            w.execution_ms
        ));
    }
    if let Some(e) = &c.error {
        line.push_str(&format!(", error: {e}"));
    }
    line
}
