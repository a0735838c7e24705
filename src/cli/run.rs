//! `storybench run`: the main job. cluster → schema and seed → explain → … → report.
//! Later stages add themselves here rather than building new pipelines.

use super::{RunSession, VariantArgs};
use crate::measure::explain::{self, ExplainOptions};
use crate::seed::{self, SeedOptions};
use crate::target::{DbArgs, Target};
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct RunArgs {
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A short smoke run for CI (tiny profile, few repetitions; under a minute).
    #[arg(long)]
    pub quick: bool,
    /// Seed profile (default: `default`, or `tiny` with --quick).
    #[arg(long)]
    pub profile: Option<String>,
    /// Dataset scale (1 ≈ 1,000 users).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub scale: f64,
    /// Generator seed (also seeds parameter sampling).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Date the data leads up to (default: today).
    #[arg(long)]
    pub anchor: Option<chrono::NaiveDate>,
    /// Index strategies the explain stage compares; the first is the baseline.
    #[arg(long, value_delimiter = ',', default_value = "fk_only,doc,tuned")]
    pub strategies: Vec<String>,
    /// Compare with this results.json at the end: exit 1 on a regression (see `compare`).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// With --baseline: the largest tolerated slowdown (it must also exceed the noise).
    #[arg(long, default_value = "10%", value_parser = crate::compare::parse_percent)]
    pub max_regression: f64,
    #[command(flatten)]
    #[serde(skip)]
    pub variant: VariantArgs,
}

impl RunArgs {
    fn seed_options(&self) -> SeedOptions {
        SeedOptions {
            profile: self
                .profile
                .clone()
                .unwrap_or_else(|| if self.quick { "tiny" } else { "default" }.into()),
            scale: self.scale,
            seed: self.seed,
            anchor: self
                .anchor
                .unwrap_or_else(|| chrono::Utc::now().date_naive()),
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            reset: true,
            toast_compression: None,
            variant: self.variant.request(),
        }
    }

    fn rls_options(&self) -> crate::measure::rls::RlsOptions {
        crate::measure::rls::RlsOptions {
            queries: Vec::new(),
            users: vec!["heavy".into(), "median".into()],
            policy_sets: vec!["doc".into(), "initplan".into(), "definer".into()],
            trials: 1,
            runs: if self.quick { 10 } else { 200 },
            warmup: if self.quick { 1 } else { 3 },
            budget: if self.quick {
                Duration::from_millis(100)
            } else {
                Duration::from_millis(400)
            },
            // --quick: enough rounds for p50 only.
            percentiles: if self.quick {
                vec![50.0]
            } else {
                vec![50.0, 95.0]
            },
            seed: self.seed,
            statement_timeout: Duration::from_secs(30),
            trap_indexes: Some("tuned".into()),
            measure: true,
            audit: true,
            audit_users: if self.quick { 2 } else { 5 },
            setup_runs: if self.quick { 200 } else { 1000 },
            claims_unset: false,
        }
    }

    fn explain_options(&self) -> ExplainOptions {
        ExplainOptions {
            strategies: self.strategies.clone(),
            queries: Vec::new(),
            runs: if self.quick { 10 } else { 200 },
            warmup: if self.quick { 1 } else { 3 },
            budget: if self.quick {
                Duration::from_millis(100)
            } else {
                Duration::from_millis(500)
            },
            percentiles: if self.quick {
                vec![50.0]
            } else {
                vec![50.0, 95.0]
            },
            seed: self.seed,
            statement_timeout: Duration::from_secs(30),
            write_batch: if self.quick { 5 } else { 20 },
        }
    }
}

