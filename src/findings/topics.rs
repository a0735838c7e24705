//! One function per topic: figures in, a [`Finding`] out. Where a section carries no
//! confidence interval yet the interval stays `None` and the verdict falls back to the
//! noise band (see [`measurable`]); nothing here invents a spread.

use super::{measurable, pct, ratio_text, Figure, Finding, Interval, Tone, Topic};
use crate::compare::Comparison;
use crate::format::human_bytes;
use crate::measure::explain::ExplainSection;
use crate::measure::load::capacity::CapacitySection;
use crate::measure::partitions::PartitionsSection;
use crate::measure::rls::{RlsSection, RlsSubject, BYPASS};
use crate::params::Subject;
use crate::stats::geomean;

pub(super) fn fig(label: &str, value: String) -> Figure {
    Figure {
        label: label.into(),
        value,
        interval: None,
    }
}

pub(super) fn finding(topic: Topic, tone: Tone, headline: String, evidence: &str) -> Finding {
    Finding {
        topic,
        title: topic.title(),
        tone,
        headline,
        figures: Vec::new(),
        interval: None,
        evidence: evidence.into(),
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    (!v.is_empty()).then(|| crate::stats::median(&v))
}

pub(super) fn capacity(c: &CapacitySection) -> Finding {
    let slo = c
        .slo
        .as_ref()
        .map_or("the SLO".to_string(), |s| s.text.clone());
    let Some(rate) = c.sustainable_rate else {
        return finding(
            Topic::Capacity,
            Tone::Bad,
            format!(
                "Scenario {} met {slo} at none of the rates tried: the database cannot serve it as configured.",
                c.scenario
            ),
            "capacity",
        );
    };
    let at_least = if c.breaking_rate.is_none() {
        "≥ "
    } else {
        ""
    };
    let users = c
        .equivalent_users
        .map(|u| format!(", about {u:.0} active app users at once"))
        .unwrap_or_default();
    let limit = if !c.saturated.is_empty() {
        format!("What saturates first: {}.", c.saturated.join("; "))
    } else if c.breaking_rate.is_none() {
        "Nothing broke up to the highest rate tried: the real limit is higher.".to_string()
    } else {
        "No server signal saturated: the limit is the queries' own latency.".to_string()
    };
    let mut f = finding(
        Topic::Capacity,
        Tone::Clear,
        format!(
            "Scenario {} sustains {at_least}{rate:.1} transactions/s within {slo}{users}. {limit}",
            c.scenario
        ),
        "capacity",
    );
    f.figures
        .push(fig("sustainable rate", format!("{at_least}{rate:.1} tx/s")));
    if let Some(b) = c.breaking_rate {
        f.figures.push(fig("broke at", format!("{b:.1} tx/s")));
    }
    if let Some(x) = c.crossing_rate {
        f.figures.push(fig(
            "SLO crossed at (interpolated)",
            format!("≈ {x:.1} tx/s"),
        ));
    }
    if let Some(k) = c.knee_rate {
        f.figures.push(fig("knee", format!("{k:.1} tx/s")));
    }
    if let Some(u) = c.equivalent_users {
        f.figures.push(fig("equivalent users", format!("≈ {u:.0}")));
    }
    f
}

pub(super) fn indexes(e: &ExplainSection) -> Option<Finding> {
    let baseline = e.strategies.first()?.name.clone();
    let best = e
        .overall
        .iter()
        .filter(|o| o.strategy != baseline)
        .max_by(|a, b| a.geomean_speedup.total_cmp(&b.geomean_speedup))?;
    let base_bytes = e.strategies.first().map_or(0, |s| s.index_bytes);
    let reads = e
        .queries
        .iter()
        .filter(|q| q.kind == crate::catalog::Kind::Read && q.verdict.is_some())
        .count();
    // The engine's interval on the geometric-mean speed-up (None in older results files).
    let interval: Option<Interval> = best.geomean_interval.as_ref().map(Interval::ci95);
    // Read queries the candidate makes slower than the baseline (heavy user, p50).
    let worse: Vec<String> = e
        .queries
        .iter()
        .filter(|q| q.kind == crate::catalog::Kind::Read)
        .filter_map(|q| {
            let v = q.verdict.as_ref()?;
            let r = v.p50_ms.get(&best.strategy)? / v.p50_ms.get(&baseline)?;
            measurable(r, None)
                .then_some(r > 1.0)
                .filter(|w| *w)
                .map(|_| format!("{} ({r:.2}× slower)", q.name))
        })
        .collect();
    let cost = format!(
        "{} of secondary indexes ({} for {baseline}){}{}",
        human_bytes(best.index_bytes as f64),
        human_bytes(base_bytes as f64),
        best.wal_ratio_vs_baseline
            .map(|w| format!(", WAL per created story {w:.2}×"))
            .unwrap_or_default(),
        best.write_latency_ratio_vs_baseline
            .map(|w| format!(", write latency {w:.2}×"))
            .unwrap_or_default(),
    );
    let (tone, headline) = if !measurable(best.geomean_speedup, interval.as_ref()) {
        (
            Tone::Unclear,
            format!(
                "No measurable difference between {baseline} and {} on reads ({:.2}× geometric mean over {reads} read queries). {} costs {cost}.",
                best.strategy, best.geomean_speedup, best.strategy
            ),
        )
    } else if best.geomean_speedup > 1.0 {
        (
            Tone::Clear,
            format!(
                "Adopt {}: reads {:.2}× faster than {baseline} (geometric mean over {reads} read queries), for {cost}.{}",
                best.strategy,
                best.geomean_speedup,
                if worse.is_empty() {
                    " No read query gets slower.".to_string()
                } else {
                    format!(" Slower with it: {}.", worse.join(", "))
                }
            ),
        )
    } else {
        (
            Tone::Clear,
            format!(
                "Keep {baseline}: no strategy reads faster (best, {}, is {:.2}× of it).",
                best.strategy, best.geomean_speedup
            ),
        )
    };
    let mut f = finding(Topic::Indexes, tone, headline, "explain");
    let (v, i) = ratio_text(best.geomean_speedup, interval.as_ref());
    f.figures.push(Figure {
        label: format!("{} read speed-up", best.strategy),
        value: v,
        interval: i,
    });
    f.figures
        .push(fig("index size", human_bytes(best.index_bytes as f64)));
    if let Some(w) = best.wal_ratio_vs_baseline {
        f.figures.push(fig("WAL / story", format!("{w:.2}×")));
    }
    f.figures
        .push(fig("slower queries", worse.len().to_string()));
    f.interval = interval;
    Some(f)
}

/// The read queries' subjects to judge RLS on: the heavy user when measured.
fn subjects(s: &RlsSection) -> Vec<&RlsSubject> {
    let heavy = s
        .queries
        .iter()
        .any(|q| q.subjects.iter().any(|x| x.subject == Subject::Heavy));
    s.queries
        .iter()
        .filter(|q| q.kind == crate::catalog::Kind::Read)
        .flat_map(|q| q.subjects.iter())
        .filter(|x| !heavy || x.subject == Subject::Heavy)
        .collect()
}

struct PolicyCost {
    mode: String,
    ratio: f64,
    /// The geometric mean's interval, from each read's paired-ratio interval.
    interval: Option<Interval>,
    reads: usize,
    added_ms: Option<f64>,
    added_buffers: Option<f64>,
    added_exec_ms: Option<f64>,
}

fn policy_cost(subjects: &[&RlsSubject], mode: &str) -> Option<PolicyCost> {
    let (mut ratios, mut intervals, mut ms, mut bufs, mut exec) =
        (vec![], vec![], vec![], vec![], vec![]);
    for s in subjects {
        let find = |m: &str| s.modes.iter().find(|x| x.mode == m);
        let (Some(b), Some(m)) = (find(BYPASS), find(mode)) else {
            continue;
        };
        if let Some(r) = &m.overhead {
            ratios.push(r.median);
            intervals.extend(r.interval);
        }
        if let (Some(lb), Some(lm)) = (&b.latency, &m.latency) {
            ms.push(lm.p50_ms - lb.p50_ms);
        }
        if let (Some(pb), Some(pm)) = (&b.plan, &m.plan) {
            let blocks = |p: &crate::plan::PlanSummary| (p.shared_hit + p.shared_read) as f64;
            bufs.push(blocks(pm) - blocks(pb));
            exec.push(pm.execution_ms - pb.execution_ms);
        }
    }
    let reads = ratios.len();
    // An interval only when every read carries one (files written before the engine do not).
    let interval = (intervals.len() == reads)
        .then(|| crate::measure::engine::geomean_interval(&intervals))
        .flatten()
        .as_ref()
        .map(Interval::ci95);
    Some(PolicyCost {
        mode: mode.to_string(),
        ratio: geomean(ratios)?,
        interval,
        reads,
        added_ms: median(ms),
        added_buffers: median(bufs),
        added_exec_ms: median(exec),
    })
}

/// Every policy set as the app uses it (explicit user filter kept: form `sql`), cheapest first.
fn policy_costs(s: &RlsSection) -> Vec<PolicyCost> {
    let subjects = subjects(s);
    let mut costs: Vec<PolicyCost> = s
        .modes
        .iter()
        .filter(|m| m.policies.is_some() && m.form == crate::measure::rls::Form::Sql)
        .filter_map(|m| policy_cost(&subjects, &m.name))
        .collect();
    costs.sort_by(|a, b| a.ratio.total_cmp(&b.ratio));
    costs
}

pub(super) fn best_policy_set(s: &RlsSection) -> Option<(String, f64)> {
    policy_costs(s)
        .into_iter()
        .next()
        .map(|c| (c.mode, c.ratio))
}

pub(super) fn rls(s: &RlsSection) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(why) = s.failure() {
        out.push(finding(Topic::Rls, Tone::Bad, format!("{why}."), "rls"));
    }
    let costs = policy_costs(s);
    if let Some(best) = costs.first() {
        let interval = best.interval.clone();
        let server = match (best.added_buffers, best.added_exec_ms) {
            (Some(b), Some(e)) => format!(
                "; on the server {b:+.0} buffers and {e:+.3} ms executor time per read (EXPLAIN ANALYZE, median over queries)"
            ),
            _ => String::new(),
        };
        let wall = best
            .added_ms
            .map(|m| format!(", {m:+.3} ms wall clock per read (median)"))
            .unwrap_or_default();
        let others: Vec<String> = costs[1..]
            .iter()
            .map(|c| format!("{} {:.2}×", c.mode, c.ratio))
            .collect();
        let others = if others.is_empty() {
            String::new()
        } else {
            format!(" Other sets: {}.", others.join(", "))
        };
        let (tone, headline) = if measurable(best.ratio, interval.as_ref()) {
            (
                Tone::Clear,
                format!(
                    "Use the {} policies: {} over bypass per read (geometric mean over {} reads){wall}{server}.{others}",
                    best.mode,
                    pct(best.ratio),
                    best.reads
                ),
            )
        } else {
            (
                Tone::Unclear,
                format!(
                    "No measurable difference between bypass and the {} policies ({:.2}× over {} reads){wall}{server}.{others}",
                    best.mode, best.ratio, best.reads
                ),
            )
        };
        let mut f = finding(Topic::Rls, tone, headline, "rls");
        let (v, i) = ratio_text(best.ratio, interval.as_ref());
        f.figures.push(Figure {
            label: format!("{} overhead", best.mode),
            value: v,
            interval: i,
        });
        if let Some(m) = best.added_ms {
            f.figures
                .push(fig("wall clock / read", format!("{m:+.3} ms")));
        }
        if let Some(b) = best.added_buffers {
            f.figures.push(fig("buffers / read", format!("{b:+.0}")));
        }
        if let Some(e) = best.added_exec_ms {
            f.figures
                .push(fig("executor / read", format!("{e:+.3} ms")));
        }
        f.interval = interval;
        out.push(f);
    }
    if let Some(a) = &s.audit {
        let mut sets: Vec<&str> = a.sets.iter().map(|x| x.policies.as_str()).collect();
        sets.dedup();
        let mut f = if a.leaks > 0 {
            finding(
                Topic::Rls,
                Tone::Bad,
                format!(
                    "Isolation audit FAILED: {} leak(s) in {} attempts — users could read or change other users' rows.",
                    a.leaks, a.attempts
                ),
                "rls-audit",
            )
        } else {
            finding(
                Topic::Rls,
                Tone::Clear,
                format!(
                    "Isolation audit: no leak in {} attempts ({} users and anon; policy sets {}).",
                    a.attempts,
                    a.users.len(),
                    sets.join(", ")
                ),
                "rls-audit",
            )
        };
        f.figures.push(fig("leaks", a.leaks.to_string()));
        f.figures.push(fig("attempts", a.attempts.to_string()));
        out.push(f);
    }
    out
}

