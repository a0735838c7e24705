//! `storybench explain`: every catalog query × index strategy on the same seeded data:
//! EXPLAIN (ANALYZE, BUFFERS) for a heavy and a median user as the query's role, plan
//! summaries and diffs, prepared-statement latency, index size and write cost, verdicts.
//! Each strategy lives on its own pristine copy of the dataset, so the strategies are
//! timed interleaved, query by query, by the measurement engine.

mod measure;
mod types;
mod verdict;

pub use types::*;

use crate::catalog::Sampler;
use crate::interrupt;
use crate::measure::exec::RequestContext;
use crate::params::{rng_for, ParamValue, Population, Subject, SubjectUser};
use crate::pristine::PristineCopy;
use crate::schema;
use crate::target::Target;
use anyhow::Result;
use measure::Measure;
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainOptions {
    pub strategies: Vec<String>,
    pub queries: Vec<String>,
    /// Most interleaved rounds per query and user (each round runs every strategy once);
    /// raised to what `percentiles` need.
    pub runs: usize,
    pub warmup: usize,
    /// Time budget per query and user once the floor is reached (see `measure::engine`).
    #[serde(with = "crate::units::duration_secs")]
    pub budget: Duration,
    /// Percentiles the stage reports: their sample counts set the rounds' floor.
    pub percentiles: Vec<f64>,
    /// The run's `--seed` (not written in presets: every stage takes the dataset's).
    #[serde(default)]
    pub seed: u64,
    #[serde(with = "crate::units::duration_secs")]
    pub statement_timeout: Duration,
    /// Writes per WAL measurement batch.
    pub write_batch: usize,
}

/// The two subjects every per-user comparison measures.
pub(crate) fn subjects(population: &Population) -> [SubjectUser; 2] {
    [Subject::Heavy, Subject::Median].map(|s| SubjectUser::of(s, population))
}

/// Every query's parameters, drawn once per subject (a query without a user is drawn for
/// the first subject only), so each arm compared sees the same values.
pub(crate) async fn draw_parameters(
    conn: &mut sqlx::PgConnection,
    specs: &[&crate::catalog::QuerySpec],
    subjects: &[SubjectUser],
    population: &Population,
    seed: u64,
) -> Result<Vec<Vec<(usize, Vec<ParamValue>)>>> {
    let mut drawn = Vec::new();
    for spec in specs {
        let mut per_subject = Vec::new();
        for (i, s) in subjects.iter().enumerate() {
            if i > 0
                && !spec.params.contains(&Sampler::User)
                && spec.role != crate::catalog::Role::App
            {
                continue; // No user in the query: one subject is enough.
            }
            let mut rng = rng_for(seed, &format!("{}:{}", spec.name, s.subject));
            per_subject.push((i, population.draw(conn, spec, s.user, &mut rng).await?));
        }
        drawn.push(per_subject);
    }
    Ok(drawn)
}

impl ExplainOptions {
    crate::engine_options_from_fields!();
}

/// Runs the comparison on pristine copies: the dataset itself is not changed.
pub async fn run(target: &Target, opts: &ExplainOptions, out_dir: &Path) -> Result<ExplainSection> {
    run_on_layout(target, opts, out_dir, None).await
}

/// [`run`] with `api_usage` read through `layout` (by search_path; every dataset holds both)
/// instead of the variant's.
pub async fn run_on_layout(
    target: &Target,
    opts: &ExplainOptions,
    out_dir: &Path,
    layout: Option<schema::Layout>,
) -> Result<ExplainSection> {
    for s in &opts.strategies {
        schema::validate_name("indexes", s)?;
    }
    let catalog = crate::catalog::load_default()?;
    let specs = catalog.select(&opts.queries)?;
    let mut conn = target.connect().await?;
    let dataset = crate::seed::require_complete(&mut conn).await?;
    crate::catalog::check_sql(&mut conn, &specs).await?;
    let variant = schema::current_variant(&mut conn)
        .await?
        .unwrap_or_default();
    let layout = layout.unwrap_or(variant.api_usage);
    let ctx = RequestContext::new(layout, opts.statement_timeout);
    let population = Population::load(&mut conn, dataset.anchor).await?;
    let subjects = subjects(&population);
    let drawn = draw_parameters(&mut conn, &specs, &subjects, &population, opts.seed).await?;

    let mut section = ExplainSection {
        layout,
        runs: opts.runs,
        ..Default::default()
    };
    section.queries = specs
        .iter()
        .map(|s| QueryComparison {
            name: s.name.clone(),
            description: s.description.clone(),
            role: s.role,
            kind: s.kind,
            consistent: true,
            ..Default::default()
        })
        .collect();
    for (qi, per_subject) in drawn.iter().enumerate() {
        for (si, params) in per_subject {
            section.queries[qi].subjects.push(SubjectComparison {
                subject: subjects[*si].subject,
                user: subjects[*si].user.to_string(),
                params: params.iter().map(ParamValue::display).collect(),
                ..Default::default()
            });
        }
    }

    // Every strategy gets its own pristine copy (none may be made while a session is
    // connected to the dataset), so all strategies are measured interleaved.
    drop(conn);
    let mut copies = Vec::new();
    let made: Result<()> = async {
        for strategy in &opts.strategies {
            interrupt::check()?;
            let copy = PristineCopy::create(target, &format!("explain_{strategy}")).await?;
            copies.push(copy);
        }
        Ok(())
    }
    .await;
    let outcome = match made {
        Ok(()) => {
            let run = Measure {
                opts,
                specs: &specs,
                subjects: &subjects,
                drawn: &drawn,
                ctx: &ctx,
                out_dir,
            };
            run.all(&copies, &mut section).await
        }
        Err(e) => Err(e),
    };
    // Drop the copies whatever happened (also on Ctrl-C).
    for copy in copies {
        if let Err(e) = copy.drop().await {
            tracing::warn!("could not drop a pristine copy: {e:#}");
        }
    }
    verdict::finish(&mut section);
    match outcome {
        // Interrupted: keep what was measured (the command marks the run interrupted).
        Err(_) if interrupt::interrupted() => Ok(section),
        // Failed part-way: what was measured goes into the partial results.
        Err(cause) => Err(crate::measure::Partial { section, cause }.into()),
        Ok(()) => Ok(section),
    }
}
