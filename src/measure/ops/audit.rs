//! `ops --operations audit`: the document's `audit_trigger()` on vs off on each write path
//! (story creation, flag review, hero update; `scenarios/ops_audit.toml`). Two pristine
//! copies: "on" with the trigger attached to every audited table, "off" with none in force.
//! First, on each copy, `growth_writes` executions of the path's statement in one
//! transaction, rolled back: rows written to the audited tables, audit_log rows added, its
//! size growth and its new rows' bytes. Then the engine times the statement interleaved on
//! both copies (each execution rolled back), with its plan's work and WAL per write. The
//! audit_log growth per day follows at the scenario's rate of each path's statement.

use super::OpsOptions;
use crate::auth::Principal;
use crate::catalog::QuerySpec;
use crate::latency::{Latency, LatencySummary};
use crate::measure::engine::{self, Rounds, SqlArm, SqlRunner, Work};
use crate::measure::exec::{principal_for, RequestContext};
use crate::params::{bind, ParamValue, Population};
use crate::pristine::PristineCopy;
use crate::scenario::Scenario;
use crate::sql_files::sql;
use crate::stats::{Interval, Side};
use crate::target::Target;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Executor};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    audited: Vec<String>,
    attach: Vec<String>,
    detach: Vec<String>,
    triggers_on: String,
    reset_role: String,
    probe: String,
    path: Vec<PathFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathFile {
    name: String,
    statement: String,
}

crate::sql_file!(fn file() -> File = "scenarios/ops_audit.toml");

#[cfg(test)]
pub(crate) fn load_all() {
    let _ = file();
}

/// The extra catalog of the paths the app catalog does not hold.
const EXTRA_CATALOG: &str = "scenarios/ops_queries.toml";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuditFigures {
    /// Tables the trigger is on in the "on" copy.
    pub audited: Vec<String>,
    pub scenario: String,
    /// The scenario's rate (transactions/s) the growth per day is given at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    pub paths: Vec<AuditPath>,
    /// audit_log growth per day over every path at the scenario's rates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_per_day: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_day: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuditPath {
    pub path: String,
    pub statement: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off: Option<LatencySummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<LatencySummary>,
    /// Paired ratio on / off with its interval, and where it lies relative to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<Interval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    /// Plan work and WAL per write (`wal_bytes`), off and on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_off: Option<Work>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_on: Option<Work>,
    pub growth_off: Growth,
    pub growth_on: Growth,
    /// The statement's rate in the scenario (0: the scenario does not run it).
    pub writes_per_second: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_per_day: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_day: Option<f64>,
    pub rounds: Rounds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AuditPath {
    /// WAL per write off and on, when both were measured.
    pub fn wal(&self) -> Option<(f64, f64)> {
        let w = |w: &Option<Work>| w.as_ref().and_then(|w| w.wal_bytes);
        w(&self.work_off).zip(w(&self.work_on))
    }
}

/// `writes` executions in one transaction (rolled back) on one copy.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Growth {
    pub writes: u64,
    /// Rows inserted, updated or deleted in the audited tables.
    pub rows_written: i64,
    pub audit_rows: i64,
    /// audit_log's size growth (table, TOAST, index).
    pub audit_bytes: i64,
    /// The new audit rows' own bytes (`pg_column_size`, compressed values as stored).
    pub audit_data_bytes: i64,
}

impl Growth {
    pub fn rows_per_write(&self) -> f64 {
        self.audit_rows as f64 / self.writes.max(1) as f64
    }

    pub fn bytes_per_write(&self) -> f64 {
        self.audit_bytes as f64 / self.writes.max(1) as f64
    }
}

/// Measures every path on two pristine copies of `base` (both dropped, also on error).
pub async fn measure(
    base: &Target,
    scenario: &Scenario,
    opts: &OpsOptions,
    rate: Option<f64>,
) -> Result<AuditFigures> {
    let off = PristineCopy::create(base, "ops_audit_off").await?;
    let on = match PristineCopy::create(base, "ops_audit_on").await {
        Ok(c) => c,
        Err(e) => {
            drop_copy(off).await;
            return Err(e);
        }
    };
    let outcome = on_copies(off.target(), on.target(), scenario, opts, rate).await;
    drop_copy(off).await;
    drop_copy(on).await;
    outcome
}

