//! `advise schema --measure`: the schema advisories measured, not only linted. Each fix is
//! made on a second pristine copy and the statements it affects are timed by the
//! measurement engine, interleaved against the copy as it is: bare `auth.uid()` wrapped in a
//! sub-select and OR-ed permissive policies split or scoped (every app catalog query, under
//! its role and claims), an unindexed foreign key indexed (the parent's DELETE, whose check
//! scans the child). Non-leakproof filters under RLS are found from the plans with and
//! without RLS and timed against the bypass. SQL in `schema/advise_lint.toml`.

use super::lint::{file, Rule};
use crate::catalog::{QuerySpec, Role};
use crate::latency::{Latency, LatencySummary};
use crate::measure::engine::{self, EngineOptions, Rounds, Runner, Work, WorkSample};
use crate::measure::exec::{principal_for, RequestContext};
use crate::params::Population;
use crate::pristine::PristineCopy;
use crate::sql_files::sql;
use crate::stats::{Interval, Side};
use crate::target::Target;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Executor};
use std::time::{Duration, Instant};

/// One statement timed with and without one advisory's fix.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdvisoryCost {
    pub rule: Rule,
    /// What was fixed: the tables whose policies changed, or the foreign key.
    pub object: String,
    /// The statements that made the fix on the second copy.
    pub fix: Vec<String>,
    /// The statement timed: a catalog query, or the parent's DELETE.
    pub statement: String,
    pub subject: Option<String>,
    pub as_is: Option<LatencySummary>,
    pub fixed: Option<LatencySummary>,
    /// Paired ratio fixed / as is (below 1: the fix is faster) and where its interval lies.
    pub ratio: Option<Interval>,
    pub side: Option<Side>,
    /// Work beside the time: the statement's plan (for a foreign key, the check's lookup).
    pub work_as_is: Option<Work>,
    pub work_fixed: Option<Work>,
    pub rounds: Rounds,
    pub error: Option<String>,
    /// The plans that explain the advisory (`rls_changes_join_order`: under RLS, bypassing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<String>,
    /// The same statement's work bypassing RLS: the bound a policy fix could reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_bypass: Option<Work>,
}

/// Runs every measurable advisory of the variant on two pristine copies of `target`.
pub async fn measure(
    target: &Target,
    indexes: &str,
    policies: &str,
    opts: &EngineOptions,
    timeout: Duration,
) -> Result<Vec<AdvisoryCost>> {
    let as_is = PristineCopy::create(target, "advise_as_is").await?;
    let fixed = match PristineCopy::create(target, "advise_fixed").await {
        Ok(c) => c,
        Err(e) => {
            drop_copy(as_is).await;
            return Err(e);
        }
    };
    let outcome = on_copies(&as_is, &fixed, indexes, policies, opts, timeout).await;
    drop_copy(as_is).await;
    drop_copy(fixed).await;
    outcome
}

async fn drop_copy(copy: PristineCopy) {
    if let Err(e) = copy.drop().await {
        tracing::warn!("could not drop a pristine copy: {e:#}");
    }
}

async fn on_copies(
    as_is: &PristineCopy,
    fixed: &PristineCopy,
    indexes: &str,
    policies: &str,
    opts: &EngineOptions,
    timeout: Duration,
) -> Result<Vec<AdvisoryCost>> {
    let mut a = as_is.target().connect().await?;
    let mut b = fixed.target().connect().await?;
    for conn in [&mut a, &mut b] {
        crate::schema::set_indexes(conn, indexes).await?;
        crate::schema::set_policies(conn, policies).await?;
    }
    let variant = crate::schema::current_variant(&mut a)
        .await?
        .unwrap_or_default();
    let ctx = RequestContext::new(variant.api_usage, timeout);
    let catalog = crate::catalog::load_default()?;
    let specs: Vec<&QuerySpec> = catalog
        .queries
        .iter()
        .filter(|s| s.role == Role::App)
        .collect();
    let app = app_queries(&mut a, &specs).await?;
    let mut out = non_leakproof(&mut a, &app, &ctx, opts).await?;
    out.extend(super::join_order::measure(&mut a, &mut b, &app, policies, &ctx, opts).await?);
    let q = &file().queries;
    for (rule, query) in [
        (Rule::AuthRlsInitplan, &q.fix_auth_per_row),
        (Rule::MultiplePermissivePolicies, &q.fix_multiple_permissive),
    ] {
        crate::interrupt::check()?;
        let fixes: Vec<(String, String)> = sqlx::query_as(sql(query)).fetch_all(&mut a).await?;
        if fixes.is_empty() {
            continue;
        }
        let mut tables: Vec<String> = fixes.iter().map(|(t, _)| t.clone()).collect();
        tables.dedup();
        let statements: Vec<String> = fixes.into_iter().map(|(_, s)| s).collect();
        let mut tx = b.begin().await?;
        for s in &statements {
            tx.execute(AssertSqlSafe(s.clone())).await?;
        }
        tx.commit().await?;
        let measured =
            policy_reads(&mut a, &mut b, rule, &tables, &statements, &app, &ctx, opts).await;
        // Back to the variant as linted before the next fix.
        crate::schema::set_policies(&mut b, policies).await?;
        out.extend(measured?);
    }
    out.extend(foreign_keys(&mut a, &mut b, opts, &ctx).await?);
    Ok(out)
}

