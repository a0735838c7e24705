//! The explain stage's measurements on the strategies' copies: index build and size per
//! copy, then per query and user every strategy interleaved by the engine, then the WAL
//! per created story.

use super::{ExplainOptions, ExplainSection, MeasureError, StrategyFigures, StrategyRun};
use crate::catalog::{Kind, QuerySpec, Sampler};
use crate::interrupt;
use crate::measure::engine::{self, Outcome, SqlArm, SqlRunner};
use crate::measure::exec::{self, principal_for, RequestContext};
use crate::params::{rng_for, ParamValue, Subject, SubjectUser};
use crate::pristine::PristineCopy;
use crate::schema;
use crate::stats::{Interval, Side};
use anyhow::{Context, Result};
use sqlx::postgres::PgConnection;
use sqlx::AssertSqlSafe;
use std::path::Path;
use std::time::Instant;

pub(super) struct Measure<'a> {
    pub opts: &'a ExplainOptions,
    pub specs: &'a [&'a QuerySpec],
    pub subjects: &'a [SubjectUser],
    /// Per query: (subject index, parameters).
    pub drawn: &'a [Vec<(usize, Vec<ParamValue>)>],
    pub ctx: &'a RequestContext,
    pub out_dir: &'a Path,
}

impl Measure<'_> {
    pub async fn all(&self, copies: &[PristineCopy], section: &mut ExplainSection) -> Result<()> {
        let mut conns = Vec::new();
        for (copy, strategy) in copies.iter().zip(&self.opts.strategies) {
            let mut conn = copy.target().connect().await?;
            let started = Instant::now();
            schema::set_indexes(&mut conn, strategy).await?;
            let build_seconds = started.elapsed().as_secs_f64();
            let index_bytes: i64 = sqlx::query_scalar(AssertSqlSafe(
                crate::params::queries().secondary_index_bytes.clone(),
            ))
            .fetch_one(&mut conn)
            .await?;
            crate::say!(
                "  explain: strategy {strategy} on its own copy ({:.1} s; indexes {} built in {build_seconds:.1} s)",
                copy.seconds,
                crate::format::human_bytes(index_bytes as f64)
            );
            section.strategies.push(StrategyFigures {
                name: strategy.clone(),
                index_bytes: index_bytes as u64,
                build_seconds,
                copy_seconds: Some(copy.seconds),
                ..Default::default()
            });
            conns.push(conn);
        }
        // The index builds' dirty pages and WAL written out before any timing.
        for copy in copies {
            crate::pristine::quiesce(copy.target()).await;
        }
        let mut refs: Vec<&mut PgConnection> = conns.iter_mut().collect();
        let mut write_means: Vec<Vec<f64>> = vec![Vec::new(); refs.len()];
        for (qi, spec) in self.specs.iter().enumerate() {
            interrupt::check()?;
            for (k, (si, params)) in self.drawn[qi].iter().enumerate() {
                let subject = &self.subjects[*si];
                let runs = self
                    .compare(&mut refs, spec, subject, params, section, qi, k)
                    .await;
                if runs.iter().any(|r| r.error.is_some()) {
                    crate::measure::server_still_there(&mut refs)
                        .await
                        .map_err(|e| {
                            e.context(format!(
                                "explain stopped at {} ({qi} of {} queries measured)",
                                spec.name,
                                self.specs.len()
                            ))
                        })?;
                }
                for (i, run) in runs.into_iter().enumerate() {
                    if let Some(e) = &run.error {
                        section.errors.push(MeasureError {
                            query: spec.name.clone(),
                            strategy: run.strategy.clone(),
                            subject: subject.subject,
                            error: e.clone(),
                        });
                    }
                    if spec.kind == Kind::Write && subject.subject == Subject::Heavy {
                        if let Some(l) = &run.latency {
                            write_means[i].push(l.mean_ms);
                        }
                    }
                    section.queries[qi].subjects[k].by_strategy.push(run);
                }
            }
            crate::say!(
                "  explain: {} measured on {} strategies",
                spec.name,
                refs.len()
            );
        }
        for (i, figures) in section.strategies.iter_mut().enumerate() {
            let means = &write_means[i];
            figures.write_mean_ms =
                (!means.is_empty()).then(|| means.iter().sum::<f64>() / means.len() as f64);
            figures.write_ops_per_second = figures.write_mean_ms.map(|m| 1000.0 / m.max(1e-6));
        }
        for (qi, spec) in self.specs.iter().enumerate() {
            if !(spec.has_tag("create_story") && spec.kind == Kind::Write) {
                continue;
            }
            for (i, conn) in refs.iter_mut().enumerate() {
                section.strategies[i].wal_bytes_per_story = self
                    .wal(conn, spec, &self.drawn[qi])
                    .await
                    .map_err(|e| tracing::warn!("WAL measurement of {}: {e:#}", spec.name))
                    .ok();
            }
        }
        Ok(())
    }

    /// Every strategy on one query and user: digests, then the engine's rounds.
    #[allow(clippy::too_many_arguments)]
    async fn compare(
        &self,
        conns: &mut [&mut PgConnection],
        spec: &QuerySpec,
        subject: &SubjectUser,
        params: &[ParamValue],
        section: &mut ExplainSection,
        qi: usize,
        k: usize,
    ) -> Vec<StrategyRun> {
        let who = principal_for(spec, subject.user);
        let strategies = &self.opts.strategies;
        let mut runs: Vec<StrategyRun> = strategies
            .iter()
            .map(|s| StrategyRun {
                strategy: s.clone(),
                ..Default::default()
            })
            .collect();
        if spec.is_read() {
            for (i, run) in runs.iter_mut().enumerate() {
                match exec::digest(conns[i], &spec.sql, params, &who, self.ctx).await {
                    Ok((rows, digest)) => {
                        run.rows = Some(rows);
                        run.digest = Some(digest);
                    }
                    Err(e) => run.error = Some(format!("{e:#}")),
                }
            }
        }
        let arms: Vec<SqlArm> = (0..strategies.len())
            .map(|i| SqlArm {
                conn: i,
                spec,
                sql: &spec.sql,
                params,
                who: who.clone(),
                ctx: self.ctx,
            })
            .collect();
        let versus: Vec<Option<usize>> = (0..arms.len()).map(|i| (i > 0).then_some(0)).collect();
        let out = engine::measure(
            &mut SqlRunner { conns, arms: &arms },
            &versus,
            &self.opts.engine(),
        )
        .await;
        for (i, (run, arm)) in runs.iter_mut().zip(&out.arms).enumerate() {
            if run.error.is_some() {
                continue;
            }
            if !arm.latency.is_empty() {
                run.latency = Some(arm.latency.summary());
            }
            if let Some(raw) = &arm.raw_plan {
                // A strategy given as a file is named by its path: one directory level.
                let rel = format!(
                    "plans/{}/{}.{}.json",
                    run.strategy.replace('/', "_"),
                    spec.name,
                    subject.subject
                );
                if let Err(e) = engine::save_plan(self.out_dir, &rel, raw) {
                    run.error = Some(format!("{e:#}"));
                }
                run.plan_file = Some(rel);
            }
            run.plan = arm.plan.clone();
            run.work = arm.work.clone();
            if !spec.is_read() {
                run.rows = arm.rows.map(|r| r as i64);
            }
            run.ratio_vs_baseline = if i == 0 { None } else { arm.ratio };
            run.side = arm.side;
            run.work_ratio = arm.work_ratio.clone();
            run.error = arm.error.clone();
        }
        let cmp = &mut section.queries[qi].subjects[k];
        cmp.rounds = Some(out.rounds.clone());
        if let Some((fastest, clear)) = winner(&out) {
            cmp.fastest = Some(strategies[fastest].clone());
            cmp.winner = clear.then(|| strategies[fastest].clone());
            cmp.fastest_speedup = if fastest == 0 {
                Some(Interval {
                    estimate: 1.0,
                    low: 1.0,
                    high: 1.0,
                })
            } else {
                out.paired(0, fastest)
            };
        }
        runs
    }

    /// WAL per created story on one strategy's copy: a batch of fresh create_story
    /// executions for the first subject, rolled back.
    async fn wal(
        &self,
        conn: &mut PgConnection,
        spec: &QuerySpec,
        drawn: &[(usize, Vec<ParamValue>)],
    ) -> Result<f64> {
        let (si, base) = drawn.first().context("no parameters drawn")?;
        let subject = &self.subjects[*si];
        let rng = &mut rng_for(self.opts.seed, &format!("{}:wal", spec.name));
        // Fresh ids per execution: the drawn values, with the unique samplers renewed.
        let batch: Vec<Vec<ParamValue>> = (0..self.opts.write_batch.max(1))
            .map(|_| {
                spec.params
                    .iter()
                    .zip(base)
                    .map(|(s, v)| match s {
                        Sampler::NewUuid => ParamValue::Uuid(
                            uuid::Builder::from_random_bytes(rand::RngExt::random(rng)).into_uuid(),
                        ),
                        Sampler::RequestId => ParamValue::Text(format!(
                            "req_sb_{:032x}",
                            rand::RngExt::random::<u128>(rng)
                        )),
                        _ => v.clone(),
                    })
                    .collect()
            })
            .collect();
        let who = principal_for(spec, subject.user);
        exec::wal_per_execution(conn, &spec.sql, &batch, &who, self.ctx).await
    }
}

