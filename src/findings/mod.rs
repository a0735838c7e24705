//! Findings: the answers a user came for (capacity, index strategy, RLS, partitions, vs the
//! baseline), worded from the figures of a run in this one place. The report's findings
//! block and the end of `run`'s terminal output both print [`of`]'s result.

pub(crate) mod advice;
mod ops;
pub(crate) mod ops_engine;
mod ops_extra;
pub(crate) mod partitions_verdicts;
pub(crate) mod rls_advice;
pub(crate) mod scales;
mod settings;
mod topics;

use crate::compare::Comparison;
use crate::results::RunResults;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Topic {
    Capacity,
    Indexes,
    Rls,
    Partitions,
    Operations,
    Settings,
    Baseline,
}

impl Topic {
    pub fn title(self) -> &'static str {
        match self {
            Topic::Capacity => "Capacity",
            Topic::Indexes => "Index strategy",
            Topic::Rls => "Row level security",
            Topic::Partitions => "Partitions",
            Topic::Operations => "Operations under load",
            Topic::Settings => "Server settings",
            Topic::Baseline => "vs baseline",
        }
    }
}

/// How the finding reads: a clear answer, nothing measurable, or a problem to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tone {
    Clear,
    Unclear,
    Bad,
}

/// A confidence interval (or, where the measurement has no CI, the spread it has, named so).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    /// "95 % CI", "range over trials", …
    pub kind: String,
}

impl Interval {
    /// A measured 95 % confidence interval (the engine's and the statistics module's).
    pub(crate) fn ci95(i: &crate::stats::Interval) -> Self {
        Self {
            low: i.low,
            high: i.high,
            kind: "95 % CI".into(),
        }
    }

    pub fn includes(&self, v: f64) -> bool {
        self.low <= v && v <= self.high
    }
}

/// One figure behind a finding, formatted as the report shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figure {
    pub label: String,
    pub value: String,
    /// The figure's interval, already formatted ("[1.02–1.31], 95 % CI"), when one exists.
    pub interval: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub topic: Topic,
    pub title: &'static str,
    pub tone: Tone,
    pub headline: String,
    pub figures: Vec<Figure>,
    /// The interval of the headline figure, when the measurement carries one.
    pub interval: Option<Interval>,
    /// Anchor of the evidence section in report.html (without `#`).
    pub evidence: String,
}

/// The findings of a run; `baseline` adds the comparison with a previous run.
pub fn of(r: &RunResults, baseline: Option<&Comparison>) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(c) = &r.capacity {
        out.push(topics::capacity(c));
    }
    if let Some(s) = &r.capacity_scales {
        out.extend(scales::findings(s));
    }
    if let Some(e) = &r.explain {
        out.extend(topics::indexes(e));
    }
    if let Some(s) = &r.rls {
        out.extend(topics::rls(s));
    }
    if let Some(p) = &r.partitions {
        out.extend(topics::partitions(p));
    }
    if let Some(s) = &r.ops {
        out.extend(s.operations.iter().map(|op| ops::operation(s, op)));
        out.extend(s.operations.iter().flat_map(|op| ops_extra::extras(s, op)));
        out.extend(s.pgcrypto.iter().flat_map(ops_engine::pgcrypto));
        out.extend(s.audit.iter().map(ops_engine::audit));
    }
    if let Some(s) = &r.advice {
        out.push(advice::advice(s));
    }
    if let Some(s) = &r.settings {
        out.extend(settings::profiles(s));
    }
    if let Some(c) = baseline {
        out.push(topics::baseline(c));
    }
    out
}

/// The policy set with the lowest read overhead over bypass, and that overhead (geometric
/// mean of per-query p50 ratios): the RLS headline figure of `reports/index.html`.
pub fn best_policy_set(s: &crate::measure::rls::RlsSection) -> Option<(String, f64)> {
    topics::best_policy_set(s)
}

/// The findings as plain lines for the terminal (no colour: they end CI logs too).
pub fn render_text(findings: &[Finding], report: Option<&str>) -> String {
    let mut s = String::from("Findings\n");
    if findings.is_empty() {
        s.push_str("  (this command measured nothing a finding is made from)\n");
    }
    for f in findings {
        let mark = match f.tone {
            Tone::Clear => "·",
            Tone::Unclear => "?",
            Tone::Bad => "!",
        };
        s.push_str(&format!("  {mark} {}: {}\n", f.title, f.headline));
        let figs: Vec<String> = f
            .figures
            .iter()
            .map(|x| match &x.interval {
                Some(i) => format!("{} {} {i}", x.label, x.value),
                None => format!("{} {}", x.label, x.value),
            })
            .collect();
        if !figs.is_empty() {
            s.push_str(&format!("      {}\n", figs.join(" · ")));
        }
        if let Some(r) = report {
            s.push_str(&format!("      evidence: {r}#{}\n", f.evidence));
        }
    }
    s
}

/// "1.23×", with the interval when there is one: "1.23× [1.05–1.41], 95 % CI".
pub(crate) fn ratio_text(v: f64, i: Option<&Interval>) -> (String, Option<String>) {
    (
        format!("{v:.2}×"),
        i.map(|i| format!("[{:.2}–{:.2}], {}", i.low, i.high, i.kind)),
    )
}

/// "+23 %" / "-8 %" for a ratio.
pub(crate) fn pct(r: f64) -> String {
    let p = (r - 1.0) * 100.0;
    if p >= 0.0 {
        format!("+{p:.0} %")
    } else {
        format!("{p:.0} %")
    }
}

/// Below this relative difference a ratio without an interval is not called a difference:
/// it is within what this harness measures as noise on a shared machine.
pub(crate) const NOISE_BAND: f64 = 0.05;

/// Whether a ratio differs from 1: by its interval when it has one, else by [`NOISE_BAND`].
pub(crate) fn measurable(ratio: f64, interval: Option<&Interval>) -> bool {
    match interval {
        Some(i) => !i.includes(1.0),
        None => (ratio - 1.0).abs() > NOISE_BAND,
    }
}

#[cfg(test)]
mod tests;

/// Records the sections' sentences (RLS advice, partitions verdicts) beside their figures,
/// derived here from the numbers the stages returned; `finalize` calls it before writing.
pub fn annotate(r: &mut RunResults) {
    if let Some(s) = r.rls.as_mut() {
        s.advice = rls_advice::derive(s);
        s.recommended_policy_set = topics::best_policy_set(s).map(|(name, _)| name);
    }
    if let Some(s) = r.partitions.as_mut() {
        s.verdicts = partitions_verdicts::derive(s);
    }
    if let Some(s) = r.capacity_scales.as_mut() {
        s.partitioning = Some(scales::partitioning_words(s));
    }
}
