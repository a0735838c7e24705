//! Settings profiles: what each profile put in force, its capacity and analytics figures,
//! and whether the server is back to its own settings.

use super::Printer;
use crate::measure::settings::SettingsSection;
use std::io;

pub fn summary(p: &mut Printer, s: &SettingsSection) -> io::Result<()> {
    for run in &s.profiles {
        let name = run.profile.map_or("?", |p| p.name());
        let values: Vec<String> = run
            .requested
            .iter()
            .map(|r| {
                format!(
                    "{}={}{}",
                    r.name,
                    r.value,
                    if r.applied { "" } else { " (not applied)" }
                )
            })
            .collect();
        writeln!(p.human, "  {name}: {}", values.join(", "))?;
        if let Some(c) = &run.capacity {
            writeln!(
                p.human,
                "    capacity {}: {}",
                c.scenario,
                c.sustainable_rate
                    .map_or("no sustainable rate".into(), |r| format!("{r:.0}/s"))
            )?;
        }
        for a in &run.analytics {
            let p50 = a.p50.map_or("-".into(), |i| {
                format!("{:.2} ms [{:.2}, {:.2}]", i.estimate, i.low, i.high)
            });
            let ratio = a.p50_ratio.map_or(String::new(), |r| {
                format!(
                    "; ×{:.2} [{:.2}, {:.2}] vs first",
                    r.estimate, r.low, r.high
                )
            });
            writeln!(p.human, "    {} p50 {p50}{ratio}", a.query)?;
        }
        if let Some(e) = &run.error {
            writeln!(p.human, "    failed: {e}")?;
        }
    }
    writeln!(
        p.human,
        "  server's own settings afterwards: {}",
        if s.restored {
            "restored (pg_settings as before)"
        } else {
            "DIFFERENT from before"
        }
    )?;
    Ok(())
}