/// An app catalog query with the heaviest user's parameters.
pub(super) struct AppQuery<'a> {
    pub(super) spec: &'a QuerySpec,
    pub(super) params: Vec<crate::params::ParamValue>,
    pub(super) who: crate::auth::Principal,
    pub(super) subject: String,
}

async fn app_queries<'a>(
    a: &mut PgConnection,
    specs: &[&'a QuerySpec],
) -> Result<Vec<AppQuery<'a>>> {
    let dataset = crate::seed::require_complete(a).await?;
    let population = Population::load(a, dataset.anchor).await?;
    let subjects = crate::measure::explain::subjects(&population);
    let drawn =
        crate::measure::explain::draw_parameters(a, specs, &subjects[..1], &population, 42).await?;
    Ok(specs
        .iter()
        .zip(drawn)
        .filter_map(|(spec, mut params)| {
            let (si, params) = params.drain(..).next()?;
            Some(AppQuery {
                spec,
                params,
                who: principal_for(spec, subjects[si].user),
                subject: subjects[si].subject.name().to_string(),
            })
        })
        .collect())
}

/// Every app catalog query for the heaviest user, as it is and with the policies fixed.
#[allow(clippy::too_many_arguments)]
async fn policy_reads(
    a: &mut PgConnection,
    b: &mut PgConnection,
    rule: Rule,
    tables: &[String],
    fix: &[String],
    app: &[AppQuery<'_>],
    ctx: &RequestContext,
    opts: &EngineOptions,
) -> Result<Vec<AdvisoryCost>> {
    let mut out = Vec::new();
    for q in app {
        crate::interrupt::check()?;
        let mut conns: [&mut PgConnection; 2] = [&mut *a, &mut *b];
        let arms = [(0, q.who.clone()), (1, q.who.clone())];
        let o = engine::two_arms(&mut conns, arms, q.spec, &q.params, ctx, opts).await;
        out.push(cost(
            rule,
            tables.join(", "),
            fix.to_vec(),
            q.spec.name.clone(),
            Some(q.subject.clone()),
            o,
        ));
    }
    Ok(out)
}

/// App reads whose filter uses a non-leakproof operator that is an index condition without
/// RLS (as the service role) but a Filter under it (PostgreSQL keeps such a qual above the
/// policy's): shown from the two plans, then timed under RLS (`as_is`) against the same
/// statement bypassing it (`fixed`: what a leakproof form could at best reach).
async fn non_leakproof(
    a: &mut PgConnection,
    app: &[AppQuery<'_>],
    ctx: &RequestContext,
    opts: &EngineOptions,
) -> Result<Vec<AdvisoryCost>> {
    use crate::measure::rls::evidence::of_plan;
    let mut out = Vec::new();
    for q in app.iter().filter(|q| q.spec.is_read()) {
        crate::interrupt::check()?;
        let service = crate::auth::Principal::Service;
        let evidence = async |conn: &mut PgConnection, who: &crate::auth::Principal| -> Result<_> {
            let raw = crate::measure::exec::explain(conn, &q.spec.sql, &q.params, who, ctx).await?;
            Ok(of_plan(&crate::plan::summarize(&raw)?))
        };
        let under_rls = evidence(&mut *a, &q.who).await?;
        let bypass = evidence(&mut *a, &service).await?;
        if under_rls.nonleakproof_filter.is_empty() || bypass.nonleakproof_index_cond.is_empty() {
            continue;
        }
        let mut conns: [&mut PgConnection; 1] = [&mut *a];
        let arms = [(0, q.who.clone()), (0, service)];
        let o = engine::two_arms(&mut conns, arms, q.spec, &q.params, ctx, opts).await;
        let mut shown = under_rls.nonleakproof_filter.clone();
        shown.extend(
            bypass
                .nonleakproof_index_cond
                .iter()
                .map(|c| format!("bypassing RLS, {c}")),
        );
        out.push(cost(
            Rule::NonLeakproofUnderRls,
            q.spec.name.clone(),
            shown,
            q.spec.name.clone(),
            Some(q.subject.clone()),
            o,
        ));
    }
    Ok(out)
}

pub(super) fn cost(
    rule: Rule,
    object: String,
    fix: Vec<String>,
    statement: String,
    subject: Option<String>,
    o: engine::Outcome,
) -> AdvisoryCost {
    let summary = |l: &Latency| (!l.is_empty()).then(|| l.summary());
    AdvisoryCost {
        rule,
        object,
        fix,
        statement,
        subject,
        as_is: summary(&o.arms[0].latency),
        fixed: summary(&o.arms[1].latency),
        ratio: o.arms[1].ratio,
        side: o.arms[1].side,
        work_as_is: o.arms[0].work.clone(),
        work_fixed: o.arms[1].work.clone(),
        rounds: o.rounds.clone(),
        error: o.arms.iter().find_map(|a| a.error.clone()),
        plans: Vec::new(),
        work_bypass: None,
    }
}

/// Each single-column foreign key no index leads with: the parent's DELETE of the row with
/// the most children (rolled back), with and without an index on the child's column.
async fn foreign_keys(
    a: &mut PgConnection,
    b: &mut PgConnection,
    opts: &EngineOptions,
    ctx: &RequestContext,
) -> Result<Vec<AdvisoryCost>> {
    type Case = (String, String, String, String, String, String);
    let cases: Vec<Case> = sqlx::query_as(sql(&file().queries.foreign_key_cases))
        .fetch_all(&mut *a)
        .await?;
    let mut out = Vec::new();
    for (constraint, child, busiest, delete, create, lookup) in cases {
        crate::interrupt::check()?;
        let key: Option<String> = sqlx::query_scalar(AssertSqlSafe(busiest))
            .fetch_optional(&mut *a)
            .await?;
        let Some(key) = key else { continue };
        b.execute(AssertSqlSafe(create.clone())).await?;
        b.execute(AssertSqlSafe(format!("ANALYZE {child}"))).await?;
        let mut runner = DeleteRunner {
            conns: [&mut *a, &mut *b],
            delete: &delete,
            lookup: &lookup,
            key: &key,
            timeout: &ctx.statement_timeout,
        };
        let o = engine::measure(&mut runner, &[None, Some(0)], opts).await;
        let index = create
            .split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_string();
        let schema = child.split_once('.').map_or("public", |(s, _)| s);
        b.execute(AssertSqlSafe(format!("DROP INDEX {schema}.{index}")))
            .await?;
        out.push(cost(
            Rule::UnindexedForeignKeys,
            format!("{child} {constraint}"),
            vec![create],
            delete,
            None,
            o,
        ));
    }
    Ok(out)
}

/// The parent's DELETE, rolled back, on each copy, timed to its end or to a NO ACTION key's
/// refusal; its work figures are those of the foreign key check's own lookup on the child
/// (the DELETE's plan does not count them).
struct DeleteRunner<'a, 'c> {
    conns: [&'c mut PgConnection; 2],
    delete: &'a str,
    lookup: &'a str,
    key: &'a str,
    timeout: &'a str,
}

impl Runner for DeleteRunner<'_, '_> {
    fn arms(&self) -> usize {
        2
    }

    async fn time(&mut self, arm: usize) -> Result<(Duration, u64)> {
        let conn = &mut *self.conns[arm];
        let mut tx = conn.begin().await?;
        sqlx::query(sql(&file().queries.local_timeout))
            .bind(self.timeout)
            .execute(&mut *tx)
            .await?;
        let started = Instant::now();
        let done = sqlx::query(AssertSqlSafe(self.delete.to_string()))
            .bind(self.key)
            .execute(&mut *tx)
            .await;
        let elapsed = started.elapsed();
        // A NO ACTION key refuses the delete at its check (23503, foreign_key_violation):
        // the check ran, which is what is timed.
        let rows = match done {
            Ok(r) => r.rows_affected(),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23503") => 0,
            Err(e) => return Err(e.into()),
        };
        tx.rollback().await?;
        Ok((elapsed, rows))
    }

    async fn work(&mut self, arm: usize) -> Result<WorkSample> {
        let conn = &mut *self.conns[arm];
        let text =
            crate::sql_files::fill(&file().queries.explain_lookup, &[("query", self.lookup)]);
        let plan: serde_json::Value = sqlx::query_scalar(AssertSqlSafe(text))
            .bind(self.key)
            .fetch_one(&mut *conn)
            .await?;
        Ok(WorkSample {
            plan: Some(plan),
            wal_bytes: None,
        })
    }
}
