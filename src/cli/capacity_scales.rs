//! `storybench capacity --scales 1,3,10`: the capacity search at each data size, each on a
//! pristine copy of that scale's own dataset (see `scale_datasets`), one step per scale at a
//! common rate for the per-query p95, the fits across scales and, for the queries whose
//! latency grows with the data, the index strategies' work at the smallest and largest scale.

use super::capacity::CapacityArgs;
use super::RunSession;
use crate::config::RunConfig;
use crate::measure::explain::ExplainOptions;
use crate::measure::load::capacity::scales::{self, ScalesSection};
use crate::measure::load::capacity::{self, flatten, CapacityOptions};
use crate::scenario::Scenario;
use crate::seed::SeedOptions;
use crate::target::{DbArgs, Target};
use anyhow::{bail, Result};

#[derive(clap::Args, Debug, Clone, Default, serde::Serialize)]
pub struct ScalesArgs {
    /// Measure capacity at each of these dataset scales (e.g. 1,3,10): each scale is seeded
    /// once into its own database and reused while it matches.
    #[arg(long, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scales: Vec<f64>,
    /// With --scales: the scale the capacity curve is extrapolated to.
    #[arg(long, default_value_t = 100.0)]
    pub launch_scale: f64,
    /// With --scales: the seed profile (default: the database's dataset's, else `default`).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// With --scales: the date the data leads up to (default: the database's dataset's, else today).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<chrono::NaiveDate>,
    /// With --scales: the generator seed (default: the database's dataset's, else 42).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_seed: Option<u64>,
    /// With --scales: the rate every scale's per-query p95 is measured at (default: half the
    /// smallest scale's sustainable rate).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub common_rate: Option<f64>,
}

impl ScalesArgs {
    /// The scales, checked and sorted.
    pub fn checked(&self) -> Result<Vec<f64>> {
        let mut s = self.scales.clone();
        s.sort_by(f64::total_cmp);
        s.dedup();
        if s.len() < 2 {
            bail!("--scales needs at least two different scales (e.g. 1,3,10) to draw a curve");
        }
        if s.iter()
            .any(|v| !(v.is_finite() && *v > 0.0 && *v <= crate::seed::MAX_SCALE))
        {
            bail!(
                "--scales must be numbers > 0 and ≤ {}",
                crate::seed::MAX_SCALE
            );
        }
        if !(self.launch_scale.is_finite() && self.launch_scale > 0.0) {
            bail!("--launch-scale must be a number > 0");
        }
        if self
            .common_rate
            .is_some_and(|r| !(r.is_finite() && r > 0.0))
        {
            bail!("--common-rate must be a rate > 0");
        }
        Ok(s)
    }
}

pub async fn run(db: &DbArgs, args: CapacityArgs) -> Result<i32> {
    args.scales.checked()?;
    if args.shard.is_some() || args.pooler.wanted() {
        bail!("--scales runs one search per scale on this process's own connections: it does not combine with --shard or a pooler");
    }
    if let Some(p) = &args.scales.profile {
        crate::seed::profile::load(p)?;
    }
    let scenario = crate::scenario::load(&args.scenario)?;
    let config = serde_json::to_value(&args)?;
    super::command_frame(
        db,
        "capacity",
        config,
        args.out.as_deref(),
        async |session, target| {
            // The ownership check first: nothing is dropped on a database that is not ours.
            let seed_opts = seed_options(target, &args).await?;
            let swept = crate::pristine::sweep_stale(target).await?;
            if !swept.is_empty() {
                crate::say!(
                    "  dropped pristine copies a killed storybench left: {}",
                    swept.join(", ")
                );
            }
            session.collect_environment(target).await?;
            let job = ScalesJob {
                scenario: &scenario,
                opts: args.options(),
                seed_opts,
                args: &args.scales,
                explain: crate::config::RunConfig::preset("full")?.explain,
                record_dataset: true,
                known: None,
            };
            stage(session, target, &job).await
        },
    )
    .await
}

