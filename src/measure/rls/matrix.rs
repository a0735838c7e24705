//! The measurement matrix: app queries × subjects × modes. Every policy set lives on its
//! own pristine copy of the dataset, so within a (query, subject) block bypass and every
//! mode of every set run interleaved by the measurement engine: each mode's overhead is a
//! paired ratio to bypass with its interval, beside the work ratio from the plans.

use super::evidence;
use super::types::{ModeRun, Ratio, RlsQuery, RlsSubject};
use super::RlsOptions;
use crate::auth::Principal;
use crate::catalog::QuerySpec;
use crate::interrupt;
use crate::measure::engine::{self, ArmOutcome, SqlArm, SqlRunner};
use crate::measure::exec::{self, RequestContext};
use crate::params::{ParamValue, SubjectUser};
use crate::pristine::PristineCopy;
use crate::schema;
use crate::target::Target;
use anyhow::Result;
use sqlx::postgres::PgConnection;
use std::path::Path;
use uuid::Uuid;

pub const BYPASS: &str = "bypass";

/// The name of a mode: `bypass`, `<set>` (explicit filter) or `<set>_policy_only`.
pub fn mode_name(set: &str, policy_only: bool) -> String {
    if policy_only {
        format!("{set}_policy_only")
    } else {
        set.to_string()
    }
}

/// Whether a policy set is measured on a query: `definer` only differs from `initplan`
/// on the child tables, so it is measured on the queries that read them.
pub fn applies(set: &str, spec: &QuerySpec) -> bool {
    set != "definer" || spec.has_tag("child_tables")
}

/// What the probe of one mode found before the rounds.
#[derive(Default)]
struct Probe {
    rows: Option<i64>,
    digest: Option<String>,
    no_claims_rows: Option<i64>,
    error: Option<String>,
}

struct Mode {
    name: String,
    /// The catalog SQL with this mode's tag (its own prepared statement).
    sql: String,
    who: Principal,
    rls: bool,
    /// The copy it runs on (bypass: the first set's).
    conn: usize,
}

/// Everything one matrix needs besides the connections.
pub struct Matrix<'a> {
    pub opts: &'a RlsOptions,
    pub specs: &'a [&'a QuerySpec],
    pub subjects: &'a [SubjectUser],
    /// Parameters per query, per subject.
    pub drawn: &'a [Vec<Vec<ParamValue>>],
    /// Policy sets, one per connection (each a copy with that set applied).
    pub sets: &'a [String],
    /// Sets left out of this matrix (their copies stay connected).
    pub skip: &'a [String],
    pub ctx: &'a RequestContext,
    pub out_dir: &'a Path,
    /// Directory under plans/rls/ for the raw plans (the index strategy).
    pub label: &'a str,
    /// Appended to each statement per mode (`{mode}`): see scenarios/rls.toml.
    pub tag: &'a str,
}

