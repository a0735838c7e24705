//! Per analytics query: partitioned vs flat (custom and generic plans), and
//! enable_partitionwise_aggregate off vs on for the per-month and per-function aggregates.

use super::probe::{self, Arm, GENERIC};
use super::types::*;
use super::{context, roles, PartitionsOptions};
use crate::catalog::QuerySpec;
use crate::measure::engine::{ArmOutcome, Outcome};
use crate::measure::exec::principal_for;
use crate::params::{rng_for, ParamValue, Population};
use crate::plan::PlanSummary;
use crate::schema::Layout;
use anyhow::Result;
use sqlx::postgres::PgConnection;
use std::path::Path;
use uuid::Uuid;

/// The parameters each query runs with (the heavy user where a user is needed).
pub struct Drawn {
    pub user: Uuid,
    pub params: Vec<ParamValue>,
}

pub async fn draw(
    conn: &mut PgConnection,
    population: &Population,
    specs: &[&QuerySpec],
    seed: u64,
) -> Result<Vec<Drawn>> {
    let user = population.heavy();
    let mut out = Vec::new();
    for spec in specs {
        let mut rng = rng_for(seed, &format!("partitions:{}", spec.name));
        out.push(Drawn {
            user,
            params: population.draw(conn, spec, user, &mut rng).await?,
        });
    }
    Ok(out)
}

fn error(section: &mut PartitionsSection, part: &str, query: &str, e: impl std::fmt::Display) {
    section.errors.push(PartError {
        part: part.into(),
        query: Some(query.into()),
        error: e.to_string(),
    });
}

