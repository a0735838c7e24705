//! `storybench advise`: advice checked against the dataset. `advise citus` lists what the
//! schema needs, and what breaks, distributed with Citus by user_id (docs/scale-out.md).

use crate::target::DbArgs;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum AdviseCommand {
    /// What would break distributed with Citus by user_id: sub-selects in policies, claims
    /// set with set_config(), keys and foreign keys without the distribution column; and
    /// where each table would go (distributed, needs a user_id, reference).
    Citus(CitusArgs),
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
    let AdviseCommand::Citus(args) = command;
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
