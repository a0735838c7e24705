//! The measurement matrix: app queries × subjects × modes, in trials. In each trial every
//! policy set is applied in turn; within a (query, subject) block the modes run interleaved
//! round-robin with bypass, so each trial yields one overhead ratio per mode measured side
//! by side on the same connection, data and parameters.

use super::evidence;
use super::types::{ModeRun, Ratio, RlsQuery, RlsSubject};
use super::RlsOptions;
use crate::auth::Principal;
use crate::catalog::QuerySpec;
use crate::interrupt;
use crate::measure::exec::{self, RequestContext};
use crate::measure::latency::Latency;
use crate::params::ParamValue;
use crate::plan;
use crate::schema;
use anyhow::{Context, Result};
use sqlx::postgres::PgConnection;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;
use uuid::Uuid;

pub const BYPASS: &str = "bypass";

pub struct Subject {
    pub label: String,
    pub user: Uuid,
}

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

#[derive(Default)]
struct Acc {
    lat: Latency,
    ratios: Vec<f64>,
    rows: Option<i64>,
    digest: Option<String>,
    no_claims_rows: Option<i64>,
    plan: Option<plan::PlanSummary>,
    plan_file: Option<String>,
    error: Option<String>,
    probed: bool,
}

struct Mode {
    name: String,
    /// The catalog SQL with this mode's tag (its own prepared statement).
    sql: String,
    who: Principal,
    rls: bool,
}

/// Everything one matrix needs besides the connection.
pub struct Matrix<'a> {
    pub opts: &'a RlsOptions,
    pub specs: &'a [&'a QuerySpec],
    pub subjects: &'a [Subject],
    /// Parameters per query, per subject.
    pub drawn: &'a [Vec<Vec<ParamValue>>],
    pub sets: &'a [String],
    pub ctx: &'a RequestContext,
    pub out_dir: &'a Path,
    /// Directory under plans/rls/ for the raw plans (the index strategy).
    pub label: &'a str,
    /// Appended to each statement per mode (`{mode}`): see scenarios/rls.toml.
    pub tag: &'a str,
}

