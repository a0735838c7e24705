//! `storybench capacity`: the highest arrival rate a scenario sustains within a latency SLO
//! and an error budget, the knee, what saturated, and the equivalent number of app users.

use crate::measure::load::capacity::sharded::Sharding;
use crate::measure::load::capacity::{self, CapacityOptions, Slo};
use crate::measure::load::parse_duration;
use crate::measure::load::shard::{parse_start_at, Shard};
use crate::target::DbArgs;
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct CapacityArgs {
    /// The scenario: a name in scenarios/ or a scenario file path.
    #[arg(long)]
    pub scenario: String,
    /// Latency objective on transactions, measured from each intended start (e.g. p95<50ms,
    /// p99<=200ms; statistics p50, p90, p95, p99, p999, max, mean).
    #[arg(long, default_value = "p95<50ms", value_parser = Slo::parse)]
    pub slo: Slo,
    /// Largest share of failed transactions a step may have (1%; a bare number is a percent).
    #[arg(long, default_value = "1%", value_parser = crate::units::parse_share)]
    pub error_budget: f64,
    /// First rate tried (transactions per second); rates then double until a step breaks.
    #[arg(long, default_value_t = 20.0)]
    pub start_rate: f64,
    /// Highest rate tried.
    #[arg(long, default_value_t = 2000.0)]
    pub max_rate: f64,
    /// Measured time of a climbing step (lengthened when too short for the SLO statistic:
    /// p95 needs ≥ 72 samples, p99 ≥ 368).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub step_duration: Duration,
    /// Measured time of a step near the boundary (bisection and repeats).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub boundary_duration: Duration,
    /// Longest a step is lengthened to for enough samples.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub max_step_duration: Duration,
    /// Steps at each end of the final bracket (the last passing and first failing rate);
    /// the majority decides. 1: no repeats.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Bisect until the failing rate is within this of the passing one (5%; a bare number is a percent).
    #[arg(long, default_value = "5%", value_parser = crate::units::parse_share)]
    pub resolution: f64,
    /// Warm-up of each step (not counted).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub warmup: Duration,
    /// Goose users serving the arrivals (the most transactions in flight at once).
    #[arg(long, visible_alias = "clients", default_value_t = 32)]
    pub users: usize,
    /// Users share a pool of P connections instead of each owning one.
    #[arg(long)]
    pub pool: Option<u32>,
    /// At most this many steps (climb, bisection and repeats).
    #[arg(long, default_value_t = 24)]
    pub max_steps: usize,
    /// Seed for arrivals and sampling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// statement_timeout of every request.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub statement_timeout: Duration,
    #[command(flatten)]
    #[serde(flatten)]
    pub pooler: crate::pooler::PoolerArgs,
    /// Run shard I (0-based) of N of one search: each step's rate/N of the arrivals and a
    /// disjoint part of the app users; the shards meet in the database after every step and
    /// judge it on everyone's figures added up, so they all take the same steps and reach
    /// the same answer. Every shard gets the same options. Needs --start-at.
    #[arg(long, value_parser = Shard::parse, requires = "start_at")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The shards' shared start: Unix seconds or RFC 3339.
    #[arg(long, value_parser = parse_start_at, requires = "shard")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    #[serde(flatten)]
    pub scales: super::capacity_scales::ScalesArgs,
}

impl CapacityArgs {
    pub fn options(&self) -> CapacityOptions {
        CapacityOptions {
            slo: self.slo.clone(),
            error_budget: self.error_budget,
            start_rate: self.start_rate,
            max_rate: self.max_rate,
            step_duration: self.step_duration,
            boundary_duration: self.boundary_duration,
            max_step_duration: self.max_step_duration,
            repeats: self.repeats,
            resolution: self.resolution,
            warmup: self.warmup,
            users: self.users,
            pool: self.pool,
            max_steps: self.max_steps,
            seed: self.seed,
            statement_timeout: self.statement_timeout,
            pooler: None,
            sharding: self
                .shard
                .zip(self.start_at)
                .map(|(shard, start_at)| Sharding { shard, start_at }),
        }
    }
}

pub async fn run(db: &DbArgs, args: CapacityArgs) -> Result<i32> {
    if args.max_steps == 0 || args.users == 0 || args.pool == Some(0) {
        bail!("--max-steps, --users and --pool must be at least 1");
    }
    args.options().validate()?;
    if !args.scales.scales.is_empty() {
        return super::capacity_scales::run(db, args).await;
    }
    let mut db = db.clone();
    if let Some(shard) = args.shard {
        // The shards of one search share the database (storybench's lock in shared mode).
        db.shared_lock = true;
        if shard.users(args.users) == 0 {
            bail!(
                "--users {} is fewer than the {} shards: each shard needs at least one",
                args.users,
                shard.count
            );
        }
        if args.pooler.pooler.is_some() {
            bail!("--shard with --pooler: each shard would start its own pgbouncer; point every shard at one pooler with --pooler-url");
        }
    }
    let scenario = crate::scenario::load(&args.scenario)?;
    let config = serde_json::to_value(&args)?;
    super::command_frame(
        &db,
        "capacity",
        config,
        args.out.as_deref(),
        async |session, target| {
            let mut conn = target.connect().await?;
            crate::schema::check_ownership(&mut conn).await?;
            // Before anything is created (pg_stat_statements): a broken scenario changes nothing.
            scenario.check_sql(&mut conn).await?;
            crate::schema::ensure_pg_stat_statements(&mut conn).await?;
            drop(conn);
            session.collect_environment(target).await?;
            session.check_dataset(target).await?;
            let mut opts = args.options();
            if args.pooler.wanted() {
                let pooler =
                    crate::pooler::Pooler::open(&args.pooler, target, args.statement_timeout)
                        .await?;
                opts.pooler = Some(std::sync::Arc::new(pooler));
            }
            let section = match (args.shard, args.start_at) {
                (Some(shard), Some(at)) => {
                    let (mut section, copy) =
                        super::shard::on_shared_copy(session, target, shard, at, async |s, t| {
                            s.stage("capacity", capacity::search(t, &scenario, &opts))
                                .await
                        })
                        .await?;
                    if let Some(info) = section.shard.as_mut() {
                        info.copy = copy;
                    }
                    section
                }
                _ => {
                    session
                        .stage_on_copy("capacity", target, async |t| {
                            capacity::search(t, &scenario, &opts).await
                        })
                        .await?
                }
            };
            crate::printer::show(|p| crate::printer::capacity::summary(p, &section));
            session.results.capacity = Some(section);
            Ok(())
        },
    )
    .await
}
