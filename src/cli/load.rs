//! `storybench load`: a goose scenario or an ad hoc statement under a closed or open model.

use super::RunSession;
use crate::measure::load::scenario_run::{self, ScenarioOptions};
use crate::measure::load::shard::{parse_start_at, Shard};
use crate::measure::load::{adhoc, parse_duration, LoadSection, LoadShape, ScenarioInfo};
use crate::measure::server_view::{self, WaitSampler};
use crate::scenario::Scenario;
use crate::target::{DbArgs, Target};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct LoadArgs {
    /// One statement to run on every client (ad hoc mode, e.g. 'SELECT 1').
    #[arg(long, conflicts_with = "scenario")]
    pub sql: Option<String>,
    /// A load scenario: a name in scenarios/ (bedtime, create_story, browse_events,
    /// backend_worker, dashboard, launch_mix, select1) or a scenario file path.
    #[arg(long)]
    pub scenario: Option<String>,
    /// Concurrent clients (ad hoc) or goose users (scenarios).
    #[arg(long, visible_alias = "users", default_value_t = 4)]
    pub clients: usize,
    /// Scenarios: users share a pool of P connections (pool wait reported apart from query
    /// time) instead of each owning one.
    #[arg(long)]
    pub pool: Option<u32>,
    /// Scenarios: statement_timeout of every request.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub statement_timeout: Duration,
    /// Scenarios, closed model: multiply think times by this (0: none, 0.1: ten times faster).
    #[arg(long, default_value_t = 1.0)]
    pub think_scale: f64,
    /// Measured duration after warm-up (e.g. 30s, 2m).
    #[arg(long, default_value = "10s", value_parser = parse_duration, allow_hyphen_values = true)]
    #[serde(with = "crate::units::duration_secs")]
    pub duration: Duration,
    /// Warm-up before measuring (not counted).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub warmup: Duration,
    /// Spread client starts over this time.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub ramp: Duration,
    /// Open model: target transactions per second (latency from each intended start).
    #[arg(long, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Open model: drop (and count) arrivals later than this instead of running them.
    #[arg(long, value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs_opt")]
    pub latency_limit: Option<Duration>,
    /// Seed for arrivals and sampling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Run shard I (0-based) of N of one open-model load: rate/N of the arrivals and a
    /// disjoint part of the app users; `storybench merge` adds the shards up. Needs
    /// --scenario, --rate (the total) and --start-at.
    #[arg(long, value_parser = Shard::parse, requires = "start_at")]
    pub shard: Option<Shard>,
    /// The shards' shared start: Unix seconds or RFC 3339.
    #[arg(long, value_parser = parse_start_at, requires = "shard")]
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    #[command(flatten)]
    #[serde(flatten)]
    pub pooler: crate::pooler::PoolerArgs,
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl LoadArgs {
    pub fn shape(&self) -> LoadShape {
        LoadShape {
            clients: self.clients,
            duration: self.duration,
            warmup: self.warmup,
            ramp: self.ramp,
            rate: self.rate,
            latency_limit: self.latency_limit,
            seed: self.seed,
        }
    }
}

pub async fn run(db: &DbArgs, args: LoadArgs) -> Result<i32> {
    let mut shape = args.shape();
    shape.validate()?;
    let mut db = db.clone();
    if let Some(shard) = args.shard {
        shape = super::shard::shape(&args, shard, &shape)?;
        db.shared_lock = true;
    }
    let db = &db;
    check_args(&args)?;
    // Load the scenario first: a malformed file is an error before anything starts.
    let scenario = match (&args.sql, &args.scenario) {
        (Some(_), _) => None,
        (None, Some(name)) => Some(crate::scenario::load(name)?),
        (None, None) => bail!(
            "say what to run: --scenario NAME|FILE (one of: {}) or --sql 'STATEMENT'",
            crate::scenario::available().join(", ")
        ),
    };
    let config = serde_json::to_value(&args)?;
    super::command_frame(
        db,
        "load",
        config,
        args.out.as_deref(),
        async |session, target| {
            let mut conn = target.connect().await?;
            crate::schema::check_ownership(&mut conn).await?;
            session.collect_environment(target).await?;
            if let Some(sc) = &scenario {
                sc.check_sql(&mut conn).await?;
            }
            // A seeded dataset is measured on a pristine copy (the load writes); an ad hoc
            // statement on a database without one runs where it is.
            let has_dataset = crate::seed::dataset(&mut conn).await?.is_some();
            drop(conn);
            if has_dataset || scenario.is_some() {
                session.check_dataset(target).await?;
            }
            let section = match (&scenario, &args.sql) {
                (Some(sc), _) => scenario_section(session, target, sc, &args, &shape).await?,
                (None, Some(sql)) if has_dataset => {
                    session
                        .stage_on_copy("load", target, async |t| {
                            measure_adhoc(t, sql, &shape).await
                        })
                        .await?
                }
                (None, Some(sql)) => {
                    session
                        .stage("load", measure_adhoc(target, sql, &shape))
                        .await?
                }
                (None, None) => unreachable!("checked above"),
            };
            crate::printer::show(|p| crate::printer::load::summary(p, &section));
            session.results.load = Some(section);
            crate::interrupt::check()?;
            Ok(())
        },
    )
    .await
}

/// The flags clap cannot check on its own.
fn check_args(args: &LoadArgs) -> Result<()> {
    if !args.think_scale.is_finite() || !(0.0..=100.0).contains(&args.think_scale) {
        bail!(
            "--think-scale must be between 0 and 100; got {}",
            args.think_scale
        );
    }
    if args.pool == Some(0) {
        bail!("--pool must be at least 1");
    }
    if args.pooler.wanted() && args.scenario.is_none() {
        bail!("--pooler/--pooler-url run a --scenario's users through the pooler; give --scenario");
    }
    Ok(())
}

/// A scenario's load: one shard of a sharded run, or the whole load on a pristine copy.
async fn scenario_section(
    session: &mut RunSession,
    target: &Target,
    sc: &Scenario,
    args: &LoadArgs,
    shape: &LoadShape,
) -> Result<LoadSection> {
    let pooler = match args.pooler.wanted() {
        true => Some(std::sync::Arc::new(
            crate::pooler::Pooler::open(&args.pooler, target, args.statement_timeout).await?,
        )),
        false => None,
    };
    let opts = ScenarioOptions {
        pooler,
        shape: shape.clone(),
        pool: args.pool,
        goose_report: Some(session.out_dir.join(GOOSE_REPORT)),
        statement_timeout: args.statement_timeout,
        think_scale: args.think_scale,
        query_seconds: false,
        measure_start: None,
        shard: args.shard,
        start_at: args.start_at,
    };
    match (args.shard, args.start_at) {
        (Some(shard), Some(at)) => super::shard::run(session, target, sc, &opts, shard, at).await,
        _ => {
            session
                .stage_on_copy("load", target, async |t| {
                    measure_scenario(t, sc, &opts).await
                })
                .await
        }
    }
}

/// goose's own HTML report, written beside report.html.
const GOOSE_REPORT: &str = "goose-report.html";

/// Runs a scenario through goose with the server-side view around it.
pub async fn measure_scenario(
    target: &Target,
    scenario: &Scenario,
    opts: &ScenarioOptions,
) -> Result<LoadSection> {
    let pooled = match &opts.pooler {
        Some(p) => Some(p.begin(target).await?),
        None => None,
    };
    let mut conn = target.connect().await?;
    let before = server_view::snapshot(&mut conn).await?;
    let sampler = WaitSampler::start(target.connect().await?, Duration::from_millis(250));
    let outcome = scenario_run::run(target, scenario, opts).await;
    sampler.stop();
    let outcome = outcome?;
    let pooler = match pooled {
        Some(run) => Some(run.finish().await),
        None => None,
    };
    drop(conn);
    let ago = std::time::Instant::now().saturating_duration_since(outcome.window.0);
    let measured_from = chrono::Utc::now() - chrono::Duration::from_std(ago).unwrap_or_default();
    Ok(LoadSection {
        measured_from: Some(measured_from),
        shard: None,
        merged_shards: Vec::new(),
        mode: "scenario".into(),
        target: scenario.name.clone(),
        model: model_name(&opts.shape).into(),
        shape: opts.shape.clone(),
        server: closing_view(target, &before, &sampler).await,
        figures: outcome.figures,
        goose: Some(outcome.goose),
        scenario: Some(ScenarioInfo::of(scenario, opts.think_scale)),
        pooler,
    })
}

/// Runs the ad hoc statement with the server-side view around it.
async fn measure_adhoc(target: &Target, sql: &str, shape: &LoadShape) -> Result<LoadSection> {
    let mut conn = target.connect().await?;
    let before = server_view::snapshot(&mut conn).await?;
    let sampler = WaitSampler::start(target.connect().await?, Duration::from_millis(250));
    let figures = adhoc::run(target, sql, shape).await;
    sampler.stop();
    let figures = figures?;
    drop(conn);
    Ok(LoadSection {
        mode: "adhoc".into(),
        target: sql.to_string(),
        model: model_name(shape).into(),
        shape: shape.clone(),
        server: closing_view(target, &before, &sampler).await,
        figures,
        goose: None,
        scenario: None,
        measured_from: None,
        shard: None,
        merged_shards: Vec::new(),
        pooler: None,
    })
}

fn model_name(shape: &LoadShape) -> &'static str {
    if shape.rate.is_some() {
        "open"
    } else {
        "closed"
    }
}

