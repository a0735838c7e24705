//! `storybench ops`: migrations run while the app's load runs (see `measure::ops`).
//! Defaults come from the run presets (`presets/run.toml`, `[full.ops]`; `--quick` for
//! `[quick.ops]`); each flag given replaces its value.

use super::measuring_command;
use crate::measure::ops::{self, OpKind as OpsOperation, OpsOptions};
use crate::target::DbArgs;
use crate::units::{parse_duration, parse_percent};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct OpsArgs {
    /// A migration file to run under load (repeatable; default: migrations/doc_rating.sql
    /// and migrations/safe_rating.sql). Files may hold their own BEGIN/COMMIT.
    #[arg(long = "migration")]
    pub migrations: Vec<PathBuf>,
    /// What to run (comma-separated): migrations, backup (the document's backup script and
    /// a restore check), cron (its cache cleanup under pg_cron), pgcrypto (the decrypt's read
    /// cost and where the key shows), audit (audit_trigger() on vs off per write path); the
    /// last two need no load; wal-archive (the document's WAL archiving on vs off and the
    /// archive per hour at the load's rate; embedded cluster only, it restarts it).
    /// Default: the preset's, or only the migrations when --migration is given.
    #[arg(long, value_delimiter = ',')]
    pub operations: Vec<OpsOperation>,
    /// The cleanup job's schedule while measured: '* * * * *' or 'N seconds' (1-59).
    #[arg(long)]
    pub cron_schedule: Option<String>,
    /// How many runs of the job the load waits for.
    #[arg(long)]
    pub cron_runs: Option<u32>,
    /// The foreground load's scenario (default: launch_mix).
    #[arg(long)]
    pub scenario: Option<String>,
    /// The load's rate in transactions/s.
    #[arg(long, conflicts_with = "capacity_from")]
    pub rate: Option<f64>,
    /// A results.json of `storybench capacity` or `run`: the load runs at --load-fraction
    /// of its sustainable rate.
    #[arg(long)]
    pub capacity_from: Option<PathBuf>,
    /// Share of the capacity to load at (default 50%).
    #[arg(long, value_parser = parse_percent)]
    pub load_fraction: Option<f64>,
    /// Open-model load users (connections).
    #[arg(long)]
    pub users: Option<usize>,
    /// Load measured before the operation starts.
    #[arg(long, value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs_opt")]
    pub before: Option<Duration>,
    /// Load measured after the operation ends.
    #[arg(long, value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs_opt")]
    pub after: Option<Duration>,
    /// Longest the load waits for the operation.
    #[arg(long, value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs_opt")]
    pub max_during: Option<Duration>,
    /// Lock-timeout retries of a statement outside a transaction block.
    #[arg(long)]
    pub retries: Option<u32>,
    /// The quick preset's durations (a smoke run).
    #[arg(long)]
    pub quick: bool,
    /// Seed for arrivals and sampling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl OpsArgs {
    /// The preset's ops options with the flags given applied.
    pub fn options(&self) -> Result<OpsOptions> {
        let preset = if self.quick { "quick" } else { "full" };
        let mut o = crate::config::RunConfig::preset(preset)?.ops;
        if !self.migrations.is_empty() {
            o.migrations = self
                .migrations
                .iter()
                .map(|p| {
                    std::fs::canonicalize(p)
                        .map(|p| p.display().to_string())
                        .with_context(|| format!("migration {}", p.display()))
                })
                .collect::<Result<_>>()?;
        }
        if !self.operations.is_empty() {
            o.operations = self.operations.clone();
        } else if !self.migrations.is_empty() {
            o.operations = vec![OpsOperation::Migrations];
        }
        if let Some(s) = &self.cron_schedule {
            o.cron_schedule = s.clone();
        }
        o.cron_runs = self.cron_runs.unwrap_or(o.cron_runs);
        if let Some(s) = &self.scenario {
            o.scenario = s.clone();
        }
        o.rate = self.rate.or(o.rate);
        o.load_fraction = self.load_fraction.unwrap_or(o.load_fraction);
        o.users = self.users.unwrap_or(o.users);
        o.before = self.before.unwrap_or(o.before);
        o.after = self.after.unwrap_or(o.after);
        o.max_during = self.max_during.unwrap_or(o.max_during);
        o.retries = self.retries.unwrap_or(o.retries);
        o.seed = self.seed;
        o.validate()?;
        Ok(o)
    }

    fn capacity(&self) -> Result<Option<f64>> {
        capacity_from(self.capacity_from.as_deref())
    }
}

/// The sustainable rate in a results.json of `capacity` or `run` (`--capacity-from`).
pub(crate) fn capacity_from(path: Option<&std::path::Path>) -> Result<Option<f64>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let r = crate::results::RunResults::read(path)?;
    match r.capacity.and_then(|c| c.sustainable_rate) {
        Some(rate) => Ok(Some(rate)),
        None => bail!("{}: no sustainable capacity rate in it", path.display()),
    }
}

pub async fn run(db: &DbArgs, args: OpsArgs) -> Result<i32> {
    let opts = args.options()?;
    // Before anything runs: a bad file, scenario or rate is an error that changes nothing.
    ops::load_migrations(&opts)?;
    let scenario = crate::scenario::load(&opts.scenario)?;
    let capacity = args.capacity()?;
    if opts.needs_load() {
        opts.load_rate(capacity)?;
    }
    let config = serde_json::to_value(&opts)?;
    measuring_command(
        db,
        "ops",
        config,
        args.out.as_deref(),
        async |session, target| {
            let mut conn = target.connect().await?;
            scenario.check_sql(&mut conn).await?;
            drop(conn);
            let mut section = session
                .stage("ops", ops::run(target, &scenario, &opts, capacity))
                .await?;
            crate::printer::show(|p| crate::printer::ops::summary(p, &section));
            session.results.wal_archive = section.wal_archive.take();
            session.results.ops = Some(section);
            Ok(())
        },
    )
    .await
}
