//! The seeder: deterministic, realistic InfiniteStories data loaded by binary COPY over
//! several connections, with keys, FKs and indexes built after the load.

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
    pub fingerprint: Option<String>,
    pub seeded_at: chrono::DateTime<chrono::Utc>,
}

/// Per-table and whole-run figures of a seed.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct SeedReport {
    pub tables: Vec<TableLoad>,
    pub total_rows: u64,
    pub total_bytes: u64,
    pub seconds: f64,
    pub load_seconds: f64,
    pub constraints_seconds: f64,
    pub indexes_seconds: f64,
    pub analyze_seconds: f64,
    pub jobs: usize,
    pub toast_compression: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TableLoad {
    pub table: String,
    pub rows: u64,
    pub heap_bytes: u64,
    pub toast_bytes: u64,
    pub index_bytes: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
    pub mb_per_second: f64,
}
