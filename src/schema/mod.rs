//! Applying the InfiniteStories schema (`schema/*.sql`) and switching its variants:
//! index strategy, policy set and the `api_usage` layout measured on.

mod parallel;
mod safety;

pub use parallel::on_connections;
pub use safety::{check_ownership, owned_identities, Ownership};

use crate::internal_sql::{q, sql};
use crate::paths::project_file;
use crate::sqlfile::{run_file, statements};
use anyhow::{bail, Context, Result};
use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use sqlx::Connection;

/// Schemas whose every object storybench creates.
const OWNED_SCHEMAS: &[&str] = &[
    "public",
    "auth",
    "storybench_flat",
    "storybench",
    "storybench_private",
    "partitions",
];
/// Roles the auth shim needs; the ones missing before set-up are recorded as ours.
const AUTH_ROLES: &[&str] = &["anon", "authenticated", "service_role", "authenticator"];
/// Months of api_usage partitions created ahead of the anchor month.
const FUTURE_MONTHS: u32 = 3;
/// Months of history the seeder spreads rows over (partitions must cover them).
pub const HISTORY_MONTHS: u32 = 13;

/// Which variant the schema is in. Every result records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Variant {
    pub indexes: String,
    pub policies: String,
    /// Which `api_usage` the measurements read.
    pub api_usage: Layout,
}

impl Default for Variant {
    fn default() -> Self {
        Self {
            indexes: "doc".into(),
            policies: "doc".into(),
            api_usage: Layout::Partitioned,
        }
    }
}

/// The `api_usage` layout: monthly range partitions (`public.api_usage`) or one flat table
/// with the same rows (`storybench_flat.api_usage`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    #[default]
    Partitioned,
    Flat,
}

impl Layout {
    pub const ALL: [Layout; 2] = [Layout::Partitioned, Layout::Flat];