impl Matrix<'_> {
    /// `conns[i]` is the copy carrying `sets[i]`.
    pub async fn run(&self, conns: &mut [&mut PgConnection]) -> Result<Vec<RlsQuery>> {
        let mut out = Vec::new();
        for (qi, spec) in self.specs.iter().enumerate() {
            crate::say!("  rls: {} · indexes {}", spec.name, self.label);
            let mut q = RlsQuery {
                name: spec.name.clone(),
                description: spec.description.clone(),
                kind: spec.kind,
                tags: spec.tags.clone(),
                subjects: Vec::new(),
            };
            for (si, subject) in self.subjects.iter().enumerate() {
                interrupt::check()?;
                let mut runs = self.block(conns, qi, si).await;
                mark_rows(&mut runs, spec.is_read());
                q.subjects.push(RlsSubject {
                    subject: subject.subject,
                    user: subject.user.to_string(),
                    params: self.drawn[qi][si].iter().map(ParamValue::display).collect(),
                    modes: runs,
                });
            }
            out.push(q);
        }
        Ok(out)
    }

    fn modes(&self, spec: &QuerySpec, user: Uuid) -> Vec<Mode> {
        let tagged = |sql: &str, mode: &str| {
            format!(
                "{sql}{}",
                crate::sql_files::fill(self.tag, &[("mode", mode)])
            )
        };
        let who = if self.opts.claims_unset {
            Principal::NoClaims
        } else {
            Principal::User(user)
        };
        let mut modes = vec![Mode {
            name: BYPASS.into(),
            sql: tagged(&spec.sql, BYPASS),
            who: Principal::Service,
            rls: false,
            conn: 0,
        }];
        for (conn, set) in self.sets.iter().enumerate() {
            if !applies(set, spec) || self.skip.contains(set) {
                continue;
            }
            modes.push(Mode {
                name: mode_name(set, false),
                sql: tagged(&spec.sql, &mode_name(set, false)),
                who: who.clone(),
                rls: true,
                conn,
            });
            if let Some(p) = &spec.sql_policy_only {
                modes.push(Mode {
                    name: mode_name(set, true),
                    sql: tagged(p, &mode_name(set, true)),
                    who: who.clone(),
                    rls: true,
                    conn,
                });
            }
        }
        modes
    }

    /// One (query, subject): probe every mode, then run the live ones interleaved.
    async fn block(&self, conns: &mut [&mut PgConnection], qi: usize, si: usize) -> Vec<ModeRun> {
        let spec = self.specs[qi];
        let subject = &self.subjects[si];
        let params = &self.drawn[qi][si];
        let modes = self.modes(spec, subject.user);
        let mut probes = Vec::new();
        for m in &modes {
            let mut p = Probe::default();
            if let Err(e) = self.probe(conns[m.conn], spec, params, m, &mut p).await {
                p.error = Some(format!("{e:#}"));
            }
            probes.push(p);
        }
        let live: Vec<usize> = (0..modes.len())
            .filter(|i| probes[*i].error.is_none())
            .collect();
        let arms: Vec<SqlArm> = live
            .iter()
            .map(|i| SqlArm {
                conn: modes[*i].conn,
                spec,
                sql: &modes[*i].sql,
                params,
                who: modes[*i].who.clone(),
                ctx: self.ctx,
            })
            .collect();
        let bypass = live.iter().position(|i| *i == 0);
        let versus: Vec<Option<usize>> = live
            .iter()
            .map(|i| if *i == 0 { None } else { bypass })
            .collect();
        let out = if arms.is_empty() {
            Default::default()
        } else {
            let opts = self.opts.engine();
            engine::measure(&mut SqlRunner { conns, arms: &arms }, &versus, &opts).await
        };
        let mut arm_of = vec![None; modes.len()];
        for (k, i) in live.iter().enumerate() {
            arm_of[*i] = out.arms.get(k);
        }
        modes
            .into_iter()
            .zip(probes)
            .zip(arm_of)
            .map(|((m, p), arm)| self.to_run(spec, subject, m, p, arm, out.rounds.rounds))
            .collect()
    }

    /// Once per (query, subject, mode): the rows, and (under RLS) the rows seen without
    /// claims. A write the policy refuses is recorded as such (nothing to time).
    async fn probe(
        &self,
        conn: &mut PgConnection,
        spec: &QuerySpec,
        params: &[ParamValue],
        m: &Mode,
        p: &mut Probe,
    ) -> Result<()> {
        if spec.is_read() {
            let (rows, digest) = exec::digest(conn, &m.sql, params, &m.who, self.ctx).await?;
            p.rows = Some(rows);
            p.digest = Some(digest);
            if m.rls && m.who != Principal::NoClaims {
                let (rows, _) =
                    exec::digest(conn, &m.sql, params, &Principal::NoClaims, self.ctx).await?;
                p.no_claims_rows = Some(rows);
            }
            return Ok(());
        }
        match exec::timed(conn, spec, &m.sql, params, &m.who, self.ctx, false).await {
            Ok((_, rows)) => p.rows = Some(rows as i64),
            // The policy refused the write (e.g. WITH CHECK with no claims): nothing written.
            Err(e) if m.rls && sqlstate(&e).as_deref() == Some("42501") => {
                p.rows = Some(0);
                p.error = Some(format!("{e:#}"));
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn to_run(
        &self,
        spec: &QuerySpec,
        subject: &SubjectUser,
        m: Mode,
        p: Probe,
        arm: Option<&ArmOutcome>,
        rounds: usize,
    ) -> ModeRun {
        let mut run = ModeRun {
            mode: m.name.clone(),
            rows: p.rows,
            digest: p.digest,
            no_claims_rows: p.no_claims_rows,
            error: p.error,
            ..Default::default()
        };
        let Some(arm) = arm else { return run };
        if !arm.latency.is_empty() {
            run.latency = Some(arm.latency.summary());
        }
        run.overhead = arm.ratio.map(|i| Ratio {
            median: i.estimate,
            min: i.low,
            max: i.high,
            per_trial: Vec::new(),
            interval: Some(i),
            side: arm.side,
            rounds,
        });
        if let Some(raw) = &arm.raw_plan {
            let rel = format!(
                "plans/rls/{}/{}.{}.{}.json",
                self.label, spec.name, subject.subject, m.name
            );
            match engine::save_plan(self.out_dir, &rel, raw) {
                Ok(()) => run.plan_file = Some(rel),
                Err(e) => run.error = Some(format!("{e:#}")),
            }
        }
        run.evidence = arm.plan.as_ref().map(evidence::of_plan);
        run.plan = arm.plan.clone();
        run.work = arm.work.clone();
        run.work_ratio = arm.work_ratio.clone();
        if arm.error.is_some() {
            run.error = arm.error.clone();
        }
        run
    }
}

/// Runs `matrix` (and then `trap`, after switching every copy to the trap's index
/// strategy) on one pristine copy per policy set; the copies are dropped afterwards,
/// whatever happened.
pub async fn on_copies(
    target: &Target,
    matrix: &Matrix<'_>,
    trap: Option<&Matrix<'_>>,
) -> Result<(Vec<RlsQuery>, Vec<RlsQuery>)> {
    let mut copies = Vec::new();
    let made: Result<()> = async {
        for i in 0..matrix.sets.len().max(1) {
            interrupt::check()?;
            let label = format!("rls_{}", matrix.sets.get(i).map_or(BYPASS, String::as_str));
            copies.push(PristineCopy::create(target, &label).await?);
        }
        Ok(())
    }
    .await;
    let outcome = match made {
        Ok(()) => run_on(&copies, matrix, trap).await,
        Err(e) => Err(e),
    };
    for copy in copies {
        if let Err(e) = copy.drop().await {
            tracing::warn!("could not drop a pristine copy: {e:#}");
        }
    }
    outcome
}

async fn run_on(
    copies: &[PristineCopy],
    matrix: &Matrix<'_>,
    trap: Option<&Matrix<'_>>,
) -> Result<(Vec<RlsQuery>, Vec<RlsQuery>)> {
    let mut conns = Vec::new();
    for (i, copy) in copies.iter().enumerate() {
        let mut conn = copy.target().connect().await?;
        if let Some(set) = matrix.sets.get(i) {
            schema::set_policies(&mut conn, set).await?;
        }
        conns.push(conn);
    }
    // The policy switches written out before any timing (as after the copies were made).
    for copy in copies {
        crate::pristine::quiesce(copy.target()).await;
    }
    let mut refs: Vec<&mut PgConnection> = conns.iter_mut().collect();
    let queries = matrix.run(&mut refs).await?;
    let mut trap_queries = Vec::new();
    if let Some(trap) = trap {
        for conn in refs.iter_mut() {
            schema::set_indexes(conn, trap.label).await?;
        }
        // The trap's index builds written out before its timings.
        for copy in copies {
            crate::pristine::quiesce(copy.target()).await;
        }
        trap_queries = trap.run(&mut refs).await?;
    }
    Ok((queries, trap_queries))
}

fn sqlstate(e: &anyhow::Error) -> Option<String> {
    e.downcast_ref::<sqlx::Error>()
        .and_then(|e| e.as_database_error())
        .and_then(|d| d.code().map(|c| c.to_string()))
}

/// Compares every mode's rows with bypass: same rows, or a configuration error (nothing
/// where bypass found rows: the claims never reached the policies).
fn mark_rows(runs: &mut [ModeRun], is_read: bool) {
    let Some(bypass) = runs.iter().find(|r| r.mode == BYPASS).cloned() else {
        return;
    };
    for r in runs.iter_mut().filter(|r| r.mode != BYPASS) {
        let (Some(rows), Some(expected)) = (r.rows, bypass.rows) else {
            continue;
        };
        r.same_rows = Some(if is_read {
            r.digest == bypass.digest
        } else {
            rows == expected
        });
        if rows == 0 && expected > 0 {
            r.config_error = Some(format!(
                "{} no rows where bypass {} {expected}: the policies admitted nothing (the request's \
                 claims did not reach them, auth.uid() is NULL, or they reject this user), so its latency \
                 measures an empty result",
                if is_read { "returned" } else { "affected" },
                if is_read { "returned" } else { "affected" }
            ));
            r.overhead = None;
        }
    }
}
