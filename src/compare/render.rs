//! Comparison output: a terminal listing, Markdown for a pull-request comment, or JSON.
//! Real findings first (regressions, then plan/work changes, then warnings and
//! improvements), then one line counting what did not change.

use super::{Comparison, MetricDelta, PlanFinding, Status, FAIL_ALPHA, WARN_FDR};
use std::fmt::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

pub fn render(c: &Comparison, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(c).unwrap_or_default(),
        Format::Text => text(c),
        Format::Markdown => markdown(c),
    }
}

fn verdict(c: &Comparison) -> String {
    let n = c.regressions();
    let what = if n == 0 {
        "no regression".to_string()
    } else {
        format!("{n} regression(s)")
    };
    format!(
        "{what} (time: beyond {:.0}% and the noise floor with Holm α = {FAIL_ALPHA}; work and plans: exact)",
        c.max_regression * 100.0
    )
}

fn of(c: &Comparison, s: Status) -> Vec<&MetricDelta> {
    c.deltas.iter().filter(|d| d.status == s).collect()
}

fn change(d: &MetricDelta) -> String {
    let ci = match (d.worse_by_low, d.worse_by_high) {
        (Some(l), Some(h)) => format!(" [{:+.0}%, {}]", l * 100.0, pct_or_inf(h)),
        _ => String::new(),
    };
    format!("{:+.1}%{ci}", d.worse_by * 100.0)
}

fn pct_or_inf(x: f64) -> String {
    if x.is_finite() {
        format!("{:+.0}%", x * 100.0)
    } else {
        "∞".into()
    }
}

fn p(d: &MetricDelta) -> String {
    d.p_value.map_or("–".into(), |p| format!("{p:.1e}"))
}

fn summary_line(c: &Comparison) -> String {
    let not_gated = of(c, Status::NotGated);
    let mut s = format!(
        "{} time metrics unchanged (within threshold or noise), {} plans unchanged",
        c.count(Status::Unchanged),
        c.plans_unchanged
    );
    if !not_gated.is_empty() {
        let why = not_gated
            .iter()
            .find_map(|d| d.note.clone())
            .unwrap_or_default();
        let _ = write!(s, "; {} not gated (e.g. {why})", not_gated.len());
    }
    s
}

/// The common shifts removed, loud when beyond the threshold: a global change (or a loaded
/// machine) that per-metric verdicts cannot see.
fn shift_lines(c: &Comparison) -> Vec<String> {
    c.common_shifts
        .iter()
        .map(|s| {
            let loud = s.low - 1.0 > c.max_regression || s.high < 1.0 / (1.0 + c.max_regression);
            if s.phase == super::metrics::MACHINE_PHASE {
                return format!(
                    "{}{}: the server's CPU probe took {:+.0}% [{:+.0}%, {:+.0}%] longer in the new run (medians of {} runs each); the capacity is judged relative to that",
                    if loud { "WARNING " } else { "" },
                    s.phase,
                    (s.ratio - 1.0) * 100.0,
                    (s.low - 1.0) * 100.0,
                    (s.high - 1.0) * 100.0,
                    s.metrics
                );
            }
            format!(
                "{}{}: all {} time metrics moved {:+.0}% [{:+.0}%, {:+.0}%] together (machine load or a global change); each is judged relative to that",
                if loud { "WARNING " } else { "" },
                s.phase,
                s.metrics,
                (s.ratio - 1.0) * 100.0,
                (s.low - 1.0) * 100.0,
                (s.high - 1.0) * 100.0
            )
        })
        .collect()
}

fn history_line(c: &Comparison) -> String {
    match &c.history_dir {
        Some(d) if c.history_runs > 0 => format!(
            "noise floors: {} earlier runs of this configuration in {} (section defaults where a metric has fewer than 3)",
            c.history_runs,
            d.display()
        ),
        Some(d) => format!(
            "noise floors: section defaults (no earlier run of this configuration in {})",
            d.display()
        ),
        None => "noise floors: section defaults (no history directory)".into(),
    }
}

