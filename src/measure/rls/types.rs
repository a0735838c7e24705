//! The `rls` section of results.json: per app query and subject, every mode's latency,
//! overhead vs bypass, rows and plan evidence; the leakproof trap, the child-table policy
//! forms, the claims set-up cost, the isolation audit, and advice derived from them.

use crate::latency::LatencySummary;
use crate::measure::engine::{Work, WorkRatio};
use crate::params::Subject;
use crate::plan::PlanSummary;
use crate::stats::{Interval, Side};
use serde::{Deserialize, Serialize};

/// How a mode filters by user: the app's explicit filter beside the policy, or the policy alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    #[default]
    Sql,
    PolicyOnly,
}

impl Form {
    pub fn name(self) -> &'static str {
        match self {
            Form::Sql => "sql",
            Form::PolicyOnly => "policy_only",
        }
    }
}

impl std::fmt::Display for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The claims the measured requests carry: the subject's (as PostgREST sets them), or none
/// (a misconfigured client: the policies see no user).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Claims {
    #[default]
    User,
    Unset,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RlsSection {
    /// api_usage layout the queries ran on.
    pub layout: crate::schema::Layout,
    /// Index strategy the main matrix ran on.
    pub indexes: String,
    /// Policy set in force before the stage (restored at the end).
    pub policies_found: String,
    /// `user` (PostgREST claims of the subject) or `unset` (no claims: a misconfigured client).
    pub claims: Claims,
    pub trials: usize,
    /// Timed runs per mode, subject and trial (after warm-up).
    pub runs: usize,
    pub warmup: usize,
    /// How the overhead's spread is computed, in words (shown in the report).
    pub spread_method: String,
    pub modes: Vec<ModeInfo>,
    pub queries: Vec<RlsQuery>,
    /// The leakproof-trap queries measured on `trap_indexes` (empty when that is `indexes`:
    /// the findings then come from `queries`).
    pub trap_indexes: String,
    pub trap_queries: Vec<RlsQuery>,
    pub trap: Vec<TrapFinding>,
    pub child_tables: Vec<ChildTableCost>,
    pub setup_cost: Option<SetupCost>,
    pub audit: Option<AuditSection>,
    /// Modes that returned other rows than bypass (each one fails the run).
    pub correctness_failures: Vec<String>,
    /// Modes that returned no rows where bypass returned some: the claims did not reach
    /// the policies, so their latency is not a measurement (each one fails the run).
    pub config_errors: Vec<String>,
    /// Plain-language findings, each derived from the figures above.
    pub advice: Vec<String>,
    /// The policy set with the lowest read overhead over bypass (the verdict the advice
    /// words), recorded for scripts and A/A checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommended_policy_set: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ModeInfo {
    pub name: String,
    /// Policy set in force (none for bypass).
    pub policies: Option<String>,
    /// `sql` (explicit user filter) or `policy_only` (the policy alone filters).
    pub form: Form,
    pub description: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RlsQuery {
    pub name: String,
    pub description: String,
    pub kind: crate::catalog::Kind,
    pub tags: Vec<String>,
    pub subjects: Vec<RlsSubject>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RlsSubject {
    /// `heavy` or `median`.
    pub subject: Subject,
    pub user: String,
    pub params: Vec<String>,
    pub modes: Vec<ModeRun>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ModeRun {
    pub mode: String,
    pub latency: Option<LatencySummary>,
    /// This mode's p50 / bypass p50, per trial and summarized.
    pub overhead: Option<Ratio>,
    /// Rows returned (reads) or affected (writes, rolled back).
    pub rows: Option<i64>,
    /// Order-independent digest of the rows (reads).
    pub digest: Option<String>,
    /// Same rows as bypass (reads: same digest; writes: same row count).
    pub same_rows: Option<bool>,
    /// Rows the same statement returns with no claims at all (reads under RLS): 0 shows the
    /// policies depend on the identity.
    pub no_claims_rows: Option<i64>,
    pub plan: Option<PlanSummary>,
    pub evidence: Option<PlanEvidence>,
    /// Raw EXPLAIN JSON, relative to the run's output directory.
    pub plan_file: Option<String>,
    /// Buffers, rows, executor time and plan shape of the plan above (after warm-up).
    #[serde(default)]
    pub work: Option<Work>,
    /// Work / bypass's work: the server's share of the overhead, without the client path
    /// (round trips, decoding) that dilutes the wall-clock ratio.
    #[serde(default)]
    pub work_ratio: Option<WorkRatio>,
    pub config_error: Option<String>,
    pub error: Option<String>,
}

/// A mode's time / bypass's, paired per interleaved round.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ratio {
    /// Median of the per-round ratios.
    pub median: f64,
    /// Bounds of its 95 % interval (files before the engine: the range over trials).
    pub min: f64,
    pub max: f64,
    /// Per-trial ratios of files before the engine (empty now: see `interval`).
    pub per_trial: Vec<f64>,
    /// Median of the per-round ratios with its sign-test interval.
    #[serde(default)]
    pub interval: Option<Interval>,
    /// `includes`: no measurable overhead.
    #[serde(default)]
    pub side: Option<Side>,
    #[serde(default)]
    pub rounds: usize,
}

/// What the plan says about the policy: where its qual is evaluated and what it costs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PlanEvidence {
    /// Where a policy-derived qual appears: "Index Cond", "Filter", "One-Time Filter", … (deduplicated).
    pub policy_locations: Vec<String>,
    pub policy_in_index_cond: bool,
    pub policy_in_filter: bool,
    pub initplans: usize,
    pub subplans: usize,
    /// Rows removed by filters over every scan (per loop × loops).
    pub rows_removed_by_filter: u64,
    /// "Seq Scan on stories", … (every scan node, in plan order).
    pub scans: Vec<String>,
    pub seq_scan: bool,
    /// A qual compares the role with 'service_role' (a service policy without TO, ORed in).
    pub service_policy_in_qual: bool,
    pub execution_ms: f64,
    /// Quals of a non-leakproof operator (LIKE `~~`, pattern `~>=~`, jsonb `->>`) that are index conditions.
    pub nonleakproof_index_cond: Vec<String>,
    /// Quals of a non-leakproof operator evaluated as a Filter.
    pub nonleakproof_filter: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrapFinding {
    pub query: String,
    pub subject: Subject,
    pub indexes: String,
    /// Bypass: the non-leakproof qual is an index condition.
    pub bypass_uses_index: bool,
    pub bypass_access: Vec<String>,
    pub bypass_p50_ms: Option<f64>,
    /// Per RLS mode: whether the qual stayed an index condition, the access paths, overhead.
    pub under_rls: Vec<TrapMode>,
    /// The report's explanation, built from the plans above.
    pub explanation: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrapMode {
    pub mode: String,
    pub uses_index: bool,
    pub access: Vec<String>,
    pub filter: Vec<String>,
    pub rows_removed_by_filter: u64,
    pub p50_ms: Option<f64>,
    pub overhead: Option<f64>,
}

/// EXISTS join (initplan set) vs SECURITY DEFINER helper (definer set) on a child-table query.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChildTableCost {
    pub query: String,
    pub subject: Subject,
    pub form: Form,
    pub exists_p50_ms: f64,
    pub definer_p50_ms: f64,
    pub exists_overhead: Option<f64>,
    pub definer_overhead: Option<f64>,
    /// definer p50 / EXISTS p50 (> 1: the helper is slower).
    pub definer_vs_exists: f64,
    pub exists_evidence: Option<PlanEvidence>,
    pub definer_evidence: Option<PlanEvidence>,
}

/// The per-request PostgREST set-up (set_config of role and claims) on its own.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SetupCost {
    /// The trivial statement each transaction runs.
    pub statement: String,
    /// BEGIN + statement + COMMIT.
    pub bare: LatencySummary,
    /// BEGIN + set_config(role) + set_config(claims) + statement + COMMIT.
    pub with_claims: LatencySummary,
    pub overhead_p50_ms: f64,
    pub overhead_mean_ms: f64,
    /// with_claims p50 / bare p50.
    pub ratio_p50: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuditSection {
    /// Sampled users who attacked (anon comes on top).
    pub users: Vec<String>,
    pub seed: u64,
    pub sets: Vec<AuditSet>,
    pub attempts: u64,
    pub leaks: u64,
    pub errors: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuditSet {
    /// Policy set name; `as_found` when audited as the database held it (nothing re-applied).
    pub policies: String,
    pub as_found: bool,
    pub attempts: u64,
    pub leaks: u64,
    /// Refused (42501) or no row affected/visible.
    pub blocked: u64,
    /// Visible by design (public events).
    pub allowed: u64,
    /// Failed for another reason (shown; not a leak).
    pub errors: u64,
    pub tables: Vec<AuditTable>,
    /// The first leaks (capped), each: who, what, on which row.
    pub leak_details: Vec<String>,
    pub error_details: Vec<String>,
    /// Targets with no row of another user to attack.
    pub skipped: Vec<String>,
    /// Every kind of leak found (table, verb, role), however many details were kept.
    #[serde(default)]
    pub leaks_found: Vec<AuditLeak>,
}

/// One kind of leak: `role` could `verb` another user's row in `target`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditLeak {
    pub target: String,
    /// SELECT, INSERT, UPDATE or DELETE.
    pub verb: String,
    /// The database role of the attacker: `authenticated` or `anon`.
    pub role: String,
    /// Attempts that got through.
    pub attempts: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuditTable {
    pub target: String,
    pub attempts: u64,
    pub leaks: u64,
    pub blocked: u64,
    pub allowed: u64,
    pub errors: u64,
}

impl RlsSection {
    /// Why the stage must fail the run (leaks, wrong rows, missing claims), if it must.
    pub fn failure(&self) -> Option<String> {
        let mut why = Vec::new();
        if let Some(a) = &self.audit {
            if a.leaks > 0 {
                let mut kinds: Vec<String> = Vec::new();
                for l in a.sets.iter().flat_map(|s| &s.leaks_found) {
                    let k = format!("{} {} as {}", l.target, l.verb, l.role);
                    if !kinds.contains(&k) {
                        kinds.push(k);
                    }
                }
                why.push(format!(
                    "RLS isolation audit: {} leak(s) in {} attempts ({})",
                    a.leaks,
                    a.attempts,
                    kinds.join(", ")
                ));
            }
        }
        if !self.correctness_failures.is_empty() {
            why.push(format!(
                "RLS modes returned different rows: {}",
                self.correctness_failures.join("; ")
            ));
        }
        if !self.config_errors.is_empty() {
            why.push(format!(
                "RLS configuration error: {}",
                self.config_errors.join("; ")
            ));
        }
        (!why.is_empty()).then(|| why.join(" · "))
    }
}