pub async fn run(db: &DbArgs, args: RunArgs) -> Result<i32> {
    let seed_opts = args.seed_options();
    seed::validate_options(&seed_opts)?;
    seed::profile::load(&seed_opts.profile)?;
    for s in &args.strategies {
        crate::schema::validate_name("indexes", s)?;
    }
    // Read the baseline up front: a bad file is exit 2 before anything is measured.
    let baseline = match &args.baseline {
        Some(path) => match crate::results::RunResults::read(path) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("error: --baseline: {e:#}");
                return Ok(2);
            }
        },
        None => None,
    };
    let mut session = RunSession::start("run", serde_json::to_value(&args)?, args.out.as_deref())?;
    let out_dir = session.out_dir.clone();
    let target = Target::resolve(db)?;
    eprintln!("storybench run on {}", target.describe());
    let outcome = pipeline(&mut session, &target, &args, &seed_opts).await;
    let code = session.finalize(outcome);
    target.finish()?;
    let code = code?;
    let Some(base) = baseline else {
        return Ok(code);
    };
    if code != 0 {
        return Ok(code);
    }
    // Compare with the baseline and let a regression set the exit code (1), as `compare` does.
    let new = crate::results::RunResults::read(&out_dir.join(crate::results::RESULTS_FILE))?;
    let c = crate::compare::compare(&base, &new, args.max_regression);
    let text = crate::compare::render(&c, crate::compare::Format::Markdown);
    crate::results::write_atomic(&out_dir.join("compare.md"), text.as_bytes())?;
    eprint!(
        "{}",
        crate::compare::render(&c, crate::compare::Format::Text)
    );
    Ok(if c.regressions() > 0 { 1 } else { 0 })
}

async fn pipeline(
    session: &mut RunSession,
    target: &Target,
    args: &RunArgs,
    seed_opts: &SeedOptions,
) -> Result<()> {
    let mut conn = target.connect().await?;
    crate::schema::check_ownership(&mut conn).await?;
    crate::pristine::sweep_stale(target).await?;
    // Reuse a complete dataset made from the same inputs (nightly reruns) once it is verified
    // untouched since its seed; seed otherwise.
    let existing = seed::dataset(&mut conn).await?;
    let mut reused = existing.filter(|d| {
        d.status == "complete"
            && d.profile == seed_opts.profile
            && d.scale == seed_opts.scale
            && d.seed == seed_opts.seed
            && d.anchor == seed_opts.anchor
    });
    if let Some(d) = reused.as_mut() {
        match crate::pristine::verify(&mut conn, d).await {
            Ok(v) => d.verified = Some(v),
            Err(e) => {
                eprintln!("  {e:#}\n  seeding it again");
                reused = None;
            }
        }
    }
    if let Some(d) = reused {
        let request = args.variant.request();
        session
            .stage(
                "schema",
                crate::schema::apply(&mut conn, &request, seed_opts.anchor),
            )
            .await?;
        eprintln!(
            "  reusing the dataset seeded {} (same profile, scale, seed and anchor; verified by {})",
            d.seeded_at,
            match d.verified {
                Some(crate::pristine::Verified::Fingerprint) => "fingerprint",
                _ => "write counters",
            }
        );
        session.results.dataset = Some(d);
    } else {
        let outcome = session.stage("seed", seed::seed(target, seed_opts)).await;
        match outcome {
            Ok((info, report)) => {
                session.results.dataset = Some(info);
                session.results.seed = Some(report);
            }
            Err(e) => {
                session.results.dataset = seed::dataset(&mut conn).await.ok().flatten();
                return Err(e);
            }
        }
    }
    crate::schema::ensure_pg_stat_statements(&mut conn).await?;
    // The dataset is the template of every stage's copy: no session may stay on it.
    drop(conn);
    session.collect_environment(target).await?;

    let dir = session.out_dir.clone();
    let section = session
        .stage_on_copy("explain", target, async |t| {
            explain::run(t, &args.explain_options(), &dir).await
        })
        .await?;
    super::explain::print_verdicts(&section);
    session.results.explain = Some(section);

    let opts = crate::measure::partitions::PartitionsOptions::for_run(args.quick, args.seed);
    let section = session
        .stage_on_copy("partitions", target, async |t| {
            crate::measure::partitions::run(t, &opts, &dir).await
        })
        .await?;
    super::partitions::print_verdicts(&section);
    session.results.partitions = Some(section);

    let section = session
        .stage_on_copy("rls", target, async |t| {
            crate::measure::rls::run(t, &args.rls_options(), &dir).await
        })
        .await?;
    super::rls::print_summary(&section);
    session.results.rls = Some(section);

    super::load::stages_for_run(session, target, args.quick, args.seed).await?;

    // An RLS leak, wrong rows or missing claims fail the run (after every stage ran).
    if let Some(why) = session.results.rls.as_ref().and_then(|s| s.failure()) {
        anyhow::bail!(why);
    }
    Ok(())
}
