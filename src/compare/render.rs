//! Comparison output: a terminal table, Markdown for a pull-request comment, or JSON.

use super::Comparison;
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
    if n == 0 {
        format!(
            "no regression beyond {:.0}% and the runs' noise",
            c.max_regression * 100.0
        )
    } else {
        format!(
            "{n} regression(s) beyond {:.0}% and the runs' noise",
            c.max_regression * 100.0
        )
    }
}

fn text(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "storybench compare: {} → {}", c.base_run, c.new_run);
    let _ = writeln!(
        s,
        "{:<70} {:>12} {:>12} {:>9} {:>7}  ",
        "metric", "base", "new", "change", "noise"
    );
    for d in c.deltas.iter().filter(|d| d.regression || d.improvement) {
        let mark = if d.regression {
            "REGRESSION"
        } else {
            "improved"
        };
        let _ = writeln!(
            s,
            "{:<70} {:>12.3} {:>12.3} {:>+8.1}% {:>6.1}%  {mark}",
            d.key,
            d.base,
            d.new,
            d.worse_by * 100.0,
            d.noise * 100.0
        );
    }
    let unchanged = c
        .deltas
        .iter()
        .filter(|d| !d.regression && !d.improvement)
        .count();
    let _ = writeln!(s, "({unchanged} metrics within threshold or noise)");
    for p in &c.plan_regressions {
        let _ = writeln!(s, "PLAN REGRESSION {}: {}", p.key, p.text);
    }
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
    let flagged: Vec<_> = c
        .deltas
        .iter()
        .filter(|d| d.regression || d.improvement)
        .collect();
    if !flagged.is_empty() {
        let _ = writeln!(
            s,
            "| metric | base | new | change | noise | |\n|---|---:|---:|---:|---:|---|"
        );
        for d in flagged {
            let mark = if d.regression {
                "🔴 regression"
            } else {
                "🟢 improved"
            };
            let _ = writeln!(
                s,
                "| `{}` | {:.3} {} | {:.3} {} | {:+.1}% | ±{:.1}% | {mark} |",
                d.key,
                d.base,
                d.unit,
                d.new,
                d.unit,
                d.worse_by * 100.0,
                d.noise * 100.0
            );
        }
        s.push('\n');
    }
    if !c.plan_regressions.is_empty() {
        let _ = writeln!(s, "**Plan-shape regressions**\n");
        for p in &c.plan_regressions {
            let _ = writeln!(s, "- `{}` ({}): {}", p.key, p.kind, p.text);
        }
        s.push('\n');
    }
    let unchanged = c
        .deltas
        .iter()
        .filter(|d| !d.regression && !d.improvement)
        .count();
    let _ = writeln!(
        s,
        "<sub>{unchanged} metrics within ±{:.0}% or the runs' own noise.</sub>",
        c.max_regression * 100.0
    );
    s
}
