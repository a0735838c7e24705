//! What `ops` runs: a migration file, the document's backup script, or its scheduled cache
//! cleanup. Each is rehearsed alone and then run beside the load by the same frame (see
//! the module's `run`); this is the one place that tells them apart.

use super::{backup, cron, migration, Migration, OpsOptions, StatementRun};
use crate::target::Target;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use std::time::{Duration, Instant};

/// An operation kind of `--operations`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// The migration files (`--migration`).
    Migrations,
    /// The document's backup script, then a restore into a scratch database.
    Backup,
    /// The document's cache cleanup, scheduled with pg_cron.
    Cron,
    /// The read cost of the document's pgcrypto decrypt, and where its key shows (engine,
    /// idle copies; no load).
    Pgcrypto,
    /// The document's audit_trigger() on vs off on each write path (engine, idle copies).
    Audit,
    /// The document's WAL archiving (PITR settings) on vs off, embedded cluster only (a
    /// restart each way); the archive per hour at the load's rate of the scenario.
    WalArchive,
}

impl OpKind {
    /// Whether it runs beside the load (else it is timed by the engine on idle copies).
    pub fn under_load(self) -> bool {
        matches!(self, OpKind::Migrations | OpKind::Backup | OpKind::Cron)
    }
}

pub(super) fn only_migrations() -> Vec<OpKind> {
    vec![OpKind::Migrations]
}

pub(super) fn default_cron_schedule() -> String {
    "* * * * *".into()
}

pub(super) fn default_cron_runs() -> u32 {
    2
}

pub enum Work {
    Migration(Migration),
    Backup,
    Cron,
}

/// What an operation measured besides its steps.
#[derive(Default)]
pub struct Extra {
    pub backup: Option<backup::BackupFigures>,
    pub cron: Option<cron::CronFigures>,
}

/// The operations of `opts`, in the order of `--operations` (every migration file checked).
pub fn plan(opts: &OpsOptions) -> Result<Vec<Work>> {
    let mut kinds = opts.operations.clone();
    kinds.sort();
    kinds.dedup();
    let mut out = Vec::new();
    for k in kinds {
        match k {
            OpKind::Migrations => out.extend(
                super::load_migrations(opts)?
                    .into_iter()
                    .map(Work::Migration),
            ),
            OpKind::Backup => out.push(Work::Backup),
            OpKind::Cron => out.push(Work::Cron),
            OpKind::Pgcrypto | OpKind::Audit | OpKind::WalArchive => {}
        }
    }
    Ok(out)
}

/// The longest the job's runs are waited for.
fn cron_limit(opts: &OpsOptions) -> Duration {
    cron::expected(&opts.cron_schedule, opts.cron_runs) + Duration::from_secs(3)
}

type Outcome = (Vec<StatementRun>, Result<()>, Extra);

impl Work {
    pub fn name(&self) -> String {
        match self {
            Work::Migration(m) => m.name.clone(),
            Work::Backup => "backup".into(),
            Work::Cron => "cron_cleanup".into(),
        }
    }

    /// Where it comes from, for the report.
    pub fn file(&self) -> String {
        match self {
            Work::Migration(m) => m.path.display().to_string(),
            Work::Backup => "reference: Backup Strategy (scenarios/ops.toml [backup])".into(),
            Work::Cron => "reference: Cache Cleanup Function (scenarios/ops.toml [cron])".into(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Work::Migration(m) => format!("migration {}", m.path.display()),
            Work::Backup => "the backup".into(),
            Work::Cron => "the scheduled cleanup".into(),
        }
    }

    /// The tables it changes or locks (the app's queries on them are the affected ones).
    pub fn tables(&self) -> Vec<String> {
        match self {
            Work::Migration(m) => m.tables(),
            // pg_dump holds ACCESS SHARE on every table it dumps and reads them all.
            Work::Backup => {
                let mut t: Vec<String> = crate::seed::generate::Table::ALL
                    .iter()
                    .map(|t| t.name().to_string())
                    .collect();
                t.sort();
                t
            }
            Work::Cron => vec!["cache_entries".into()],
        }
    }

    /// How long the load should expect it to run beside it: capped by `max_during`, except
    /// the scheduled job, whose runs the load must cover to be lined up against it.
    pub fn expected_under_load(&self, alone_s: f64, opts: &OpsOptions) -> Duration {
        // Under load an operation that waits for locks takes longer than alone.
        let slower = Duration::from_secs_f64(alone_s * 4.0 + 2.0);
        match self {
            Work::Cron => cron_limit(opts) + slower.min(opts.max_during),
            _ => slower.min(opts.max_during),
        }
    }

    /// The rehearsal, on an idle copy.
    pub async fn alone(
        &self,
        target: &Target,
        conn: &mut PgConnection,
        opts: &OpsOptions,
        clock: Instant,
    ) -> Outcome {
        match self {
            Work::Migration(m) => {
                let (s, o) = migration::execute(conn, m, super::retries(opts), clock).await;
                (s, o, Extra::default())
            }
            Work::Backup => {
                let (s, o, f) = backup::run(target, clock).await;
                let extra = Extra {
                    backup: Some(f),
                    ..Default::default()
                };
                (s, o, extra)
            }
            Work::Cron => {
                let (s, o) = cron::alone(conn, clock).await;
                (s, o, Extra::default())
            }
        }
    }

    /// After the rehearsal's figures are taken: the backup's restore check (its time is
    /// not the backup's).
    pub async fn after_alone(&self, target: &Target, extra: &mut Extra) -> Result<()> {
        if let (Work::Backup, Some(b)) = (self, extra.backup.as_mut()) {
            b.restore = Some(backup::restore(target).await?);
        }
        Ok(())
    }

    /// The operation beside the load, on `clock` (the load's measurement start).
    pub async fn under_load(
        &self,
        target: &Target,
        conn: &mut PgConnection,
        opts: &OpsOptions,
        clock: Instant,
    ) -> Outcome {
        match self {
            Work::Migration(m) => {
                let (s, o) = migration::execute(conn, m, super::retries(opts), clock).await;
                (s, o, Extra::default())
            }
            Work::Backup => {
                let (s, o, _) = backup::run(target, clock).await;
                (s, o, Extra::default())
            }
            Work::Cron => {
                let (s, o, f) = cron::under_load(
                    target,
                    conn,
                    &opts.cron_schedule,
                    opts.cron_runs,
                    cron_limit(opts),
                    clock,
                )
                .await;
                let extra = Extra {
                    cron: Some(f),
                    ..Default::default()
                };
                (s, o, extra)
            }
        }
    }
}
