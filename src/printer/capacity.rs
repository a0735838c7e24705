//! The capacity search's answer: the rate, its interval, how it was decided, what saturated;
//! the last line (stdout) is machine-readable.

use super::Printer;
use crate::measure::load::capacity::CapacitySection;
use std::io;

pub fn summary(p: &mut Printer, c: &CapacitySection) -> io::Result<()> {
    let slo = c.slo.as_ref().map_or("", |s| s.text.as_str());
    let interval = match (c.sustainable_low, c.sustainable_high) {
        (Some(l), Some(h)) => format!(" (capacity between {l:.1} and {h:.1}/s)"),
        (Some(l), None) => format!(" (capacity ≥ {l:.1}/s: nothing broke up to --max-rate)"),
        _ => String::new(),
    };
    match c.sustainable_rate {
        Some(r) => writeln!(
            p.human,
            "{}: sustains {r:.1} transactions/s{interval} within {slo} and {:.2} % errors{}",
            c.scenario,
            c.error_budget * 100.0,
            if c.confirmed {
                ""
            } else {
                " — not confirmed (step budget)"
            }
        )?,
        None => writeln!(
            p.human,
            "{}: not even the lowest rate tried met {slo}",
            c.scenario
        )?,
    }
    if !c.interval_basis.is_empty() {
        writeln!(p.human, "  how: {}", c.interval_basis)?;
    }
    for n in &c.notes {
        writeln!(p.human, "  note: {n}")?;
    }
    if let Some(x) = c.crossing_rate {
        writeln!(
            p.human,
            "the {slo} limit is crossed at about {x:.1}/s (interpolated on the monotone fit of every rate tried; errs low)"
        )?;
    }
    if let Some(m) =
        crate::stats::sample_quantile_ci(&c.speed_probe_ms, 0.5, crate::stats::CONFIDENCE)
    {
        writeln!(
            p.human,
            "machine-speed probe: {:.1} ms median [95 % CI {:.1}–{:.1}] over {} runs before and after (compare divides its change out)",
            m.estimate,
            m.low,
            m.high,
            c.speed_probe_ms.len()
        )?;
    }
    if let Some(k) = c.knee_rate {
        writeln!(p.human, "knee at about {k:.1}/s")?;
    }
    if let (Some(u), Some(r)) = (c.equivalent_users, c.response_s) {
        writeln!(
            p.human,
            "≈ {u:.0} concurrently active app users (Little: rate × ({:.3} s response + {:.1} s think))",
            r, c.mean_think_s
        )?;
    }
    if !c.saturated.is_empty() {
        writeln!(
            p.human,
            "saturated at {:.1}/s: {}",
            c.signals_at_rate.unwrap_or(0.0),
            c.saturated.join("; ")
        )?;
    }
    // Machine-readable last line: the answer and its interval (0 when absent).
    writeln!(
        p.machine,
        "sustainable {:.1} low {:.1} high {:.1}",
        c.sustainable_rate.unwrap_or(0.0),
        c.sustainable_low.unwrap_or(0.0),
        c.sustainable_high.unwrap_or(0.0)
    )?;
    Ok(())
}
