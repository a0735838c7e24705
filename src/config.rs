//! The whole configuration of `storybench run` as one typed value: read from the presets in
//! `presets/run.toml` (full, and quick on top of it), or replayed from a results.json or a
//! TOML run file (`run --config FILE`), then overridden by explicit flags. It is recorded
//! whole in results.json, so a run can be reproduced from its results file alone.

use crate::measure::explain::ExplainOptions;
use crate::measure::partitions::PartitionsOptions;
use crate::measure::rls::RlsOptions;
use crate::paths::read_project_file;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

const PRESETS_FILE: &str = "presets/run.toml";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// `full`, `quick`, or the file the configuration was replayed from.
    #[serde(default)]
    pub preset: String,
    /// The largest tolerated slowdown when a baseline is compared (a fraction; "10%" in files).
    #[serde(with = "crate::units::fraction")]
    pub max_regression: f64,
    pub dataset: DatasetConfig,
    #[serde(default)]
    pub variant: VariantConfig,
    pub explain: ExplainOptions,
    pub partitions: PartitionsOptions,
    pub rls: RlsOptions,
    pub load: LoadStageConfig,
    pub capacity: CapacityStageConfig,
    pub ops: crate::measure::ops::OpsOptions,
    pub advise: crate::advise::indexes::IndexAdviceOptions,
    /// Server settings profiles measured at the end of the run (none by default).
    #[serde(default)]
    pub settings: SettingsStageConfig,
    /// Capacity as the data grows (`run --scales`; off by default: it seeds a dataset per scale).
    #[serde(default)]
    pub scales: ScalesStageConfig,
}

/// The `capacity_scales` stage: `capacity --scales` on the run's profile, seed and anchor,
/// with the capacity stage's scenario and options. No scales: the stage does not run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalesStageConfig {
    #[serde(default)]
    pub scales: Vec<f64>,
    /// The scale the capacity curve is extrapolated to.
    #[serde(default = "default_launch_scale")]
    pub launch_scale: f64,
    /// The rate of every scale's per-query p95 (default: half the smallest scale's capacity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_rate: Option<f64>,
}

fn default_launch_scale() -> f64 {
    100.0
}

impl Default for ScalesStageConfig {
    fn default() -> Self {
        Self {
            scales: Vec::new(),
            launch_scale: default_launch_scale(),
            common_rate: None,
        }
    }
}

/// The `settings` stage: profiles to measure (`run --settings`), and on an external server
/// whether ALTER SYSTEM is allowed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsStageConfig {
    #[serde(default)]
    pub profiles: Vec<crate::cluster::settings::Profile>,
    #[serde(default)]
    pub alter_system: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    pub profile: String,
    pub scale: f64,
    pub seed: u64,
    /// The date the data leads up to; resolved to today when absent, and recorded.
    #[serde(default)]
    pub anchor: Option<chrono::NaiveDate>,
    /// COPY connections; resolved to the core count when absent, and recorded.
    #[serde(default)]
    pub jobs: Option<usize>,
    #[serde(default)]
    pub toast_compression: Option<String>,
    /// `seed --verify`: record the database-side fingerprint too (reuse after a crash).
    #[serde(default)]
    pub verify: bool,
}

/// The variant measured; a part left out keeps the dataset's current one.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    #[serde(default)]
    pub indexes: Option<String>,
    #[serde(default)]
    pub policies: Option<String>,
    #[serde(default)]
    pub api_usage: Option<crate::schema::Layout>,
}

/// The `load` stage: one scenario under the closed model.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadStageConfig {
    pub scenario: String,
    pub clients: usize,
    #[serde(with = "crate::units::duration_secs")]
    pub duration: Duration,
    #[serde(with = "crate::units::duration_secs")]
    pub warmup: Duration,
    pub think_scale: f64,
    #[serde(with = "crate::units::duration_secs")]
    pub statement_timeout: Duration,
}

