//! The RLS matrix per query and subject, set-up cost, audit, errors and advice.

use super::Printer;
use crate::measure::rls::RlsSection;
use std::io;

pub fn summary(p: &mut Printer, s: &RlsSection) -> io::Result<()> {
    for q in &s.queries {
        for sub in &q.subjects {
            let cells: Vec<String> = sub
                .modes
                .iter()
                .filter(|m| m.mode != crate::measure::rls::BYPASS)
                .map(|m| match (&m.overhead, &m.config_error, &m.error) {
                    (_, Some(_), _) => format!("{} CONFIG ERROR", m.mode),
                    (_, _, Some(_)) => format!("{} error", m.mode),
                    (Some(r), _, _) => format!("{} {:.2}×", m.mode, r.median),
                    _ => format!("{} –", m.mode),
                })
                .collect();
            writeln!(
                p.human,
                "  {:<26} {:<6} {}",
                q.name,
                sub.subject,
                cells.join(" · ")
            )?;
        }
    }
    if let Some(c) = &s.setup_cost {
        writeln!(
            p.human,
            "  claims set-up: +{:.3} ms per transaction at p50 ({:.2}× a bare one)",
            c.overhead_p50_ms, c.ratio_p50
        )?;
    }
    if let Some(a) = &s.audit {
        writeln!(
            p.human,
            "  isolation audit: {} attempts, {} leaks{}",
            a.attempts,
            a.leaks,
            if a.leaks > 0 { "  ← FAILURE" } else { "" }
        )?;
    }
    for e in s.config_errors.iter().chain(s.correctness_failures.iter()) {
        writeln!(p.human, "  error: {e}")?;
    }
    for a in crate::findings::rls_advice::derive(s) {
        writeln!(p.human, "  · {a}")?;
    }
    Ok(())
}
