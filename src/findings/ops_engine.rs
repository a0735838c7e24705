//! Words for `ops --operations pgcrypto,audit`: the decrypt's read cost, where the
//! document's key shows, and what the audit trigger costs each write and the disk per day.

use super::topics::{fig, finding};
use super::{Finding, Interval, Tone, Topic};
use crate::format::human_bytes;
use crate::measure::ops::{AuditFigures, Exposure, KeyForm, PgcryptoFigures, Place};
use crate::stats::Side;

fn ratio_words(r: &crate::stats::Interval, what: &str) -> String {
    if r.includes(1.0) {
        format!(
            "no measurable difference from {what} ({:.2}×, 95 % CI {:.2}–{:.2})",
            r.estimate, r.low, r.high
        )
    } else {
        format!(
            "{:.2}× {what} (95 % CI {:.2}–{:.2})",
            r.estimate, r.low, r.high
        )
    }
}

/// What a comparison with fewer samples than a median's interval needs shows instead.
pub(crate) fn too_few(samples: u64) -> String {
    format!("{samples} samples: too few for an interval")
}

/// An arm's p50 in ms, or why it has none.
fn p50(a: &crate::measure::ops::DecryptArm) -> String {
    match (a.too_few(), &a.latency) {
        (None, Some(l)) => format!("p50 {:.2} ms", l.p50_ms),
        (Some(n), _) => too_few(n),
        (None, None) => "not measured".into(),
    }
}

pub(super) fn pgcrypto(p: &PgcryptoFigures) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in &p.reads {
        let (Some(plain), Some(lit)) = (r.arm(KeyForm::Plain), r.arm(KeyForm::Literal)) else {
            continue;
        };
        let cost = match (&lit.ratio, lit.too_few().or(plain.too_few())) {
            (Some(i), _) => ratio_words(i, "the plaintext read's latency"),
            (None, Some(n)) => format!(
                "an unknown share of the plaintext read's latency ({})",
                too_few(n)
            ),
            (None, None) => "not measured".into(),
        };
        let tone = if !r.decrypted_equals_plaintext || r.error.is_some() {
            Tone::Bad
        } else if lit.side == Some(Side::Includes) || lit.ratio.is_none() {
            Tone::Unclear
        } else {
            Tone::Clear
        };
        let same = if r.decrypted_equals_plaintext {
            "returns the plaintext's rows exactly"
        } else {
            "does NOT return the plaintext's rows"
        };
        let mut f = finding(
            Topic::Operations,
            tone,
            format!(
                "Decrypting {} ({} rows) with the document's pgp_sym_decrypt costs {cost}; decrypting {} vs plaintext {}; it {same}.",
                r.name,
                r.rows,
                p50(lit),
                p50(plain),
            ),
            "ops-pgcrypto",
        );
        f.interval = lit.ratio.as_ref().map(Interval::ci95);
        let buffers = |a: &crate::measure::ops::DecryptArm| {
            a.work
                .as_ref()
                .map_or("–".into(), |w| w.shared_buffers().to_string())
        };
        f.figures.push(fig(
            "shared buffers per read",
            format!("plaintext {} · encrypted {}", buffers(plain), buffers(lit)),
        ));
        for (label, i) in [
            ("key as a bound parameter vs literal", &r.bound_vs_literal),
            (
                "key from a session setting vs literal",
                &r.setting_vs_literal,
            ),
        ] {
            match (i, lit.too_few()) {
                (Some(i), _) => f
                    .figures
                    .push(fig(label, ratio_words(i, "the literal's latency"))),
                (None, Some(n)) => f.figures.push(fig(label, too_few(n))),
                (None, None) => {}
            }
        }
        if let Some(e) = &r.error {
            f.figures.push(fig("error", e.chars().take(200).collect()));
        }
        out.push(f);
    }
    let e = &p.encrypt;
    if let Some(first) = out.first_mut() {
        first.figures.push(fig(
            "the document's encryption alone",
            format!(
                "{} rows in {:.2} s, WAL {}; heroes {} → {}",
                e.rows,
                e.seconds,
                human_bytes(e.wal_bytes as f64),
                human_bytes(e.heroes_bytes_plain as f64),
                human_bytes(e.heroes_bytes_encrypted as f64)
            ),
        ));
    }
    out.push(exposure(p));
    out
}

/// The places a form's key was (or was not) seen in.
fn places(x: &Exposure, form: KeyForm, visible: bool) -> Vec<&'static str> {
    Place::ALL
        .iter()
        .filter(|p| x.get(form, **p).and_then(|c| c.key_visible) == Some(visible))
        .map(|p| p.name())
        .collect()
}

fn list(v: &[&str]) -> String {
    if v.is_empty() {
        "nowhere checked".into()
    } else {
        v.join(", ")
    }
}

