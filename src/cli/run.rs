//! `storybench run`: the main job. cluster → schema and seed → explain → … → report.
//! Later stages add themselves here rather than building new pipelines.

use super::{RunSession, VariantArgs};
use crate::config::RunConfig;
use crate::measure::explain;
use crate::seed::{self, SeedOptions};
use crate::target::{DbArgs, Target};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The CI smoke run: preset `quick` of presets/run.toml (tiny profile, under a minute).
    #[arg(long, conflicts_with = "config")]
    pub quick: bool,
    /// Replay a configuration: a results.json written by `run`, or a TOML run file shaped
    /// like `[full]` in presets/run.toml. Flags given beside it override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Seed profile (preset: `default`, or `tiny` with --quick).
    #[arg(long)]
    pub profile: Option<String>,
    /// Dataset scale (1 ≈ 1,000 users; preset: 1).
    #[arg(long, allow_negative_numbers = true)]
    pub scale: Option<f64>,
    /// Generator seed, also seeding parameter sampling (preset: 42).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Date the data leads up to (default: today, recorded in results.json).
    #[arg(long)]
    pub anchor: Option<chrono::NaiveDate>,
    /// Seal the dataset with the database-side fingerprint too (`seed --verify`).
    #[arg(long)]
    pub verify: bool,
    /// Index strategies the explain stage compares; the first is the baseline.
    #[arg(long, value_delimiter = ',')]
    pub strategies: Option<Vec<String>>,
    /// Compare with this results.json at the end: exit 1 on a regression (see `compare`).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// With --baseline: the largest tolerated slowdown (it must also exceed the noise; preset 10%).
    #[arg(long, value_parser = crate::units::parse_percent)]
    pub max_regression: Option<f64>,
    /// Server settings profiles to measure at the end (capacity and analytics per profile;
    /// see `storybench settings`).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub settings: Option<Vec<crate::cluster::settings::Profile>>,
    /// Capacity as the data grows at these dataset scales (e.g. 1,3,10), after the capacity
    /// stage (see `capacity --scales`): each scale seeded once into its own database.
    #[arg(long, value_delimiter = ',')]
    pub scales: Option<Vec<f64>>,
    /// With --scales: the scale the capacity curve is extrapolated to (preset: 100).
    #[arg(long)]
    pub launch_scale: Option<f64>,
    /// With --scales: the rate of every scale's per-query p95 (default: half the smallest
    /// scale's capacity).
    #[arg(long)]
    pub common_rate: Option<f64>,
    /// With --settings on an external server: allow ALTER SYSTEM (reset afterwards).
    #[arg(long)]
    pub alter_system: bool,
    #[command(flatten)]
    pub variant: VariantArgs,
}

impl RunArgs {
    /// The run's whole configuration: the preset or replayed file, then the flags given.
    pub fn config(&self) -> Result<RunConfig> {
        let mut c = match &self.config {
            Some(file) => RunConfig::from_file(file)?,
            None => RunConfig::preset(if self.quick { "quick" } else { "full" })?,
        };
        let d = &mut c.dataset;
        if let Some(p) = &self.profile {
            d.profile = p.clone();
        }
        if let Some(s) = self.scale {
            d.scale = s;
        }
        if let Some(s) = self.seed {
            d.seed = s;
        }
        if let Some(a) = self.anchor {
            d.anchor = Some(a);
        }
        d.verify |= self.verify;
        if let Some(s) = &self.strategies {
            c.explain.strategies = s.clone();
        }
        if let Some(p) = &self.settings {
            c.settings.profiles = p.clone();
        }
        if let Some(s) = &self.scales {
            c.scales.scales = s.clone();
        }
        if let Some(l) = self.launch_scale {
            c.scales.launch_scale = l;
        }
        if self.common_rate.is_some() {
            c.scales.common_rate = self.common_rate;
        }
        if self.alter_system {
            c.settings.alter_system = true;
        }
        if let Some(m) = self.max_regression {
            c.max_regression = m;
        }
        let v = &self.variant;
        for (slot, given) in [
            (&mut c.variant.indexes, &v.indexes),
            (&mut c.variant.policies, &v.policies),
        ] {
            if given.is_some() {
                slot.clone_from(given);
            }
        }
        if v.api_usage.is_some() {
            c.variant.api_usage = v.api_usage;
        }
        c.resolve();
        Ok(c)
    }
}

pub async fn run(db: &DbArgs, args: RunArgs) -> Result<i32> {
    let config = args.config()?;
    let seed_opts = config.seed_options();
    seed::validate_options(&seed_opts)?;
    seed::profile::load(&seed_opts.profile)?;
    for s in &config.explain.strategies {
        crate::schema::validate_name("indexes", s)?;
    }
    config.rls.validate()?;
    config.capacity_options()?.validate()?;
    config.ops.validate()?;
    if !config.scales.scales.is_empty() {
        super::capacity_scales::run_args(&config).checked()?;
    }
    if !config.settings.profiles.is_empty() {
        crate::measure::settings::check_request(
            db.database_url.is_some(),
            &config.settings.profiles,
            config.settings.alter_system,
        )?;
    }
    crate::measure::ops::load_migrations(&config.ops)?;
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
    let max_regression = config.max_regression;
    let (code, out_dir, comparison) = super::command_frame_with(
        db,
        "run",
        serde_json::to_value(&config)?,
        args.out.as_deref(),
        async |session, target| {
            crate::say!("storybench run on {}", target.describe());
            pipeline(session, target, &config, &seed_opts).await
        },
        // Compared in memory before finalizing, so the report and the findings include it.
        |results, outcome| match (&baseline, outcome) {
            (Some(base), Ok(())) => Some(crate::compare::compare(base, results, max_regression)),
            _ => None,
        },
    )
    .await?;
    let Some(c) = comparison else {
        return Ok(code);
    };
    if code != 0 {
        return Ok(code);
    }
    // A regression sets the exit code (1), as `compare` does.
    let text = crate::compare::render(&c, crate::compare::Format::Markdown);
    crate::paths::write_atomic(&out_dir.join("compare.md"), text.as_bytes())?;
    Ok(if c.regressions() > 0 { 1 } else { 0 })
}

