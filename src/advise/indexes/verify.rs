//! Verification for real: a change (a new index built with CREATE INDEX CONCURRENTLY, or
//! an existing one dropped) made on one copy and every query that touches the table timed
//! interleaved by the engine against the other copy without it; then undone, so the next
//! change starts from the same state.

use super::steps::Workload;
use super::types::{Action, Effect, Verdict, Verified};
use super::{file, schema_of};
use crate::stats::Side;
use anyhow::Result;
use sqlx::postgres::PgConnection;
use sqlx::AssertSqlSafe;
use std::time::Instant;

/// Smallest speed-up (at the low end of its interval) that counts as a read gained.
pub const MIN_GAIN: f64 = 0.05;

/// Smallest relative change of a read's shared buffers that counts as less (or more) work:
/// a 38 → 36 buffer plan was ×0.89 in one A/A run and ×1.00 in the next.
pub const MIN_BUFFER_CHANGE: f64 = 0.10;

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
    pub without_target: &'a crate::target::Target,
    pub with_target: &'a crate::target::Target,
}

impl Copies<'_> {
    /// Both copies back in the same steady state: the last measurement's rolled-back writes
    /// vacuumed away (else autovacuum reaches one copy first and the same plan reads a
    /// different number of pages), then checkpointed and quiet.
    async fn level(&self) -> Result<()> {
        for t in [self.without_target, self.with_target] {
            crate::pristine::vacuum_tables(t).await?;
            crate::pristine::quiesce(t).await;
        }
        Ok(())
    }
}

/// Makes `change` on the `with` copy, measures every plan on its table, undoes it.
pub async fn verify(
    copies: &mut Copies<'_>,
    change: Change,
    work: &Workload<'_>,
) -> Result<Verified> {
    copies.level().await?;
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
    copies.level().await?;
    let measured = measure_effects(copies, &change, work).await;
    sqlx::query(AssertSqlSafe(change.undo.clone()))
        .execute(&mut *copies.with)
        .await?;
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
        from_rls: false,
        sources: Vec::new(),
    })
}

