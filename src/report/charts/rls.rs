//! Charts of the rls section: overhead vs bypass per app query and mode.

use super::{grouped_bars, horizontal_bars, Series};
use crate::measure::rls::BYPASS;
use crate::results::RunResults;
use std::collections::BTreeMap;

pub fn charts(results: &RunResults, out: &mut BTreeMap<String, String>) {
    let Some(s) = &results.rls else { return };
    let subject = s
        .queries
        .iter()
        .flat_map(|q| q.subjects.iter())
        .map(|x| x.subject)
        .find(|x| *x == crate::params::Subject::Heavy)
        .or_else(|| {
            s.queries
                .first()
                .and_then(|q| q.subjects.first())
                .map(|x| x.subject)
        });
    let Some(subject) = subject else { return };
    let modes: Vec<String> = s
        .modes
        .iter()
        .map(|m| m.name.clone())
        .filter(|m| m != BYPASS)
        .collect();
    let labels: Vec<String> = s.queries.iter().map(|q| q.name.clone()).collect();
    let series: Vec<Series> = modes
        .iter()
        .map(|mode| Series {
            name: mode.clone(),
            values: s
                .queries
                .iter()
                .map(|q| {
                    q.subjects
                        .iter()
                        .find(|x| x.subject == subject)
                        .and_then(|x| x.modes.iter().find(|m| &m.mode == mode))
                        .and_then(|m| m.overhead.as_ref())
                        .map_or(f64::NAN, |r| r.median)
                })
                .collect(),
        })
        .filter(|s| s.values.iter().any(|v| v.is_finite()))
        .collect();
    let title =
        format!("p50 overhead vs bypass per app query and mode ({subject} user, ×, log scale)");
    if let Some(svg) = grouped_bars(&title, "×", &labels, &series, true) {
        out.insert("rls_overhead".into(), svg);
    }
    if let Some(c) = &s.setup_cost {
        let bars = vec![
            ("BEGIN / statement / COMMIT".to_string(), c.bare.p50_ms),
            (
                "+ set_config(role, claims)".to_string(),
                c.with_claims.p50_ms,
            ),
        ];
        if let Some(svg) = horizontal_bars(
            "Per-request claims set-up (p50 per transaction)",
            "ms",
            &bars,
        ) {
            out.insert("rls_setup".into(), svg);
        }
    }
}
