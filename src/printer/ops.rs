//! Each operation alone and under load: how long the app waited behind it.

use super::Printer;
use crate::measure::ops::OpsSection;
use std::io;

pub fn summary(p: &mut Printer, s: &OpsSection) -> io::Result<()> {
    writeln!(
        p.human,
        "  load: {} at {:.1}/s ({})",
        s.scenario, s.rate, s.rate_basis
    )?;
    for op in &s.operations {
        let worst = op.worst_affected();
        writeln!(
            p.human,
            "  {}: alone {:.2} s; under load {:.2} s; longest wait behind it {:.0} ms (reads) / {:.0} ms (writes){}",
            op.name,
            op.alone.seconds,
            op.under_load.seconds,
            op.longest_read_block_ms,
            op.longest_write_block_ms,
            worst.map_or(String::new(), |(q, x)| format!(
                "; worst affected query {} {x:.1}× its p99 before",
                q.query
            ))
        )?;
        if let Some(r) = op.backup.as_ref().and_then(|b| b.restore.as_ref()) {
            writeln!(
                p.human,
                "    restore: pg_restore -j {} in {:.2} s, fingerprint {}",
                r.jobs,
                r.restore_seconds,
                if r.same_fingerprint {
                    "the same"
                } else {
                    "DIFFERENT"
                }
            )?;
        }
        if let Some(c) = &op.cron {
            writeln!(
                p.human,
                "    {} runs ({}){}",
                c.runs.len(),
                c.pg_cron_version
                    .as_deref()
                    .map_or("fired by storybench".to_string(), |v| format!(
                        "pg_cron {v}"
                    )),
                c.interference.as_ref().map_or(String::new(), |i| format!(
                    "; app p{:.0} in their seconds {:.2}× the others (95 % CI {:.2}–{:.2})",
                    i.percentile, i.ratio.estimate, i.ratio.low, i.ratio.high
                ))
            )?;
        }
        if let Some(e) = &op.under_load.error {
            writeln!(p.human, "    failed under load: {e}")?;
        }
    }
    Ok(())
}
