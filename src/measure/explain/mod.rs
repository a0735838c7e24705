//! `storybench explain`: every catalog query × index strategy on the same seeded data:
//! EXPLAIN (ANALYZE, BUFFERS) for a heavy and a median user as the query's role, plan
//! summaries and diffs, prepared-statement latency, index size and write cost, verdicts.

mod types;
mod verdict;

pub use types::*;

use crate::catalog::{Kind, QuerySpec, Sampler};
use crate::interrupt;
use crate::measure::exec::{self, principal_for, RequestContext};
use crate::measure::latency::Latency;
use crate::params::{rng_for, ParamValue, Population};
use crate::plan;
use crate::schema;
use crate::target::Target;
use anyhow::{Context, Result};
use sqlx::postgres::PgConnection;
use sqlx::AssertSqlSafe;
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Clone, Debug, serde::Serialize)]
pub struct ExplainOptions {
    pub strategies: Vec<String>,
    pub queries: Vec<String>,
    /// Timed executions per query, strategy and user (after warm-up), within `budget`.
    pub runs: usize,
    pub warmup: usize,
    /// Time cap per query, strategy and user: slow analytics stop early (with ≥ 3 runs).
    pub budget: Duration,
    pub seed: u64,
    pub statement_timeout: Duration,
    /// Writes per WAL measurement batch.
    pub write_batch: usize,
}

struct Subject {
    label: &'static str,
    user: Uuid,
}

/// Runs the comparison. Leaves the schema on the index strategy it found.
pub async fn run(target: &Target, opts: &ExplainOptions, out_dir: &Path) -> Result<ExplainSection> {
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
    let ctx = RequestContext::new(&variant.api_usage, opts.statement_timeout);
    let population = Population::load(&mut conn, dataset.anchor).await?;
    let subjects = [
        Subject {
            label: "heavy",
            user: population.heavy(),
        },
        Subject {
            label: "median",
            user: population.median(),
        },
    ];

    // Draw every query's parameters once, so each strategy sees the same values.
    let mut drawn: Vec<Vec<(usize, Vec<ParamValue>)>> = Vec::new();
    for spec in &specs {
        let mut per_subject = Vec::new();
        for (i, s) in subjects.iter().enumerate() {
            if i > 0
                && !spec.params.contains(&Sampler::User)
                && spec.role != crate::catalog::Role::App
            {
                continue; // No user in the query: one subject is enough.
            }
            let mut rng = rng_for(opts.seed, &format!("{}:{}", spec.name, s.label));
            per_subject.push((i, population.draw(&mut conn, spec, s.user, &mut rng).await?));
        }
        drawn.push(per_subject);
    }

    let mut section = ExplainSection {
        layout: variant.api_usage.clone(),
        runs: opts.runs,
        ..Default::default()
    };
    section.queries = specs
        .iter()
        .map(|s| QueryComparison {
            name: s.name.clone(),
            description: s.description.clone(),
            role: s.role.name().into(),
            kind: s.kind.name().into(),
            consistent: true,
            ..Default::default()
        })
        .collect();
    for (qi, per_subject) in drawn.iter().enumerate() {
        for (si, params) in per_subject {
            section.queries[qi].subjects.push(SubjectComparison {
                subject: subjects[*si].label.into(),
                user: subjects[*si].user.to_string(),
                params: params.iter().map(ParamValue::display).collect(),
                ..Default::default()
            });
        }
    }

    let outcome = measure_strategies(
        &mut conn,
        opts,
        &specs,
        &subjects,
        &drawn,
        &ctx,
        out_dir,
        &mut section,
    )
    .await;
    // Put the schema back on the strategy it was on, whatever happened.
    if let Err(e) = schema::set_indexes(&mut conn, &variant.indexes).await {
        tracing::warn!(
            "could not restore index strategy {}: {e:#}",
            variant.indexes
        );
    }
    // Interrupted: keep what was measured (the command marks the run interrupted).
    if !interrupt::interrupted() {
        outcome?;
    }
    verdict::finish(&mut section);
    Ok(section)
}

