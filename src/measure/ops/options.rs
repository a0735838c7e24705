//! The options of `ops` (presets/run.toml `[full.ops]`, and the command's flags).

use super::cron;
use super::work::{self, OpKind};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsOptions {
    /// What to run, in this order: the migration files, the backup, the scheduled cleanup.
    #[serde(default = "work::only_migrations")]
    pub operations: Vec<OpKind>,
    /// Migration files, run one after the other, each on its own copies.
    pub migrations: Vec<String>,
    /// The cleanup job's schedule while measured ('N seconds' or '* * * * *'; the
    /// document's is hourly), and how many of its runs the load waits for.
    #[serde(default = "work::default_cron_schedule")]
    pub cron_schedule: String,
    #[serde(default = "work::default_cron_runs")]
    pub cron_runs: u32,
    /// The foreground load (open model).
    pub scenario: String,
    /// The load's rate as a share of the measured capacity (0.5 = half; "50%" in files).
    #[serde(with = "crate::units::fraction")]
    pub load_fraction: f64,
    /// The load's rate in transactions/s, instead of a share of the capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    pub users: usize,
    /// Load measured before the operation starts, and after it ends.
    #[serde(with = "crate::units::duration_secs")]
    pub before: Duration,
    #[serde(with = "crate::units::duration_secs")]
    pub after: Duration,
    /// The load lasts before + the operation's expected time under load + after; the
    /// expected time is capped here (an operation outlasting the load is reported so).
    #[serde(with = "crate::units::duration_secs")]
    pub max_during: Duration,
    #[serde(with = "crate::units::duration_secs")]
    pub warmup: Duration,
    /// Lock-timeout retries of a statement outside a transaction block, and the first
    /// backoff (doubled each time).
    pub retries: u32,
    #[serde(with = "crate::units::duration_secs")]
    pub retry_backoff: Duration,
    #[serde(with = "crate::units::duration_secs")]
    pub statement_timeout: Duration,
    /// The run's `--seed`.
    #[serde(default)]
    pub seed: u64,
    /// The timed comparisons of `pgcrypto` and `audit` (on idle copies, no load).
    #[serde(default)]
    pub engine: OpsEngine,
}

/// The measurement engine's settings for `pgcrypto` and `audit`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsEngine {
    pub warmup: usize,
    pub runs: usize,
    #[serde(with = "crate::units::duration_secs")]
    pub budget: Duration,
    pub percentiles: Vec<f64>,
    /// Writes per path in one rolled-back transaction, to measure audit_log's growth.
    pub growth_writes: usize,
}

impl Default for OpsEngine {
    fn default() -> Self {
        Self {
            warmup: 2,
            runs: 200,
            budget: Duration::from_secs(1),
            percentiles: vec![50.0, 95.0],
            growth_writes: 100,
        }
    }
}

impl OpsEngine {
    crate::engine_options_from_fields!();
}

impl OpsOptions {
    pub fn validate(&self) -> Result<()> {
        if self.operations.is_empty() {
            bail!("ops: no operation to run (--operations)");
        }
        if self.engine.growth_writes == 0 {
            bail!("ops: engine.growth_writes must be at least 1");
        }
        if self.operations.contains(&OpKind::Migrations) && self.migrations.is_empty() {
            bail!("ops: no migration to run (--migration FILE)");
        }
        if self.operations.contains(&OpKind::Cron) {
            cron::validate_schedule(&self.cron_schedule)?;
            if self.cron_runs == 0 {
                bail!("ops: --cron-runs must be at least 1");
            }
        }
        if !(self.load_fraction > 0.0 && self.load_fraction <= 2.0) {
            bail!(
                "ops: --load-fraction must be in (0, 200 %], not {}",
                self.load_fraction
            );
        }
        if self.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) || self.users == 0 {
            bail!("ops: --rate must be positive and --users at least 1");
        }
        Ok(())
    }

    /// Whether an operation runs beside the load (so a rate is needed).
    pub fn needs_load(&self) -> bool {
        self.operations.iter().any(|k| k.under_load())
    }

    /// The load's rate: `rate`, else `load_fraction` of the capacity; and how it was chosen.
    pub fn load_rate(&self, capacity: Option<f64>) -> Result<(f64, String)> {
        match (self.rate, capacity) {
            (Some(r), _) => Ok((r, format!("{r:.1}/s as asked (--rate)"))),
            (None, Some(c)) if c > 0.0 => Ok((
                c * self.load_fraction,
                format!(
                    "{:.0} % of the measured capacity {c:.1}/s",
                    self.load_fraction * 100.0
                ),
            )),
            _ => bail!(
                "ops needs the app's load rate: --rate R (transactions/s), or --capacity-from \
                 a results.json of `storybench capacity` or `run` (the load runs at \
                 --load-fraction of its sustainable rate)"
            ),
        }
    }
}