/// The `capacity` stage: the open-model rate search.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityStageConfig {
    pub scenario: String,
    pub slo: String,
    #[serde(with = "crate::units::fraction")]
    pub error_budget: f64,
    pub start_rate: f64,
    pub max_rate: f64,
    #[serde(with = "crate::units::duration_secs")]
    pub step_duration: Duration,
    #[serde(with = "crate::units::duration_secs")]
    pub boundary_duration: Duration,
    #[serde(with = "crate::units::duration_secs")]
    pub max_step_duration: Duration,
    #[serde(with = "crate::units::duration_secs")]
    pub warmup: Duration,
    pub users: usize,
    pub max_steps: usize,
    pub repeats: usize,
    #[serde(with = "crate::units::fraction")]
    pub resolution: f64,
    #[serde(with = "crate::units::duration_secs")]
    pub statement_timeout: Duration,
}

/// Deep-merges `over` into `base` (tables key by key; anything else replaced).
fn merge(base: &mut toml::Value, over: &toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn presets() -> Result<(std::path::PathBuf, toml::Table)> {
    let (path, text) = read_project_file(PRESETS_FILE)?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    Ok((path, table))
}

fn full_table() -> Result<toml::Value> {
    let (path, mut t) = presets()?;
    t.remove("full")
        .with_context(|| format!("{} has no [full] table", path.display()))
}

fn finish(value: toml::Value, preset: &str, source: &Path) -> Result<RunConfig> {
    let mut c: RunConfig = value
        .try_into()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("{}: {}", source.display(), e.message()))?;
    c.preset = preset.to_string();
    c.sync_seeds();
    Ok(c)
}

impl RunConfig {
    /// A preset from `presets/run.toml`: `full`, or a table merged on top of `full`.
    pub fn preset(name: &str) -> Result<Self> {
        let (path, mut t) = presets()?;
        let mut value = t
            .remove("full")
            .with_context(|| format!("{} has no [full] table", path.display()))?;
        if name != "full" {
            let over = t
                .get(name)
                .with_context(|| format!("{} has no preset [{name}]", path.display()))?;
            merge(&mut value, over);
        }
        finish(value, name, &path)
    }

