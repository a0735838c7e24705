//! `advise indexes`: what was screened, then every change built for real with its verdict and
//! the evidence of the queries it moved.

use super::Printer;
use crate::advise::indexes::{AdviceSection, LintSection, Verdict, Verified};
use crate::advise::lint::Advisory;
use std::io;

pub fn summary(p: &mut Printer, s: &AdviceSection) -> io::Result<()> {
    writeln!(
        p.human,
        "Index advice from `{}` under `{}` policies ({} plans read, {} candidates, {} already led by an index):",
        s.indexes,
        s.policies,
        s.plans_read,
        s.suggested,
        s.skipped.len()
    )?;
    match (&s.hypopg, &s.hypopg_note) {
        (Some(v), _) => {
            let survived = s.screened.iter().filter(|c| c.survives).count();
            let unmodelled = s.screened.iter().filter(|c| !c.modelled).count();
            let failed = s.screened.iter().filter(|c| c.failed).count();
            writeln!(
                p.human,
                "  HypoPG {v}: {} screened, {survived} survive, {unmodelled} it cannot model, {failed} it failed on (built for real unscreened)",
                s.screened.len()
            )?;
        }
        (None, Some(note)) => writeln!(p.human, "  {note}")?,
        (None, None) => {}
    }
    writeln!(p.human, "  {}", s.qualstats_note)?;
    for (title, list) in [("new indexes", &s.created), ("drops", &s.dropped)] {
        if list.is_empty() {
            continue;
        }
        writeln!(p.human, "  {title}, built for real and measured:")?;
        for v in list {
            change(p, v)?;
        }
    }
    advisories(p, &s.advisories)?;
    if let Some(f) = &s.advice_file {
        writeln!(p.human, "  statements with their evidence: {f}")?;
    }
    let recommended = s
        .created
        .iter()
        .chain(&s.dropped)
        .filter(|v| v.verdict == Verdict::Recommended)
        .count();
    writeln!(p.machine, "advice_recommended {recommended}")?;
    writeln!(
        p.machine,
        "advice_verified {}",
        s.created.len() + s.dropped.len()
    )?;
    Ok(())
}

fn change(p: &mut Printer, v: &Verified) -> io::Result<()> {
    let verdict = match v.verdict {
        Verdict::Recommended => "RECOMMENDED",
        Verdict::Rejected => "rejected",
    };
    let rls = if v.from_rls {
        " [key from the RLS policies: a superuser advisor misses it]"
    } else {
        ""
    };
    let only_qualstats = v.sources == [crate::advise::indexes::candidates::Source::Qualstats];
    let source = if only_qualstats {
        " [from pg_qualstats' executed predicates only]"
    } else {
        ""
    };
    writeln!(
        p.human,
        "  - {verdict:<11} {}{rls}{source}: {}",
        v.statement, v.reason
    )?;
    for e in v
        .effects
        .iter()
        .filter(|e| e.per_1000 > 0.0 || e.uses_index)
    {
        writeln!(p.human, "      {}", crate::advise::indexes::evidence(e))?;
    }
    Ok(())
}

/// `advise schema`: the variant's advisories.
pub fn lint(p: &mut Printer, s: &LintSection) -> io::Result<()> {
    writeln!(
        p.human,
        "Schema advisories for indexes `{}`, policies `{}`:",
        s.indexes, s.policies
    )?;
    advisories(p, &s.advisories)?;
    let mut rules: Vec<_> = s.costs.iter().map(|c| c.rule).collect();
    rules.dedup();
    for rule in rules {
        let of: Vec<_> = s.costs.iter().filter(|c| c.rule == rule).collect();
        writeln!(
            p.human,
            "  measured, {} fixed on a second copy:",
            rule.name()
        )?;
        if let Some(fix) = of.first().and_then(|c| c.fix.first()) {
            writeln!(p.human, "    fix (first of {}): {fix}", of[0].fix.len())?;
        }
        for c in of {
            writeln!(
                p.human,
                "    - {}",
                crate::findings::advice::advisory_cost(c)
            )?;
            for plan in &c.plans {
                writeln!(p.human, "      {plan}")?;
            }
        }
    }
    writeln!(p.machine, "schema_advisories {}", s.advisories.len())?;
    writeln!(p.machine, "schema_advisory_costs {}", s.costs.len())
}

/// Advisories grouped by rule, each rule with its fix.
pub fn advisories(p: &mut Printer, list: &[Advisory]) -> io::Result<()> {
    if list.is_empty() {
        return writeln!(p.human, "  schema advisories: none");
    }
    let mut rules: Vec<_> = list.iter().map(|a| a.rule).collect();
    rules.dedup();
    for rule in rules {
        let of: Vec<&Advisory> = list.iter().filter(|a| a.rule == rule).collect();
        writeln!(p.human, "  {} ({}): {}", rule.name(), of.len(), rule.fix())?;
        for a in of.iter().take(6) {
            writeln!(p.human, "    - {}: {}", a.object, a.detail)?;
        }
        if of.len() > 6 {
            writeln!(p.human, "    … and {} more (results.json)", of.len() - 6)?;
        }
    }
    Ok(())
}
