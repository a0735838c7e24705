//! `advice.sql`: the recommended statements, each with its measured evidence as comments,
//! ready to apply outside a transaction (CREATE/DROP INDEX CONCURRENTLY).

use super::types::{AdviceSection, Verdict, Verified};
use std::fmt::Write;
use std::path::Path;

pub fn write(path: &Path, s: &AdviceSection) -> anyhow::Result<()> {
    crate::paths::write_atomic(path, render(s).as_bytes())
}

/// An index strategy file (`explain --strategies tuned,DIR/advice_indexes.sql`): the starting
/// strategy's statements, then the recommended changes in a form that runs in a transaction.
pub fn write_strategy(path: &Path, s: &AdviceSection) -> anyhow::Result<()> {
    let base = std::fs::read_to_string(crate::schema::index_file(&s.indexes))?;
    let mut out = format!(
        "-- storybench advise indexes: strategy `{}` with the recommended changes (advice.sql has the evidence).\n{base}\n-- The recommended changes.\n",
        s.indexes
    );
    for v in s.created.iter().chain(&s.dropped) {
        if v.verdict == Verdict::Recommended {
            let _ = writeln!(out, "{};", v.statement.replacen(" CONCURRENTLY", "", 1));
        }
    }
    crate::paths::write_atomic(path, out.as_bytes())
}

pub fn render(s: &AdviceSection) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "-- storybench advise indexes: from indexes `{}`, policies `{}`; time weighted by the `{}` mix.",
        s.indexes, s.policies, s.scenario
    );
    let _ = writeln!(
        out,
        "-- Every statement was built (or dropped) for real on a copy of the dataset and measured\n-- against the copy without it. Run outside a transaction block."
    );
    let recommended: Vec<&Verified> = s
        .created
        .iter()
        .chain(&s.dropped)
        .filter(|v| v.verdict == Verdict::Recommended)
        .collect();
    if recommended.is_empty() {
        let _ = writeln!(
            out,
            "\n-- Nothing to change: no candidate was confirmed by its measurement."
        );
    }
    for v in recommended {
        let _ = writeln!(out);
        let _ = writeln!(out, "-- {}", v.reason);
        if let (Some(b), Some(secs)) = (v.bytes, v.build_seconds) {
            let _ = writeln!(
                out,
                "-- built in {secs:.2} s, {}",
                crate::format::human_bytes(b as f64)
            );
        }
        for e in &v.effects {
            let _ = writeln!(out, "--   {}", evidence(e));
        }
        let _ = writeln!(out, "{};", v.statement);
    }
    out
}

/// `recent_stories (heavy, 12.5/1000): 0.52 → 0.31 ms, ×0.60 [0.57–0.63], buffers 29 → 6`.
pub fn evidence(e: &super::types::Effect) -> String {
    let ms = |l: &Option<crate::latency::LatencySummary>| {
        l.as_ref()
            .map(|l| format!("{:.3}", l.p50_ms))
            .unwrap_or("–".into())
    };
    let mut line = format!(
        "{} ({}, {:.1} per 1,000): p50 {} → {} ms",
        e.query,
        e.subject,
        e.per_1000,
        ms(&e.without),
        ms(&e.with)
    );
    if let Some(r) = e.ratio {
        let _ = write!(line, ", ×{:.2} [{:.2}–{:.2}]", r.estimate, r.low, r.high);
    }
    if let (Some(a), Some(b)) = (&e.work_without, &e.work_with) {
        let _ = write!(
            line,
            ", buffers {} → {}",
            a.shared_buffers(),
            b.shared_buffers()
        );
        if let (Some(x), Some(y)) = (a.wal_bytes, b.wal_bytes) {
            let _ = write!(line, ", WAL {x:.0} → {y:.0} B");
        }
    }
    if let Some(err) = &e.error {
        let _ = write!(line, ", error: {err}");
    }
    line
}
