//! Running one catalog query the way the app does: in its own transaction, as its role
//! (PostgREST-style claims for app queries), on the chosen api_usage layout, prepared.

use crate::auth::{begin_request, Principal};
use crate::catalog::{QuerySpec, Role};
use crate::params::{bind, queries, ParamValue};
use anyhow::{Context, Result};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Row};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Where and how long a measured request may run.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub search_path: String,
    pub statement_timeout: String,
}

impl RequestContext {
    pub fn new(layout: crate::schema::Layout, timeout: Duration) -> Self {
        Self {
            search_path: layout.search_path().to_string(),
            statement_timeout: format!("{}ms", timeout.as_millis().max(1)),
        }
    }
}

/// The principal a catalog query runs as, for a given subject user.
pub fn principal_for(spec: &QuerySpec, user: Uuid) -> Principal {
    match spec.role {
        Role::App => Principal::User(user),
        Role::Service | Role::Analytics => Principal::Service,
    }
}

async fn begin<'c>(
    conn: &'c mut PgConnection,
    who: &Principal,
    ctx: &RequestContext,
) -> Result<sqlx::Transaction<'c, sqlx::Postgres>> {
    let mut tx = conn.begin().await?;
    begin_request(&mut tx, who).await?;
    sqlx::query(AssertSqlSafe(queries().request_settings.clone()))
        .bind(&ctx.search_path)
        .bind(&ctx.statement_timeout)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` of the query, always rolled back (writes too).
pub async fn explain(
    conn: &mut PgConnection,
    sql: &str,
    params: &[ParamValue],
    who: &Principal,
    ctx: &RequestContext,
) -> Result<serde_json::Value> {
    explain_as(conn, &queries().explain, sql, params, who, ctx).await
}

/// The query wrapped in an EXPLAIN `template` (its `{query}` placeholder), run as the app
/// runs it and rolled back.
pub async fn explain_as(
    conn: &mut PgConnection,
    template: &str,
    sql: &str,
    params: &[ParamValue],
    who: &Principal,
    ctx: &RequestContext,
) -> Result<serde_json::Value> {
    let text = crate::sql_files::fill(template, &[("query", sql)]);
    let mut tx = begin(conn, who, ctx).await?;
    let row = bind(sqlx::query(AssertSqlSafe(text)), params)
        .fetch_one(&mut *tx)
        .await?;
    let plan: serde_json::Value = row.try_get(0)?;
    tx.rollback().await?;
    Ok(plan)
}

/// One timed execution (prepared): the query's own time and the rows it returned or changed.
/// Reads commit; writes roll back unless `commit_writes`, so the dataset stays as seeded.
pub async fn timed(
    conn: &mut PgConnection,
    spec: &QuerySpec,
    sql: &str,
    params: &[ParamValue],
    who: &Principal,
    ctx: &RequestContext,
    commit_writes: bool,
) -> Result<(Duration, u64)> {
    let mut tx = begin(conn, who, ctx).await?;
    let started = Instant::now();
    let rows = if spec.is_read() {
        bind(sqlx::query(AssertSqlSafe(sql.to_string())), params)
            .fetch_all(&mut *tx)
            .await?
            .len() as u64
    } else {
        bind(sqlx::query(AssertSqlSafe(sql.to_string())), params)
            .execute(&mut *tx)
            .await?
            .rows_affected()
    };
    let elapsed = started.elapsed();
    if spec.is_read() || commit_writes {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok((elapsed, rows))
}

/// Row count and an order-independent digest of a read's result, to check that every
/// variant returns the same rows.
pub async fn digest(
    conn: &mut PgConnection,
    sql: &str,
    params: &[ParamValue],
    who: &Principal,
    ctx: &RequestContext,
) -> Result<(i64, String)> {
    let text = crate::sql_files::fill(&queries().result_digest, &[("query", sql)]);
    let mut tx = begin(conn, who, ctx).await?;
    let row = bind(sqlx::query(AssertSqlSafe(text)), params)
        .fetch_one(&mut *tx)
        .await
        .context("computing the result digest")?;
    let row: (i64, String) = (row.try_get(0)?, row.try_get(1)?);
    tx.rollback().await?;
    Ok(row)
}

/// WAL bytes one execution of a write generates: `n` executions in one transaction,
/// measured from the insert LSN, then rolled back (WAL is written either way).
pub async fn wal_per_execution(
    conn: &mut PgConnection,
    sql: &str,
    params: &[Vec<ParamValue>],
    who: &Principal,
    ctx: &RequestContext,
) -> Result<f64> {
    let mut tx = begin(conn, who, ctx).await?;
    let start: String = sqlx::query_scalar(AssertSqlSafe(queries().wal_insert_lsn.clone()))
        .fetch_one(&mut *tx)
        .await?;
    for p in params {
        bind(sqlx::query(AssertSqlSafe(sql.to_string())), p)
            .execute(&mut *tx)
            .await?;
    }
    let bytes: i64 = sqlx::query_scalar(AssertSqlSafe(queries().wal_since.clone()))
        .bind(&start)
        .fetch_one(&mut *tx)
        .await?;
    tx.rollback().await?;
    Ok(bytes as f64 / params.len().max(1) as f64)
}
