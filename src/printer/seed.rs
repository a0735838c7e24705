//! The seed report: rows and sizes per table, phases, fingerprint.

use super::Printer;
use crate::seed;
use std::io;

pub fn report(p: &mut Printer, info: &seed::DatasetInfo, r: &seed::SeedReport) -> io::Result<()> {
    for t in &r.tables {
        writeln!(
            p.human,
            "  {:<28} {:>10} rows  {:>9} heap {:>9} toast {:>9} idx  {:>9.0} rows/s",
            t.table,
            crate::format::thousands(t.rows as i64),
            crate::format::human_bytes(t.heap_bytes as f64),
            crate::format::human_bytes(t.toast_bytes as f64),
            crate::format::human_bytes(t.index_bytes as f64),
            t.rows_per_second
        )?;
    }
    writeln!(
        p.human,
        "seeded {} rows, {} in {:.1} s (load {:.1} s, keys {:.1} s, FKs and indexes {:.1} s, analyze {:.1} s; {} COPY connections; TOAST {})",
        crate::format::thousands(r.total_rows as i64),
        crate::format::human_bytes(r.total_bytes as f64),
        r.seconds,
        r.load_seconds,
        r.keys_seconds,
        r.fks_indexes_seconds,
        r.analyze_seconds,
        r.jobs,
        r.toast_compression
    )?;
    writeln!(
        p.human,
        "fingerprint {} (streamed)",
        info.fingerprint.as_deref().unwrap_or("-")
    )?;
    if let (Some(db), Some(secs)) = (&info.db_fingerprint, r.verify_seconds) {
        writeln!(
            p.human,
            "verified: the database holds the rows streamed; database-side fingerprint {db} ({secs:.1} s)"
        )?;
    }
    Ok(())
}
