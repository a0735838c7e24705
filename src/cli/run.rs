//! `storybench run`: the main job. cluster → schema → the measuring stages → report.

use super::{RunArgs, RunSession};
use crate::target::{DbArgs, Target};
use anyhow::Result;

pub async fn run(db: &DbArgs, args: RunArgs) -> Result<i32> {
    args.variant.request().validate()?;
    let session = RunSession::start("run", serde_json::to_value(&args)?, args.out.as_deref())?;
    let target = Target::resolve(db)?;
    eprintln!("storybench run on {}", target.describe());
    let mut session = session;
    let outcome = pipeline(&mut session, &target, &args).await;
    let code = session.finalize(outcome);
    target.finish()?;
    code
}

async fn pipeline(session: &mut RunSession, target: &Target, args: &RunArgs) -> Result<()> {
    let mut conn = target.connect().await?;
    let request = args.variant.request();
    session
        .stage("schema", async {
            let variant = crate::schema::apply(&mut conn, &request, chrono::Utc::now().date_naive()).await?;
            crate::schema::ensure_pg_stat_statements(&mut conn).await?;
            Ok(variant)
        })
        .await?;
    session.collect_environment(target).await?;
    Ok(())
}
