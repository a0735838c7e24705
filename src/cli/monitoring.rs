//! `storybench monitoring`: the reference document's health-check and usage-analytics
//! queries on a pristine copy, each with its cost and result rows (also the last stage of
//! `run`).

use super::measuring_command;
use crate::target::DbArgs;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct MonitoringArgs {
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub async fn run(db: &DbArgs, args: MonitoringArgs) -> Result<i32> {
    let config = serde_json::to_value(&args)?;
    measuring_command(
        db,
        "monitoring",
        config,
        args.out.as_deref(),
        async |session, target| stage(session, target).await,
    )
    .await
}

/// The stage, on its own pristine copy.
pub async fn stage(session: &mut super::RunSession, target: &crate::target::Target) -> Result<()> {
    let section = session
        .stage_on_copy("monitoring", target, async |t| {
            crate::measure::monitoring::run(t).await
        })
        .await?;
    session.results.monitoring = Some(section);
    Ok(())
}
