//! Derived figures of the explain stage: result consistency, plan diffs against the first
//! strategy (the baseline), the fastest strategy per query and overall.

use super::{
    ExplainSection, OverallVerdict, PlanDiff, QueryComparison, StrategyFigures, SubjectComparison,
    Verdict,
};
use crate::plan;
use crate::stats::Interval;
use std::collections::BTreeMap;

pub fn finish(section: &mut ExplainSection) {
    let Some(baseline) = section.strategies.first().map(|s| s.name.clone()) else {
        return;
    };
    for q in &mut section.queries {
        for subject in &mut q.subjects {
            if !same_rows(subject) {
                q.consistent = false;
            }
            subject.diffs = diffs(subject, &baseline);
        }
        if let Some(v) = query_verdict(q, &baseline) {
            q.verdict = Some(v);
        }
    }
    let base_fig = section.strategies.first().cloned().unwrap_or_default();
    section.overall = section
        .strategies
        .iter()
        .map(|s| overall(s, &section.queries, &baseline, &base_fig))
        .collect();
}

/// Same rows on every strategy (digest for reads; rows affected for writes).
fn same_rows(subject: &SubjectComparison) -> bool {
    let mut seen: Vec<(Option<i64>, Option<String>)> = subject
        .by_strategy
        .iter()
        .filter(|r| r.error.is_none())
        .map(|r| (r.rows, r.digest.clone()))
        .collect();
    seen.dedup();
    seen.len() <= 1
}

/// Each strategy's plan against the baseline's.
fn diffs(subject: &SubjectComparison, baseline: &str) -> Vec<PlanDiff> {
    let base_plan = subject.by_strategy.first().and_then(|r| r.plan.clone());
    subject
        .by_strategy
        .iter()
        .skip(1)
        .filter_map(|r| {
            let (a, b) = (base_plan.as_ref()?, r.plan.as_ref()?);
            Some(PlanDiff {
                from: baseline.to_string(),
                to: r.strategy.clone(),
                changes: plan::diff(a, b),
            })
        })
        .collect()
}

/// The fastest strategy of a query on its first (heavy) subject, by p50.
fn query_verdict(q: &QueryComparison, baseline: &str) -> Option<Verdict> {
    let heavy = q.subjects.first()?;
    let p50: BTreeMap<String, f64> = heavy
        .by_strategy
        .iter()
        .filter_map(|r| Some((r.strategy.clone(), r.latency.as_ref()?.p50_ms)))
        .collect();
    let fastest = p50
        .iter()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(k, v)| (k.clone(), *v));
    let ((name, best), base) = (fastest?, p50.get(baseline)?);
    Some(Verdict {
        fastest: name,
        speedup_vs_baseline: base / best.max(1e-6),
        baseline: baseline.to_string(),
        p50_ms: p50.clone(),
        speedup_interval: heavy.fastest_speedup,
        clear: heavy.winner.is_some(),
        winner: heavy.winner.clone(),
    })
}

/// One strategy over every read query: geometric mean speedup, wins, sizes and write costs.
fn overall(
    s: &StrategyFigures,
    queries: &[QueryComparison],
    baseline: &str,
    base_fig: &StrategyFigures,
) -> OverallVerdict {
    let mut logs = Vec::new();
    let mut fastest = 0;
    let mut won = 0;
    let mut speedups = Vec::new();
    for q in queries
        .iter()
        .filter(|q| q.kind == crate::catalog::Kind::Read)
    {
        if let Some(i) = q
            .subjects
            .first()
            .and_then(|h| speedup(h, &s.name, baseline))
        {
            speedups.push(i);
        }
        if let Some(v) = &q.verdict {
            if v.winner.as_deref() == Some(s.name.as_str()) {
                won += 1;
            }
            if let (Some(b), Some(x)) = (v.p50_ms.get(baseline), v.p50_ms.get(&s.name)) {
                logs.push((b.max(1e-6) / x.max(1e-6)).ln());
            }
            if v.fastest == s.name {
                fastest += 1;
            }
        }
    }
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    OverallVerdict {
        strategy: s.name.clone(),
        geomean_speedup: if logs.is_empty() {
            1.0
        } else {
            (logs.iter().sum::<f64>() / logs.len() as f64).exp()
        },
        geomean_interval: crate::measure::engine::geomean_interval(&speedups),
        queries_fastest: fastest,
        queries_won: won,
        index_bytes: s.index_bytes,
        wal_ratio_vs_baseline: ratio(s.wal_bytes_per_story, base_fig.wal_bytes_per_story),
        write_latency_ratio_vs_baseline: ratio(s.write_mean_ms, base_fig.write_mean_ms),
    }
}

/// Baseline time / this strategy's time, paired per round (exactly 1 for the baseline).
fn speedup(subject: &SubjectComparison, strategy: &str, baseline: &str) -> Option<Interval> {
    let run = subject
        .by_strategy
        .iter()
        .find(|r| r.strategy == strategy)?;
    if strategy == baseline {
        return run.latency.as_ref().map(|_| Interval {
            estimate: 1.0,
            low: 1.0,
            high: 1.0,
        });
    }
    let r = run.ratio_vs_baseline?;
    (r.low > 0.0).then(|| Interval {
        estimate: 1.0 / r.estimate,
        low: 1.0 / r.high,
        high: 1.0 / r.low,
    })
}