fn exposure(p: &PgcryptoFigures) -> Finding {
    let x = &p.exposure;
    let lit_seen = places(x, KeyForm::Literal, true);
    let pgss = match x
        .get(KeyForm::Literal, Place::PgStatStatements)
        .and_then(|c| c.key_visible)
    {
        Some(false) => format!(
            "pg_stat_statements (PostgreSQL {}) stores it normalised, the key replaced by $n",
            x.server_major
        ),
        Some(true) => format!(
            "pg_stat_statements (PostgreSQL {}) stores the key",
            x.server_major
        ),
        None => "pg_stat_statements was not checked".into(),
    };
    let headline = format!(
        "The document keeps the pgcrypto key in the SQL text: the key shows in {}; {pgss}. As a bound parameter it shows in {} and stays out of {}; from a session setting the decrypt shows it in {} (its set_config statement's parameters in the log, once per session).",
        list(&lit_seen),
        list(&places(x, KeyForm::Bound, true)),
        list(&places(x, KeyForm::Bound, false)),
        list(&places(x, KeyForm::Setting, true)),
    );
    let tone = if lit_seen.is_empty() {
        Tone::Unclear
    } else {
        Tone::Bad
    };
    let mut f = finding(Topic::Operations, tone, headline, "ops-pgcrypto");
    let unchecked: Vec<String> = x
        .checks
        .iter()
        .filter_map(|c| {
            c.not_checked
                .as_ref()
                .map(|w| format!("{} in {}: {w}", c.form.name(), c.place.name()))
        })
        .collect();
    if let Some(w) = unchecked.first() {
        f.figures.push(fig(
            "not checked",
            format!("{} place(s), e.g. {w}", unchecked.len()),
        ));
    }
    if let Some(r) = p.reads.iter().find(|r| r.bound_vs_literal.is_some()) {
        if let Some(i) = &r.bound_vs_literal {
            f.figures.push(fig(
                "cost of the bound key",
                format!(
                    "{}: {}",
                    r.name,
                    ratio_words(i, "the literal key's latency")
                ),
            ));
        }
    }
    f
}

pub(super) fn audit(a: &AuditFigures) -> Finding {
    let growth = match (a.rows_per_day, a.bytes_per_day, a.rate) {
        (Some(rows), Some(bytes), Some(rate)) => format!(
            "audit_log grows {rows:.0} rows ({}) a day at {rate:.0}/s of {}",
            human_bytes(bytes),
            a.scenario
        ),
        _ => "audit_log's growth per day needs the scenario's rate (--rate or --capacity-from)"
            .into(),
    };
    let absent: Vec<&str> = a
        .paths
        .iter()
        .filter(|p| p.writes_per_second == 0.0)
        .map(|p| p.path.as_str())
        .collect();
    let absent = if absent.is_empty() || a.rate.is_none() {
        String::new()
    } else {
        format!(" ({} not in the scenario: counted as 0)", absent.join(", "))
    };
    let worst = a
        .paths
        .iter()
        .filter_map(|p| p.ratio.as_ref().map(|r| (p, r)))
        .max_by(|x, y| x.1.estimate.total_cmp(&y.1.estimate));
    let cost = match worst {
        Some((p, r)) => format!(
            "; the costliest write path is {}: {}",
            p.path,
            ratio_words(r, "its latency without the trigger")
        ),
        None => String::new(),
    };
    let bad = a
        .paths
        .iter()
        .any(|p| p.error.is_some() || p.growth_on.audit_rows != p.growth_on.rows_written);
    let tone = if bad {
        Tone::Bad
    } else if worst.is_some_and(|(_, r)| r.includes(1.0)) {
        Tone::Unclear
    } else {
        Tone::Clear
    };
    let mut f = finding(
        Topic::Operations,
        tone,
        format!(
            "With the document's audit_trigger() on {}, {growth}{absent}{cost}.",
            a.audited.join(", ")
        ),
        "ops-audit",
    );
    f.interval = worst.map(|(_, r)| Interval::ci95(r));
    for p in &a.paths {
        let wal = p.wal().map_or("WAL –".into(), |(off, on)| {
            format!("WAL {} → {} per write", human_bytes(off), human_bytes(on))
        });
        let ratio = p
            .ratio
            .as_ref()
            .map_or("latency not measured".into(), |r| ratio_words(r, "off"));
        f.figures.push(fig(
            &p.path,
            format!(
                "{ratio}; {wal}; {:.2} audit rows ({}) per write for {:.2} rows written",
                p.growth_on.rows_per_write(),
                human_bytes(p.growth_on.bytes_per_write()),
                p.growth_on.rows_written as f64 / p.growth_on.writes.max(1) as f64
            ),
        ));
    }
    f
}
