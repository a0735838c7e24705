//! Each operation alone and under load: how long the app waited behind it.

use super::Printer;
use crate::format::human_bytes;
use crate::measure::ops::{AuditFigures, KeyForm, OpsSection, PgcryptoFigures, Place};
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
    if let Some(c) = &s.pgcrypto {
        pgcrypto(p, c)?;
    }
    if let Some(a) = &s.audit {
        audit(p, a)?;
    }
    for w in &s.skipped {
        writeln!(p.human, "  {w}")?;
    }
    if let Some(w) = &s.wal_archive {
        writeln!(
            p.human,
            "  wal_archive: {} segment(s) archived; archive per hour {} at {:.2} writes/s ({})",
            w.archived_segments,
            w.archive_bytes_per_hour.map_or("–".into(), human_bytes),
            w.writes_per_second,
            w.rate_basis
        )?;
    }
    Ok(())
}

fn ratio(i: Option<&crate::stats::Interval>) -> String {
    i.map_or("–".into(), |i| {
        format!("{:.2}× (95 % CI {:.2}–{:.2})", i.estimate, i.low, i.high)
    })
}

fn pgcrypto(p: &mut Printer, c: &PgcryptoFigures) -> io::Result<()> {
    writeln!(
        p.human,
        "  pgcrypto: the document's encryption alone {:.2} s for {} rows, WAL {}",
        c.encrypt.seconds,
        c.encrypt.rows,
        human_bytes(c.encrypt.wal_bytes as f64)
    )?;
    for r in &c.reads {
        let arm = |f: KeyForm| r.arm(f);
        // A slow read gets only a few samples within the budget: say so, not a bare number.
        let few = KeyForm::ALL
            .iter()
            .filter_map(|f| arm(*f).and_then(|a| a.too_few()))
            .min();
        if let Some(n) = few {
            writeln!(
                p.human,
                "    {} ({} rows, decrypted = plaintext: {}): {}",
                r.name,
                r.rows,
                r.decrypted_equals_plaintext,
                crate::findings::ops_engine::too_few(n)
            )?;
            continue;
        }
        writeln!(
            p.human,
            "    {} ({} rows, decrypted = plaintext: {}): literal key {} the plaintext; bound key {} the literal; session key {} the literal",
            r.name,
            r.rows,
            r.decrypted_equals_plaintext,
            ratio(arm(KeyForm::Literal).and_then(|a| a.ratio.as_ref())),
            ratio(r.bound_vs_literal.as_ref()),
            ratio(r.setting_vs_literal.as_ref()),
        )?;
    }
    for form in [KeyForm::Literal, KeyForm::Bound, KeyForm::Setting] {
        let shown: Vec<String> = Place::ALL
            .iter()
            .map(|pl| {
                let v = c.exposure.get(form, *pl).and_then(|x| x.key_visible);
                let mark = match v {
                    Some(true) => "key shown",
                    Some(false) => "no key",
                    None => "not checked",
                };
                format!("{}: {mark}", pl.name())
            })
            .collect();
        writeln!(p.human, "    {}: {}", form.name(), shown.join("; "))?;
    }
    Ok(())
}

fn audit(p: &mut Printer, a: &AuditFigures) -> io::Result<()> {
    writeln!(
        p.human,
        "  audit_trigger() on {}: audit_log per day {} rows, {}",
        a.audited.join(", "),
        a.rows_per_day.map_or("–".into(), |r| format!("{r:.0}")),
        a.bytes_per_day.map_or("–".into(), human_bytes)
    )?;
    for x in &a.paths {
        writeln!(
            p.human,
            "    {} ({}): on/off {}; WAL/write {}; audit rows/write {:.2}, {}/write; {:.3} writes/s in the scenario",
            x.path,
            x.statement,
            ratio(x.ratio.as_ref()),
            x.wal().map_or("–".into(), |(off, on)| format!(
                "{} → {}",
                human_bytes(off),
                human_bytes(on)
            )),
            x.growth_on.rows_per_write(),
            human_bytes(x.growth_on.bytes_per_write()),
            x.writes_per_second
        )?;
    }
    Ok(())
}
