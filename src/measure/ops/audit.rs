//! `ops --operations audit`: the document's `audit_trigger()` on vs off on each write path
//! (story creation, flag review, hero update; `scenarios/ops_audit.toml`). Two pristine
//! copies: "on" with the trigger attached to every audited table, "off" with none in force.
//! First, on each copy, after a CHECKPOINT (both arms start with the same full-page-image
//! state), `growth_writes` executions of the path's statement in one transaction, rolled
//! back: rows written to the audited tables, audit_log rows added, its size growth, its new
//! rows' bytes and the WAL the writes made (per write: over many writes, not one, which a
//! single full-page image would swamp). Then the engine times the statement interleaved on
//! both copies (each execution rolled back), with its plan's work. The audit_log growth per
//! day follows at the scenario's rate of each path's statement.

use super::OpsOptions;
use crate::auth::Principal;
use crate::catalog::QuerySpec;
use crate::latency::{Latency, LatencySummary};
use crate::measure::engine::{self, Rounds, Work};
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
    checkpoint: String,
    statements_ready: String,
    wal_statements: String,
    wal_position: String,
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
    /// Where the growth transactions' WAL was counted.
    #[serde(default)]
    pub wal_from: WalFrom,
    /// Whether a CHECKPOINT preceded each growth transaction (refused without the right).
    #[serde(default)]
    pub checkpointed: bool,
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
    /// Plan work off and on (its `wal_bytes`: one execution; `wal()` is over many).
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
    /// WAL per write off and on, over the growth transactions' writes.
    pub fn wal(&self) -> Option<(f64, f64)> {
        let w = |g: &Growth| (g.writes > 0).then(|| g.wal_per_write());
        w(&self.growth_off).zip(w(&self.growth_on))
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
    /// WAL of the writes (the trigger's included), counted as `AuditFigures::wal_from` says.
    #[serde(default)]
    pub wal_bytes: i64,
}

/// Where WAL per write is counted.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WalFrom {
    /// The copy's own statements in pg_stat_statements: this session's writes only.
    #[default]
    PgStatStatements,
    /// The server's WAL insert position: other sessions' writes meanwhile are included.
    WalPosition,
}

impl Growth {
    pub fn rows_per_write(&self) -> f64 {
        self.audit_rows as f64 / self.writes.max(1) as f64
    }

    pub fn bytes_per_write(&self) -> f64 {
        self.audit_bytes as f64 / self.writes.max(1) as f64
    }

    pub fn wal_per_write(&self) -> f64 {
        self.wal_bytes as f64 / self.writes.max(1) as f64
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
    // The copies are storybench's: load pg_stat_statements into them (a dataset seeded by
    // `seed` alone has it nowhere), so each copy counts its own WAL.
    for conn in [&mut a, &mut b] {
        crate::schema::ensure_pg_stat_statements(conn).await?;
    }
    let wal_from = wal_from(&mut a, &mut b).await?;
    let mut checkpointed = true;
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
        let mut grow = async |conn: &mut PgConnection| -> Result<Growth> {
            checkpointed &= checkpoint(conn).await;
            growth(conn, spec, &params, &who, &ctx, n, wal_from).await
        };
        let growth_off = grow(&mut a).await?;
        let growth_on = grow(&mut b).await?;
        let mut conns: [&mut PgConnection; 2] = [&mut a, &mut b];
        let arms = [(0, who.clone()), (1, who.clone())];
        let o =
            engine::two_arms(&mut conns, arms, spec, &params, &ctx, &opts.engine.engine()).await;
        let per_s = rate.map_or(0.0, |r| scenario.per_second(r, &p.statement));
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
        wal_from,
        checkpointed,
    })
}

/// pg_stat_statements when both copies can count their own WAL there, else the position.
async fn wal_from(a: &mut PgConnection, b: &mut PgConnection) -> Result<WalFrom> {
    for conn in [a, b] {
        let ready: bool = sqlx::query_scalar(sql(&file().statements_ready))
            .fetch_one(conn)
            .await?;
        if !ready {
            return Ok(WalFrom::WalPosition);
        }
    }
    Ok(WalFrom::PgStatStatements)
}

/// A CHECKPOINT, so the writes after it start from the same full-page-image state on both
/// copies; false when the server refuses it (not superuser nor pg_checkpoint).
async fn checkpoint(conn: &mut PgConnection) -> bool {
    match conn.execute(sql(&file().checkpoint)).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!("audit: no CHECKPOINT before the growth writes: {e}");
            false
        }
    }
}

/// `n` executions as the app runs the statement, in one transaction that is rolled back;
/// the probe and the WAL counter read before and after as the session's own role.
#[allow(clippy::too_many_arguments)]
async fn growth(
    conn: &mut PgConnection,
    spec: &QuerySpec,
    params: &[ParamValue],
    who: &Principal,
    ctx: &RequestContext,
    n: usize,
    wal_from: WalFrom,
) -> Result<Growth> {
    let f = file();
    let mut tx = conn.begin().await?;
    let wal = match wal_from {
        WalFrom::PgStatStatements => &f.wal_statements,
        WalFrom::WalPosition => &f.wal_position,
    };
    let probe = async |tx: &mut PgConnection| -> Result<(i64, i64, i64, i64, i64)> {
        let (w, r, ab, ad): (i64, i64, i64, i64) = sqlx::query_as(sql(&f.probe))
            .bind(&f.audited)
            .fetch_one(&mut *tx)
            .await?;
        let wal: i64 = sqlx::query_scalar(sql(wal)).fetch_one(&mut *tx).await?;
        Ok((w, r, ab, ad, wal))
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
        wal_bytes: after.4 - before.4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_mix_creates_stories_and_neither_reviews_flags_nor_updates_heroes() {
        let s = crate::scenario::load("launch_mix").unwrap();
        // create_story: 10 of 100 users' weight, one transaction, one step.
        let r = s.per_second(100.0, "create_story");
        assert!((r - 10.0).abs() < 1e-9, "{r}");
        assert_eq!(s.per_second(100.0, "review_flag"), 0.0);
        assert_eq!(s.per_second(100.0, "update_hero"), 0.0);
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