    /// Replays a configuration: a results.json written by `storybench run`, or a TOML run
    /// file shaped like `[full]` (missing keys take the `[full]` values).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let label = path.display().to_string();
        if path.extension().is_some_and(|e| e == "json") {
            let value: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{label} is not valid JSON"))?;
            if value.get("command").and_then(|c| c.as_str()) != Some("run") {
                bail!("{label} was not written by `storybench run`: it holds no run configuration");
            }
            let config = value
                .get("config")
                .cloned()
                .with_context(|| format!("{label} has no config"))?;
            let mut c: RunConfig = serde_json::from_value(config).with_context(|| {
                format!("{label}: its config is not a run configuration of this storybench (older results files record only the flags)")
            })?;
            c.preset = label;
            c.sync_seeds();
            return Ok(c);
        }
        let over: toml::Value = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{label} is not a valid run file: {e}"))?;
        let mut value = full_table()?;
        merge(&mut value, &over);
        finish(value, &label, path)
    }

    /// Every stage draws from the dataset's seed.
    fn sync_seeds(&mut self) {
        let seed = self.dataset.seed;
        self.explain.seed = seed;
        self.rls.seed = seed;
        self.partitions.seed = seed;
        self.ops.seed = seed;
        self.advise.seed = seed;
    }

    /// Fills what a replay must pin: the anchor date and the COPY connections.
    pub fn resolve(&mut self) {
        self.dataset
            .anchor
            .get_or_insert_with(|| chrono::Utc::now().date_naive());
        self.dataset.jobs.get_or_insert_with(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
        self.sync_seeds();
    }

    pub fn variant_request(&self) -> crate::schema::VariantRequest {
        crate::schema::VariantRequest {
            indexes: self.variant.indexes.clone(),
            policies: self.variant.policies.clone(),
            api_usage: self.variant.api_usage,
        }
    }

    pub fn seed_options(&self) -> crate::seed::SeedOptions {
        crate::seed::SeedOptions {
            profile: self.dataset.profile.clone(),
            scale: self.dataset.scale,
            seed: self.dataset.seed,
            anchor: self
                .dataset
                .anchor
                .unwrap_or_else(|| chrono::Utc::now().date_naive()),
            jobs: self.dataset.jobs.unwrap_or(2),
            reset: true,
            toast_compression: self.dataset.toast_compression.clone(),
            verify: self.dataset.verify,
            variant: self.variant_request(),
        }
    }

    pub fn load_options(
        &self,
        goose_report: Option<std::path::PathBuf>,
    ) -> crate::measure::load::scenario_run::ScenarioOptions {
        crate::measure::load::scenario_run::ScenarioOptions {
            shape: crate::measure::load::LoadShape {
                clients: self.load.clients,
                duration: self.load.duration,
                warmup: self.load.warmup,
                ramp: Duration::ZERO,
                rate: None,
                latency_limit: None,
                seed: self.dataset.seed,
            },
            pool: None,
            goose_report,
            statement_timeout: self.load.statement_timeout,
            think_scale: self.load.think_scale,
            query_seconds: false,
            measure_start: None,
            shard: None,
            start_at: None,
            pooler: None,
        }
    }

    pub fn capacity_options(&self) -> Result<crate::measure::load::capacity::CapacityOptions> {
        let c = &self.capacity;
        Ok(crate::measure::load::capacity::CapacityOptions {
            slo: crate::measure::load::capacity::Slo::parse(&c.slo).map_err(anyhow::Error::msg)?,
            error_budget: c.error_budget,
            start_rate: c.start_rate,
            max_rate: c.max_rate,
            step_duration: c.step_duration,
            boundary_duration: c.boundary_duration,
            max_step_duration: c.max_step_duration,
            warmup: c.warmup,
            users: c.users,
            pool: None,
            max_steps: c.max_steps,
            repeats: c.repeats,
            resolution: c.resolution,
            seed: self.dataset.seed,
            statement_timeout: c.statement_timeout,
            pooler: None,
            sharding: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_and_quick_overrides_full() {
        let full = RunConfig::preset("full").unwrap();
        let quick = RunConfig::preset("quick").unwrap();
        assert_eq!(full.dataset.profile, "default");
        assert_eq!(quick.dataset.profile, "tiny");
        assert_eq!(quick.explain.strategies, full.explain.strategies);
        assert!(quick.explain.runs < full.explain.runs);
        assert_eq!(full.max_regression, 0.1);
        assert_eq!(full.capacity.error_budget, 0.01);
        assert!(full.capacity_options().is_ok());
        assert!(RunConfig::preset("nonsense").is_err());
        // Capacity as the data grows seeds extra datasets: only when asked for.
        assert!(full.scales.scales.is_empty() && quick.scales.scales.is_empty());
        assert_eq!(full.scales.launch_scale, 100.0);
    }

    #[test]
    fn a_recorded_config_replays_exactly() {
        let mut c = RunConfig::preset("quick").unwrap();
        c.dataset.seed = 7;
        c.scales.scales = vec![1.0, 3.0];
        c.scales.common_rate = Some(12.5);
        c.resolve();
        let recorded = serde_json::json!({ "command": "run", "config": c });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        std::fs::write(&path, recorded.to_string()).unwrap();
        let back = RunConfig::from_file(&path).unwrap();
        assert_eq!(
            serde_json::to_value(RunConfig {
                preset: String::new(),
                ..back
            })
            .unwrap(),
            serde_json::to_value(RunConfig {
                preset: String::new(),
                ..c
            })
            .unwrap()
        );
    }

    #[test]
    fn a_toml_run_file_overrides_full_and_names_bad_keys() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("nightly.toml");
        std::fs::write(&good, "[dataset]\nscale = 3.0\n[explain]\nruns = 50\n").unwrap();
        let c = RunConfig::from_file(&good).unwrap();
        assert_eq!(c.dataset.scale, 3.0);
        assert_eq!(c.explain.runs, 50);
        assert_eq!(c.rls.policy_sets, ["doc", "initplan", "definer"]);
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[explain]\nrunz = 50\n").unwrap();
        let e = format!("{:#}", RunConfig::from_file(&bad).unwrap_err());
        assert!(e.contains("runz") && e.contains("bad.toml"), "{e}");
    }
}
