//! `storybench ops`: what happens to the app while the team runs an operation. Each
//! operation (a migration file) is first rehearsed alone on a pristine copy of the dataset
//! (a broken file is refused there with `file:line`, before any load starts, and its solo
//! duration, WAL and I/O are measured), then run on a fresh copy while an open-model load
//! of the scenario runs at a fraction of the measured capacity. The foreground's per-query
//! latency before, during and after it, and every lock wait, are recorded. The dataset
//! itself is never touched: both copies are dropped.
//!
//! Besides migration files, the reference document's other operations run in the same
//! frame (`--operations`): its backup script with a restore check (`backup`), and its
//! scheduled cache cleanup under the real pg_cron (`cron`); see `work`.

pub mod audit;
pub mod backup;
pub mod cron;
mod key_exposure;
mod locks;
pub mod migration;
mod options;
pub mod pgcrypto;
pub mod phases;
mod under_load;
mod work;

pub use audit::AuditFigures;
pub use backup::{BackupFigures, Restore};
pub use cron::CronFigures;
pub use key_exposure::{Exposure, Place};
pub use locks::LockWaits;
pub use migration::{Migration, Retries, StatementRun};
pub use options::OpsOptions;
pub use pgcrypto::{DecryptArm, KeyForm, PgcryptoFigures};
pub use phases::QueryPhases;
pub use work::{OpKind, Work};

use crate::measure::load::recorder::{QuerySeconds, TimelinePoint};
use crate::pristine::with_copy;
use crate::scenario::Scenario;
use crate::sql_files::sql;
use crate::target::Target;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use sqlx::ConnectOptions;
use std::time::{Duration, Instant};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    queries: OpsQueries,
    cron: cron::Job,
    backup: backup::Script,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpsQueries {
    pub lock_waits: String,
    pub backend_pid: String,
    pub wal_lsn: String,
    pub wal_since: String,
    pub flush_stats: String,
    pub database_io: String,
    pub session_statement_timeout: String,
    pub noop: String,
    pub cron_preloaded: String,
    pub cron_create: String,
    pub cron_installed: String,
    pub cron_version: String,
    pub cron_schedule: String,
    pub cron_unschedule: String,
    pub cron_stale: String,
    pub cron_runs: String,
    pub cron_finished_runs: String,
    pub server_epoch: String,
    pub cleanup_cache: String,
}

crate::sql_file!(fn file() -> File = "scenarios/ops.toml");

pub(crate) fn queries() -> &'static OpsQueries {
    &file().queries
}

pub(crate) fn cron_job() -> &'static cron::Job {
    &file().cron
}

pub(crate) fn backup_script() -> &'static backup::Script {
    &file().backup
}

#[cfg(test)]
pub(crate) fn load_all() {
    let _ = queries();
    let _ = pgcrypto::file();
    audit::load_all();
}

/// The lock sampler's period: short enough to see a wait of a few hundred ms.
const LOCK_SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// The ops section of results.json.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OpsSection {
    pub scenario: String,
    pub rate: f64,
    pub rate_basis: String,
    pub operations: Vec<Operation>,
    /// The decrypt's read cost and where the key shows (operation `pgcrypto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgcrypto: Option<PgcryptoFigures>,
    /// audit_trigger() on vs off per write path, and audit_log's growth (operation `audit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditFigures>,
    /// Operations not run on this server, and why (`wal_archive` on an external server).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// WAL archiving (operation `wal_archive`): handed to the run's `wal_archive` section.
    #[serde(skip)]
    pub wal_archive: Option<crate::measure::settings::archive::ArchiveSection>,
}

/// One operation: alone, then under load.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Operation {
    pub name: String,
    pub file: String,
    /// Tables it changes or locks; the app's queries on them are the affected ones.
    pub tables: Vec<String>,
    pub alone: Alone,
    pub under_load: UnderLoad,
    /// Every query of the load, before/during/after (affected ones first).
    pub queries: Vec<QueryPhases>,
    /// Per-second figures of the affected queries (for the report's chart).
    pub affected_seconds: Vec<QuerySeconds>,
    /// The whole load's per-second timeline.
    pub timeline: Vec<TimelinePoint>,
    pub lock_waits: LockWaits,
    /// The backup's files and its restore check (operation `backup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupFigures>,
    /// The scheduled cleanup's runs against the foreground (operation `cron`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<CronFigures>,
    /// The load's errors while it ran beside the operation (by query and SQLSTATE, with the
    /// window they occurred in): e.g. 0A000 "cached plan must not change result type" when
    /// the operation changes a table the app's prepared statements select `*` from.
    #[serde(default)]
    pub errors: Vec<crate::measure::load::recorder::ErrorCount>,
    /// Longest wait behind the operation of a reader / a writer of the affected tables (ms).
    pub longest_read_block_ms: f64,
    pub longest_write_block_ms: f64,
}

