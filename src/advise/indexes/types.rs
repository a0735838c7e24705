//! The `advice` section of results.json: what was suggested, screened, built and measured.

use super::candidates::{Candidate, Skipped};
use crate::catalog::Kind;
use crate::latency::LatencySummary;
use crate::measure::engine::{Rounds, Work};
use crate::stats::{Interval, Side};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AdviceSection {
    /// The index strategy and policy set the advice starts from.
    pub indexes: String,
    pub policies: String,
    /// The workload the net time is weighted by (executions per 1,000 of its transactions).
    pub scenario: String,
    pub mix_per_1000: Vec<MixWeight>,
    /// HypoPG's version, when the candidates were screened with it.
    pub hypopg: Option<String>,
    /// Why screening was skipped or limited.
    pub hypopg_note: Option<String>,
    /// Whether pg_qualstats' predicates were added, and why not.
    pub qualstats_note: String,
    /// pg_qualstats' version, when its predicates were read.
    #[serde(default)]
    pub qualstats: Option<String>,
    /// Predicates pg_qualstats recorded over all the queries' executions.
    #[serde(default)]
    pub qualstats_predicates: usize,
    /// Plans read (query × subject) and candidates they suggested before deduplication.
    pub plans_read: usize,
    pub suggested: usize,
    pub skipped: Vec<Skipped>,
    pub screened: Vec<Screened>,
    /// New indexes built for real and measured, best first.
    pub created: Vec<Verified>,
    /// Existing indexes dropped for real and measured.
    pub dropped: Vec<Verified>,
    /// The SQL file with the recommended statements (relative to the results).
    pub advice_file: Option<String>,
    /// The starting strategy with the recommended changes, as an index strategy file.
    #[serde(default)]
    pub strategy_file: Option<String>,
    /// The starting variant's schema advisories (`advise schema`'s rules).
    #[serde(default)]
    pub advisories: Vec<crate::advise::lint::Advisory>,
    #[serde(default)]
    pub errors: Vec<String>,
}

/// `advise schema`: a variant's advisories.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LintSection {
    pub indexes: String,
    pub policies: String,
    pub advisories: Vec<crate::advise::lint::Advisory>,
    /// `--measure`: each advisory's fix timed against the variant as it is.
    #[serde(default)]
    pub costs: Vec<crate::advise::costs::AdvisoryCost>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MixWeight {
    pub query: String,
    pub per_1000: f64,
}

/// One candidate's HypoPG screening.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Screened {
    pub candidate: Candidate,
    pub key: String,
    /// False where HypoPG cannot model it (then `note` says why).
    pub modelled: bool,
    pub note: Option<String>,
    pub costs: Vec<CostChange>,
    /// The planner used it and some query's estimated cost fell by at least the threshold.
    pub survives: bool,
    /// HypoPG failed on one of its plans: it is built for real unscreened.
    #[serde(default)]
    pub failed: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CostChange {
    pub query: String,
    pub subject: String,
    pub before: f64,
    pub after: f64,
    pub uses_index: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Drop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Recommended,
    Rejected,
}

/// A change made for real on a copy and measured interleaved against the copy without it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Verified {
    pub action: Action,
    pub index: String,
    pub table: String,
    /// The statement advice.sql carries.
    pub statement: String,
    pub build_seconds: Option<f64>,
    pub bytes: Option<i64>,
    pub effects: Vec<Effect>,
    /// Reads gained minus writes lost, ms per 1,000 transactions of the scenario (positive:
    /// the change saves time).
    pub net_ms_per_1000: f64,
    pub verdict: Verdict,
    pub reason: String,
    /// A new index whose key only the RLS policies ask for (a superuser advisor misses it).
    #[serde(default)]
    pub from_rls: bool,
    /// Where the candidate's key was read (plans, pg_qualstats).
    #[serde(default)]
    pub sources: Vec<super::candidates::Source>,
}

/// One affected query, with and without the change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Effect {
    pub query: String,
    pub subject: String,
    pub kind: Kind,
    pub per_1000: f64,
    pub without: Option<LatencySummary>,
    pub with: Option<LatencySummary>,
    /// Paired ratio with / without (below 1: faster with the change) and its interval.
    pub ratio: Option<Interval>,
    pub side: Option<Side>,
    pub work_without: Option<Work>,
    pub work_with: Option<Work>,
    /// The plan with the change uses the new index (creates only).
    pub uses_index: bool,
    pub rounds: Rounds,
    pub error: Option<String>,
}

impl Effect {
    /// Time saved per execution, ms (negative: slower with the change): the median without
    /// the change times one minus the paired ratio (medians resist the outliers a
    /// difference of two means carries: one stall moves a sub-ms mean several-fold).
    pub fn saved_ms(&self) -> f64 {
        match (&self.without, self.ratio) {
            (Some(a), Some(r)) => a.p50_ms * (1.0 - r.estimate),
            _ => 0.0,
        }
    }
}
