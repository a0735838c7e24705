//! A load run's figures: throughput, latency, lag, per-query stats, errors; the last line
//! (stdout) is machine-readable.

use super::Printer;
use crate::measure::load::LoadSection;
use std::io;

pub fn summary(p: &mut Printer, s: &LoadSection) -> io::Result<()> {
    let f = &s.figures;
    let l = &f.transaction_latency;
    writeln!(
        p.human,
        "{} {} model: {} ok, {} failed, {} dropped in {:.1} s → {:.0} tps; latency p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        s.mode, s.model, f.ok, f.failed, f.dropped, f.measured_seconds, f.tps, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
    )?;
    if let Some(lag) = &f.schedule_lag {
        writeln!(
            p.human,
            "schedule lag p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            lag.p50_ms, lag.p99_ms, lag.max_ms
        )?;
    }
    for q in &f.queries {
        writeln!(
            p.human,
            "  {:<28} {:>8} ok {:>5} err  p50 {:>8.3} ms  p95 {:>8.3} ms  p99 {:>8.3} ms",
            q.name, q.ok, q.errors, q.latency.p50_ms, q.latency.p95_ms, q.latency.p99_ms
        )?;
    }
    for e in &f.errors {
        writeln!(
            p.human,
            "  error {} {} ×{}: {}",
            e.query, e.sqlstate, e.count, e.message
        )?;
    }
    if let Some(w) = &f.pool_wait {
        writeln!(
            p.human,
            "pool wait p50 {:.3} ms, p99 {:.3} ms",
            w.p50_ms, w.p99_ms
        )?;
    }
    if let Some(g) = &s.goose {
        writeln!(
            p.human,
            "goose: {} users, {} requests ({} failed), mean {:.3} ms{}",
            g.users,
            g.requests,
            g.failures,
            g.mean_ms,
            g.report_file
                .as_ref()
                .map(|r| format!("; goose report {r}"))
                .unwrap_or_default()
        )?;
    }
    if let Some(pl) = &s.pooler {
        let mode = pl
            .mode
            .map(|m| format!(", {} pooling", m.as_str()))
            .unwrap_or_default();
        let size = pl
            .pool_size
            .map(|n| format!(", {n} server connections"))
            .unwrap_or_default();
        writeln!(
            p.human,
            "pooler: {}{mode}{size}; {}",
            pl.pooler,
            pl.protocol.describe()
        )?;
        if let Some(st) = &pl.stats {
            writeln!(
                p.human,
                "  waited for a server connection {:.3} ms per transaction ({} transactions, warm-up included)",
                st.wait_ms_per_transaction, st.transactions
            )?;
        }
        if let Some(a) = &pl.claims_audit {
            let verdict = if a.leaks == 0 {
                "no leak".to_string()
            } else {
                format!("{} LEAK(S)", a.leaks)
            };
            writeln!(
                p.human,
                "  claims isolation through the pooler: {verdict} in {} requests + {} bare transactions ({} clients, {} backends, {} shared)",
                a.requests, a.bare_transactions, a.clients, a.backends, a.shared_backends
            )?;
            for e in &a.examples {
                writeln!(p.human, "    {e}")?;
            }
        }
    }
    // Machine-readable last line for scripts: tps.
    writeln!(p.machine, "tps {:.1}", f.tps)?;
    Ok(())
}
