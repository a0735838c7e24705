//! `storybench seed`: a deterministic dataset at any scale.

use super::VariantArgs;
use crate::seed::{self, SeedOptions};
use crate::target::DbArgs;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct SeedArgs {
    /// Profile: a name in seed/ (tiny, default, launch) or a path to a profile file.
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// Scale: 1 ≈ 1,000 users (the profile says what that means per table).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub scale: f64,
    /// Seed of the generator: same seed, scale, profile and anchor → byte-identical data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Date the data leads up to (YYYY-MM-DD, midnight UTC; default: today).
    #[arg(long)]
    pub anchor: Option<chrono::NaiveDate>,
    /// COPY connections (default: the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Replace an existing storybench dataset (drops only storybench's own objects).
    #[arg(long)]
    pub reset: bool,
    /// TOAST compression for storybench's text and jsonb columns: lz4 or pglz (default: the server's).
    #[arg(long)]
    pub toast_compression: Option<String>,
    /// Also compute the database-side fingerprint (a full pass over every table): checks
    /// the row counts against the stream and lets the dataset be reused after a server crash.
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub variant: VariantArgs,
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl SeedArgs {
    pub fn options(&self) -> SeedOptions {
        SeedOptions {
            profile: self.profile.clone(),
            scale: self.scale,
            seed: self.seed,
            anchor: self
                .anchor
                .unwrap_or_else(|| chrono::Utc::now().date_naive()),
            jobs: self.jobs.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
            }),
            reset: self.reset,
            toast_compression: self.toast_compression.clone(),
            verify: self.verify,
            variant: self.variant.request(),
        }
    }
}

pub async fn run(db: &DbArgs, args: SeedArgs) -> Result<i32> {
    let opts = args.options();
    seed::validate_options(&opts)?;
    crate::seed::profile::load(&opts.profile)?;
    let config = serde_json::to_value(&args)?;
    super::command_frame(
        db,
        "seed",
        config,
        args.out.as_deref(),
        async |session, target| {
            match session.stage("seed", seed::seed(target, &opts)).await {
                Ok((info, report)) => {
                    crate::printer::show(|p| crate::printer::seed::report(p, &info, &report));
                    session.results.dataset = Some(info);
                    session.results.seed = Some(report);
                    session.collect_environment(target).await
                }
                Err(e) => {
                    // Whatever was recorded (an incomplete dataset) is what the results must say.
                    if let Ok(mut conn) = target.connect().await {
                        session.results.dataset = seed::dataset(&mut conn).await.ok().flatten();
                    }
                    Err(e)
                }
            }
        },
    )
    .await
}
