//! Verification for real: a change (a new index built with CREATE INDEX CONCURRENTLY, or
//! an existing one dropped) made on one copy and every query that touches the table timed
//! interleaved by the engine against the other copy without it; then undone, so the next
//! change starts from the same state.

use super::types::{Action, Effect, Verdict, Verified};
use super::{file, Plan};
use crate::measure::engine::{self, EngineOptions, SqlArm, SqlRunner};
use crate::measure::exec::RequestContext;
use crate::stats::Side;
use anyhow::Result;
use sqlx::postgres::PgConnection;
use sqlx::AssertSqlSafe;
use std::collections::BTreeMap;
use std::time::Instant;

/// Smallest speed-up (at the low end of its interval) that counts as a read gained.
pub const MIN_GAIN: f64 = 0.05;

/// What to change, and how to undo it.
pub struct Change {
    pub action: Action,
    pub index: String,
    pub table: String,
    /// Makes the change on the copy.
    pub apply: String,
    /// Undoes it.
    pub undo: String,
    /// The statement advice.sql would carry.
    pub statement: String,
}

pub struct Copies<'a> {
    pub without: &'a mut PgConnection,
    pub with: &'a mut PgConnection,
    pub with_target: &'a crate::target::Target,
}

/// Makes `change` on the `with` copy, measures every plan on its table, undoes it.
pub async fn verify(
    copies: &mut Copies<'_>,
    change: Change,
    plans: &[Plan<'_>],
    mix: &BTreeMap<String, f64>,
    ctx: &RequestContext,
    opts: &EngineOptions,
) -> Result<Verified> {
    let started = Instant::now();
    sqlx::query(AssertSqlSafe(change.apply.clone()))
        .execute(&mut *copies.with)
        .await?;
    let build_seconds = started.elapsed().as_secs_f64();
    let bytes = match change.action {
        Action::Create => sqlx::query_scalar(AssertSqlSafe(file().queries.index_bytes.clone()))
            .bind(format!("{}.{}", schema_of(&change.table), change.index))
            .fetch_one(&mut *copies.with)
            .await
            .ok(),
        Action::Drop => None,
    };
    crate::pristine::quiesce(copies.with_target).await;
    let measured = measure_effects(copies, &change, plans, mix, ctx, opts).await;
    sqlx::query(AssertSqlSafe(change.undo.clone()))
        .execute(&mut *copies.with)
        .await?;
    crate::pristine::quiesce(copies.with_target).await;
    let effects = measured?;
    // An index acts only through the plan: where the work is the same, a time difference is
    // the copies' noise and counts as none.
    let net: f64 = effects
        .iter()
        .filter(|e| e.work_changed())
        .map(|e| e.per_1000 * e.saved_ms())
        .sum();
    let (verdict, reason) = judge(change.action, &effects, net);
    Ok(Verified {
        action: change.action,
        index: change.index,
        table: change.table,
        statement: change.statement,
        build_seconds: (change.action == Action::Create).then_some(build_seconds),
        bytes,
        effects,
        net_ms_per_1000: net,
        verdict,
        reason,
    })
}

fn schema_of(table: &str) -> &str {
    table.split_once('.').map(|(s, _)| s).unwrap_or("public")
}

async fn measure_effects(
    copies: &mut Copies<'_>,
    change: &Change,
    plans: &[Plan<'_>],
    mix: &BTreeMap<String, f64>,
    ctx: &RequestContext,
    opts: &EngineOptions,
) -> Result<Vec<Effect>> {
    let mut effects = Vec::new();
    for plan in plans.iter().filter(|p| p.touches(&change.table)) {
        crate::interrupt::check()?;
        let arms: Vec<SqlArm> = (0..2)
            .map(|conn| SqlArm {
                conn,
                spec: plan.spec,
                sql: &plan.spec.sql,
                params: plan.params,
                who: plan.who.clone(),
                ctx,
            })
            .collect();
        let mut conns: [&mut PgConnection; 2] = [&mut *copies.without, &mut *copies.with];
        let out = engine::measure(
            &mut SqlRunner {
                conns: &mut conns,
                arms: &arms,
            },
            &[None, Some(0)],
            opts,
        )
        .await;
        let uses_index = out.arms[1]
            .raw_plan
            .as_ref()
            .is_some_and(|p| super::predicates::indexes_used(p).contains(&change.index));
        let summary = |i: usize| {
            let l = &out.arms[i].latency;
            (!l.is_empty()).then(|| l.summary())
        };
        effects.push(Effect {
            query: plan.spec.name.clone(),
            subject: plan.subject.into(),
            kind: plan.spec.kind,
            per_1000: mix.get(&plan.spec.name).copied().unwrap_or(0.0) / plan.subjects as f64,
            without: summary(0),
            with: summary(1),
            ratio: out.arms[1].ratio,
            side: out.arms[1].side,
            work_without: out.arms[0].work.clone(),
            work_with: out.arms[1].work.clone(),
            uses_index,
            rounds: out.rounds.clone(),
            error: out.arms.iter().find_map(|a| a.error.clone()),
        });
    }
    Ok(effects)
}

/// A new index is recommended when the real planner uses it, some read in the workload is
/// clearly faster (its whole interval below 1 − [`MIN_GAIN`]) and the net time over the
/// workload is a saving. A drop is recommended when no read is clearly slower without the
/// index and the net time is a saving.
fn judge(action: Action, effects: &[Effect], net: f64) -> (Verdict, String) {
    let failed: Vec<&Effect> = effects.iter().filter(|e| e.error.is_some()).collect();
    if let Some(e) = failed.first() {
        return (
            Verdict::Rejected,
            format!(
                "{} failed while measured: {}",
                e.query,
                e.error.as_deref().unwrap_or("")
            ),
        );
    }
    let clear = |e: &&Effect, side: Side, bound: f64| {
        e.work_changed() && e.ratio.is_some_and(|r| r.side_of(bound) == side)
    };
    match action {
        Action::Create => {
            if !effects.iter().any(|e| e.uses_index) {
                return (
                    Verdict::Rejected,
                    "the real build is not used by any plan (the planner preferred what it had)"
                        .into(),
                );
            }
            let gains: Vec<&Effect> = effects
                .iter()
                .filter(|e| e.uses_index)
                .filter(|e| e.spec_is_read() && clear(e, Side::Below, 1.0 - MIN_GAIN))
                .collect();
            if gains.is_empty() {
                return (
                    Verdict::Rejected,
                    "no measurable gain: no read it serves is clearly faster".into(),
                );
            }
            if net <= 0.0 {
                return (
                    Verdict::Rejected,
                    format!("its write cost outweighs its gain over the workload ({net:+.3} ms per 1,000 transactions)"),
                );
            }
            let names: Vec<String> = gains.iter().map(|e| format!("{} ({})", e.query, e.subject)).collect();
            (
                Verdict::Recommended,
                format!("faster: {}; saves {net:.3} ms per 1,000 transactions", names.join(", ")),
            )
        }
        Action::Drop => {
            let losses: Vec<&Effect> = effects
                .iter()
                .filter(|e| e.spec_is_read() && clear(e, Side::Above, 1.0 + MIN_GAIN))
                .collect();
            if let Some(e) = losses.first() {
                return (
                    Verdict::Rejected,
                    format!("{} ({}) is clearly slower without it", e.query, e.subject),
                );
            }
            // Buffers per write are deterministic: fewer index pages touched is the evidence
            // that survives the machine's noise (one execution's WAL carries full-page images).
            let lighter: Vec<&Effect> = effects
                .iter()
                .filter(|e| !e.spec_is_read())
                .filter(|e| match (&e.work_without, &e.work_with) {
                    (Some(a), Some(b)) => b.shared_buffers() < a.shared_buffers(),
                    _ => false,
                })
                .collect();
            if lighter.is_empty() {
                return (
                    Verdict::Rejected,
                    "no write of the workload is lighter without it".into(),
                );
            }
            let names: Vec<&str> = lighter.iter().map(|e| e.query.as_str()).collect();
            (
                Verdict::Recommended,
                format!(
                    "no read clearly slower; lighter writes: {} ({net:+.3} ms per 1,000 transactions)",
                    names.join(", ")
                ),
            )
        }
    }
}

impl Effect {
    fn spec_is_read(&self) -> bool {
        self.kind != crate::catalog::Kind::Write
    }

    /// The plan shape or the buffers differ with the change.
    fn work_changed(&self) -> bool {
        match (&self.work_without, &self.work_with) {
            (Some(a), Some(b)) => a.shape != b.shape || a.shared_buffers() != b.shared_buffers(),
            _ => false,
        }
    }
}
