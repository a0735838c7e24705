//! `storybench settings`: the server settings profiles (doc, default, tuned) measured on
//! the same dataset — capacity and the analytics queries per profile — with the server's
//! own settings restored afterwards (also on error and Ctrl-C) and checked.

use super::measuring_command;
use crate::cluster::settings::Profile;
use crate::config::RunConfig;
use crate::measure::settings::archive::WriteRate;
use crate::measure::settings::{self, SettingsOptions};
use crate::target::DbArgs;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct SettingsArgs {
    /// Profiles to measure, in order; ratios are against the first.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "default,doc,tuned"
    )]
    pub profiles: Vec<Profile>,
    /// External server only: allow ALTER SYSTEM for the settings that reload (work_mem,
    /// effective_cache_size), reset afterwards. Without it an external server is refused.
    #[arg(long)]
    pub alter_system: bool,
    /// Short measurements (the `quick` preset of presets/run.toml: p50 only, a short search).
    #[arg(long)]
    pub quick: bool,
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The stage's options from a run configuration (engine and capacity settings shared
/// with the partitions and capacity stages).
pub fn options(
    config: &RunConfig,
    profiles: Vec<Profile>,
    alter_system: bool,
) -> Result<SettingsOptions> {
    Ok(SettingsOptions {
        profiles,
        alter_system,
        engine: config.partitions.engine(),
        statement_timeout: config.partitions.statement_timeout,
        capacity: config.capacity_options()?,
        seed: config.dataset.seed,
    })
}

pub async fn run(db: &DbArgs, args: SettingsArgs) -> Result<i32> {
    let config = RunConfig::preset(if args.quick { "quick" } else { "full" })?;
    let opts = options(&config, args.profiles.clone(), args.alter_system)?;
    settings::check_request(db.database_url.is_some(), &opts.profiles, opts.alter_system)?;
    opts.capacity.validate()?;
    let scenario = crate::scenario::load(&config.capacity.scenario)?;
    let recorded = serde_json::to_value(&args)?;
    measuring_command(
        db,
        "settings",
        recorded,
        args.out.as_deref(),
        async |session, target| stage(session, target, &opts, &scenario).await,
    )
    .await
}

/// The stage as `run` and `settings` call it: the section kept also when it fails part-way.
pub async fn stage(
    session: &mut super::RunSession,
    target: &crate::target::Target,
    opts: &SettingsOptions,
    scenario: &crate::scenario::Scenario,
) -> Result<()> {
    settings::check(target, &opts.profiles, opts.alter_system)?;
    let outcome = session
        .stage("settings", settings::run(target, opts, scenario))
        .await;
    let section = match outcome
        .map_err(|e| e.downcast::<crate::measure::Partial<settings::SettingsSection>>())
    {
        Ok(s) => s,
        Err(Ok(partial)) => {
            session.results.settings = Some(partial.section);
            return Err(partial.cause);
        }
        Err(Err(e)) => return Err(e),
    };
    crate::printer::show(|p| crate::printer::settings::summary(p, &section));
    session.results.settings = Some(section);
    Ok(())
}

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct WalArchiveArgs {
    /// The scenario whose write statements the archive volume per hour is computed at
    /// (default: the ops preset's, launch_mix).
    #[arg(long)]
    pub scenario: Option<String>,
    /// The scenario's rate in transactions/s.
    #[arg(long, conflicts_with = "capacity_from")]
    pub rate: Option<f64>,
    /// A results.json of `storybench capacity` or `run`: the scenario at the ops preset's
    /// load fraction (50 %) of its sustainable rate, as `ops` loads it.
    #[arg(long)]
    pub capacity_from: Option<PathBuf>,
    /// Write statements per second (of the mean write) instead of the scenario's rate.
    #[arg(long)]
    pub writes_per_second: Option<f64>,
    /// Short measurements (the `quick` preset's engine settings).
    #[arg(long)]
    pub quick: bool,
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub async fn wal_archive(db: &DbArgs, args: WalArchiveArgs) -> Result<i32> {
    if db.database_url.is_some() {
        anyhow::bail!(
            "WAL archiving is measured on the embedded cluster only: wal_level and archive_mode \
             take a restart, and storybench never restarts a server it does not own (drop --database-url)"
        );
    }
    let config = RunConfig::preset(if args.quick { "quick" } else { "full" })?;
    let scenario = crate::scenario::load(args.scenario.as_deref().unwrap_or(&config.ops.scenario))?;
    // The same rate `ops` would load at (and audit's growth per day is given at).
    let mut ops = config.ops.clone();
    ops.rate = args.rate.or(ops.rate);
    let capacity = super::ops::capacity_from(args.capacity_from.as_deref())?;
    let rate = match (args.writes_per_second, ops.load_rate(capacity)) {
        (Some(w), _) if w > 0.0 && w.is_finite() => WriteRate::Given(w),
        (Some(w), _) => anyhow::bail!("--writes-per-second must be positive, not {w}"),
        (None, Ok((rate, basis))) => WriteRate::Scenario {
            scenario: &scenario,
            rate,
            basis,
        },
        (None, Err(_)) => WriteRate::Unknown,
    };
    let recorded = serde_json::to_value(&args)?;
    measuring_command(
        db,
        "wal-archive",
        recorded,
        args.out.as_deref(),
        async |session, target| {
            let section = session
                .stage(
                    "wal-archive",
                    settings::archive::run(
                        target,
                        &config.partitions.engine(),
                        config.partitions.statement_timeout,
                        config.dataset.seed,
                        rate,
                    ),
                )
                .await?;
            session.results.wal_archive = Some(section);
            Ok(())
        },
    )
    .await
}
