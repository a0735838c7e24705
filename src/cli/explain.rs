//! `storybench explain`: index strategies compared query by query.

use super::measuring_command;
use crate::measure::explain::{self, ExplainOptions};
use crate::measure::load::parse_duration;
use crate::target::DbArgs;
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct ExplainArgs {
    /// Index strategies to compare (files in schema/indexes/); the first is the baseline.
    #[arg(long, value_delimiter = ',', default_value = "fk_only,doc,tuned")]
    pub strategies: Vec<String>,
    /// Catalog queries to measure (default: all).
    #[arg(long, value_delimiter = ',')]
    pub queries: Vec<String>,
    /// Most interleaved rounds per query and user (each round times every strategy once);
    /// never fewer than the reported percentiles need (6 for p50, 72 for p95).
    #[arg(long, default_value_t = 400)]
    pub runs: usize,
    /// Untimed warm-up runs.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Time budget per query and user once the percentiles' rounds are reached (4× that at most).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub budget: Duration,
    /// Statement timeout for each measured query; a timeout is reported for that query only.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub statement_timeout: Duration,
    /// Seed for parameter sampling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl ExplainArgs {
    pub fn options(&self) -> ExplainOptions {
        ExplainOptions {
            strategies: self.strategies.clone(),
            queries: self.queries.clone(),
            runs: self.runs.max(1),
            warmup: self.warmup,
            budget: self.budget,
            percentiles: vec![50.0, 95.0],
            seed: self.seed,
            statement_timeout: self.statement_timeout,
            write_batch: 20,
        }
    }
}

pub async fn run(db: &DbArgs, args: ExplainArgs) -> Result<i32> {
    let opts = args.options();
    for s in &opts.strategies {
        crate::schema::validate_name("indexes", s)?;
    }
    crate::catalog::load_default()?.select(&opts.queries)?;
    let config = serde_json::to_value(&args)?;
    measuring_command(
        db,
        "explain",
        config,
        args.out.as_deref(),
        async |session, target| {
            let dir = session.out_dir.clone();
            let outcome = session
                // One pristine copy per strategy, made by the stage itself.
                .stage("explain", explain::run(target, &opts, &dir))
                .await;
            let section = keep_partial(session, outcome)?;
            crate::printer::show(|p| crate::printer::explain::verdicts(p, &section));
            session.results.explain = Some(section);
            Ok(())
        },
    )
    .await
}

/// The explain stage's section, or its error; a stage that failed part-way leaves what it
/// measured in the results first.
pub(super) fn keep_partial(
    session: &mut super::RunSession,
    outcome: Result<explain::ExplainSection>,
) -> Result<explain::ExplainSection> {
    match outcome.map_err(|e| e.downcast::<crate::measure::Partial<explain::ExplainSection>>()) {
        Ok(s) => Ok(s),
        Err(Ok(partial)) => {
            session.results.explain = Some(partial.section);
            Err(partial.cause)
        }
        Err(Err(e)) => Err(e),
    }
}