async fn pipeline(
    session: &mut RunSession,
    target: &Target,
    config: &RunConfig,
    seed_opts: &SeedOptions,
) -> Result<()> {
    dataset(session, target, config, seed_opts).await?;
    session.collect_environment(target).await?;
    measuring_stages(session, target, config).await?;
    // An RLS leak, wrong rows or missing claims fail the run (after every stage ran).
    if let Some(why) = session.results.rls.as_ref().and_then(|s| s.failure()) {
        anyhow::bail!(why);
    }
    Ok(())
}

/// Reuses the dataset or seeds it, and applies the variant.
async fn dataset(
    session: &mut RunSession,
    target: &Target,
    config: &RunConfig,
    seed_opts: &SeedOptions,
) -> Result<()> {
    let mut conn = target.connect().await?;
    crate::schema::check_ownership(&mut conn).await?;
    let swept = crate::pristine::sweep_stale(target).await?;
    if !swept.is_empty() {
        crate::say!(
            "  dropped {} pristine cop{} left behind by a storybench that was killed: {}",
            swept.len(),
            if swept.len() == 1 { "y" } else { "ies" },
            swept.join(", ")
        );
    }
    // Reuse a complete dataset made from the same inputs (nightly reruns) once it is verified
    // untouched since its seed; seed otherwise.
    let reused = reusable(&mut conn, seed_opts).await?;
    if let Some(d) = reused {
        let request = config.variant_request();
        session
            .stage(
                "schema",
                crate::schema::apply(&mut conn, &request, seed_opts.anchor),
            )
            .await?;
        crate::say!(
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
    Ok(())
}

/// The existing dataset if it is complete, made from the same inputs and verified untouched
/// since its seed; None (saying why) when it must be seeded.
async fn reusable(
    conn: &mut sqlx::PgConnection,
    seed_opts: &SeedOptions,
) -> Result<Option<seed::DatasetInfo>> {
    let existing = seed::dataset(conn).await?;
    match &existing {
        Some(d) if d.status != "complete" => crate::say!(
            "  the dataset's last seed did not finish (status {}: a storybench was killed or lost the server mid-seed): seeding it again",
            d.status
        ),
        Some(d)
            if d.profile != seed_opts.profile
                || d.scale != seed_opts.scale
                || d.seed != seed_opts.seed
                || d.anchor != seed_opts.anchor =>
        {
            crate::say!(
                "  the dataset is profile {} × {} (seed {}, anchor {}): seeding the one asked for",
                d.profile, d.scale, d.seed, d.anchor
            )
        }
        _ => {}
    }
    let mut reused = existing.filter(|d| {
        d.status == "complete"
            && d.profile == seed_opts.profile
            && d.scale == seed_opts.scale
            && d.seed == seed_opts.seed
            && d.anchor == seed_opts.anchor
    });
    if let Some(d) = reused.as_mut() {
        match crate::pristine::verify(conn, d).await {
            Ok(v) => d.verified = Some(v),
            Err(e) => {
                crate::say!("  {e:#}\n  seeding it again");
                reused = None;
            }
        }
    }
    Ok(reused)
}

/// Every measuring stage, each on its own pristine copy(ies).
async fn measuring_stages(
    session: &mut RunSession,
    target: &Target,
    config: &RunConfig,
) -> Result<()> {
    let dir = session.out_dir.clone();
    let outcome = session
        // Explain makes its own pristine copies, one per index strategy.
        .stage("explain", explain::run(target, &config.explain, &dir))
        .await;
    let section = super::explain::keep_partial(session, outcome)?;
    crate::printer::show(|p| crate::printer::explain::verdicts(p, &section));
    session.results.explain = Some(section);

    let section = session
        // Two pristine copies, with and without each change, made by the stage.
        .stage(
            "advise",
            crate::advise::indexes::run(target, &config.advise, &dir),
        )
        .await?;
    crate::printer::show(|p| crate::printer::advice::summary(p, &section));
    session.results.advice = Some(section);

    let section = session
        .stage_on_copy("partitions", target, async |t| {
            crate::measure::partitions::run(t, &config.partitions, &dir).await
        })
        .await?;
    crate::printer::show(|p| crate::printer::partitions::verdicts(p, &section));
    session.results.partitions = Some(section);

    let section = session
        // The audit runs on the stage's copy; the matrix makes one copy of it per policy set.
        .stage_on_copy("rls", target, async |t| {
            crate::measure::rls::run(t, &config.rls, &dir).await
        })
        .await?;
    crate::printer::show(|p| crate::printer::rls::summary(p, &section));
    session.results.rls = Some(section);

    super::load::stages_for_run(session, target, config).await?;

    if !config.settings.profiles.is_empty() {
        // Last of the measuring stages: each profile restarts or reloads the server.
        let opts = super::settings::options(
            config,
            config.settings.profiles.clone(),
            config.settings.alter_system,
        )?;
        let scenario = crate::scenario::load(&config.capacity.scenario)?;
        super::settings::stage(session, target, &opts, &scenario).await?;
    }

    // The document's monitoring queries close every run, on a fresh copy.
    super::monitoring::stage(session, target).await?;

    Ok(())
}
