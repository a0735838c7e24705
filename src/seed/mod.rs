//! The seeder: deterministic, realistic InfiniteStories data loaded by binary COPY over
//! several connections, with keys, FKs and indexes built after the load (as pg_restore does).

mod budget;
pub(crate) mod copy_binary;
pub(crate) mod fingerprint;
pub mod generate;
mod load;
mod pipeline;
pub mod profile;
pub(crate) mod sql;

pub use load::db_fingerprint;
pub use pipeline::seed;

use crate::schema::{self, VariantRequest};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// What dataset a database holds: recorded in `storybench.meta` and every result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DatasetInfo {
    /// `loading` while a seed runs, `complete` after it; anything else is unusable.
    pub status: String,
    pub profile: String,
    pub scale: f64,
    pub seed: u64,
    pub anchor: chrono::NaiveDate,
    /// The streamed fingerprint (`seed::fingerprint`), from the bytes COPYed.
    pub fingerprint: Option<String>,
    /// The database-side fingerprint (`seed/fingerprint.sql`), recorded by `seed --verify`:
    /// what a dataset is checked against when the write counters cannot tell (a crash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_fingerprint: Option<String>,
    #[serde(default)]
    pub row_counts: serde_json::Value,
    pub seeded_at: chrono::DateTime<chrono::Utc>,
    /// The dataset's write state when the seed sealed it (see `pristine::verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_state: Option<String>,
    /// How a measuring command checked the dataset was untouched before copying it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<crate::pristine::Verified>,
}

/// Per-table and whole-run figures of a seed.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct SeedReport {
    pub tables: Vec<TableLoad>,
    pub total_rows: u64,
    pub total_bytes: u64,
    /// Wall time, start to ANALYZE done.
    pub seconds: f64,
    pub load_seconds: f64,
    /// Primary keys and UNIQUE constraints, on `jobs` connections.
    #[serde(alias = "constraints_seconds")]
    pub keys_seconds: f64,
    /// Foreign keys and the variant's secondary indexes, together on `jobs` connections.
    #[serde(alias = "indexes_seconds")]
    pub fks_indexes_seconds: f64,
    pub analyze_seconds: f64,
    /// The database-side fingerprint of `seed --verify`, after the seal (not in `seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_seconds: Option<f64>,
    pub jobs: usize,
    pub toast_compression: String,
    pub rows_per_second: f64,
    pub mb_per_second: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TableLoad {
    pub table: String,
    pub rows: u64,
    pub heap_bytes: u64,
    pub toast_bytes: u64,
    pub index_bytes: u64,
    /// Time the COPY connections spent on this table (summed over connections).
    pub seconds: f64,
    pub rows_per_second: f64,
    pub mb_per_second: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedOptions {
    pub profile: String,
    pub scale: f64,
    pub seed: u64,
    pub anchor: chrono::NaiveDate,
    pub jobs: usize,
    pub reset: bool,
    /// `lz4` or `pglz` for storybench's text and jsonb columns; `None` keeps the server default.
    pub toast_compression: Option<String>,
    /// Also compute the database-side fingerprint, check its row counts against the
    /// streamed ones and record it (lets a dataset be verified after a server crash).
    pub verify: bool,
    #[serde(skip)]
    pub variant: VariantRequest,
}

/// Largest scale accepted: far beyond any machine this runs on, small enough to catch typos.
pub const MAX_SCALE: f64 = 100_000.0;

pub fn validate_options(opts: &SeedOptions) -> Result<()> {
    if !opts.scale.is_finite() || opts.scale <= 0.0 || opts.scale > MAX_SCALE {
        bail!(
            "--scale must be a number > 0 and ≤ {MAX_SCALE} (1 ≈ 1,000 users); got {}",
            opts.scale
        );
    }
    if opts.jobs == 0 || opts.jobs > 64 {
        bail!("--jobs must be between 1 and 64; got {}", opts.jobs);
    }
    if let Some(c) = &opts.toast_compression {
        if c != "lz4" && c != "pglz" {
            bail!("--toast-compression must be lz4 or pglz; got {c:?}");
        }
    }
    opts.variant.validate()
}

/// The dataset a database holds, if any.
pub async fn dataset(conn: &mut sqlx::PgConnection) -> Result<Option<DatasetInfo>> {
    match schema::get_meta(conn, "dataset").await? {
        Some(v) => Ok(Some(
            serde_json::from_value(v).context("reading the recorded dataset")?,
        )),
        None => Ok(None),
    }
}

/// Measuring commands call this: they refuse an absent or incomplete dataset.
pub async fn require_complete(conn: &mut sqlx::PgConnection) -> Result<DatasetInfo> {
    schema::check_ownership(conn).await?;
    match dataset(conn).await? {
        Some(d) if d.status == "complete" => Ok(d),
        Some(d) => bail!(
            "the dataset is incomplete (status {:?}: a seed of profile {} × {} started {} did not finish); \
             nothing will be measured on it. Run `storybench seed --reset` to seed it again.",
            d.status, d.profile, d.scale, d.seeded_at
        ),
        None => bail!("this database holds no storybench dataset; run `storybench seed` first"),
    }
}
