//! The ops finding: for each operation, how long the app waited behind it and what the
//! affected queries saw, against the same queries before it.

use super::topics::{fig, finding};
use super::{Finding, Tone, Topic};
use crate::measure::ops::{Operation, OpsSection};

/// A wait the app would notice: longer than this behind the operation is a stall.
const STALL_MS: f64 = 100.0;

pub(super) fn operation(s: &OpsSection, op: &Operation) -> Finding {
    let worst = op.worst_affected();
    let block = op.longest_read_block_ms.max(op.longest_write_block_ms);
    let failed: u64 = op.errors.iter().map(|e| e.count).sum();
    let tone = if op.under_load.error.is_some() || block > STALL_MS || failed > 0 {
        Tone::Bad
    } else {
        Tone::Clear
    };
    let headline = match &op.under_load.error {
        Some(e) => format!("{} failed under load at {:.0}/s: {e}", op.name, s.rate),
        None if block > STALL_MS => format!(
            "{} stalls the app: under {:.0}/s of {} it blocked readers of {} for up to {:.0} ms and writers for up to {:.0} ms ({:.2} s under load, {:.2} s alone).",
            op.name,
            s.rate,
            s.scenario,
            op.tables.join(", "),
            op.longest_read_block_ms,
            op.longest_write_block_ms,
            op.under_load.seconds,
            op.alone.seconds
        ),
        None if block > 0.0 => format!(
            "{} runs beside the app: no request waited behind it more than {:.0} ms under {:.0}/s of {} ({:.2} s under load, {:.2} s alone).",
            op.name, block, s.rate, s.scenario, op.under_load.seconds, op.alone.seconds
        ),
        None => format!(
            "{} runs beside the app: no request was seen waiting behind it (locks sampled every {:.0} ms) under {:.0}/s of {} ({:.2} s under load, {:.2} s alone).",
            op.name,
            op.lock_waits.period_ms,
            s.rate,
            s.scenario,
            op.under_load.seconds,
            op.alone.seconds
        ),
    };
    let headline = match op.errors.iter().max_by_key(|e| e.count) {
        Some(e) => format!(
            "{headline} The app's requests failed {failed} times meanwhile; most: {} {} × {} ({}).",
            e.query,
            e.count,
            e.sqlstate,
            e.message.chars().take(80).collect::<String>()
        ),
        None => headline,
    };
    let mut f = finding(
        Topic::Operations,
        tone,
        headline,
        &format!("ops-{}", op.name),
    );
    f.figures.push(fig(
        "longest wait behind it",
        format!(
            "reads {:.0} ms · writes {:.0} ms",
            op.longest_read_block_ms, op.longest_write_block_ms
        ),
    ));
    if let Some((q, x)) = worst {
        f.figures.push(fig(
            "worst affected query",
            format!("{} {x:.1}× its tail latency before the operation", q.query),
        ));
    }
    f.figures.push(fig(
        "WAL alone",
        crate::format::human_bytes(op.alone.wal_bytes as f64),
    ));
    f
}
