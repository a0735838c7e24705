//! The index strategies' verdicts, query by query, and the overall speed-ups.

use super::Printer;
use crate::measure::explain::ExplainSection;
use crate::schema::strategy_label;
use std::io;

pub fn verdicts(p: &mut Printer, s: &ExplainSection) -> io::Result<()> {
    for q in &s.queries {
        if let Some(v) = &q.verdict {
            writeln!(
                p.human,
                "  {:<28} fastest {:<8} {:>6.2}× vs {}{}",
                q.name,
                strategy_label(&v.fastest),
                v.speedup_vs_baseline,
                strategy_label(&v.baseline),
                if q.consistent {
                    ""
                } else {
                    "  (RESULTS DIFFER)"
                }
            )?;
        }
    }
    for o in &s.overall {
        writeln!(
            p.human,
            "  overall {:<8} geomean {:.2}× · fastest on {} queries · indexes {}",
            strategy_label(&o.strategy),
            o.geomean_speedup,
            o.queries_fastest,
            crate::format::human_bytes(o.index_bytes as f64)
        )?;
    }
    for e in &s.errors {
        writeln!(
            p.human,
            "  error: {} on {} ({}): {}",
            e.query,
            strategy_label(&e.strategy),
            e.subject,
            e.error
        )?;
    }
    Ok(())
}
