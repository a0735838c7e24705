//! What the settings stage records (results.json `settings`; docs/results.md).

use crate::cluster::settings::{Machine, Profile};
use crate::latency::LatencySummary;
use crate::measure::engine::{Rounds, Work};
use crate::measure::load::capacity::CapacitySection;
use crate::stats::{Interval, Side};
use serde::{Deserialize, Serialize};

/// How the profiles reached the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// Embedded cluster: storybench_profile.conf included from storybench.conf, restart.
    #[default]
    ConfigFileRestart,
    /// External server (`--alter-system`): ALTER SYSTEM + pg_reload_conf() for the settings
    /// that reload; postmaster settings left as they are.
    AlterSystemReload,
}

/// One row of pg_settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub name: String,
    /// In the setting's unit (pg_settings.setting), e.g. 32768 × 8kB for 256MB.
    pub setting: String,
    pub unit: String,
    pub context: String,
    pub source: String,
    pub boot_val: String,
    pub pending_restart: bool,
}

/// One setting a profile asked for and whether the server took it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Requested {
    pub name: String,
    pub value: String,
    pub applied: bool,
    /// Why it was not applied (postmaster context on an external server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<SkipReason>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// A postmaster setting: only a restart applies it, which storybench does not do to
    /// an external server.
    NeedsRestart,
}

/// One analytics query under one profile.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AnalyticsRun {
    pub query: String,
    pub latency: Option<LatencySummary>,
    /// Median with its 95 % interval (ms).
    pub p50: Option<Interval>,
    pub work: Option<Work>,
    pub rounds: Rounds,
    pub error: Option<String>,
    /// p50 of this profile / p50 of the first profile (independent runs: each side's
    /// interval at 97.5 %, `stats::quantile_ratio_ci`).
    pub p50_ratio: Option<Interval>,
    pub side: Option<Side>,
}

/// Everything measured under one profile.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProfileRun {
    pub profile: Option<Profile>,
    pub requested: Vec<Requested>,
    /// pg_settings read back while the profile was in force.
    pub in_force: Vec<Setting>,
    pub analytics: Vec<AnalyticsRun>,
    pub capacity: Option<CapacitySection>,
    /// Seconds to apply the profile (restart or reload) and to restore the server.
    pub apply_seconds: f64,
    pub restore_seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SettingsSection {
    pub applied: Applied,
    /// Cores and RAM the `tuned` profile was sized for (embedded cluster only).
    pub machine: Option<Machine>,
    /// The server's own settings before the first profile and after the last.
    pub own_before: Vec<Setting>,
    pub own_after: Vec<Setting>,
    /// True when every setting read back after equals the one before (value and source).
    pub restored: bool,
    pub profiles: Vec<ProfileRun>,
}

impl SettingsSection {
    /// Ratios of every analytics query's p50 against the first profile that measured it.
    pub fn compare(&mut self) {
        let Some((first, rest)) = self.profiles.split_first_mut() else {
            return;
        };
        for run in rest {
            for a in &mut run.analytics {
                let base = first.analytics.iter().find(|b| b.query == a.query);
                let pair = base
                    .and_then(|b| b.latency.as_ref())
                    .zip(a.latency.as_ref());
                let Some((b, n)) = pair else { continue };
                let (Ok(b), Ok(n)) = (
                    crate::latency::Latency::decode(&b.histogram),
                    crate::latency::Latency::decode(&n.histogram),
                ) else {
                    continue;
                };
                a.p50_ratio =
                    crate::stats::quantile_ratio_ci(&b, &n, 0.5, crate::stats::CONFIDENCE);
                a.side = a.p50_ratio.map(|r| r.side_of(1.0));
            }
        }
    }
}