fn text(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "storybench compare: {} → {}", c.base_run, c.new_run);
    let row = |s: &mut String, d: &MetricDelta, mark: &str| {
        let _ = writeln!(
            s,
            "  {mark:<10} {:<64} {:>10.3} → {:<10.3} {:<3} {:<24} margin {:.0}% ({}), p {}",
            d.key,
            d.base,
            d.new,
            d.unit,
            change(d),
            d.margin * 100.0,
            d.floor_source,
            p(d)
        );
    };
    let plan = |s: &mut String, f: &PlanFinding, mark: &str| {
        let _ = writeln!(s, "{mark} {} [{}]: {}", f.key, f.kind, f.text);
        for line in &f.diff {
            let _ = writeln!(s, "      {line}");
        }
    };
    let regs = of(c, Status::Regression);
    if !regs.is_empty() || !c.plan_regressions.is_empty() {
        let _ = writeln!(s, "REGRESSIONS");
        regs.iter().for_each(|d| row(&mut s, d, "REGRESSION"));
        c.plan_regressions
            .iter()
            .for_each(|f| plan(&mut s, f, "  PLAN REGRESSION"));
    }
    if !c.plan_changes.is_empty() {
        let _ = writeln!(s, "PLAN AND WORK CHANGES (not failing)");
        c.plan_changes
            .iter()
            .for_each(|f| plan(&mut s, f, "  changed"));
    }
    let warns = of(c, Status::Warning);
    if !warns.is_empty() {
        let _ = writeln!(
            s,
            "WARNINGS (Benjamini–Hochberg at {:.0}%, not failing)",
            WARN_FDR * 100.0
        );
        warns.iter().for_each(|d| row(&mut s, d, "warning"));
    }
    let better = of(c, Status::Improvement);
    if !better.is_empty() {
        let _ = writeln!(s, "IMPROVEMENTS");
        better.iter().for_each(|d| row(&mut s, d, "improved"));
    }
    let _ = writeln!(s, "{}", summary_line(c));
    for line in shift_lines(c) {
        let _ = writeln!(s, "{line}");
    }
    let _ = writeln!(s, "{}", history_line(c));
    if !c.only_in_base.is_empty() || !c.only_in_new.is_empty() {
        let _ = writeln!(
            s,
            "{} metrics only in base, {} only in new",
            c.only_in_base.len(),
            c.only_in_new.len()
        );
    }
    let _ = writeln!(s, "{}", verdict(c));
    s
}

fn markdown(c: &Comparison) -> String {
    let mut s = String::new();
    let icon = if c.regressions() == 0 { "✅" } else { "❌" };
    let _ = writeln!(s, "### {icon} storybench: {}\n", verdict(c));
    let _ = writeln!(s, "Base `{}` → new `{}`.\n", c.base_run, c.new_run);
    let table = |s: &mut String, title: &str, rows: &[&MetricDelta]| {
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(
            s,
            "**{title}**\n\n| metric | base | new | change [95% CI] | margin | p |\n|---|---:|---:|---:|---:|---:|"
        );
        for d in rows {
            let _ = writeln!(
                s,
                "| `{}` | {:.3} {} | {:.3} {} | {} | {:.0}% ({}) | {} |",
                d.key,
                d.base,
                d.unit,
                d.new,
                d.unit,
                change(d),
                d.margin * 100.0,
                d.floor_source,
                p(d)
            );
        }
        s.push('\n');
    };
    let plans = |s: &mut String, title: &str, rows: &[PlanFinding]| {
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(s, "**{title}**\n");
        for f in rows {
            let _ = writeln!(s, "- `{}` ({}): {}", f.key, f.kind, f.text);
            for line in &f.diff {
                let _ = writeln!(s, "  - {line}");
            }
        }
        s.push('\n');
    };
    table(&mut s, "Regressions", &of(c, Status::Regression));
    plans(&mut s, "Plan and work regressions", &c.plan_regressions);
    plans(
        &mut s,
        "Plan and work changes (not failing)",
        &c.plan_changes,
    );
    table(
        &mut s,
        "Warnings (Benjamini–Hochberg, not failing)",
        &of(c, Status::Warning),
    );
    table(&mut s, "Improvements", &of(c, Status::Improvement));
    for line in shift_lines(c) {
        let _ = writeln!(s, "> {line}\n");
    }
    let _ = writeln!(s, "<sub>{}. {}.</sub>", summary_line(c), history_line(c));
    s
}
