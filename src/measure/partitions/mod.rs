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

pub use types::*;

use crate::catalog::QuerySpec;
use crate::measure::exec::RequestContext;
use crate::params::Population;
use crate::schema::Layout;
use crate::sql_files::sql;
use crate::target::Target;
use anyhow::{Context, Result};
use serde::Deserialize;
use sqlx::postgres::PgConnection;
use sqlx::Row;
use std::path::Path;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    roles: Roles,
    queries: PartitionsQueries,
}

/// Which catalog queries play which part (scenarios/partitions.toml `[roles]`).
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    pub partitionwise: Vec<String>,
    pub created_at_range: Vec<String>,
    pub scaling: Vec<String>,
}

/// The stage's own SQL, one field per query of scenarios/partitions.toml `[queries]`;
/// `{placeholders}` are filled by [`crate::sql_files::fill`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PartitionsQueries {
    pub partition_count: String,
    pub partition_rows: String,
    pub layout_digest_partitioned: String,
    pub layout_digest_flat: String,
    pub resolves_to: String,
    pub set_local: String,
    pub prepare: String,
    pub explain_execute: String,
    pub deallocate: String,
    pub created_at_indexes: String,
    pub drop_index: String,
    pub cmp_index_partitioned: String,
    pub cmp_index_flat: String,
    pub create_cmp_index_partitioned: String,
    pub create_cmp_index_flat: String,
    pub leftover_cmp_indexes: String,
    pub index_bytes: String,
    pub index_tree_names: String,
    pub scratch_exists: String,
    pub scratch_owned: String,
    pub scratch_drop: String,
    pub scratch_create: String,
    pub scratch_record: String,
    pub scratch_forget: String,
    pub usage_span: String,
    pub scratch_table: String,
    pub partition_by_created_at: String,
    pub scratch_partition: String,
    pub scratch_load: String,
    pub scratch_grant: String,
    pub scratch_indexes: String,
    pub scratch_pkey_partitioned: String,
    pub scratch_pkey_flat: String,
    pub scratch_drop_table: String,
    pub maint_detach: String,
    pub maint_drop_partition: String,
    pub maint_delete: String,
    pub maint_vacuum: String,
    pub maint_table_bytes: String,
    pub maint_user: String,
    pub maint_insert: String,
    pub maint_rows_by_month: String,
    pub maint_digest: String,
    pub maint_expected_rows: String,
}

crate::sql_file!(fn file() -> File = "scenarios/partitions.toml");

pub fn roles() -> &'static Roles {
    &file().roles
}

pub(crate) fn queries() -> &'static PartitionsQueries {
    &file().queries
}

#[cfg(test)]
pub(crate) fn load_all() {
    let _ = queries();
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
    crate::engine_options_from_fields!();
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
    let n: i64 = sqlx::query_scalar(sql(&queries().partition_count))
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
    describe_layouts(&mut conn, &mut section).await?;

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
            let parts = ScratchParts {
                catalog: &catalog,
                population: &population,
                anchor: dataset.anchor,
            };
            scratch_parts(target, &mut conn, opts, parts, &mut section).await?;
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    // Interrupted: keep what was measured (the command marks the run interrupted).
    if !crate::interrupt::interrupted() {
        outcome?;
    }
    Ok(section)
}

/// The partitions and both layouts' rows and digests: the layouts must hold the same data.
async fn describe_layouts(conn: &mut PgConnection, section: &mut PartitionsSection) -> Result<()> {
    section.partitions_total = partition_count(conn).await?;
    for row in sqlx::query(sql(&queries().partition_rows))
        .fetch_all(&mut *conn)
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
        (Layout::Partitioned, &queries().layout_digest_partitioned),
        (Layout::Flat, &queries().layout_digest_flat),
    ] {
        let (rows, digest): (i64, String) = sqlx::query_as(sql(q))
            .fetch_one(&mut *conn)
            .await
            .with_context(|| format!("digest of the {layout} layout"))?;
        section.layout_digests.push(LayoutDigest {
            layout,
            rows,
            digest,
        });
    }
    section.rows = section.layout_digests[0].rows;
    section.layouts_identical = section.layout_digests[0].rows == section.layout_digests[1].rows
        && section.layout_digests[0].digest == section.layout_digests[1].digest;
    crate::say!(
        "  partitions: {} rows, {} partitions, layouts {}",
        section.rows,
        section.partitions_total,
        if section.layouts_identical {
            "identical"
        } else {
            "DIFFER"
        }
    );
    Ok(())
}

/// What the scaling and maintenance parts read besides the connection.
struct ScratchParts<'a> {
    catalog: &'a crate::catalog::Catalog,
    population: &'a Population,
    anchor: chrono::NaiveDate,
}

/// The scaling curve and partition maintenance, on scratch copies in a schema dropped
/// whatever happens.
async fn scratch_parts(
    target: &Target,
    conn: &mut PgConnection,
    opts: &PartitionsOptions,
    p: ScratchParts<'_>,
    section: &mut PartitionsSection,
) -> Result<()> {
    scratch::open(conn).await?;
    let outcome = async {
        if opts.scaling {
            section.scaling = Some(scaling::run(conn, opts, p.catalog, p.population).await?);
        }
        if opts.maintenance {
            crate::interrupt::check()?;
            section.maintenance = Some(maintenance::run(target, conn, opts, p.anchor).await?);
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    let closed = scratch::close(conn).await;
    outcome?;
    closed
}

/// The request context of a layout.
pub(crate) fn context(layout: Layout, opts: &PartitionsOptions) -> RequestContext {
    RequestContext::new(layout, opts.statement_timeout)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sql_and_roles_load() {
        let prepare = crate::sql_files::fill(
            &super::queries().prepare,
            &[("name", "x"), ("query", "SELECT 1")],
        );
        assert!(prepare.contains("PREPARE x AS SELECT 1"), "{prepare}");
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
