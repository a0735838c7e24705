//! `storybench advise`: advice checked against the dataset. `advise citus` lists what the
//! schema needs, and what breaks, distributed with Citus by user_id (docs/scale-out.md).

use crate::advise::indexes::IndexAdviceOptions;
use crate::target::DbArgs;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum AdviseCommand {
    /// What would break distributed with Citus by user_id: sub-selects in policies, claims
    /// set with set_config(), keys and foreign keys without the distribution column; and
    /// where each table would go (distributed, needs a user_id, reference).
    Citus(CitusArgs),
    /// Index advice proven by measurement: candidates from every catalog query's plan under
    /// its own role (RLS included), screened with HypoPG, the survivors built for real on a
    /// copy and measured against the copy without them (reads and writes), unused and
    /// redundant indexes dropped the same way; advice.sql with the evidence.
    Indexes(IndexArgs),
    /// Schema advisories of a variant, on a pristine copy: Supabase's linter rules that matter
    /// here (bare auth.uid() in policies, several permissive policies per role and action,
    /// unindexed foreign keys, mutable search_path, RLS on without a policy, SECURITY DEFINER
    /// functions the API can call).
    Schema(SchemaArgs),
}

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct SchemaArgs {
    /// The index strategy to lint (default: the recommended `tuned`).
    #[arg(long, default_value = "tuned")]
    pub indexes: String,
    /// The policy set to lint (default: the recommended `initplan`).
    #[arg(long, default_value = "initplan")]
    pub policies: String,
    /// Exit 1 when there is any advisory (a CI check of the variant).
    #[arg(long)]
    pub strict: bool,
    /// Measure each advisory's cost: its fix made on a second pristine copy, the statements
    /// it affects timed interleaved against the copy as it is (engine, paired intervals).
    #[arg(long)]
    pub measure: bool,
    /// Most interleaved rounds per statement measured.
    #[arg(long, default_value_t = 400)]
    pub runs: usize,
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Time budget per statement measured, once the percentiles' rounds are reached.
    #[arg(long, default_value = "500ms", value_parser = crate::measure::load::parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub budget: std::time::Duration,
    #[arg(long, default_value = "30s", value_parser = crate::measure::load::parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub statement_timeout: std::time::Duration,
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct IndexArgs {
    /// The index strategy (schema/indexes/) the advice starts from.
    #[arg(long, default_value = "doc")]
    pub indexes: String,
    /// The policy set (schema/policies/) the queries run under (default: the dataset's; the
    /// comparison afterwards always runs under the dataset's).
    #[arg(long)]
    pub policies: Option<String>,
    /// The scenario whose mix weights the time saved.
    #[arg(long, default_value = "launch_mix")]
    pub scenario: String,
    /// Catalog queries to read (default: all).
    #[arg(long, value_delimiter = ',')]
    pub queries: Vec<String>,
    /// Most new indexes built for real, best screened first.
    #[arg(long, default_value_t = 6)]
    pub max_verified: usize,
    /// Most interleaved rounds per query measured (each round times both copies).
    #[arg(long, default_value_t = 400)]
    pub runs: usize,
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Time budget per query measured, once the percentiles' rounds are reached.
    #[arg(long, default_value = "1s", value_parser = crate::measure::load::parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub budget: std::time::Duration,
    #[arg(long, default_value = "30s", value_parser = crate::measure::load::parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub statement_timeout: std::time::Duration,
    /// Seed for parameter sampling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The strategy the advised variant (the starting strategy with the recommended changes)
    /// is measured against afterwards, query by query, by the explain stage.
    #[arg(long, default_value = "tuned")]
    pub against: String,
    /// Skip that comparison.
    #[arg(long)]
    pub no_compare: bool,
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl IndexArgs {
    /// The explain comparison of the advised variant against `--against`.
    fn comparison(
        &self,
        strategy_file: &std::path::Path,
    ) -> crate::measure::explain::ExplainOptions {
        crate::measure::explain::ExplainOptions {
            strategies: vec![
                self.against.clone(),
                strategy_file.to_string_lossy().into_owned(),
            ],
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

    pub fn options(&self) -> IndexAdviceOptions {
        IndexAdviceOptions {
            indexes: self.indexes.clone(),
            policies: self.policies.clone(),
            scenario: self.scenario.clone(),
            queries: self.queries.clone(),
            max_verified: self.max_verified,
            runs: self.runs.max(1),
            warmup: self.warmup,
            budget: self.budget,
            percentiles: vec![50.0, 95.0],
            seed: self.seed,
            statement_timeout: self.statement_timeout,
        }
    }
}

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct CitusArgs {
    /// Policy sets to check (each applied in turn on a pristine copy).
    #[arg(long, value_delimiter = ',', default_value = "doc,initplan,definer")]
    pub policy_sets: Vec<String>,
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub async fn run(db: &DbArgs, command: AdviseCommand) -> Result<i32> {
    let args = match command {
        AdviseCommand::Citus(args) => args,
        AdviseCommand::Indexes(args) => return indexes(db, args).await,
        AdviseCommand::Schema(args) => return schema(db, args).await,
    };
    let config = serde_json::to_value(&args)?;
    super::measuring_command(
        db,
        "advise",
        config,
        args.out.as_deref(),
        async |session, target| {
            let sets = args.policy_sets.clone();
            let section = session
                .stage_on_copy("advise", target, async |t| {
                    crate::advise::citus_check(t, &sets).await
                })
                .await?;
            crate::printer::show(|p| crate::printer::citus::summary(p, &section));
            session.results.citus = Some(section);
            Ok(())
        },
    )
    .await
}

async fn indexes(db: &DbArgs, args: IndexArgs) -> Result<i32> {
    let opts = args.options();
    crate::schema::validate_name("indexes", &opts.indexes)?;
    crate::schema::validate_name("indexes", &args.against)?;
    if let Some(p) = &opts.policies {
        crate::schema::validate_name("policies", p)?;
    }
    crate::catalog::load_default()?.select(&opts.queries)?;
    let config = serde_json::to_value(&args)?;
    super::measuring_command(
        db,
        "advise",
        config,
        args.out.as_deref(),
        async |session, target| {
            let dir = session.out_dir.clone();
            let section = session
                // Two pristine copies (with and without each change), made by the stage.
                .stage("advise", crate::advise::indexes::run(target, &opts, &dir))
                .await?;
            crate::printer::show(|p| crate::printer::advice::summary(p, &section));
            let strategy = section.strategy_file.as_ref().map(|f| dir.join(f));
            session.results.advice = Some(section);
            if let (Some(file), false) = (strategy, args.no_compare) {
                let compare = args.comparison(&std::path::absolute(file)?);
                let outcome = session
                    .stage(
                        "explain",
                        crate::measure::explain::run(target, &compare, &dir),
                    )
                    .await;
                let explained = super::explain::keep_partial(session, outcome)?;
                crate::printer::show(|p| crate::printer::explain::verdicts(p, &explained));
                session.results.explain = Some(explained);
            }
            Ok(())
        },
    )
    .await
}

async fn schema(db: &DbArgs, args: SchemaArgs) -> Result<i32> {
    crate::schema::validate_name("indexes", &args.indexes)?;
    crate::schema::validate_name("policies", &args.policies)?;
    let config = serde_json::to_value(&args)?;
    let mut found = 0;
    let code = super::measuring_command(
        db,
        "advise",
        config,
        args.out.as_deref(),
        async |session, target| {
            let (indexes, policies) = (args.indexes.clone(), args.policies.clone());
            let advisories = session
                .stage_on_copy("advise", target, async |t| {
                    crate::advise::lint_variant(t, &indexes, &policies).await
                })
                .await?;
            found = advisories.len();
            // Measured also when the catalog is clean: non-leakproof filters under RLS are
            // found from the plans, not the catalog.
            let costs = if args.measure {
                let engine = crate::measure::engine::EngineOptions::new(
                    args.warmup,
                    args.runs.max(1),
                    args.budget,
                    &[50.0, 95.0],
                );
                // Two pristine copies (as is, fixed), made by the stage.
                session
                    .stage(
                        "advise_costs",
                        crate::advise::costs::measure(
                            target,
                            &indexes,
                            &policies,
                            &engine,
                            args.statement_timeout,
                        ),
                    )
                    .await?
            } else {
                Vec::new()
            };
            let section = crate::advise::indexes::LintSection {
                indexes,
                policies,
                advisories,
                costs,
            };
            crate::printer::show(|p| crate::printer::advice::lint(p, &section));
            session.results.lint = Some(section);
            Ok(())
        },
    )
    .await?;
    Ok(if code == 0 && args.strict && found > 0 {
        1
    } else {
        code
    })
}
