//! The scratch schema `storybench_scratch`: created by the stage, recorded as storybench's
//! while it exists (so a crash leaves nothing `schema reset` or the next run cannot
//! remove), and dropped when the stage ends. Copies of api_usage live there.

use super::queries;
use crate::sql_files::{fill, sql};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};

pub const SEARCH_PATH: &str = "storybench_scratch, public";

/// Drops a leftover scratch schema (only if storybench recorded it), then creates it.
pub async fn open(conn: &mut PgConnection) -> Result<()> {
    let exists: bool = sqlx::query_scalar(sql(&queries().scratch_exists))
        .fetch_one(&mut *conn)
        .await?;
    if exists {
        let owned: bool = sqlx::query_scalar(sql(&queries().scratch_owned))
            .fetch_one(&mut *conn)
            .await?;
        if !owned {
            bail!("schema storybench_scratch exists but storybench did not create it; refusing to touch it");
        }
        close(conn)
            .await
            .context("dropping a leftover scratch schema")?;
    }
    let mut tx = conn.begin().await?;
    sqlx::raw_sql(sql(&queries().scratch_create))
        .execute(&mut *tx)
        .await?;
    record(&mut tx, "schema", "storybench_scratch").await?;
    tx.commit().await?;
    Ok(())
}

/// Drops the scratch schema and forgets it.
pub async fn close(conn: &mut PgConnection) -> Result<()> {
    let mut tx = conn.begin().await?;
    sqlx::raw_sql(sql(&queries().scratch_drop))
        .execute(&mut *tx)
        .await?;
    sqlx::query(sql(&queries().scratch_forget))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn record(conn: &mut PgConnection, kind: &str, identity: &str) -> Result<()> {
    sqlx::query(sql(&queries().scratch_record))
        .bind(vec![kind.to_string()])
        .bind(vec![identity.to_string()])
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A range partition: its name suffix and bounds.
#[derive(Clone, Debug)]
pub struct Bound {
    pub suffix: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Creates `storybench_scratch.<table>` like api_usage, partitioned by `bounds` (flat when
/// empty), records it as storybench's, and loads the seeded rows. Returns the load time.
pub async fn create_copy(conn: &mut PgConnection, table: &str, bounds: &[Bound]) -> Result<f64> {
    let partition_by = if bounds.is_empty() {
        ""
    } else {
        &super::queries().partition_by_created_at
    };
    let mut tx = conn.begin().await?;
    sqlx::raw_sql(AssertSqlSafe(fill(
        &queries().scratch_table,
        &[("table", table), ("partition_by", partition_by)],
    )))
    .execute(&mut *tx)
    .await
    .with_context(|| format!("creating storybench_scratch.{table}"))?;
    record(&mut tx, "relation", &format!("storybench_scratch.{table}")).await?;
    sqlx::raw_sql(AssertSqlSafe(fill(
        &queries().scratch_grant,
        &[("table", table)],
    )))
    .execute(&mut *tx)
    .await?;
    if !bounds.is_empty() {
        let script: String = bounds
            .iter()
            .map(|b| {
                fill(
                    &queries().scratch_partition,
                    &[
                        ("table", table),
                        ("part", &format!("{table}_{}", b.suffix)),
                        ("from", &b.from.to_rfc3339()),
                        ("to", &b.to.to_rfc3339()),
                    ],
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        sqlx::raw_sql(AssertSqlSafe(script))
            .execute(&mut *tx)
            .await
            .with_context(|| format!("creating the partitions of {table}"))?;
    }
    tx.commit().await?;
    let started = std::time::Instant::now();
    sqlx::raw_sql(AssertSqlSafe(fill(
        &queries().scratch_load,
        &[("table", table)],
    )))
    .execute(&mut *conn)
    .await
    .with_context(|| format!("loading storybench_scratch.{table}"))?;
    Ok(started.elapsed().as_secs_f64())
}

/// Adds the key and the indexes every copy gets, then ANALYZE. Returns the time taken.
pub async fn index_copy(conn: &mut PgConnection, table: &str, partitioned: bool) -> Result<f64> {
    let started = std::time::Instant::now();
    let pkey = if partitioned {
        &queries().scratch_pkey_partitioned
    } else {
        &queries().scratch_pkey_flat
    };
    sqlx::raw_sql(AssertSqlSafe(fill(pkey, &[("table", table)])))
        .execute(&mut *conn)
        .await?;
    sqlx::raw_sql(AssertSqlSafe(fill(
        &queries().scratch_indexes,
        &[("table", table)],
    )))
    .execute(&mut *conn)
    .await?;
    Ok(started.elapsed().as_secs_f64())
}

/// Drops one copy and forgets it.
pub async fn drop_copy(conn: &mut PgConnection, table: &str) -> Result<()> {
    sqlx::raw_sql(AssertSqlSafe(fill(
        &queries().scratch_drop_table,
        &[("table", table)],
    )))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Total bytes of a copy, partitions included.
pub async fn bytes(conn: &mut PgConnection, table: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(sql(&queries().maint_table_bytes))
        .bind(table)
        .fetch_one(&mut *conn)
        .await?)
}