/// The seed inputs shared by every scale: the flags, else the database's own dataset's.
async fn seed_options(target: &Target, args: &CapacityArgs) -> Result<SeedOptions> {
    let mut conn = target.connect().await?;
    crate::schema::check_ownership(&mut conn).await?;
    let own = crate::seed::dataset(&mut conn).await?;
    let a = &args.scales;
    Ok(SeedOptions {
        profile: a
            .profile
            .clone()
            .or_else(|| own.as_ref().map(|d| d.profile.clone()))
            .unwrap_or_else(|| "default".into()),
        scale: 1.0,
        seed: a
            .dataset_seed
            .or_else(|| own.as_ref().map(|d| d.seed))
            .unwrap_or(42),
        anchor: a
            .anchor
            .or_else(|| own.as_ref().map(|d| d.anchor))
            .unwrap_or_else(|| chrono::Utc::now().date_naive()),
        jobs: 2,
        reset: false,
        toast_compression: None,
        verify: false,
        variant: Default::default(),
    })
}

/// What the scales stage measures: `capacity --scales` and `run --scales` fill it in.
pub struct ScalesJob<'a> {
    pub scenario: &'a Scenario,
    pub opts: CapacityOptions,
    /// The seed inputs shared by every scale (its `scale` is replaced per scale).
    pub seed_opts: SeedOptions,
    pub args: &'a ScalesArgs,
    /// The explain stage's options: its strategies are the flattening stage's arms.
    pub explain: ExplainOptions,
    /// Record each scale's dataset as the run's (the command); `run` keeps its own.
    pub record_dataset: bool,
    /// `run`'s own capacity search, made on its dataset with the same scenario and options:
    /// the scale that is that dataset takes it instead of searching again.
    pub known: Option<KnownSearch>,
}

/// A capacity search already made on one database's dataset.
pub struct KnownSearch {
    pub database: String,
    pub fingerprint: Option<String>,
    pub search: crate::measure::load::capacity::CapacitySection,
}

/// The whole stage: measures every scale, keeps the section in the results (also what was
/// measured before an error or Ctrl-C) and prints it.
pub async fn stage(session: &mut RunSession, target: &Target, job: &ScalesJob<'_>) -> Result<()> {
    let scale_list = job.args.checked()?;
    let mut section = ScalesSection {
        scenario: job.scenario.name.clone(),
        profile: job.seed_opts.profile.clone(),
        seed: job.seed_opts.seed,
        anchor: Some(job.seed_opts.anchor),
        launch_scale: job.args.launch_scale,
        common_rate: job.args.common_rate,
        flat_exponent: flatten::FLAT_EXPONENT,
        ..Default::default()
    };
    let outcome = measure(session, target, job, &scale_list, &mut section).await;
    if !section.scales.is_empty() {
        crate::printer::show(|p| crate::printer::capacity_scales::summary(p, &section));
        session.results.capacity_scales = Some(section);
    }
    outcome
}

/// `run --scales`: the stage on the run's profile, seed and anchor, with the capacity
/// stage's scenario and options and the explain stage's strategies.
pub async fn for_run(
    session: &mut RunSession,
    target: &Target,
    config: &RunConfig,
    scenario: &Scenario,
) -> Result<()> {
    let args = run_args(config);
    let known = match (&session.results.capacity, &session.results.dataset) {
        (Some(search), Some(dataset)) => Some(KnownSearch {
            database: crate::pristine::current_database(target).await?,
            fingerprint: dataset.fingerprint.clone(),
            search: search.clone(),
        }),
        _ => None,
    };
    let job = ScalesJob {
        scenario,
        opts: config.capacity_options()?,
        seed_opts: SeedOptions {
            reset: false,
            ..config.seed_options()
        },
        args: &args,
        explain: config.explain.clone(),
        record_dataset: false,
        known,
    };
    stage(session, target, &job).await
}

/// The scales arguments a run configuration stands for.
pub fn run_args(config: &RunConfig) -> ScalesArgs {
    ScalesArgs {
        scales: config.scales.scales.clone(),
        launch_scale: config.scales.launch_scale,
        profile: Some(config.dataset.profile.clone()),
        anchor: config.dataset.anchor,
        dataset_seed: Some(config.dataset.seed),
        common_rate: config.scales.common_rate,
    }
}

/// Every scale in increasing order: its dataset, its capacity search; then the common rate
/// (one every scale that sustained a rate sustains) and each scale's step at it; then the
/// fits and the flattening stage. `section` holds whatever was measured when it returns,
/// concluded.
async fn measure(
    session: &mut RunSession,
    target: &Target,
    job: &ScalesJob<'_>,
    scale_list: &[f64],
    section: &mut ScalesSection,
) -> Result<()> {
    let datasets = ensure_datasets(session, target, job, scale_list).await?;
    let searched = search_each(session, job, datasets, section).await;
    let targets = match searched {
        Ok(t) => t,
        Err(e) => {
            scales::conclude(section);
            return Err(e);
        }
    };
    let rate = job
        .args
        .common_rate
        .unwrap_or_else(|| scales::common_rate(&section.scales).unwrap_or(job.opts.start_rate));
    section.common_rate = Some(rate);
    let stepped = common_steps(session, job, &targets, rate, section).await;
    scales::conclude(section);
    stepped?;
    flatten_growing(session, job, &targets, section).await
}

