//! `results.json`: the versioned record of one run. Every figure the report shows is here.
//! The format is documented in `docs/results.md`; bump [`SCHEMA_VERSION`] on breaking changes
//! and keep older versions readable by `compare`.

mod environment;
pub(crate) mod merge;

pub use environment::Environment;

use crate::schema::Variant;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const SCHEMA_VERSION: u32 = 1;
/// Versions `read` accepts: 2 only adds optional fields (intervals, work figures), so a
/// version-1 file reads with their defaults.
const READABLE_VERSIONS: &[u32] = &[1, 2];
pub const RESULTS_FILE: &str = "results.json";
pub const REPORT_FILE: &str = "report.html";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResults {
    pub schema_version: u32,
    pub run_id: String,
    /// The storybench command (`run`, `seed`, `explain`, …).
    pub command: String,
    /// The command's options as given (no secrets).
    pub config: serde_json::Value,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    /// True when the run stopped before every stage finished.
    pub partial: bool,
    #[serde(default)]
    pub errors: Vec<String>,
    pub environment: Option<Environment>,
    pub variant: Option<Variant>,
    /// Stages in the order they ran, with their wall time.
    #[serde(default)]
    pub stages: Vec<StageTiming>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<crate::seed::DatasetInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<crate::seed::SeedReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<crate::measure::explain::ExplainSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<crate::measure::load::LoadSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rls: Option<crate::measure::rls::RlsSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<crate::measure::partitions::PartitionsSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<crate::measure::load::capacity::CapacitySection>,
    /// `capacity --scales`: capacity and per-query p95 per data size, and the fits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_scales: Option<crate::measure::load::capacity::scales::ScalesSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<crate::measure::ops::OpsSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citus: Option<crate::advise::citus::CitusSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<crate::advise::indexes::AdviceSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lint: Option<crate::advise::indexes::LintSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<crate::measure::settings::SettingsSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<crate::measure::monitoring::MonitoringSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_archive: Option<crate::measure::settings::archive::ArchiveSection>,
}

/// How a run, or one of its stages, ended (`running` until it does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Ok,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageTiming {
    pub name: String,
    pub seconds: f64,
    pub status: RunStatus,
    /// Time to make the stage's pristine copy of the dataset (not included in `seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_seconds: Option<f64>,
    /// The copy's database name (dropped after the stage unless `--keep-copies`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<String>,
}

impl RunResults {
    pub fn new(command: &str, config: serde_json::Value) -> Self {
        let started_at = Utc::now();
        Self {
            schema_version: SCHEMA_VERSION,
            run_id: format!("{}-{command}", started_at.format("%Y%m%d-%H%M%S")),
            command: command.to_string(),
            config,
            started_at,
            finished_at: None,
            status: RunStatus::Running,
            partial: true,
            errors: Vec::new(),
            environment: None,
            variant: None,
            stages: Vec::new(),
            dataset: None,
            seed: None,
            explain: None,
            load: None,
            rls: None,
            partitions: None,
            capacity: None,
            capacity_scales: None,
            ops: None,
            citus: None,
            advice: None,
            lint: None,
            settings: None,
            monitoring: None,
            wal_archive: None,
        }
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        let version = value.get("schema_version").and_then(|v| v.as_u64());
        match version {
            Some(v) if READABLE_VERSIONS.contains(&(v as u32)) => {
                serde_json::from_value(value).with_context(|| {
                    format!(
                        "{} does not match results schema version {v}",
                        path.display()
                    )
                })
            }
            Some(v) => anyhow::bail!(
                "{} has results schema version {v}; this storybench reads versions {READABLE_VERSIONS:?}",
                path.display()
            ),
            None => anyhow::bail!(
                "{} is not a storybench results file (no schema_version)",
                path.display()
            ),
        }
    }
}

/// The output directory of a run: `--out`, else `reports/<run-id>/`. Created and checked
/// for writability before any measurement starts.
pub fn prepare_out_dir(out: Option<&Path>, run_id: &str) -> Result<PathBuf> {
    let dir = match out {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("reports").join(run_id),
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create output directory {}", dir.display()))?;
    let probe = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("output directory {} is not writable", dir.display()))?;
    drop(probe);
    Ok(dir)
}