async fn measure_effects(
    copies: &mut Copies<'_>,
    change: &Change,
    work: &Workload<'_>,
) -> Result<Vec<Effect>> {
    let (ctx, opts) = (work.ctx, work.engine);
    let mut effects = Vec::new();
    for plan in work.plans.iter().filter(|p| p.touches(&change.table)) {
        crate::interrupt::check()?;
        let mut conns: [&mut PgConnection; 2] = [&mut *copies.without, &mut *copies.with];
        let arms = [(0, plan.who.clone()), (1, plan.who.clone())];
        let out =
            crate::measure::engine::two_arms(&mut conns, arms, plan.spec, plan.params, ctx, opts)
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
            per_1000: work.mix.get(&plan.spec.name).copied().unwrap_or(0.0) / plan.subjects as f64,
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
    if let Some(e) = effects.iter().find(|e| e.error.is_some()) {
        return (
            Verdict::Rejected,
            format!(
                "{} failed while measured: {}",
                e.query,
                e.error.as_deref().unwrap_or("")
            ),
        );
    }
    match action {
        Action::Create => judge_create(effects, net),
        Action::Drop => judge_drop(effects, net),
    }
}

/// The query's work changed and its whole ratio interval lies on `side` of `bound`.
fn clear(e: &Effect, side: Side, bound: f64) -> bool {
    e.work_changed() && e.ratio.is_some_and(|r| r.side_of(bound) == side)
}

fn judge_create(effects: &[Effect], net: f64) -> (Verdict, String) {
    if !effects.iter().any(|e| e.uses_index) {
        return (
            Verdict::Rejected,
            "the real build is not used by any plan (the planner preferred what it had)".into(),
        );
    }
    let gains: Vec<&Effect> = effects
        .iter()
        .filter(|e| e.uses_index)
        .filter(|e| {
            e.spec_is_read() && e.buffers_moved(true) && clear(e, Side::Below, 1.0 - MIN_GAIN)
        })
        .collect();
    if gains.is_empty() {
        return (
            Verdict::Rejected,
            "no measurable gain: no read it serves is clearly faster with at least 10 % fewer buffers".into(),
        );
    }
    // Writes clearly slower are named; the net over the workload decides.
    let slower: Vec<&Effect> = effects
        .iter()
        .filter(|e| !e.spec_is_read() && clear(e, Side::Above, 1.0))
        .collect();
    if net <= 0.0 {
        let why = if slower.is_empty() {
            "no net saving over the workload"
        } else {
            "its write cost outweighs its gain over the workload"
        };
        return (
            Verdict::Rejected,
            format!("{why} ({net:+.3} ms per 1,000 transactions)"),
        );
    }
    let names: Vec<String> = gains
        .iter()
        .map(|e| format!("{} ({})", e.query, e.subject))
        .collect();
    let writes = if slower.is_empty() {
        "no write measurably slower".to_string()
    } else {
        let w: Vec<&str> = slower.iter().map(|e| e.query.as_str()).collect();
        format!("slower writes: {}", w.join(", "))
    };
    (
        Verdict::Recommended,
        format!(
            "faster: {}; {writes}; net {net:+.3} ms per 1,000 transactions",
            names.join(", ")
        ),
    )
}

fn judge_drop(effects: &[Effect], net: f64) -> (Verdict, String) {
    let loss = effects.iter().find(|e| {
        e.spec_is_read() && e.buffers_moved(false) && clear(e, Side::Above, 1.0 + MIN_GAIN)
    });
    if let Some(e) = loss {
        return (
            Verdict::Rejected,
            format!("{} ({}) is clearly slower without it", e.query, e.subject),
        );
    }
    // Buffers per write are deterministic: fewer index pages touched is the evidence
    // that survives the machine's noise (one execution's WAL carries full-page images).
    let lighter: Vec<&str> = effects
        .iter()
        .filter(|e| !e.spec_is_read())
        .filter(|e| match (&e.work_without, &e.work_with) {
            (Some(a), Some(b)) => b.shared_buffers() < a.shared_buffers(),
            _ => false,
        })
        .map(|e| e.query.as_str())
        .collect();
    if lighter.is_empty() {
        return (
            Verdict::Rejected,
            "no write of the workload is lighter without it".into(),
        );
    }
    (
        Verdict::Recommended,
        format!(
            "no read clearly slower; lighter writes: {} ({net:+.3} ms per 1,000 transactions)",
            lighter.join(", ")
        ),
    )
}

impl Effect {
    fn spec_is_read(&self) -> bool {
        self.kind != crate::catalog::Kind::Write
    }

    /// The buffers differ with the change. A plan that only swaps one index for another
    /// over the same pages is not less work: two A/A runs disagreed on exactly those
    /// (6 → 6 buffers, ×0.86 in one run and ×0.99 in the other).
    fn work_changed(&self) -> bool {
        self.buffers().is_some_and(|(a, b)| a != b)
    }

    /// Buffers without and with the change.
    fn buffers(&self) -> Option<(u64, u64)> {
        match (&self.work_without, &self.work_with) {
            (Some(a), Some(b)) => Some((a.shared_buffers(), b.shared_buffers())),
            _ => None,
        }
    }

    /// The buffers fell (`fell`) or rose by at least [`MIN_BUFFER_CHANGE`] with the change.
    fn buffers_moved(&self, fell: bool) -> bool {
        self.buffers().is_some_and(|(a, b)| {
            let (a, b) = (a as f64, b as f64);
            if fell {
                b <= a * (1.0 - MIN_BUFFER_CHANGE)
            } else {
                b >= a * (1.0 + MIN_BUFFER_CHANGE)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Kind;
    use crate::latency::LatencySummary;
    use crate::measure::engine::Work;
    use crate::stats::Interval;

    fn effect(kind: Kind, ratio: (f64, f64, f64), buffers: (u64, u64), uses_index: bool) -> Effect {
        let work = |b: u64, shape: &str| Work {
            shared_hit: b,
            shape: vec![shape.to_string()],
            ..Default::default()
        };
        Effect {
            query: if kind == Kind::Read {
                "a_read"
            } else {
                "a_write"
            }
            .into(),
            subject: "heavy".into(),
            kind,
            per_1000: 100.0,
            without: Some(LatencySummary {
                mean_ms: 1.0,
                p50_ms: 1.0,
                ..Default::default()
            }),
            with: None,
            ratio: Some(Interval {
                estimate: ratio.0,
                low: ratio.1,
                high: ratio.2,
            }),
            side: None,
            work_without: Some(work(buffers.0, "Seq Scan")),
            work_with: Some(work(
                buffers.1,
                if uses_index { "Index Scan" } else { "Seq Scan" },
            )),
            uses_index,
            rounds: Default::default(),
            error: None,
        }
    }

    fn net(effects: &[Effect]) -> f64 {
        effects
            .iter()
            .filter(|e| e.work_changed())
            .map(|e| e.per_1000 * e.saved_ms())
            .sum()
    }

    #[test]
    fn a_clear_read_gain_is_recommended_and_unmeasurable_or_outweighed_ones_are_not() {
        let gain = effect(Kind::Read, (0.5, 0.45, 0.55), (30, 5), true);
        let (v, why) = judge(
            Action::Create,
            std::slice::from_ref(&gain),
            net(std::slice::from_ref(&gain)),
        );
        assert_eq!(v, Verdict::Recommended, "{why}");
        // The planner liked it, the real build is used, but the time is no different.
        let flat = effect(Kind::Read, (0.98, 0.93, 1.03), (30, 29), true);
        let (v, why) = judge(
            Action::Create,
            std::slice::from_ref(&flat),
            net(std::slice::from_ref(&flat)),
        );
        assert_eq!(v, Verdict::Rejected);
        assert!(why.contains("no measurable gain"), "{why}");
        // Clearly faster but over the same pages (another index, same buffers): noise.
        let swap = effect(Kind::Read, (0.86, 0.83, 0.88), (6, 6), true);
        let (v, why) = judge(Action::Create, std::slice::from_ref(&swap), 10.0);
        assert_eq!(v, Verdict::Rejected, "{why}");
        // A small read gain on a rare query, a clearly slower hot write.
        let mut rare = gain.clone();
        rare.per_1000 = 1.0;
        let mut write = effect(Kind::Write, (1.5, 1.4, 1.6), (10, 14), false);
        write.per_1000 = 500.0;
        let both = [rare, write];
        let (v, why) = judge(Action::Create, &both, net(&both));
        assert_eq!(v, Verdict::Rejected);
        assert!(why.contains("write cost outweighs"), "{why}");
        // Not used by the real planner at all.
        let unused = effect(Kind::Read, (0.5, 0.45, 0.55), (30, 30), false);
        let (v, _) = judge(Action::Create, &[unused], 0.0);
        assert_eq!(v, Verdict::Rejected);
    }

    #[test]
    fn a_drop_needs_lighter_writes_and_no_read_clearly_slower() {
        let write = effect(Kind::Write, (0.99, 0.95, 1.03), (10, 9), false);
        let read_same = effect(Kind::Read, (1.3, 1.2, 1.4), (5, 5), false);
        // Same work on the read: its time difference is noise and does not block the drop.
        let (v, why) = judge(Action::Drop, &[write.clone(), read_same], 1.0);
        assert_eq!(v, Verdict::Recommended, "{why}");
        let read_slower = effect(Kind::Read, (1.3, 1.2, 1.4), (5, 40), false);
        let (v, _) = judge(Action::Drop, &[write.clone(), read_slower], 1.0);
        assert_eq!(v, Verdict::Rejected);
        let same_write = effect(Kind::Write, (0.9, 0.85, 0.95), (10, 10), false);
        let (v, _) = judge(Action::Drop, &[same_write], 1.0);
        assert_eq!(v, Verdict::Rejected);
    }
}