/// One engine arm into `run`: latency, the plan of its work step (saved under `rel`),
/// and its error.
fn fill(run: &mut ModeRun, arm: &ArmOutcome, total: Option<usize>, out_dir: &Path, rel: &str) {
    if !arm.latency.is_empty() {
        run.latency = Some(arm.latency.summary());
    }
    if let Some(raw) = &arm.raw_plan {
        if let Err(e) = probe::record_plan(run, raw, total, out_dir, rel) {
            run.error = Some(format!("{e:#}"));
        }
    }
    if let Some(e) = &arm.error {
        run.error = Some(e.clone());
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

pub async fn compare(
    conn: &mut PgConnection,
    opts: &PartitionsOptions,
    specs: &[&QuerySpec],
    drawn: &[Drawn],
    out_dir: &Path,
    section: &mut PartitionsSection,
) -> Result<()> {
    let ctx = [
        context(Layout::Partitioned, opts),
        context(Layout::Flat, opts),
    ];
    for (spec, d) in specs.iter().zip(drawn) {
        crate::interrupt::check()?;
        let who = principal_for(spec, d.user);
        let arm = |ctx, generic: bool| Arm {
            sql: &spec.sql,
            params: &d.params,
            who: &who,
            ctx,
            settings: if generic { vec![GENERIC] } else { vec![] },
        };
        let arms = [
            arm(&ctx[0], false),
            arm(&ctx[1], false),
            arm(&ctx[0], true),
            arm(&ctx[1], true),
        ];
        let mut q = new_query(spec, d);
        check_results(conn, &arms[..2], &mut q, section).await;
        // Partitioned vs flat with custom plans, and again with generic plans.
        let versus = [Some(1), None, Some(3), None];
        let out = probe::measure(conn, &arms, &versus, &opts.engine()).await;
        record_timings(&mut q, &out, section.partitions_total, out_dir);
        for r in [
            &q.partitioned.custom,
            &q.partitioned.generic,
            &q.flat.custom,
            &q.flat.generic,
        ] {
            if let Some(e) = &r.error {
                error(section, "layouts", &spec.name, e);
            }
        }
        say_query(&q, section.partitions_total);
        section.queries.push(q);
    }
    Ok(())
}

fn new_query(spec: &QuerySpec, d: &Drawn) -> QueryLayouts {
    QueryLayouts {
        name: spec.name.clone(),
        description: spec.description.clone(),
        params: d.params.iter().map(ParamValue::display).collect(),
        partitioned: LayoutRun {
            layout: Layout::Partitioned,
            ..Default::default()
        },
        flat: LayoutRun {
            layout: Layout::Flat,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Both layouts' rows and result digests (custom plans): the layouts must agree.
async fn check_results(
    conn: &mut PgConnection,
    arms: &[Arm<'_>],
    q: &mut QueryLayouts,
    section: &mut PartitionsSection,
) {
    for (a, lr) in arms.iter().zip([&mut q.partitioned, &mut q.flat]) {
        match probe::digest(conn, a).await {
            Ok((rows, digest)) => {
                lr.rows = Some(rows);
                lr.digest = Some(digest);
            }
            Err(e) => error(section, "layouts", &q.name, format!("{e:#}")),
        }
    }
    q.consistent = q.partitioned.digest.is_some()
        && q.partitioned.digest == q.flat.digest
        && q.partitioned.rows == q.flat.rows;
}

/// The engine's four arms (partitioned, flat; custom, generic) into the query's runs,
/// their plans saved, and the ratios between the layouts.
fn record_timings(q: &mut QueryLayouts, out: &Outcome, partitions_total: usize, out_dir: &Path) {
    for (i, arm) in out.arms.iter().enumerate() {
        let layout = Layout::ALL[i % 2];
        let mode = if i >= 2 { "generic" } else { "custom" };
        let run = match i {
            0 => &mut q.partitioned.custom,
            1 => &mut q.flat.custom,
            2 => &mut q.partitioned.generic,
            _ => &mut q.flat.generic,
        };
        let rel = format!("plans/partitions/{}.{layout}.{mode}.json", q.name);
        let t = (layout == Layout::Partitioned).then_some(partitions_total);
        fill(run, arm, t, out_dir, &rel);
    }
    q.ratio_interval = out.arms[0].ratio;
    q.ratio_side = out.arms[0].side;
    q.generic_ratio_interval = out.arms[2].ratio;
    q.generic_ratio_side = out.arms[2].side;
    q.work_ratio = out.arms[0].work_ratio.clone();
    q.rounds = Some(out.rounds.clone());
    let p50 = |r: &ModeRun| r.latency.as_ref().map(|l| l.p50_ms);
    let p95 = |r: &ModeRun| r.latency.as_ref().map(|l| l.p95_ms);
    q.ratio_p50 = ratio(p50(&q.partitioned.custom), p50(&q.flat.custom));
    q.ratio_p95 = ratio(p95(&q.partitioned.custom), p95(&q.flat.custom));
    q.generic_ratio_p50 = ratio(p50(&q.partitioned.generic), p50(&q.flat.generic));
    q.pruning = pruning_kinds(&q.partitioned, partitions_total);
}

fn say_query(q: &QueryLayouts, partitions_total: usize) {
    crate::say!(
        "  {:<28} partitioned/flat p50 {:>6} (generic {:>6}) · partitions scanned {} of {} · {}{}",
        q.name,
        fmt_ratio(q.ratio_p50),
        fmt_ratio(q.generic_ratio_p50),
        q.partitioned.custom.scanned.len(),
        partitions_total,
        if q.pruning.is_empty() {
            "no pruning".to_string()
        } else {
            q.pruning.join(", ")
        },
        if q.consistent {
            ""
        } else {
            "  (RESULTS DIFFER)"
        }
    );
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("—".into(), |r| format!("{r:.2}×"))
}

/// The kinds of pruning the partitioned layout's plans show.
fn pruning_kinds(run: &LayoutRun, total: usize) -> Vec<String> {
    let mut kinds = Vec::new();
    let parts = [&run.custom, &run.generic]
        .into_iter()
        .filter_map(|m| m.partitions.as_ref())
        .collect::<Vec<_>>();
    if parts.iter().any(|p| p.in_plan + p.subplans_removed < total) {
        kinds.push("plan time".to_string());
    }
    if parts.iter().any(|p| p.subplans_removed > 0) {
        kinds.push("executor start".to_string());
    }
    if parts.iter().any(|p| p.never_executed > 0) {
        kinds.push("run time".to_string());
    }
    kinds
}

/// The plan aggregates below an Append: per-partition (partitionwise) aggregation.
fn partitionwise_applied(plan: &PlanSummary) -> bool {
    let nodes = &plan.nodes;
    nodes.iter().enumerate().any(|(i, n)| {
        let agg = n.node_type == "Aggregate";
        let parent = nodes[..i]
            .iter()
            .rev()
            .find(|p| p.depth + 1 == n.depth)
            .map(|p| p.node_type.as_str());
        agg && matches!(parent, Some("Append" | "Merge Append"))
    })
}

pub async fn partitionwise(
    conn: &mut PgConnection,
    opts: &PartitionsOptions,
    specs: &[&QuerySpec],
    drawn: &[Drawn],
    out_dir: &Path,
    section: &mut PartitionsSection,
) -> Result<()> {
    let ctx = context(Layout::Partitioned, opts);
    let total = Some(section.partitions_total);
    for (spec, d) in specs.iter().zip(drawn) {
        if !roles().partitionwise.contains(&spec.name) {
            continue;
        }
        crate::interrupt::check()?;
        let who = principal_for(spec, d.user);
        let arm = |v: &'static str| Arm {
            sql: &spec.sql,
            params: &d.params,
            who: &who,
            ctx: &ctx,
            settings: vec![("enable_partitionwise_aggregate", v)],
        };
        let arms = [arm("off"), arm("on")];
        let mut r = PartitionwiseRun {
            query: spec.name.clone(),
            ..Default::default()
        };
        let mut digests = Vec::new();
        for a in &arms {
            digests.push(probe::digest(conn, a).await.ok());
        }
        r.consistent = digests[0].is_some() && digests[0] == digests[1];
        let out = probe::measure(conn, &arms, &[None, Some(0)], &opts.engine()).await;
        for ((arm, run), v) in out
            .arms
            .iter()
            .zip([&mut r.off, &mut r.on])
            .zip(["off", "on"])
        {
            let rel = format!("plans/partitions/{}.partitionwise_{v}.json", spec.name);
            fill(run, arm, total, out_dir, &rel);
        }
        r.applied = r.on.plan.as_ref().is_some_and(partitionwise_applied);
        r.ratio_interval = out.arms[1].ratio;
        r.ratio_side = out.arms[1].side;
        r.rounds = Some(out.rounds.clone());
        r.ratio_p50 = ratio(
            r.on.latency.as_ref().map(|l| l.p50_ms),
            r.off.latency.as_ref().map(|l| l.p50_ms),
        );
        for run in [&r.off, &r.on] {
            if let Some(e) = &run.error {
                error(section, "partitionwise", &spec.name, e);
            }
        }
        crate::say!(
            "  {:<28} partitionwise aggregate on/off p50 {} ({})",
            spec.name,
            fmt_ratio(r.ratio_p50),
            if r.applied {
                "per-partition aggregation in the plan"
            } else {
                "the planner kept one aggregate"
            }
        );
        section.partitionwise.push(r);
    }
    Ok(())
}
