//! `storybench partitions`: api_usage partitioned by month vs the flat twin, on every
//! analytics query, plus the scaling curve and the maintenance comparison.

use super::measuring_command;
use crate::measure::load::parse_duration;
use crate::measure::partitions::{self, PartitionsOptions};
use crate::target::DbArgs;
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct PartitionsArgs {
    /// Catalog queries to compare (default: every analytics query that reads api_usage).
    #[arg(long, value_delimiter = ',')]
    pub queries: Vec<String>,
    /// Most interleaved rounds per comparison (each round runs every arm once); never fewer
    /// than the reported percentiles need (6 for p50, 72 for p95).
    #[arg(long, default_value_t = 400)]
    pub runs: usize,
    /// Untimed warm-up runs per arm.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Time budget per comparison once the percentiles' rounds are reached (4× that at most).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub budget: Duration,
    /// Statement timeout for each measured query.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub statement_timeout: Duration,
    /// Seed for parameter sampling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Skip the btree vs BRIN comparison on created_at.
    #[arg(long)]
    pub no_indexes: bool,
    /// Skip the scaling curve (scratch copies with monthly, weekly and daily partitions).
    #[arg(long)]
    pub no_scaling: bool,
    /// EXPLAIN ANALYZE repetitions per point of the scaling curve (medians are kept).
    #[arg(long, default_value_t = 5)]
    pub scaling_repetitions: usize,
    /// Skip the maintenance comparison (create/detach/drop partition vs DELETE).
    #[arg(long)]
    pub no_maintenance: bool,
    /// Concurrent insert tasks during maintenance (each with its own connection).
    #[arg(long, default_value_t = 3)]
    pub writers: usize,
    /// Pause between one writer's inserts.
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub insert_interval: Duration,
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl PartitionsArgs {
    pub fn options(&self) -> PartitionsOptions {
        PartitionsOptions {
            queries: self.queries.clone(),
            runs: self.runs.max(1),
            warmup: self.warmup,
            budget: self.budget,
            seed: self.seed,
            statement_timeout: self.statement_timeout,
            indexes: !self.no_indexes,
            scaling: !self.no_scaling,
            scaling_repetitions: self.scaling_repetitions.max(1),
            maintenance: !self.no_maintenance,
            writers: self.writers.clamp(1, 32),
            insert_interval: self.insert_interval,
            ..PartitionsOptions::default()
        }
    }
}

pub async fn run(db: &DbArgs, args: PartitionsArgs) -> Result<i32> {
    let opts = args.options();
    partitions::select_queries(&crate::catalog::load_default()?, &opts.queries)?;
    let config = serde_json::to_value(&args)?;
    measuring_command(
        db,
        "partitions",
        config,
        args.out.as_deref(),
        async |session, target| {
            let dir = session.out_dir.clone();
            let section = session
                .stage_on_copy("partitions", target, async |t| {
                    partitions::run(t, &opts, &dir).await
                })
                .await?;
            crate::printer::show(|p| crate::printer::partitions::verdicts(p, &section));
            session.results.partitions = Some(section);
            Ok(())
        },
    )
    .await
}