/// Smallest speed-up a clear winner must show over every other strategy, at the low end of
/// its paired interval. Intervals from one run miss the drift between copies and runs: an
/// A/A pair of tiny explain runs (same seed) contradicted itself on 2 of 35 queries whose
/// winners led by under 5 %.
const MIN_CLEAR_EFFECT: f64 = 0.05;

/// The arm with the lowest paired ratio to arm 0 (arm 0 itself counts as 1), and whether
/// it is clearly faster than every other arm: each paired interval other / it above
/// 1 + [`MIN_CLEAR_EFFECT`], and each other arm doing different work (plan shape or buffers).
pub fn winner(out: &Outcome) -> Option<(usize, bool)> {
    let estimate = |i: usize| {
        if i == 0 {
            Some(1.0)
        } else {
            out.arms[i].ratio.map(|r| r.estimate)
        }
    };
    let live: Vec<usize> = (0..out.arms.len())
        .filter(|i| out.arms[*i].error.is_none() && estimate(*i).is_some())
        .collect();
    let fastest = *live
        .iter()
        .min_by(|a, b| estimate(**a).unwrap().total_cmp(&estimate(**b).unwrap()))?;
    // An index strategy acts only through the plan: where the work (plan shape and
    // buffers) is the same, a time difference is the copies' or connections' noise.
    let same_work = |a: usize, b: usize| match (&out.arms[a].work, &out.arms[b].work) {
        (Some(x), Some(y)) => x.shape == y.shape && x.shared_buffers() == y.shared_buffers(),
        _ => false,
    };
    let clear = live.len() == out.arms.len()
        && live.len() > 1
        && live.iter().filter(|i| **i != fastest).all(|i| {
            !same_work(*i, fastest)
                && out
                    .paired(*i, fastest)
                    .is_some_and(|r| r.side_of(1.0 + MIN_CLEAR_EFFECT) == Side::Above)
        });
    Some((fastest, clear))
}
