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
