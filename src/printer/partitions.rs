//! The partitions verdicts (worded by findings) and the stage's errors.

use super::Printer;
use crate::measure::partitions::PartitionsSection;
use std::io;

pub fn verdicts(p: &mut Printer, s: &PartitionsSection) -> io::Result<()> {
    for v in crate::findings::partitions_verdicts::derive(s) {
        writeln!(p.human, "  · {v}")?;
    }
    for e in &s.errors {
        writeln!(
            p.human,
            "  error ({}{}): {}",
            e.part,
            e.query
                .as_deref()
                .map(|q| format!(", {q}"))
                .unwrap_or_default(),
            e.error
        )?;
    }
    Ok(())
}
