//! Running one catalog query with extra transaction-local settings (plan_cache_mode,
//! enable_partitionwise_aggregate): timed, EXPLAINed (custom or generic plan) and digested.
//! Every request is its own transaction (a savepoint when the caller holds one) and is
//! rolled back: these are reads, and rolling back also undoes the role and settings.

use super::queries as own;
use crate::auth::{begin_request, Principal};
use crate::measure::engine::Work;
use crate::measure::engine::{self, EngineOptions, Outcome, Runner, WorkSample};
use crate::measure::exec::RequestContext;
use crate::params::{bind, queries, ParamValue};
use crate::plan::{self, PlanSummary};
use crate::sql_files::{fill, sql};
use anyhow::{Context, Result};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Row};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::types::ModeRun;

/// One way to run a query: where, as whom, with which settings.
#[derive(Clone)]
pub struct Arm<'a> {
    pub sql: &'a str,
    pub params: &'a [ParamValue],
    pub who: &'a Principal,
    pub ctx: &'a RequestContext,
    pub settings: Vec<(&'static str, &'static str)>,
}

pub const GENERIC: (&str, &str) = ("plan_cache_mode", "force_generic_plan");

async fn begin<'c>(
    conn: &'c mut PgConnection,
    arm: &Arm<'_>,
) -> Result<sqlx::Transaction<'c, sqlx::Postgres>> {
    let mut tx = conn.begin().await?;
    begin_request(&mut tx, arm.who).await?;
    sqlx::query(AssertSqlSafe(queries().request_settings.clone()))
        .bind(&arm.ctx.search_path)
        .bind(&arm.ctx.statement_timeout)
        .execute(&mut *tx)
        .await?;
    for (name, value) in &arm.settings {
        sqlx::query(sql(&own().set_local))
            .bind(*name)
            .bind(*value)
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

/// One execution through a persistent (named) prepared statement; the query's own time
/// and its rows.
pub async fn timed(conn: &mut PgConnection, arm: &Arm<'_>) -> Result<(Duration, u64)> {
    let mut tx = begin(conn, arm).await?;
    let started = Instant::now();
    let rows = bind(sqlx::query(AssertSqlSafe(arm.sql.to_string())), arm.params)
        .fetch_all(&mut *tx)
        .await?
        .len() as u64;
    let elapsed = started.elapsed();
    tx.rollback().await?;
    Ok((elapsed, rows))
}

static GENERIC_SEQ: AtomicU64 = AtomicU64::new(0);

/// EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON). With `generic`, the query is PREPAREd and run
/// through EXECUTE under plan_cache_mode = force_generic_plan, so pruning that needs the
/// parameter values happens at executor start (`Subplans Removed`) instead of at plan time.
pub async fn explain(
    conn: &mut PgConnection,
    arm: &Arm<'_>,
    generic: bool,
) -> Result<serde_json::Value> {
    if !generic {
        let text = fill(&queries().explain, &[("query", arm.sql)]);
        let mut tx = begin(conn, arm).await?;
        let row = bind(
            sqlx::query(AssertSqlSafe(text)).persistent(false),
            arm.params,
        )
        .fetch_one(&mut *tx)
        .await?;
        let plan: serde_json::Value = row.try_get(0)?;
        tx.rollback().await?;
        return Ok(plan);
    }
    let mut arm = arm.clone();
    arm.settings.push(GENERIC);
    // A fresh name per call: a statement left behind by a failure never collides.
    let name = format!(
        "storybench_generic_{}",
        GENERIC_SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let args: Vec<String> = arm.params.iter().map(literal).collect();
    let mut tx = begin(conn, &arm).await?;
    // PREPARE goes through the simple protocol: its $n belong to the prepared statement.
    sqlx::raw_sql(AssertSqlSafe(fill(
        &own().prepare,
        &[("name", &name), ("query", arm.sql)],
    )))
    .execute(&mut *tx)
    .await
    .context("PREPARE")?;
    let text = fill(
        &own().explain_execute,
        &[("name", &name), ("args", &args.join(", "))],
    );
    let row = sqlx::query(AssertSqlSafe(text))
        .persistent(false)
        .fetch_one(&mut *tx)
        .await
        .context("EXPLAIN EXECUTE")?;
    let plan: serde_json::Value = row.try_get(0)?;
    sqlx::raw_sql(AssertSqlSafe(fill(&own().deallocate, &[("name", &name)])))
        .execute(&mut *tx)
        .await?;
    tx.rollback().await?;
    Ok(plan)
}

/// A parameter value as a typed SQL literal (quotes doubled), for EXECUTE's arguments.
pub fn literal(v: &ParamValue) -> String {
    let quoted = |t: &str| format!("'{}'", t.replace('\'', "''"));
    match v {
        ParamValue::Uuid(u) => format!("{}::uuid", quoted(&u.to_string())),
        ParamValue::Text(t) => format!("{}::text", quoted(t)),
        ParamValue::Timestamptz(t) => format!("{}::timestamptz", quoted(&t.to_rfc3339())),
        ParamValue::Int(i) => format!("{i}::integer"),
    }
}

/// Does unqualified `api_usage` name `table` for this arm's role and search_path?
pub async fn resolves_to(conn: &mut PgConnection, arm: &Arm<'_>, table: &str) -> Result<bool> {
    let mut tx = begin(conn, arm).await?;
    let same: bool = sqlx::query_scalar(sql(&own().resolves_to))
        .bind(table)
        .fetch_one(&mut *tx)
        .await?;
    tx.rollback().await?;
    Ok(same)
}

/// Row count and order-independent digest of the query's result.
pub async fn digest(conn: &mut PgConnection, arm: &Arm<'_>) -> Result<(i64, String)> {
    let text = fill(&queries().result_digest, &[("query", arm.sql)]);
    let mut tx = begin(conn, arm).await?;
    let row = bind(
        sqlx::query(AssertSqlSafe(text)).persistent(false),
        arm.params,
    )
    .fetch_one(&mut *tx)
    .await
    .context("computing the result digest")?;
    let out = (row.try_get(0)?, row.try_get(1)?);
    tx.rollback().await?;
    Ok(out)
}

/// Probe arms as engine arms on one connection: timed through `timed`, EXPLAINed with
/// a generic plan where the arm forces one (so pruning evidence matches what is timed).
struct ProbeRunner<'a, 'c> {
    pub conn: &'a mut PgConnection,
    pub arms: &'a [Arm<'c>],
}

impl Runner for ProbeRunner<'_, '_> {
    fn arms(&self) -> usize {
        self.arms.len()
    }

    async fn time(&mut self, a: usize) -> Result<(Duration, u64)> {
        timed(self.conn, &self.arms[a]).await
    }

    async fn work(&mut self, a: usize) -> Result<WorkSample> {
        let arm = &self.arms[a];
        let generic = arm.settings.contains(&GENERIC);
        let mut plain = arm.clone();
        plain.settings.retain(|s| *s != GENERIC);
        Ok(WorkSample {
            plan: Some(explain(self.conn, &plain, generic).await?),
            wal_bytes: None,
        })
    }
}

/// Measures `arms` on one connection with the engine.
pub async fn measure(
    conn: &mut PgConnection,
    arms: &[Arm<'_>],
    versus: &[Option<usize>],
    opts: &EngineOptions,
) -> Outcome {
    engine::measure(&mut ProbeRunner { conn, arms }, versus, opts).await
}

/// Partition scans a plan actually ran (pruned and never-executed ones excluded).
pub fn scanned(plan: &PlanSummary) -> Vec<String> {
    let mut names: Vec<String> = plan
        .relations
        .iter()
        .filter(|r| r.partition_parent.is_some() && !r.never_executed)
        .map(|r| r.relation.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Fills a ModeRun from an EXPLAIN result (saving the raw JSON under `out_dir/rel`).
pub fn record_plan(
    run: &mut ModeRun,
    raw: &serde_json::Value,
    total: Option<usize>,
    out_dir: &Path,
    rel: &str,
) -> Result<()> {
    engine::save_plan(out_dir, rel, raw)?;
    run.plan_file = Some(rel.to_string());
    let summary = plan::summarize(raw)?;
    run.planning_ms = Some(summary.planning_ms);
    run.execution_ms = Some(summary.execution_ms);
    run.partitions = summary.partitions.clone().map(|mut p| {
        p.total = total;
        p
    });
    run.scanned = scanned(&summary);
    run.work = Some(Work::from_plan(&summary));
    run.plan = Some(summary);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_typed_and_quoted() {
        assert_eq!(literal(&ParamValue::Text("it's".into())), "'it''s'::text");
        assert_eq!(literal(&ParamValue::Int(3)), "3::integer");
        let t = "2026-01-02T03:04:05Z".parse().unwrap();
        assert_eq!(
            literal(&ParamValue::Timestamptz(t)),
            "'2026-01-02T03:04:05+00:00'::timestamptz"
        );
    }
}