pub(super) fn partitions(p: &PartitionsSection) -> Vec<Finding> {
    let mut out = Vec::new();
    let measured: Vec<_> = p
        .queries
        .iter()
        .filter(|q| q.partitioned.custom.partitions.is_some())
        .collect();
    if !measured.is_empty() {
        let pruned: Vec<_> = measured
            .iter()
            .filter(|q| {
                let scanned = q.partitioned.custom.scanned.len();
                !q.pruning.is_empty() && scanned < p.partitions_total.max(1)
            })
            .collect();
        let not: Vec<&str> = measured
            .iter()
            .filter(|q| !pruned.iter().any(|x| x.name == q.name))
            .map(|q| q.name.as_str())
            .collect();
        let mut f = if not.is_empty() {
            finding(
                Topic::Partitions,
                Tone::Clear,
                format!(
                    "Pruning works: all {} analytics queries scan only the partitions their dates need (of {}).",
                    measured.len(),
                    p.partitions_total
                ),
                "partitions",
            )
        } else {
            finding(
                Topic::Partitions,
                Tone::Bad,
                format!(
                    "Pruning fails on {} of {} analytics queries: {}.",
                    not.len(),
                    measured.len(),
                    not.join(", ")
                ),
                "partitions",
            )
        };
        f.figures.push(fig(
            "queries pruned",
            format!("{} of {}", pruned.len(), measured.len()),
        ));
        out.push(f);
    }
    let ratios: Vec<f64> = p.queries.iter().filter_map(|q| q.ratio_p50).collect();
    if let Some(g) = geomean(ratios.iter().copied()) {
        let intervals: Vec<crate::stats::Interval> =
            p.queries.iter().filter_map(|q| q.ratio_interval).collect();
        let interval = (intervals.len() == ratios.len())
            .then(|| crate::measure::engine::geomean_interval(&intervals))
            .flatten()
            .as_ref()
            .map(Interval::ci95);
        let size = format!("{} rows in {} partitions", p.rows, p.partitions_total);
        let n = ratios.len();
        let (tone, headline) = if !measurable(g, interval.as_ref()) {
            (
                Tone::Unclear,
                format!("No measurable difference between partitioned and flat api_usage at this size ({size}; {g:.2}× over {n} queries)."),
            )
        } else if g > 1.0 {
            (
                Tone::Clear,
                format!("Partitioning does not pay at this size ({size}): analytics are {g:.2}× slower than on the flat table (geometric mean over {n} queries); its gains are maintenance (drop a month)."),
            )
        } else {
            (
                Tone::Clear,
                format!("Partitioning pays at this size ({size}): analytics are {:.2}× faster than on the flat table (geometric mean over {n} queries).", 1.0 / g),
            )
        };
        let mut f = finding(Topic::Partitions, tone, headline, "partitions");
        let (v, i) = ratio_text(g, interval.as_ref());
        f.figures.push(Figure {
            label: "partitioned / flat".into(),
            value: v,
            interval: i,
        });
        f.interval = interval;
        out.push(f);
    }
    out
}

pub(super) fn baseline(c: &Comparison) -> Finding {
    let threshold = c.max_regression * 100.0;
    let n = c.regressions();
    let mut f = if n == 0 {
        finding(
            Topic::Baseline,
            Tone::Clear,
            format!(
                "No regression vs run {}: no metric worse by more than {threshold:.0} % and its noise, no plan-shape regression.",
                c.base_run
            ),
            "baseline",
        )
    } else {
        let mut items: Vec<String> = c
            .deltas
            .iter()
            .filter(|d| d.regression)
            .map(|d| format!("{} {:+.0} %", d.key, d.worse_by * 100.0))
            .collect();
        items.extend(
            c.plan_regressions
                .iter()
                .map(|p| format!("{}: {}", p.key, p.text)),
        );
        let shown: Vec<String> = items.iter().take(5).cloned().collect();
        let more = if items.len() > 5 {
            format!(" and {} more", items.len() - 5)
        } else {
            String::new()
        };
        finding(
            Topic::Baseline,
            Tone::Bad,
            format!(
                "{n} regression(s) vs run {}: {}{more}.",
                c.base_run,
                shown.join("; ")
            ),
            "baseline",
        )
    };
    f.figures.push(fig("regressions", n.to_string()));
    f
}