/// The server-side deltas of a run. The server may have restarted during it, so the closing
/// snapshot uses a fresh connection, and a failure leaves the view out rather than the results.
async fn closing_view(
    target: &Target,
    before: &server_view::Snapshot,
    sampler: &WaitSampler,
) -> Option<server_view::ServerView> {
    let after = match target.connect().await {
        Ok(mut c) => server_view::snapshot(&mut c).await.ok(),
        Err(_) => None,
    };
    if after.is_none() {
        tracing::warn!("could not read the server's statistics after the run; the server-side view is left out");
    }
    after.map(|after| server_view::delta(before, &after, sampler))
}

/// The load and capacity stages of `storybench run`: a short `launch_mix` run (think times
/// shortened tenfold so a few seconds hold enough transactions) and a bounded capacity
/// search of `bedtime` (under a minute; a few seconds with --quick).
pub async fn stages_for_run(
    session: &mut RunSession,
    target: &Target,
    config: &crate::config::RunConfig,
) -> Result<()> {
    let scenario = crate::scenario::load(&config.load.scenario)?;
    let opts = config.load_options(Some(session.out_dir.join(GOOSE_REPORT)));
    let section = session
        .stage_on_copy("load", target, async |t| {
            measure_scenario(t, &scenario, &opts).await
        })
        .await?;
    crate::printer::show(|p| crate::printer::load::summary(p, &section));
    session.results.load = Some(section);

    let bedtime = crate::scenario::load(&config.capacity.scenario)?;
    let copts = config.capacity_options()?;
    let section = session
        .stage_on_copy("capacity", target, async |t| {
            crate::measure::load::capacity::search(t, &bedtime, &copts).await
        })
        .await?;
    crate::printer::show(|p| crate::printer::capacity::summary(p, &section));
    let capacity = section.sustainable_rate;
    session.results.capacity = Some(section);

    if !config.scales.scales.is_empty() {
        // Capacity as the data grows: the same search at each scale's own dataset.
        super::capacity_scales::for_run(session, target, config, &bedtime).await?;
    }

    // Operations under load, at a share of the capacity just measured.
    let mix = crate::scenario::load(&config.ops.scenario)?;
    if config.ops.rate.is_none() && capacity.is_none() {
        crate::say!("  ops: skipped (the capacity search found no sustainable rate to load at)");
        return Ok(());
    }
    let mut section = session
        .stage(
            "ops",
            crate::measure::ops::run(target, &mix, &config.ops, capacity),
        )
        .await?;
    crate::printer::show(|p| crate::printer::ops::summary(p, &section));
    session.results.wal_archive = section.wal_archive.take();
    session.results.ops = Some(section);
    Ok(())
}
