//! `storybench partitions`: what monthly range partitions of api_usage buy and cost on the
//! analytics queries, against the flat twin holding the same rows (the seeder COPYs the
//! same binary data into both). Per query: latency on both layouts, the plan's pruning
//! evidence, generic plans, partitionwise aggregation; then btree vs BRIN on created_at,
//! the scaling curve over partition counts and the cost of partition maintenance — the
//! last two on scratch copies in `storybench_scratch`, so the seeded dataset stays as is.

mod brin;
mod layouts;
mod maintenance;
pub mod probe;
mod scaling;
mod scratch;
mod types;
mod verdict;

pub use scaling::crossover;
pub use types::*;

use crate::catalog::QuerySpec;
use crate::measure::exec::RequestContext;
use crate::params::Population;
use crate::target::Target;
use anyhow::{Context, Result};
use serde::Deserialize;
use sqlx::postgres::PgConnection;
use sqlx::Row;
use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Deserialize)]
struct File {
    roles: Roles,
    queries: HashMap<String, String>,
}

/// Which catalog queries play which part (scenarios/partitions.toml `[roles]`).
#[derive(Deserialize, Clone, Debug)]
pub struct Roles {
    pub partitionwise: Vec<String>,
    pub created_at_range: Vec<String>,
    pub scaling: Vec<String>,
}

fn file() -> &'static File {
    static F: OnceLock<File> = OnceLock::new();
    F.get_or_init(|| {
        toml::from_str(include_str!("../../../scenarios/partitions.toml"))
            .expect("scenarios/partitions.toml is valid TOML")
    })
}

pub fn roles() -> &'static Roles {
    &file().roles
}

/// The stage's own SQL. Panics only on a programming error (unknown name), which the
/// unit test below catches.
pub(crate) fn sql(name: &str) -> sqlx::AssertSqlSafe<&'static str> {
    sqlx::AssertSqlSafe(raw(name))
}

fn raw(name: &str) -> &'static str {
    file()
        .queries
        .get(name)
        .unwrap_or_else(|| panic!("query {name:?} is missing from scenarios/partitions.toml"))
        .as_str()
}

/// The stage's SQL with `{placeholders}` filled in (identifiers and bounds storybench
/// computes itself, never user input).
pub(crate) fn sql_with(name: &str, vars: &[(&str, &str)]) -> String {
    let mut text = raw(name).to_string();
    for (k, v) in vars {
        text = text.replace(&format!("{{{k}}}"), v);
    }
    text
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionsOptions {
    /// Catalog queries to measure (default: every analytics query reading api_usage).
    pub queries: Vec<String>,
    /// Most interleaved rounds per comparison (raised to what `percentiles` need).
    pub runs: usize,
    pub warmup: usize,
    /// Time budget per comparison once the floor is reached (see `measure::engine`).
    #[serde(with = "crate::units::duration_secs")]
    pub budget: Duration,
    /// Percentiles the stage reports: their sample counts set the rounds' floor.
    pub percentiles: Vec<f64>,
    /// The run's `--seed` (not written in presets: every stage takes the dataset's).
    #[serde(default)]
    pub seed: u64,
    #[serde(with = "crate::units::duration_secs")]
    pub statement_timeout: Duration,
    pub indexes: bool,
    pub scaling: bool,
    /// EXPLAIN ANALYZE repetitions per scaling point (medians are kept).
    pub scaling_repetitions: usize,
    pub maintenance: bool,
    /// Concurrent insert tasks during maintenance, and the pause between their inserts.
    pub writers: usize,
    #[serde(with = "crate::units::duration_secs")]
    pub insert_interval: Duration,
    /// Insert-only window before the first maintenance operation (the baseline).
    #[serde(with = "crate::units::duration_secs")]
    pub baseline: Duration,
}

impl Default for PartitionsOptions {
    fn default() -> Self {
        Self {
            queries: Vec::new(),
            runs: 400,
            warmup: 3,
            budget: Duration::from_secs(3),
            percentiles: vec![50.0, 95.0],
            seed: 42,
            statement_timeout: Duration::from_secs(60),
            indexes: true,
            scaling: true,
            scaling_repetitions: 5,
            maintenance: true,
            writers: 3,
            insert_interval: Duration::from_millis(5),
            baseline: Duration::from_secs(1),
        }
    }
}

impl PartitionsOptions {
    /// The engine settings of every timed comparison of the stage.
    pub fn engine(&self) -> crate::measure::engine::EngineOptions {
        crate::measure::engine::EngineOptions::new(
            self.warmup,
            self.runs,
            self.budget,
            &self.percentiles,
        )
    }
}

/// The queries the stage measures: the named ones, or every analytics query; analytics
/// queries that do not read api_usage are reported as skipped.
pub fn select_queries<'c>(
    catalog: &'c crate::catalog::Catalog,
    names: &[String],
) -> Result<(Vec<&'c QuerySpec>, Vec<Skipped>)> {
    let chosen = if names.is_empty() {
        catalog.with_tag("analytics")
    } else {
        catalog.select(names)?
    };
    let mut specs = Vec::new();
    let mut skipped = Vec::new();
    for s in chosen {
        if !s.has_tag("api_usage") {
            skipped.push(Skipped {
                query: s.name.clone(),
                reason: "does not read api_usage: both layouts run the same plan".into(),
            });
        } else if !s.is_read() {
            skipped.push(Skipped {
                query: s.name.clone(),
                reason: "a write: the stage compares reads".into(),
            });
        } else {
            specs.push(s);
        }
    }
    Ok((specs, skipped))
}