#[allow(clippy::too_many_arguments)]
async fn measure_strategies(
    conn: &mut PgConnection,
    opts: &ExplainOptions,
    specs: &[&QuerySpec],
    subjects: &[Subject],
    drawn: &[Vec<(usize, Vec<ParamValue>)>],
    ctx: &RequestContext,
    out_dir: &Path,
    section: &mut ExplainSection,
) -> Result<()> {
    for strategy in &opts.strategies {
        interrupt::check()?;
        let started = Instant::now();
        schema::set_indexes(conn, strategy).await?;
        let build_seconds = started.elapsed().as_secs_f64();
        let index_bytes: i64 = sqlx::query_scalar(AssertSqlSafe(
            crate::params::queries().secondary_index_bytes.clone(),
        ))
        .fetch_one(&mut *conn)
        .await?;
        eprintln!(
            "  explain: strategy {strategy} (indexes {} built in {build_seconds:.1} s)",
            crate::report::human_bytes(index_bytes as f64)
        );
        let mut write_means = Vec::new();
        let mut wal_per_story = None;
        for (qi, spec) in specs.iter().enumerate() {
            interrupt::check()?;
            for (k, (si, params)) in drawn[qi].iter().enumerate() {
                let subject = &subjects[*si];
                let run =
                    measure_one(conn, opts, spec, subject, params, strategy, ctx, out_dir).await;
                if let Some(e) = &run.error {
                    section.errors.push(MeasureError {
                        query: spec.name.clone(),
                        strategy: strategy.clone(),
                        subject: subject.label.into(),
                        error: e.clone(),
                    });
                }
                if spec.kind == Kind::Write && subject.label == "heavy" {
                    if let Some(l) = &run.latency {
                        write_means.push(l.mean_ms);
                    }
                }
                section.queries[qi].subjects[k].by_strategy.push(run);
            }
            if spec.has_tag("create_story") && spec.kind == Kind::Write {
                wal_per_story = measure_wal(conn, opts, spec, subjects, &drawn[qi], ctx)
                    .await
                    .map_err(|e| tracing::warn!("WAL measurement of {}: {e:#}", spec.name))
                    .ok();
            }
        }
        let write_mean = (!write_means.is_empty())
            .then(|| write_means.iter().sum::<f64>() / write_means.len() as f64);
        section.strategies.push(StrategyFigures {
            name: strategy.clone(),
            index_bytes: index_bytes as u64,
            build_seconds,
            wal_bytes_per_story: wal_per_story,
            write_mean_ms: write_mean,
            write_ops_per_second: write_mean.map(|m| 1000.0 / m.max(1e-6)),
        });
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn measure_one(
    conn: &mut PgConnection,
    opts: &ExplainOptions,
    spec: &QuerySpec,
    subject: &Subject,
    params: &[ParamValue],
    strategy: &str,
    ctx: &RequestContext,
    out_dir: &Path,
) -> StrategyRun {
    let mut run = StrategyRun {
        strategy: strategy.to_string(),
        ..Default::default()
    };
    let who = principal_for(spec, subject.user);
    let outcome: Result<()> = async {
        let raw = exec::explain(conn, &spec.sql, params, &who, ctx)
            .await
            .context("EXPLAIN")?;
        let rel = format!("plans/{strategy}/{}.{}.json", spec.name, subject.label);
        let path = out_dir.join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::results::write_atomic(&path, serde_json::to_string_pretty(&raw)?.as_bytes())?;
        run.plan_file = Some(rel);
        run.plan = Some(plan::summarize(&raw)?);
        if spec.is_read() {
            let (rows, digest) = exec::digest(conn, &spec.sql, params, &who, ctx).await?;
            run.rows = Some(rows);
            run.digest = Some(digest);
        }
        let mut latency = Latency::new();
        let started = Instant::now();
        for i in 0..opts.warmup + opts.runs {
            let (elapsed, rows) =
                exec::timed(conn, spec, &spec.sql, params, &who, ctx, false).await?;
            if i >= opts.warmup {
                latency.record(elapsed);
                if !spec.is_read() {
                    run.rows = Some(rows as i64);
                }
            }
            if latency.count() >= 3 && started.elapsed() > opts.budget {
                break;
            }
        }
        run.latency = Some(latency.summary());
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        run.error = Some(format!("{e:#}"));
    }
    run
}

/// WAL per created story: a batch of create_story executions for the heavy user, rolled back.
async fn measure_wal(
    conn: &mut PgConnection,
    opts: &ExplainOptions,
    spec: &QuerySpec,
    subjects: &[Subject],
    drawn: &[(usize, Vec<ParamValue>)],
    ctx: &RequestContext,
) -> Result<f64> {
    let (si, _) = drawn.first().context("no parameters drawn")?;
    let subject = &subjects[*si];
    let population_rng = &mut rng_for(opts.seed, &format!("{}:wal", spec.name));
    // Fresh ids per execution: reuse the drawn values but renew the samplers that must be unique.
    let base = &drawn[0].1;
    let batch: Vec<Vec<ParamValue>> = (0..opts.write_batch.max(1))
        .map(|_| {
            spec.params
                .iter()
                .zip(base)
                .map(|(s, v)| match s {
                    Sampler::NewUuid => ParamValue::Uuid(
                        uuid::Builder::from_random_bytes(rand::RngExt::random(population_rng))
                            .into_uuid(),
                    ),
                    Sampler::RequestId => ParamValue::Text(format!(
                        "req_sb_{:032x}",
                        rand::RngExt::random::<u128>(population_rng)
                    )),
                    _ => v.clone(),
                })
                .collect()
        })
        .collect();
    exec::wal_per_execution(
        conn,
        &spec.sql,
        &batch,
        &principal_for(spec, subject.user),
        ctx,
    )
    .await
}
