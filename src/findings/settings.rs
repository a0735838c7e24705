//! The settings finding: each profile against the first — capacity and the analytics
//! queries' medians — and whether the server went back to its own settings.

use super::topics::{fig, finding};
use super::{Finding, Interval, Tone, Topic};
use crate::measure::settings::SettingsSection;
use crate::stats::Side;

pub(super) fn profiles(s: &SettingsSection) -> Vec<Finding> {
    let mut out = Vec::new();
    if !s.restored {
        out.push(finding(
            Topic::Settings,
            Tone::Bad,
            "The server's settings after the profiles differ from before them (pg_settings): check own_before and own_after.".into(),
            "settings",
        ));
    }
    let Some((first, rest)) = s.profiles.split_first() else {
        return out;
    };
    let name = |p: &crate::measure::settings::ProfileRun| p.profile.map_or("?", |p| p.name());
    let rate = |p: &crate::measure::settings::ProfileRun| {
        p.capacity.as_ref().and_then(|c| c.sustainable_rate)
    };
    for run in rest {
        let ratios: Vec<&crate::stats::Interval> = run
            .analytics
            .iter()
            .filter_map(|a| a.p50_ratio.as_ref())
            .collect();
        let faster = run
            .analytics
            .iter()
            .filter(|a| a.side == Some(Side::Below))
            .count();
        let slower = run
            .analytics
            .iter()
            .filter(|a| a.side == Some(Side::Above))
            .count();
        let owned: Vec<crate::stats::Interval> = ratios.iter().map(|i| **i).collect();
        let mean = crate::measure::engine::geomean_interval(&owned);
        let analytics = match (&mean, faster, slower) {
            (None, _, _) => "the analytics queries were not compared".to_string(),
            (Some(_), 0, 0) => format!(
                "no measurable difference on the {} analytics queries",
                ratios.len()
            ),
            (Some(m), f, sl) => format!(
                "analytics medians {:.2}× (geometric mean; {f} of {} faster, {sl} slower)",
                m.estimate,
                ratios.len()
            ),
        };
        let capacity = match (rate(first), rate(run)) {
            (Some(a), Some(b)) => format!("capacity {b:.0}/s against {a:.0}/s"),
            _ => "no capacity compared".to_string(),
        };
        let tone = if run.error.is_some() {
            Tone::Bad
        } else if faster + slower == 0 {
            Tone::Unclear
        } else {
            Tone::Clear
        };
        let mut f = finding(
            Topic::Settings,
            tone,
            format!(
                "Settings profile {} against {}: {capacity}; {analytics}.",
                name(run),
                name(first)
            ),
            "settings",
        );
        if let Some(m) = &mean {
            let (value, interval) = super::ratio_text(m.estimate, Some(&Interval::ci95(m)));
            f.figures.push(super::Figure {
                label: "analytics p50 ratio".into(),
                value,
                interval,
            });
            f.interval = Some(Interval::ci95(m));
        }
        for r in &run.requested {
            f.figures.push(fig(&r.name, r.value.clone()));
        }
        out.push(f);
    }
    out
}