/// Real partitions of public.api_usage.
pub async fn partition_count(conn: &mut PgConnection) -> Result<usize> {
    let n: i64 = sqlx::query_scalar(sql("partition_count"))
        .fetch_one(&mut *conn)
        .await?;
    Ok(n as usize)
}

/// Runs the stage. The seeded tables end as they started.
pub async fn run(
    target: &Target,
    opts: &PartitionsOptions,
    out_dir: &Path,
) -> Result<PartitionsSection> {
    let catalog = crate::catalog::load_default()?;
    let (specs, skipped) = select_queries(&catalog, &opts.queries)?;
    let mut conn = target.connect().await?;
    let dataset = crate::seed::require_complete(&mut conn).await?;
    let population = Population::load(&mut conn, dataset.anchor).await?;
    let mut section = PartitionsSection {
        runs: opts.runs,
        skipped,
        ..Default::default()
    };
    section.partitions_total = partition_count(&mut conn).await?;
    for row in sqlx::query(sql("partition_rows"))
        .fetch_all(&mut conn)
        .await?
    {
        section.partitions.push(PartitionRows {
            name: row.try_get(0)?,
            bound: row.try_get(1)?,
            bytes: row.try_get(2)?,
            rows: row.try_get(3)?,
        });
    }
    for (layout, q) in [
        ("partitioned", "layout_digest_partitioned"),
        ("flat", "layout_digest_flat"),
    ] {
        let (rows, digest): (i64, String) = sqlx::query_as(sql(q))
            .fetch_one(&mut conn)
            .await
            .with_context(|| format!("digest of the {layout} layout"))?;
        section.layout_digests.push(LayoutDigest {
            layout: layout.into(),
            rows,
            digest,
        });
    }
    section.rows = section.layout_digests[0].rows;
    section.layouts_identical = section.layout_digests[0].rows == section.layout_digests[1].rows
        && section.layout_digests[0].digest == section.layout_digests[1].digest;
    eprintln!(
        "  partitions: {} rows, {} partitions, layouts {}",
        section.rows,
        section.partitions_total,
        if section.layouts_identical {
            "identical"
        } else {
            "DIFFER"
        }
    );

    let outcome = async {
        let drawn = layouts::draw(&mut conn, &population, &specs, opts.seed).await?;
        layouts::compare(&mut conn, opts, &specs, &drawn, out_dir, &mut section).await?;
        layouts::partitionwise(&mut conn, opts, &specs, &drawn, out_dir, &mut section).await?;
        if opts.indexes {
            crate::interrupt::check()?;
            match brin::compare(&mut conn, opts, &specs, &drawn).await {
                Ok(c) => section.indexes = Some(c),
                Err(e) => section.errors.push(PartError {
                    part: "indexes".into(),
                    query: None,
                    error: format!("{e:#}"),
                }),
            }
        }
        if opts.scaling || opts.maintenance {
            crate::interrupt::check()?;
            scratch::open(&mut conn).await?;
            let outcome = async {
                if opts.scaling {
                    section.scaling = Some(
                        scaling::run(&mut conn, opts, &catalog, &population, dataset.anchor)
                            .await?,
                    );
                }
                if opts.maintenance {
                    crate::interrupt::check()?;
                    section.maintenance =
                        Some(maintenance::run(target, &mut conn, opts, dataset.anchor).await?);
                }
                Ok::<_, anyhow::Error>(())
            }
            .await;
            // Drop the scratch schema whatever happened.
            let closed = scratch::close(&mut conn).await;
            outcome?;
            closed?;
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    // Interrupted: keep what was measured (the command marks the run interrupted).
    if !crate::interrupt::interrupted() {
        outcome?;
    }
    verdict::finish(&mut section);
    Ok(section)
}

/// The request context of a layout.
pub(crate) fn context(layout: &str, opts: &PartitionsOptions) -> RequestContext {
    RequestContext::new(layout, opts.statement_timeout)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sql_and_roles_load() {
        let names = [
            "partition_count",
            "partition_rows",
            "layout_digest_partitioned",
            "layout_digest_flat",
            "set_local",
            "created_at_indexes",
            "index_bytes",
            "scratch_create",
            "scratch_record",
            "scratch_forget",
            "usage_span",
            "scratch_load",
            "maint_insert",
            "maint_digest",
            "maint_expected_rows",
        ];
        for n in names {
            let _ = super::sql(n);
        }
        assert!(
            super::sql_with("prepare", &[("name", "x"), ("query", "SELECT 1")])
                .contains("PREPARE x AS SELECT 1")
        );
        let catalog = crate::catalog::load_default().unwrap();
        let r = super::roles();
        for q in r
            .partitionwise
            .iter()
            .chain(&r.created_at_range)
            .chain(&r.scaling)
        {
            let spec = catalog
                .get(q)
                .unwrap_or_else(|| panic!("{q} not in catalog"));
            assert!(
                spec.has_tag("analytics") && spec.has_tag("api_usage"),
                "{q}"
            );
        }
    }
}
