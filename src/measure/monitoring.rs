//! The reference document's monitoring queries (health checks and usage analytics,
//! `scenarios/monitoring.toml`), each with its own cost: wall time through the engine,
//! buffers and rows from EXPLAIN (ANALYZE, BUFFERS), and its result rows (truncated).

use crate::latency::LatencySummary;
use crate::measure::engine::{self, EngineOptions, Rounds, Runner, Work, WorkSample};
use crate::sql_files::fill;
use crate::stats::Interval;
use crate::target::Target;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Executor};
use std::time::{Duration, Instant};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    rows: String,
    row_count: String,
    explain: String,
    queries: Vec<Query>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    name: String,
    group: Group,
    sql: String,
}

crate::sql_file!(fn file() -> File = "scenarios/monitoring.toml");

#[cfg(test)]
pub(crate) fn load_all() {
    let _ = file();
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Health,
    Usage,
}

/// Rows kept per query, and characters per value (a slow query's text can be long).
const MAX_ROWS: usize = 20;
const MAX_VALUE_CHARS: usize = 160;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MonitoringSection {
    pub queries: Vec<MonitoringQuery>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MonitoringQuery {
    pub name: String,
    pub group: Group,
    pub latency: Option<LatencySummary>,
    pub p50: Option<Interval>,
    pub work: Option<Work>,
    pub rounds: Rounds,
    /// Rows the query returned, and the first [`MAX_ROWS`] of them (values cut at
    /// [`MAX_VALUE_CHARS`]).
    pub row_count: i64,
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    pub truncated: bool,
    pub error: Option<String>,
}

/// The engine's settings for these queries: p50 only (they are a report, not a gate).
fn engine_options() -> EngineOptions {
    EngineOptions::new(1, 30, Duration::from_millis(300), &[50.0])
}

struct One<'a> {
    conn: &'a mut PgConnection,
    sql: &'a str,
}

impl Runner for One<'_> {
    fn arms(&self) -> usize {
        1
    }

    async fn time(&mut self, _: usize) -> Result<(Duration, u64)> {
        let started = Instant::now();
        let rows = self.conn.fetch_all(AssertSqlSafe(self.sql)).await?;
        Ok((started.elapsed(), rows.len() as u64))
    }

    async fn work(&mut self, _: usize) -> Result<WorkSample> {
        let text = fill(&file().explain, &[("query", self.sql)]);
        let plan: serde_json::Value = sqlx::query_scalar(AssertSqlSafe(text))
            .fetch_one(&mut *self.conn)
            .await?;
        Ok(WorkSample {
            plan: Some(plan),
            wal_bytes: None,
        })
    }
}

fn cut(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::String(s) if s.chars().count() > MAX_VALUE_CHARS => {
            let mut t: String = s.chars().take(MAX_VALUE_CHARS).collect();
            t.push('…');
            serde_json::Value::String(t)
        }
        other => other,
    }
}

/// Runs every monitoring query on `target` (a pristine copy of the dataset).
pub async fn run(target: &Target) -> Result<MonitoringSection> {
    let mut conn = target.connect().await?;
    // On this copy only: the slow-queries check reads the view (the dataset is untouched).
    crate::schema::ensure_pg_stat_statements(&mut conn).await?;
    let name = target
        .database_override()
        .map(str::to_string)
        .or_else(|| target.url.database_name())
        .context("the measured database has no name")?;
    // A literal of storybench's own copy name (sbcopy_…), quoted all the same.
    let database = format!("'{}'", name.replace('\'', "''"));
    let mut section = MonitoringSection::default();
    for q in &file().queries {
        crate::interrupt::check()?;
        let sql = if q.sql.contains("{database}") {
            fill(&q.sql, &[("database", &database)])
        } else {
            q.sql.clone()
        };
        let sql = sql.trim().to_string();
        let o = engine::measure(
            &mut One {
                conn: &mut conn,
                sql: &sql,
            },
            &[None],
            &engine_options(),
        )
        .await;
        let arm = &o.arms[0];
        let mut m = MonitoringQuery {
            name: q.name.clone(),
            group: q.group,
            latency: (!arm.latency.is_empty()).then(|| arm.latency.summary()),
            p50: crate::stats::quantile_ci(&arm.latency, 0.5, crate::stats::CONFIDENCE),
            work: arm.work.clone(),
            rounds: o.rounds.clone(),
            row_count: 0,
            rows: Vec::new(),
            truncated: false,
            error: arm.error.clone(),
        };
        if m.error.is_none() {
            if let Err(e) = result_rows(&mut conn, &sql, &mut m).await {
                m.error = Some(format!("{e:#}"));
            }
        }
        section.queries.push(m);
    }
    Ok(section)
}

async fn result_rows(conn: &mut PgConnection, sql: &str, m: &mut MonitoringQuery) -> Result<()> {
    let count = fill(&file().row_count, &[("query", sql)]);
    m.row_count = sqlx::query_scalar(AssertSqlSafe(count))
        .fetch_one(&mut *conn)
        .await?;
    let limit = MAX_ROWS.to_string();
    let text = fill(&file().rows, &[("query", sql), ("limit", &limit)]);
    let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(text))
        .fetch_all(&mut *conn)
        .await?;
    for r in rows {
        let serde_json::Value::Object(map) = serde_json::from_str(&r)? else {
            continue;
        };
        m.rows
            .push(map.into_iter().map(|(k, v)| (k, cut(v))).collect());
    }
    m.truncated = m.row_count > m.rows.len() as i64;
    Ok(())
}