/// Every scale's dataset first: a refused or failed one stops the command before anything
/// is measured.
async fn ensure_datasets(
    session: &mut RunSession,
    target: &Target,
    job: &ScalesJob<'_>,
    scale_list: &[f64],
) -> Result<Vec<crate::scale_datasets::ScaleDataset>> {
    let mut datasets = Vec::new();
    for &scale in scale_list {
        let o = SeedOptions {
            scale,
            ..job.seed_opts.clone()
        };
        let ds = session
            .stage(
                &format!("dataset scale {scale}"),
                crate::scale_datasets::ensure(target, &o),
            )
            .await?;
        let mut conn = ds.target.connect().await?;
        // Before anything is created: a broken scenario changes nothing.
        job.scenario.check_sql(&mut conn).await?;
        crate::schema::ensure_pg_stat_statements(&mut conn).await?;
        datasets.push(ds);
    }
    Ok(datasets)
}

/// The capacity search of every scale, each on a pristine copy of its dataset (or `run`'s
/// own search for the run's dataset); each scale joins `section` as it is searched.
async fn search_each(
    session: &mut RunSession,
    job: &ScalesJob<'_>,
    datasets: Vec<crate::scale_datasets::ScaleDataset>,
    section: &mut ScalesSection,
) -> Result<Vec<(Target, f64)>> {
    let mut targets = Vec::new();
    for ds in datasets {
        let scale = ds.info.scale;
        let known = job
            .known
            .as_ref()
            .filter(|k| k.database == ds.database && k.fingerprint == ds.info.fingerprint)
            .map(|k| k.search.clone());
        let from_run = known.is_some();
        let search = match known {
            Some(s) => {
                crate::say!("  capacity scale {scale}: the run's own capacity search on this dataset (not searched again)");
                s
            }
            None => {
                let s = session
                    .stage_on_copy(&format!("capacity scale {scale}"), &ds.target, async |t| {
                        capacity::search(t, job.scenario, &job.opts).await
                    })
                    .await?;
                crate::printer::show(|p| crate::printer::capacity::summary(p, &s));
                s
            }
        };
        section.scales.push(scales::ScaleRun {
            search_from_run: from_run,
            ..scales::scale_run(&ds, search, None)
        });
        if job.record_dataset {
            session.results.dataset = Some(ds.info.clone());
        }
        targets.push((ds.target, scale));
    }
    Ok(targets)
}

/// Each scale's step at the common rate, on a fresh pristine copy of its dataset.
async fn common_steps(
    session: &mut RunSession,
    job: &ScalesJob<'_>,
    targets: &[(Target, f64)],
    rate: f64,
    section: &mut ScalesSection,
) -> Result<()> {
    let fastest = scales::fastest_probe(&section.scales);
    for ((t, scale), run) in targets.iter().zip(section.scales.iter_mut()) {
        if crate::interrupt::interrupted() {
            break;
        }
        let step = session
            .stage_on_copy(&format!("common rate scale {scale}"), t, async |c| {
                scales::at_rate_steady(c, job.scenario, &job.opts, rate, fastest).await
            })
            .await?;
        run.at_common_rate = Some(scales::over_capacity(run, step));
    }
    Ok(())
}

/// The index strategies' work at the smallest and largest scale, for the queries whose
/// latency grows with the data.
async fn flatten_growing(
    session: &mut RunSession,
    job: &ScalesJob<'_>,
    targets: &[(Target, f64)],
    section: &mut ScalesSection,
) -> Result<()> {
    let flagged: Vec<String> = section
        .queries
        .iter()
        .filter(|q| q.grows)
        .map(|q| q.name.clone())
        .collect();
    if let (false, Some(small), Some(large)) = (flagged.is_empty(), targets.first(), targets.last())
    {
        let dir = session.out_dir.join("scales_explain");
        section.flattening = session
            .stage(
                "flatten",
                flatten::measure(
                    (&small.0, small.1),
                    (&large.0, large.1),
                    &flagged,
                    &job.explain,
                    &dir,
                ),
            )
            .await?;
    }
    Ok(())
}