async fn drop_copy(copy: PristineCopy) {
    if let Err(e) = copy.drop().await {
        tracing::warn!("could not drop a pristine copy: {e:#}");
    }
}

async fn on_copies(
    off: &Target,
    on: &Target,
    scenario: &Scenario,
    opts: &OpsOptions,
    rate: Option<f64>,
) -> Result<AuditFigures> {
    let f = file();
    let mut a = off.connect().await?;
    let mut b = on.connect().await?;
    for s in &f.detach {
        a.execute(sql(s)).await?;
    }
    for s in &f.attach {
        b.execute(sql(s)).await?;
    }
    for (conn, want, which) in [(&mut a, 0, "off"), (&mut b, f.audited.len() as i64, "on")] {
        let n: i64 = sqlx::query_scalar(sql(&f.triggers_on))
            .bind(&f.audited)
            .fetch_one(&mut *conn)
            .await?;
        if n != want {
            bail!("the audit {which} copy has {n} audit triggers in force, not {want}");
        }
    }
    let catalog = crate::catalog::load_default()?;
    let extra = crate::catalog::load(&crate::paths::project_file(EXTRA_CATALOG))?;
    let variant = crate::schema::current_variant(&mut a)
        .await?
        .unwrap_or_default();
    let ctx = RequestContext::new(variant.api_usage, opts.statement_timeout);
    let dataset = crate::seed::require_complete(&mut a).await?;
    let population = Population::load(&mut a, dataset.anchor).await?;
    let heavy = crate::measure::explain::subjects(&population)[0];
    let mut paths = Vec::new();
    for p in &f.path {
        crate::interrupt::check()?;
        let spec = catalog
            .get(&p.statement)
            .or_else(|| extra.get(&p.statement))
            .with_context(|| format!("{}: no statement {}", EXTRA_CATALOG, p.statement))?;
        let mut rng = crate::params::rng_for(opts.seed, &format!("audit:{}", p.name));
        let params = population.draw(&mut a, spec, heavy.user, &mut rng).await?;
        let who = principal_for(spec, heavy.user);
        let n = opts.engine.growth_writes;
        let growth_off = growth(&mut a, spec, &params, &who, &ctx, n).await?;
        let growth_on = growth(&mut b, spec, &params, &who, &ctx, n).await?;
        let arms: Vec<SqlArm> = (0..2)
            .map(|conn| SqlArm {
                conn,
                spec,
                sql: &spec.sql,
                params: &params,
                who: who.clone(),
                ctx: &ctx,
            })
            .collect();
        let mut conns: [&mut PgConnection; 2] = [&mut a, &mut b];
        let o = engine::measure(
            &mut SqlRunner {
                conns: &mut conns,
                arms: &arms,
            },
            &[None, Some(0)],
            &opts.engine.engine(),
        )
        .await;
        let per_s = rate.map_or(0.0, |r| writes_per_second(scenario, r, &p.statement));
        let day = |x: f64| rate.map(|_| x * per_s * 86_400.0);
        let summary = |l: &Latency| (!l.is_empty()).then(|| l.summary());
        paths.push(AuditPath {
            path: p.name.clone(),
            statement: p.statement.clone(),
            subject: Some(heavy.subject.name().to_string()),
            off: summary(&o.arms[0].latency),
            on: summary(&o.arms[1].latency),
            ratio: o.arms[1].ratio,
            side: o.arms[1].side,
            work_off: o.arms[0].work.clone(),
            work_on: o.arms[1].work.clone(),
            writes_per_second: per_s,
            rows_per_day: day(growth_on.rows_per_write()),
            bytes_per_day: day(growth_on.bytes_per_write()),
            growth_off,
            growth_on,
            rounds: o.rounds.clone(),
            error: o.arms.iter().find_map(|a| a.error.clone()),
        });
    }
    let total = |f: fn(&AuditPath) -> Option<f64>| rate.map(|_| paths.iter().filter_map(f).sum());
    Ok(AuditFigures {
        audited: f.audited.clone(),
        scenario: scenario.name.clone(),
        rate,
        rows_per_day: total(|p| p.rows_per_day),
        bytes_per_day: total(|p| p.bytes_per_day),
        paths,
    })
}

