//! `capacity --scales`: one line per scale, the curve and its launch extrapolation, the
//! queries that grow with the data and what flattens them; the last line (stdout) is
//! machine-readable.

use super::Printer;
use crate::measure::load::capacity::scales::ScalesSection;
use std::io;

pub fn summary(p: &mut Printer, s: &ScalesSection) -> io::Result<()> {
    writeln!(p.human, "capacity of {} by data size:", s.scenario)?;
    for r in &s.scales {
        let probe = crate::stats::median(&r.speed_probe_ms);
        writeln!(
            p.human,
            "  scale {:>6}: {:>8.1} MB, sustains {} (crossing {}, bracket {}–{}), probe {probe:.1} ms median{}{}",
            r.scale,
            r.data_bytes as f64 / 1e6,
            opt(r.sustainable_rate),
            opt(r.crossing_rate),
            opt(r.sustainable_low),
            opt(r.sustainable_high),
            if r.seed_seconds.is_some() { ", seeded now" } else { ", reused" },
            if r.search_from_run { " (the run's capacity search)" } else { "" }
        )?;
    }
    if let Some(rate) = s.common_rate {
        writeln!(p.human, "per-query p95 at the common rate {rate:.1}/s:")?;
        for q in &s.queries {
            let cells: Vec<String> = s
                .scales
                .iter()
                .map(|r| {
                    r.at_common_rate
                        .as_ref()
                        .and_then(|c| c.queries.iter().find(|x| x.name == q.name))
                        .map_or("-".into(), |x| {
                            let over = r.at_common_rate.as_ref().is_some_and(|c| c.over_capacity);
                            format!(
                                "{:.2} ms (n {}){}",
                                x.p95_ms,
                                x.samples,
                                if over { " over capacity" } else { "" }
                            )
                        })
                })
                .collect();
            let k = q.fit.as_ref().map_or("no fit".into(), |f| {
                format!(
                    "k {:.2} [{:.2}–{:.2}]",
                    f.exponent.estimate, f.exponent.low, f.exponent.high
                )
            });
            writeln!(
                p.human,
                "  {}{}: {} · {k}",
                if q.grows { "! " } else { "" },
                q.name,
                cells.join(" → ")
            )?;
        }
    }
    for f in crate::findings::scales::findings(s) {
        writeln!(p.human, "{}", f.headline)?;
        for x in f
            .figures
            .iter()
            .filter(|x| x.label.ends_with(" fix") || x.label == "partitioning")
        {
            writeln!(p.human, "  {}: {}", x.label, x.value)?;
        }
    }
    for n in &s.notes {
        writeln!(p.human, "  note: {n}")?;
    }
    let growing = s.queries.iter().filter(|q| q.grows).count();
    // A scale under the curve rejects the curve's figure: only its bound is known.
    match s
        .below_curve
        .iter()
        .map(|b| b.capacity_below)
        .min_by(f64::total_cmp)
    {
        Some(bound) => writeln!(
            p.machine,
            "launch_capacity below {bound:.1} growing_queries {growing}"
        )?,
        None => {
            let launch = s.capacity_fit.as_ref().and_then(|f| f.predicted);
            writeln!(
                p.machine,
                "launch_capacity {:.1} low {:.1} high {:.1} growing_queries {growing}",
                launch.map_or(0.0, |l| l.estimate),
                launch.map_or(0.0, |l| l.low),
                launch.map_or(0.0, |l| l.high),
            )?
        }
    }
    Ok(())
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}/s"))
}