impl Matrix<'_> {
    pub async fn run(&self, conn: &mut PgConnection) -> Result<Vec<RlsQuery>> {
        let mut accs: HashMap<(usize, usize, String), Acc> = HashMap::new();
        for trial in 0..self.opts.trials {
            for set in self.sets {
                interrupt::check()?;
                schema::set_policies(conn, set).await?;
                eprintln!(
                    "  rls: trial {}/{} · policies {set} · indexes {}",
                    trial + 1,
                    self.opts.trials,
                    self.label
                );
                for (qi, spec) in self.specs.iter().enumerate() {
                    if !applies(set, spec) {
                        continue;
                    }
                    for si in 0..self.subjects.len() {
                        interrupt::check()?;
                        self.block(conn, &mut accs, qi, si, set).await?;
                    }
                }
            }
        }
        Ok(self.collect(accs))
    }

    fn modes(&self, spec: &QuerySpec, set: &str, user: Uuid) -> Vec<Mode> {
        let tagged = |sql: &str, mode: &str| format!("{sql}{}", self.tag.replace("{mode}", mode));
        let who = if self.opts.claims_unset {
            Principal::NoClaims
        } else {
            Principal::User(user)
        };
        let mut modes = vec![
            Mode {
                name: BYPASS.into(),
                sql: tagged(&spec.sql, BYPASS),
                who: Principal::Service,
                rls: false,
            },
            Mode {
                name: mode_name(set, false),
                sql: tagged(&spec.sql, &mode_name(set, false)),
                who: who.clone(),
                rls: true,
            },
        ];
        if let Some(p) = &spec.sql_policy_only {
            modes.push(Mode {
                name: mode_name(set, true),
                sql: tagged(p, &mode_name(set, true)),
                who,
                rls: true,
            });
        }
        modes
    }

    async fn block(
        &self,
        conn: &mut PgConnection,
        accs: &mut HashMap<(usize, usize, String), Acc>,
        qi: usize,
        si: usize,
        set: &str,
    ) -> Result<()> {
        let spec = self.specs[qi];
        let subject = &self.subjects[si];
        let params = &self.drawn[qi][si];
        let modes = self.modes(spec, set, subject.user);
        for m in &modes {
            let acc = accs.entry((qi, si, m.name.clone())).or_default();
            if !acc.probed {
                acc.probed = true;
                if let Err(e) = self.probe(conn, spec, subject, params, m, acc).await {
                    acc.error = Some(format!("{e:#}"));
                }
            }
        }
        let live: Vec<&Mode> = modes
            .iter()
            .filter(|m| accs[&(qi, si, m.name.clone())].error.is_none())
            .collect();
        if live.is_empty() {
            return Ok(());
        }
        let mut failed: HashMap<String, String> = HashMap::new();
        for m in &live {
            for _ in 0..self.opts.warmup {
                if let Err(e) =
                    exec::timed(conn, spec, &m.sql, params, &m.who, self.ctx, false).await
                {
                    failed.insert(m.name.clone(), format!("{e:#}"));
                    break;
                }
            }
        }
        let mut block: Vec<Latency> = live.iter().map(|_| Latency::new()).collect();
        let started = Instant::now();
        'runs: for i in 0..self.opts.runs {
            for j in 0..live.len() {
                // Rotate the order so no mode always follows the same one.
                let k = (i + j) % live.len();
                let m = live[k];
                if failed.contains_key(&m.name) {
                    continue;
                }
                match exec::timed(conn, spec, &m.sql, params, &m.who, self.ctx, false).await {
                    Ok((elapsed, _)) => block[k].record(elapsed),
                    Err(e) => {
                        failed.insert(m.name.clone(), format!("{e:#}"));
                    }
                }
            }
            if i >= 2 && started.elapsed() > self.opts.budget {
                break 'runs;
            }
        }
        let bypass_p50 = live
            .iter()
            .position(|m| m.name == BYPASS)
            .filter(|k| !block[*k].is_empty())
            .map(|k| block[k].percentile_ms(50.0));
        for (k, m) in live.iter().enumerate() {
            let acc = accs
                .get_mut(&(qi, si, m.name.clone()))
                .context("mode accumulator")?;
            if let Some(e) = failed.remove(&m.name) {
                acc.error = Some(e);
            }
            acc.lat.merge(&block[k]);
            if m.name != BYPASS && !block[k].is_empty() {
                if let Some(b) = bypass_p50.filter(|b| *b > 0.0) {
                    acc.ratios.push(block[k].percentile_ms(50.0) / b);
                }
            }
        }
        Ok(())
    }

    /// Once per (query, subject, mode): the plan, the rows, and (under RLS) the rows seen
    /// without claims.
    async fn probe(
        &self,
        conn: &mut PgConnection,
        spec: &QuerySpec,
        subject: &Subject,
        params: &[ParamValue],
        m: &Mode,
        acc: &mut Acc,
    ) -> Result<()> {
        if spec.is_read() {
            let (rows, digest) = exec::digest(conn, &m.sql, params, &m.who, self.ctx).await?;
            acc.rows = Some(rows);
            acc.digest = Some(digest);
            if m.rls && m.who != Principal::NoClaims {
                let (rows, _) =
                    exec::digest(conn, &m.sql, params, &Principal::NoClaims, self.ctx).await?;
                acc.no_claims_rows = Some(rows);
            }
        } else {
            match exec::timed(conn, spec, &m.sql, params, &m.who, self.ctx, false).await {
                Ok((_, rows)) => acc.rows = Some(rows as i64),
                // The policy refused the write (e.g. WITH CHECK with no claims): nothing written,
                // and nothing to plan or time.
                Err(e) if m.rls && sqlstate(&e).as_deref() == Some("42501") => {
                    acc.rows = Some(0);
                    acc.error = Some(format!("{e:#}"));
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        let raw = exec::explain(conn, &m.sql, params, &m.who, self.ctx)
            .await
            .context("EXPLAIN")?;
        let rel = format!(
            "plans/rls/{}/{}.{}.{}.json",
            self.label, spec.name, subject.label, m.name
        );
        let path = self.out_dir.join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::results::write_atomic(&path, serde_json::to_string_pretty(&raw)?.as_bytes())?;
        acc.plan_file = Some(rel);
        acc.plan = Some(plan::summarize(&raw)?);
        Ok(())
    }

    fn collect(&self, mut accs: HashMap<(usize, usize, String), Acc>) -> Vec<RlsQuery> {
        let mut out = Vec::new();
        for (qi, spec) in self.specs.iter().enumerate() {
            let mut q = RlsQuery {
                name: spec.name.clone(),
                description: spec.description.clone(),
                kind: spec.kind.name().into(),
                tags: spec.tags.clone(),
                subjects: Vec::new(),
            };
            for (si, subject) in self.subjects.iter().enumerate() {
                let mut names = vec![BYPASS.to_string()];
                for set in self.sets {
                    if applies(set, spec) {
                        names.push(mode_name(set, false));
                        if spec.sql_policy_only.is_some() {
                            names.push(mode_name(set, true));
                        }
                    }
                }
                let mut runs = Vec::new();
                for name in names {
                    let Some(acc) = accs.remove(&(qi, si, name.clone())) else {
                        continue;
                    };
                    runs.push(to_run(name, acc));
                }
                mark_rows(&mut runs, spec.is_read());
                q.subjects.push(RlsSubject {
                    subject: subject.label.clone(),
                    user: subject.user.to_string(),
                    params: self.drawn[qi][si].iter().map(ParamValue::display).collect(),
                    modes: runs,
                });
            }
            out.push(q);
        }
        out
    }
}

fn sqlstate(e: &anyhow::Error) -> Option<String> {
    e.downcast_ref::<sqlx::Error>()
        .and_then(|e| e.as_database_error())
        .and_then(|d| d.code().map(|c| c.to_string()))
}

fn to_run(mode: String, acc: Acc) -> ModeRun {
    let overhead = (!acc.ratios.is_empty()).then(|| ratio(&acc.ratios));
    let evidence = acc.plan.as_ref().map(evidence::of_plan);
    ModeRun {
        mode,
        latency: (!acc.lat.is_empty()).then(|| acc.lat.summary()),
        overhead,
        rows: acc.rows,
        digest: acc.digest,
        same_rows: None,
        no_claims_rows: acc.no_claims_rows,
        plan: acc.plan,
        evidence,
        plan_file: acc.plan_file,
        config_error: None,
        error: acc.error,
    }
}

pub fn ratio(values: &[f64]) -> Ratio {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Ratio {
        median,
        min: v[0],
        max: v[n - 1],
        per_trial: values.to_vec(),
    }
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
