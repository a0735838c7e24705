//! `storybench rls`: RLS overhead per app query (bypass vs doc vs initplan vs definer,
//! with and without the explicit user filter), plan evidence, and the isolation audit.

use super::measuring_command;
use crate::measure::load::parse_duration;
use crate::measure::rls::{self, RlsOptions};
use crate::target::DbArgs;
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct RlsArgs {
    /// App queries to measure (default: every app query of the catalog).
    #[arg(long, value_delimiter = ',')]
    pub queries: Vec<String>,
    /// Subjects the queries run for: heavy (most stories) and/or median.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "heavy,median"
    )]
    pub users: Vec<crate::params::Subject>,
    /// Policy sets compared with bypass (files in schema/policies/); definer is measured on child-table queries only.
    #[arg(long, value_delimiter = ',', default_value = "doc,initplan,definer")]
    pub policy_sets: Vec<String>,
    /// Most interleaved rounds per query and user (each round times bypass and every mode once);
    /// never fewer than the reported percentiles need (6 for p50, 72 for p95).
    #[arg(long, default_value_t = 400)]
    pub runs: usize,
    /// Ignored: interleaved rounds on per-policy-set copies replaced trials.
    #[arg(long, default_value_t = 1)]
    pub trials: usize,
    /// Untimed warm-up runs per mode at the start of each block.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Time budget per query and user once the percentiles' rounds are reached (4× that at most).
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub budget: Duration,
    /// Statement timeout for each measured query.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub statement_timeout: Duration,
    /// Index strategy the leakproof-trap queries are measured on (it needs indexes able to serve LIKE and ->>).
    #[arg(long, default_value = "tuned")]
    pub trap_indexes: String,
    /// Also run the isolation audit (every table, as sampled users and as anon, under each policy set).
    #[arg(long)]
    pub audit: bool,
    /// Run only the isolation audit (no latency measurements).
    #[arg(long)]
    pub audit_only: bool,
    /// Users sampled (by activity, from --seed) as attackers in the audit.
    #[arg(long, default_value_t = 5)]
    pub audit_users: usize,
    /// Transactions timed with and without the claims set-up (0 skips that measurement).
    #[arg(long, default_value_t = 2000)]
    pub setup_runs: usize,
    /// Run the RLS modes without any claims, as a misconfigured client would: every such query must
    /// be reported as a configuration error (a check of the harness itself).
    #[arg(long)]
    pub claims_unset: bool,
    /// Seed for parameter and audit sampling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl RlsArgs {
    pub fn options(&self) -> RlsOptions {
        RlsOptions {
            queries: self.queries.clone(),
            users: self.users.clone(),
            policy_sets: self.policy_sets.clone(),
            trials: self.trials.max(1),
            runs: self.runs.max(1),
            warmup: self.warmup,
            budget: self.budget,
            percentiles: vec![50.0, 95.0],
            seed: self.seed,
            statement_timeout: self.statement_timeout,
            trap_indexes: Some(self.trap_indexes.clone()),
            measure: !self.audit_only,
            audit: self.audit || self.audit_only,
            audit_users: self.audit_users,
            setup_runs: self.setup_runs,
            claims_unset: self.claims_unset,
        }
    }
}

pub async fn run(db: &DbArgs, args: RlsArgs) -> Result<i32> {
    let opts = args.options();
    opts.validate()?;
    let config = serde_json::to_value(&args)?;
    measuring_command(
        db,
        "rls",
        config,
        args.out.as_deref(),
        async |session, target| {
            let dir = session.out_dir.clone();
            let section = session
                // The audit runs on the stage's copy; the matrix copies it once per policy set.
                .stage_on_copy("rls", target, async |t| rls::run(t, &opts, &dir).await)
                .await?;
            crate::printer::show(|p| crate::printer::rls::summary(p, &section));
            let failure = section.failure();
            session.results.rls = Some(section);
            match failure {
                Some(why) => Err(anyhow::anyhow!(why)),
                None => Ok(()),
            }
        },
    )
    .await
}