impl Operation {
    /// The affected query whose tail latency grew most during the operation, and by how much.
    pub fn worst_affected(&self) -> Option<(&QueryPhases, f64)> {
        self.queries
            .iter()
            .filter(|q| q.affected)
            .filter_map(|q| q.slowdown().map(|x| (q, x)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// The rehearsal: the operation on an idle copy.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Alone {
    pub seconds: f64,
    pub wal_bytes: i64,
    pub blocks_read: i64,
    pub blocks_hit: i64,
    pub temp_bytes: i64,
    pub statements: Vec<StatementRun>,
}

/// The operation beside the load.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UnderLoad {
    /// On the load's clock (seconds since its measurement started).
    pub started_s: f64,
    pub finished_s: f64,
    pub seconds: f64,
    /// WAL written by the whole server while the operation ran (the load's included).
    pub wal_bytes: i64,
    pub statements: Vec<StatementRun>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The operation was still running when the load ended.
    pub outlasted_load: bool,
    /// Load figures of the whole window.
    pub load_ok: u64,
    pub load_failed: u64,
    pub load_tps: f64,
}

/// Checks every migration file (readable, splittable) before anything runs.
pub fn load_migrations(opts: &OpsOptions) -> Result<Vec<Migration>> {
    if !opts.operations.contains(&OpKind::Migrations) {
        return Ok(Vec::new());
    }
    opts.migrations
        .iter()
        .map(|m| Migration::load(&crate::paths::project_file(m)))
        .collect()
}

/// Runs every migration alone, then under the load, each on pristine copies of `base`.
pub async fn run(
    base: &Target,
    scenario: &Scenario,
    opts: &OpsOptions,
    capacity: Option<f64>,
) -> Result<OpsSection> {
    opts.validate()?;
    let works = work::plan(opts)?;
    // pgcrypto and audit need no load; without a rate the audit's growth per day is not given.
    let (rate, rate_basis) = match opts.load_rate(capacity) {
        Err(e) if opts.needs_load() => return Err(e),
        r => r.unwrap_or_default(),
    };
    let mut section = OpsSection {
        scenario: scenario.name.clone(),
        rate,
        rate_basis,
        ..Default::default()
    };
    // Every file is rehearsed before any load runs: a broken one changes nothing.
    let mut alone = Vec::new();
    for m in &works {
        let a = with_copy(base, &format!("ops_rehearsal_{}", m.name()), async |t| {
            rehearse(t, m, opts).await
        })
        .await?;
        crate::say!(
            "  ops: {} alone: {:.2} s, WAL {}",
            m.name(),
            a.0.seconds,
            crate::format::human_bytes(a.0.wal_bytes as f64)
        );
        alone.push(a);
    }
    for (m, a) in works.iter().zip(alone) {
        if crate::interrupt::interrupted() {
            break; // What was measured is kept; the command marks the run interrupted.
        }
        let op = match with_copy(base, &format!("ops_{}", m.name()), async |t| {
            under_load::run(t, scenario, m, a, opts, rate).await
        })
        .await
        {
            Ok(op) => op,
            Err(_) if crate::interrupt::interrupted() => {
                crate::say!("  ops: interrupted during {} (its copy dropped)", m.name());
                break;
            }
            Err(e) => return Err(e),
        };
        crate::say!(
            "  ops: {} under load at {rate:.1}/s: {:.2} s, longest wait behind it {:.0} ms (reads), {:.0} ms (writes){}",
            m.name(),
            op.under_load.seconds,
            op.longest_read_block_ms,
            op.longest_write_block_ms,
            op.under_load
                .error
                .as_ref()
                .map_or(String::new(), |e| format!("; failed: {e}"))
        );
        section.operations.push(op);
    }
    let has = |k: OpKind| opts.operations.contains(&k) && !crate::interrupt::interrupted();
    if has(OpKind::Pgcrypto) {
        section.pgcrypto = Some(pgcrypto::measure(base, opts).await?);
    }
    if has(OpKind::Audit) {
        let rate = (rate > 0.0).then_some(rate);
        section.audit = Some(audit::measure(base, scenario, opts, rate).await?);
    }
    if has(OpKind::WalArchive) {
        wal_archive(base, scenario, opts, &mut section).await?;
    }
    Ok(section)
}

/// WAL archiving at the load's rate of the scenario (embedded cluster only: it restarts it).
async fn wal_archive(
    base: &Target,
    scenario: &Scenario,
    opts: &OpsOptions,
    section: &mut OpsSection,
) -> Result<()> {
    use crate::measure::settings::archive::{self, WriteRate};
    if base.embedded.is_none() {
        let why = "wal_archive: skipped, it needs the embedded cluster (wal_level and \
                   archive_mode take a restart; storybench never restarts a server it does not own)";
        crate::say!("  ops: {why}");
        section.skipped.push(why.into());
        return Ok(());
    }
    let rate = if section.rate > 0.0 {
        WriteRate::Scenario {
            scenario,
            rate: section.rate,
            basis: section.rate_basis.clone(),
        }
    } else {
        WriteRate::Unknown
    };
    let engine = opts.engine.engine();
    let s = archive::run(base, &engine, opts.statement_timeout, opts.seed, rate).await?;
    crate::say!(
        "  ops: wal_archive: {} segment(s) archived, {} per hour at {:.2} writes/s",
        s.archived_segments,
        s.archive_bytes_per_hour
            .map_or("–".into(), crate::format::human_bytes),
        s.writes_per_second
    );
    section.wal_archive = Some(s);
    Ok(())
}

/// The operation's own connection, named so lock waits behind it are recognised.
async fn operation_connection(target: &Target, opts: &OpsOptions) -> Result<PgConnection> {
    let mut conn = target
        .connect_options()?
        .application_name("storybench ops")
        .connect()
        .await
        .context("connecting for the operation")?;
    let timeout = format!("{}ms", opts.statement_timeout.as_millis().max(1));
    sqlx::query(sql(&queries().session_statement_timeout))
        .bind(timeout)
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

async fn rehearse(target: &Target, m: &Work, opts: &OpsOptions) -> Result<(Alone, work::Extra)> {
    let mut conn = operation_connection(target, opts).await?;
    let mut probe = target.connect().await?;
    let io_before = database_io(&mut probe).await?;
    let lsn: String = sqlx::query_scalar(sql(&queries().wal_lsn))
        .fetch_one(&mut probe)
        .await?;
    let clock = Instant::now();
    let (statements, outcome, extra) = m.alone(target, &mut conn, opts, clock).await;
    let seconds = clock.elapsed().as_secs_f64();
    // The file is refused here, before any load: its copy is dropped, nothing changed.
    outcome.with_context(|| format!("{} refused (rehearsed on a copy)", m.describe()))?;
    let wal_bytes: i64 = sqlx::query_scalar(sql(&queries().wal_since))
        .bind(&lsn)
        .fetch_one(&mut probe)
        .await?;
    sqlx::query(sql(&queries().flush_stats))
        .execute(&mut conn)
        .await?;
    sqlx::query(sql(&queries().noop)).execute(&mut conn).await?;
    let io = database_io(&mut probe).await?;
    let alone = Alone {
        seconds,
        wal_bytes,
        blocks_read: io.0 - io_before.0,
        blocks_hit: io.1 - io_before.1,
        temp_bytes: io.2 - io_before.2,
        statements,
    };
    let mut extra = extra;
    m.after_alone(target, &mut extra).await?;
    Ok((alone, extra))
}

async fn database_io(conn: &mut PgConnection) -> Result<(i64, i64, i64)> {
    Ok(sqlx::query_as(sql(&queries().database_io))
        .fetch_one(conn)
        .await?)
}

pub(crate) fn retries(opts: &OpsOptions) -> Retries {
    Retries {
        max: opts.retries,
        backoff: opts.retry_backoff,
    }
}

/// Whether SQL text names a table (as a whole word, optionally schema-qualified).
fn mentions(sql: &str, table: &str) -> bool {
    sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| w.eq_ignore_ascii_case(table))
}