    pub fn name(self) -> &'static str {
        match self {
            Layout::Partitioned => "partitioned",
            Layout::Flat => "flat",
        }
    }

    /// The `search_path` that makes unqualified `api_usage` resolve to this layout.
    pub fn search_path(self) -> &'static str {
        match self {
            Layout::Partitioned => "public",
            Layout::Flat => "storybench_flat, public",
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Names of the variant files in `schema/<dir>/*.sql`.
pub fn available(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(project_file(format!("schema/{dir}")))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_suffix(".sql").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

/// Whether an index strategy is given as a file (`advice_indexes.sql`, `dir/mine.sql`)
/// rather than a name in `schema/indexes/`.
fn is_index_file(name: &str) -> bool {
    name.ends_with(".sql") || name.contains('/')
}

/// How a strategy is shown: its name, or a strategy file's name without the directory.
pub fn strategy_label(name: &str) -> &str {
    if is_index_file(name) {
        std::path::Path::new(name)
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or(name)
    } else {
        name
    }
}

/// The SQL file of an index strategy: a name in `schema/indexes/`, or any file.
pub fn index_file(name: &str) -> std::path::PathBuf {
    if is_index_file(name) {
        // Absolute, so the project-file lookup (STORYBENCH_HOME) leaves a user's path alone.
        std::path::absolute(name).unwrap_or_else(|_| name.into())
    } else {
        project_file(format!("schema/indexes/{name}.sql"))
    }
}

/// Fails with the list of valid names when `name` is not a variant file of `dir` (an index
/// strategy may also be any readable `.sql` file).
pub fn validate_name(dir: &str, name: &str) -> Result<()> {
    if dir == "indexes" && is_index_file(name) {
        std::fs::metadata(name).map_err(|e| anyhow::anyhow!("index strategy file {name}: {e}"))?;
        return Ok(());
    }
    let names = available(dir);
    if !names.iter().any(|n| n == name) {
        bail!(
            "unknown {} {name:?}; available: {}",
            kind_label(dir),
            names.join(", ")
        );
    }
    Ok(())
}

fn kind_label(dir: &str) -> &'static str {
    match dir {
        "indexes" => "index strategy",
        "policies" => "policy set",
        _ => "variant",
    }
}

/// First and last month of api_usage partitions for data anchored at `anchor`.
pub fn partition_range(anchor: NaiveDate) -> (NaiveDate, NaiveDate) {
    let month =
        NaiveDate::from_ymd_opt(anchor.year(), anchor.month(), 1).expect("valid month start");
    (
        month - Months::new(HISTORY_MONTHS),
        month + Months::new(FUTURE_MONTHS),
    )
}

/// Creates the tables with their columns and CHECKs but no keys, FKs, indexes or
/// triggers, ready for bulk loading. The database must be empty of foreign objects.
pub async fn create_bare(conn: &mut PgConnection, anchor: NaiveDate) -> Result<Vec<String>> {
    check_ownership(conn).await?;
    let missing_roles = missing_roles(conn).await?;
    ensure_roles(conn).await?;
    let mut tx = conn.begin().await?;
    run_file(&mut tx, "schema/meta.sql").await?;
    run_file(&mut tx, "schema/auth.sql").await?;
    run_file(&mut tx, "schema/tables.sql").await?;
    run_file(&mut tx, "schema/partitions.sql").await?;
    let (first, last) = partition_range(anchor);
    sqlx::query(sql(&q().create_partitions))
        .bind(first)
        .bind(last)
        .execute(&mut *tx)
        .await?;
    safety::record_owned(&mut tx, OWNED_SCHEMAS, &missing_roles).await?;
    tx.commit().await?;
    Ok(missing_roles)
}

/// Adds keys, foreign keys, functions and triggers, RLS, and the variant's indexes and
/// policies: the second half of set-up, after any bulk load.
pub async fn finish(conn: &mut PgConnection, variant: &Variant) -> Result<()> {
    finish_timed(std::slice::from_mut(conn), variant)
        .await
        .map(|_| ())
}

/// Wall time of the steps after a bulk load.
#[derive(Debug, Default, Clone, Copy)]
pub struct FinishTimings {
    /// Primary keys and UNIQUE constraints (each builds its index).
    pub keys: std::time::Duration,
    /// Foreign keys (each validated by a scan) and the variant's secondary indexes, built
    /// together: they only need the keys, and an index build never waits for a FK check
    /// on another table.
    pub fks_and_indexes: std::time::Duration,
}

/// [`finish`] over several connections (`conns[0]` also runs the single-script steps),
/// timing its phases. The tables must have no keys or secondary indexes yet.
pub async fn finish_timed(conns: &mut [PgConnection], variant: &Variant) -> Result<FinishTimings> {
    validate_name("indexes", &variant.indexes)?;
    validate_name("policies", &variant.policies)?;
    let started = std::time::Instant::now();
    parallel::run_parallel(conns, statements("schema/keys.sql")?).await?;
    let keys = started.elapsed();
    let started = std::time::Instant::now();
    let mut later = statements("schema/foreign_keys.sql")?;
    later.extend(statements(index_file(&variant.indexes))?);
    parallel::run_parallel(conns, later).await?;
    let fks_and_indexes = started.elapsed();
    let conn = &mut conns[0];
    let mut tx = conn.begin().await?;
    for file in ["schema/functions.sql", "schema/rls.sql"] {
        run_file(&mut tx, file).await?;
    }
    safety::record_owned(&mut tx, OWNED_SCHEMAS, &[]).await?;
    tx.commit().await?;
    set_policies(conn, &variant.policies).await?;
    set_meta(conn, "variant", &serde_json::to_value(variant)?).await?;
    set_meta(conn, "schema", &serde_json::json!({"complete": true})).await?;
    Ok(FinishTimings {
        keys,
        fks_and_indexes,
    })
}

/// `storybench schema apply`: sets up an empty database, or switches the variant of one
/// storybench already owns. Idempotent.
pub async fn apply(
    conn: &mut PgConnection,
    requested: &VariantRequest,
    anchor: NaiveDate,
) -> Result<Variant> {
    let ownership = check_ownership(conn).await?;
    let current = current_variant(conn).await?;
    let schema_complete = get_meta(conn, "schema").await?.is_some();
    let target = requested.resolve(current.as_ref());
    if ownership == Ownership::Empty || !schema_complete {
        if ownership == Ownership::Ours {
            // A set-up that stopped half-way: start over from our own objects only.
            reset(conn).await?;
        }
        create_bare(conn, anchor).await?;
        finish(conn, &target).await?;
        return Ok(target);
    }
    // Re-running the idempotent files keeps functions and grants in step with the checkout.
    ensure_roles(conn).await?;
    let mut tx = conn.begin().await?;
    for file in [
        "schema/meta.sql",
        "schema/auth.sql",
        "schema/partitions.sql",
        "schema/functions.sql",
        "schema/rls.sql",
    ] {
        run_file(&mut tx, file).await?;
    }
    // A newer checkout's files may add objects (e.g. a helper function): record them as ours.
    safety::record_owned(&mut tx, OWNED_SCHEMAS, &[]).await?;
    tx.commit().await?;
    let current = current.unwrap_or_default();
    if current.indexes != target.indexes {
        set_indexes(conn, &target.indexes).await?;
    }
    if current.policies != target.policies {
        set_policies(conn, &target.policies).await?;
    }
    set_meta(conn, "variant", &serde_json::to_value(&target)?).await?;
    Ok(target)
}

/// Which parts of the variant a command asks for; the rest stays as it is.
#[derive(Debug, Clone, Default)]
pub struct VariantRequest {
    pub indexes: Option<String>,
    pub policies: Option<String>,
    pub api_usage: Option<Layout>,
}

impl VariantRequest {
    pub fn resolve(&self, current: Option<&Variant>) -> Variant {
        let base = current.cloned().unwrap_or_default();
        Variant {
            indexes: self.indexes.clone().unwrap_or(base.indexes),
            policies: self.policies.clone().unwrap_or(base.policies),
            api_usage: self.api_usage.unwrap_or(base.api_usage),
        }
    }

    pub fn validate(&self) -> Result<()> {
        if let Some(i) = &self.indexes {
            validate_name("indexes", i)?;
        }
        if let Some(p) = &self.policies {
            validate_name("policies", p)?;
        }
        Ok(())
    }
}

/// Replaces the secondary indexes with those of `schema/indexes/<name>.sql`.
pub async fn set_indexes(conn: &mut PgConnection, name: &str) -> Result<()> {
    validate_name("indexes", name)?;
    let started = std::time::Instant::now();
    let mut tx = conn.begin().await?;
    let _: i32 = sqlx::query_scalar(sql(&q().drop_secondary_indexes))
        .fetch_one(&mut *tx)
        .await?;
    run_file(&mut tx, index_file(name)).await?;
    update_variant(&mut tx, |v| v.indexes = name.to_string()).await?;
    tx.commit().await?;
    tracing::info!("index strategy {name} built in {:.2?}", started.elapsed());
    Ok(())
}

/// Replaces the RLS policies with those of `schema/policies/<name>.sql`.
pub async fn set_policies(conn: &mut PgConnection, name: &str) -> Result<()> {
    validate_name("policies", name)?;
    let mut tx = conn.begin().await?;
    let _: i32 = sqlx::query_scalar(sql(&q().drop_policies))
        .fetch_one(&mut *tx)
        .await?;
    // The sets place api_usage's partitions (partitions.sql's function): a dataset seeded
    // before it existed gets it (and its schema) here, recorded as ours as `apply` does.
    run_file(&mut tx, "schema/partitions.sql").await?;
    safety::record_owned(&mut tx, OWNED_SCHEMAS, &[]).await?;
    run_file(&mut tx, format!("schema/policies/{name}.sql")).await?;
    update_variant(&mut tx, |v| v.policies = name.to_string()).await?;
    tx.commit().await?;
    Ok(())
}

async fn update_variant(conn: &mut PgConnection, change: impl FnOnce(&mut Variant)) -> Result<()> {
    let mut v = current_variant(conn).await?.unwrap_or_default();
    change(&mut v);
    set_meta(conn, "variant", &serde_json::to_value(&v)?).await
}

pub async fn current_variant(conn: &mut PgConnection) -> Result<Option<Variant>> {
    match get_meta(conn, "variant").await? {
        Some(v) => Ok(Some(
            serde_json::from_value(v).context("reading the recorded variant")?,
        )),
        None => Ok(None),
    }
}

/// Drops everything storybench owns (after checking nothing else is there).
pub async fn reset(conn: &mut PgConnection) -> Result<i32> {
    let ownership = check_ownership(conn).await?;
    if ownership == Ownership::Empty {
        return Ok(0);
    }
    let mut tx = conn.begin().await?;
    // Keep the drop functions current with this checkout.
    run_file(&mut tx, "schema/meta.sql").await?;
    let dropped: i32 = sqlx::query_scalar(sql(&q().drop_owned))
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!("reset: dropped {dropped} storybench objects");
    Ok(dropped)
}

pub async fn get_meta(conn: &mut PgConnection, key: &str) -> Result<Option<serde_json::Value>> {
    let has_meta: bool = sqlx::query_scalar(sql(&q().has_meta))
        .fetch_one(&mut *conn)
        .await?;
    if !has_meta {
        return Ok(None);
    }
    Ok(sqlx::query_scalar(sql(&q().get_meta))
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?)
}

pub async fn set_meta(conn: &mut PgConnection, key: &str, value: &serde_json::Value) -> Result<()> {
    sqlx::query(sql(&q().set_meta))
        .bind(key)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Creates the cluster-wide auth roles when missing. Roles are shared by every database of
/// the cluster, so a concurrent set-up in another database can race this: retry then.
async fn ensure_roles(conn: &mut PgConnection) -> Result<()> {
    let mut attempt = 0;
    loop {
        let mut tx = conn.begin().await?;
        let outcome = run_file(&mut tx, "schema/roles.sql").await;
        match outcome {
            Ok(()) => {
                tx.commit().await?;
                return Ok(());
            }
            Err(e) if attempt < 5 => {
                tracing::debug!("creating roles raced another set-up ({e:#}); retrying");
                drop(tx);
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn missing_roles(conn: &mut PgConnection) -> Result<Vec<String>> {
    let roles: Vec<String> = AUTH_ROLES.iter().map(|r| r.to_string()).collect();
    let existing: Vec<String> = sqlx::query_scalar(sql(&q().existing_roles))
        .bind(&roles)
        .fetch_all(&mut *conn)
        .await?;
    Ok(roles
        .into_iter()
        .filter(|r| !existing.contains(r))
        .collect())
}

/// `pg_indexes` / `pg_policies` inventories, for tests and results.
pub async fn index_inventory(conn: &mut PgConnection) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(sql(&q().index_inventory))
        .fetch_all(&mut *conn)
        .await?)
}

pub async fn policy_inventory(conn: &mut PgConnection) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(sql(&q().policy_inventory))
        .fetch_all(&mut *conn)
        .await?)
}

/// Loads pg_stat_statements when the server preloads it (the embedded cluster does).
pub async fn ensure_pg_stat_statements(conn: &mut PgConnection) -> Result<bool> {
    let preloaded: bool = sqlx::query_scalar(sql(&q().has_pg_stat_statements_preloaded))
        .fetch_one(&mut *conn)
        .await?;
    if preloaded {
        match sqlx::query(sql(&q().create_pg_stat_statements))
            .execute(&mut *conn)
            .await
        {
            // IF NOT EXISTS is not atomic: another storybench (a shard) created it meanwhile.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {}
            other => {
                other?;
            }
        }
    }
    Ok(preloaded)
}
