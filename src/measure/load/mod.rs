//! Load generation: the ad hoc statement path (own engine, for calibration against pgbench)
//! and goose scenarios, both measured from the intended start under a target rate.

pub(crate) mod adhoc;
pub mod capacity;
pub(crate) mod figures;
mod live;
pub(crate) mod merge;
pub(crate) mod recorder;
pub(crate) mod scenario_run;
mod scenario_tx;
pub(crate) mod schedule;
pub(crate) mod shard;

pub use recorder::LoadFigures;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How hard and how long to push.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadShape {
    pub clients: usize,
    #[serde(with = "crate::units::duration_secs")]
    pub duration: Duration,
    #[serde(with = "crate::units::duration_secs")]
    pub warmup: Duration,
    #[serde(with = "crate::units::duration_secs")]
    pub ramp: Duration,
    /// Open model: target arrivals per second. `None`: closed model.
    pub rate: Option<f64>,
    /// Open model: arrivals later than this are dropped (counted) instead of run.
    pub latency_limit: Option<Duration>,
    pub seed: u64,
}

/// Upper bounds that catch typos (`--users 5000000`) before they hurt the machine.
const MAX_CLIENTS: usize = 10_000;
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
const MAX_RATE: f64 = 10_000_000.0;

impl LoadShape {
    pub fn validate(&self) -> Result<()> {
        if self.clients == 0 || self.clients > MAX_CLIENTS {
            bail!(
                "the number of clients/users must be between 1 and {MAX_CLIENTS}; got {}",
                self.clients
            );
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            bail!(
                "--duration must be > 0 and at most 24h; got {:?}",
                self.duration
            );
        }
        if self.warmup > MAX_DURATION || self.ramp > MAX_DURATION {
            bail!("--warmup and --ramp must be at most 24h");
        }
        if let Some(r) = self.rate {
            if !r.is_finite() || r <= 0.0 || r > MAX_RATE {
                bail!("--rate must be > 0 and at most {MAX_RATE} per second; got {r}");
            }
        }
        Ok(())
    }
}

pub(crate) use crate::units::parse_duration;

/// The load section of results.json.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadSection {
    /// `adhoc` (one statement) or `scenario`.
    pub mode: String,
    /// The statement (adhoc) or the scenario name.
    pub target: String,
    /// `closed` (as fast as clients go, with think time in scenarios) or `open` (target rate).
    pub model: String,
    pub shape: LoadShape,
    pub figures: LoadFigures,
    pub server: Option<crate::measure::server_view::ServerView>,
    /// Scenario runs: what goose itself counted (its report is written beside ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goose: Option<scenario_run::GooseSummary>,
    /// Scenario runs: the scenario's description, parts and mean think time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<ScenarioInfo>,
    /// Wall-clock start of the measured window (after launch and warm-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_from: Option<chrono::DateTime<chrono::Utc>>,
    /// This run is one shard of a sharded load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<shard::ShardInfo>,
    /// A merged load: the shards it adds up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_shards: Vec<shard::ShardInfo>,
    /// The users went through this connection pooler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooler: Option<crate::pooler::PoolerInfo>,
}

/// What a scenario run ran, for the report.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub description: String,
    pub file: String,
    /// (scenario file, weight) of each part of a mix (one entry for a single file).
    pub parts: Vec<(String, usize)>,
    /// Mean think time per transaction (closed model), seconds.
    pub mean_think_s: f64,
    /// Think times were multiplied by this (closed model; 1 = as the scenario says).
    #[serde(default = "one")]
    pub think_scale: f64,
    pub queries: Vec<String>,
}

fn one() -> f64 {
    1.0
}

impl ScenarioInfo {
    pub fn of(s: &crate::scenario::Scenario, think_scale: f64) -> Self {
        Self {
            think_scale,
            description: s.description.clone(),
            file: s.file.display().to_string(),
            parts: s.parts.iter().map(|p| (p.name.clone(), p.weight)).collect(),
            mean_think_s: s.mean_think().as_secs_f64(),
            queries: s.queries(),
        }
    }
}
