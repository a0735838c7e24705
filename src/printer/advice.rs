//! `advise indexes`: what was screened, then every change built for real with its verdict and
//! the evidence of the queries it moved.

use super::Printer;
use crate::advise::indexes::{AdviceSection, Verdict, Verified};
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
            writeln!(
                p.human,
                "  HypoPG {v}: {} screened, {survived} survive, {unmodelled} it cannot model",
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
    writeln!(p.human, "  - {verdict:<11} {}: {}", v.statement, v.reason)?;
    for e in v
        .effects
        .iter()
        .filter(|e| e.per_1000 > 0.0 || e.uses_index)
    {
        writeln!(p.human, "      {}", crate::advise::indexes::evidence(e))?;
    }
    Ok(())
}