/// `n` executions as the app runs the statement, in one transaction that is rolled back;
/// the probe reads before and after as the session's own role.
async fn growth(
    conn: &mut PgConnection,
    spec: &QuerySpec,
    params: &[ParamValue],
    who: &Principal,
    ctx: &RequestContext,
    n: usize,
) -> Result<Growth> {
    let f = file();
    let mut tx = conn.begin().await?;
    let probe = async |tx: &mut PgConnection| -> Result<(i64, i64, i64, i64)> {
        Ok(sqlx::query_as(sql(&f.probe))
            .bind(&f.audited)
            .fetch_one(tx)
            .await?)
    };
    let before = probe(&mut *tx).await?;
    crate::auth::begin_request(&mut tx, who).await?;
    sqlx::query(AssertSqlSafe(
        crate::params::queries().request_settings.clone(),
    ))
    .bind(&ctx.search_path)
    .bind(&ctx.statement_timeout)
    .execute(&mut *tx)
    .await?;
    for _ in 0..n {
        bind(sqlx::query(AssertSqlSafe(spec.sql.clone())), params)
            .fetch_all(&mut *tx)
            .await
            .with_context(|| format!("{} ({})", spec.name, spec.location()))?;
    }
    sqlx::query(sql(&f.reset_role)).execute(&mut *tx).await?;
    let after = probe(&mut *tx).await?;
    tx.rollback().await?;
    Ok(Growth {
        writes: n as u64,
        rows_written: after.0 - before.0,
        audit_rows: after.1 - before.1,
        audit_bytes: after.2 - before.2,
        audit_data_bytes: after.3 - before.3,
    })
}

/// Executions per second of `statement` when the scenario runs at `rate` transactions/s:
/// each part gets its weight's share of the arrivals, each transaction its weight's share
/// of the part's, each step runs with its probability.
pub fn writes_per_second(scenario: &Scenario, rate: f64, statement: &str) -> f64 {
    let parts: usize = scenario.parts.iter().map(|p| p.weight).sum();
    let mut per_s = 0.0;
    for part in &scenario.parts {
        let txs: usize = part.transactions.iter().map(|t| t.weight).sum();
        for t in &part.transactions {
            let share =
                part.weight as f64 / parts.max(1) as f64 * t.weight as f64 / txs.max(1) as f64;
            per_s += t
                .steps
                .iter()
                .filter(|s| s.query.name == statement)
                .map(|s| rate * share * s.probability)
                .sum::<f64>();
        }
    }
    per_s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_mix_creates_stories_and_neither_reviews_flags_nor_updates_heroes() {
        let s = crate::scenario::load("launch_mix").unwrap();
        // create_story: 10 of 100 users' weight, one transaction, one step.
        let r = writes_per_second(&s, 100.0, "create_story");
        assert!((r - 10.0).abs() < 1e-9, "{r}");
        assert_eq!(writes_per_second(&s, 100.0, "review_flag"), 0.0);
        assert_eq!(writes_per_second(&s, 100.0, "update_hero"), 0.0);
        let extra = crate::catalog::load(&crate::paths::project_file(EXTRA_CATALOG)).unwrap();
        let catalog = crate::catalog::load_default().unwrap();
        for p in &file().path {
            assert!(
                catalog
                    .get(&p.statement)
                    .or(extra.get(&p.statement))
                    .is_some(),
                "{}",
                p.statement
            );
        }
    }
}
