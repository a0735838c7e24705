//! Load scenarios: TOML files under `scenarios/` that reference catalog queries by name,
//! with weighted transactions, step sequences, per-step probabilities, think times and the
//! principal that runs them. A mix file (`[[mix]]`) combines other scenario files with
//! weights. Loading validates everything and names `file:line` in every error.

mod validate;

#[cfg(test)]
mod tests;

use crate::catalog::{Catalog, QuerySpec};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Who runs a transaction's statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    /// The goose user's seeded app user, PostgREST-style under RLS.
    App,
    /// The backend as service_role.
    Service,
    /// The connecting role, without request set-up (calibration queries only).
    Direct,
}

impl PrincipalKind {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "app" => Some(Self::App),
            "service" => Some(Self::Service),
            "direct" => Some(Self::Direct),
            _ => None,
        }
    }
}

/// A think time drawn uniformly from `min..=max`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Think {
    #[serde(with = "crate::units::duration_secs")]
    pub min: Duration,
    #[serde(with = "crate::units::duration_secs")]
    pub max: Duration,
}

impl Think {
    pub fn mean(&self) -> Duration {
        (self.min + self.max) / 2
    }

    pub fn is_zero(&self) -> bool {
        self.max.is_zero()
    }

    /// Parses `2s..6s`, `500ms` (fixed) or `0`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parse = |t: &str| crate::units::parse_duration(t.trim());
        let (min, max) = match text.split_once("..") {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let d = parse(text)?;
                (d, d)
            }
        };
        if min > max {
            return Err(format!(
                "think time {text:?}: the minimum is above the maximum"
            ));
        }
        if max > Duration::from_secs(3600) {
            return Err(format!("think time {text:?} is over an hour"));
        }
        Ok(Self { min, max })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    #[serde(serialize_with = "query_name")]
    pub query: Arc<QuerySpec>,
    pub probability: f64,
    pub think: Think,
}

fn query_name<S: serde::Serializer>(q: &Arc<QuerySpec>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&q.name)
}

#[derive(Debug, Clone, Serialize)]
pub struct Transaction {
    pub name: String,
    pub weight: usize,
    pub principal: PrincipalKind,
    /// All steps in one database transaction (else one request transaction per step).
    pub atomic: bool,
    /// Think time after the transaction (closed model).
    pub think: Think,
    pub steps: Vec<Step>,
}

impl Transaction {
    /// Mean think time one execution adds (steps by their probability, then the pause).
    pub fn mean_think(&self) -> Duration {
        let steps: f64 = self
            .steps
            .iter()
            .map(|s| s.probability * s.think.mean().as_secs_f64())
            .sum();
        Duration::from_secs_f64(steps) + self.think.mean()
    }
}

/// One scenario file's transactions: one goose scenario, given `weight` of the users.
#[derive(Debug, Clone, Serialize)]
pub struct Part {
    pub name: String,
    pub description: String,
    pub weight: usize,
    pub transactions: Vec<Transaction>,
}

impl Part {
    fn mean_think(&self) -> f64 {
        let total: usize = self.transactions.iter().map(|t| t.weight).sum();
        self.transactions
            .iter()
            .map(|t| t.weight as f64 * t.mean_think().as_secs_f64())
            .sum::<f64>()
            / total.max(1) as f64
    }
}

/// A loaded scenario (a single file, or a mix of files).
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub name: String,
    pub file: PathBuf,
    pub description: String,
    pub parts: Vec<Part>,
}

impl Scenario {
    /// Mean think time per transaction over the mix (users split by part weight): the `Z`
    /// of Little's law, users = rate × (response time + think time).
    pub fn mean_think(&self) -> Duration {
        let total: usize = self.parts.iter().map(|p| p.weight).sum();
        let z = self
            .parts
            .iter()
            .map(|p| p.weight as f64 * p.mean_think())
            .sum::<f64>()
            / total.max(1) as f64;
        Duration::from_secs_f64(z)
    }

    /// Executions per second of `statement` when the scenario runs at `rate` transactions/s:
    /// each part gets its weight's share of the arrivals, each transaction its weight's
    /// share of the part's, each step runs with its probability (audit's growth per day and
    /// the WAL archive's per hour are given at it).
    pub fn per_second(&self, rate: f64, statement: &str) -> f64 {
        let parts: usize = self.parts.iter().map(|p| p.weight).sum();
        let mut per_s = 0.0;
        for part in &self.parts {
            let txs: usize = part.transactions.iter().map(|t| t.weight).sum();
            for t in &part.transactions {
                let share =
                    part.weight as f64 / parts.max(1) as f64 * t.weight as f64 / txs.max(1) as f64;
                per_s += t
                    .steps
                    .iter()
                    .filter(|s| s.query.name == statement)
                    .map(|s| rate * share * s.probability)
                    .sum::<f64>();
            }
        }
        per_s
    }

    /// Every step of every transaction of every part.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.parts
            .iter()
            .flat_map(|p| &p.transactions)
            .flat_map(|t| &t.steps)
    }

    /// The catalog query of the scenario named `name`.
    pub fn query(&self, name: &str) -> Option<&QuerySpec> {
        self.steps()
            .map(|s| s.query.as_ref())
            .find(|q| q.name == name)
    }

    /// Every distinct catalog query the scenario references.
    pub fn queries(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in self.steps() {
            if !out.contains(&s.query.name) {
                out.push(s.query.name.clone());
            }
        }
        out
    }

    /// Prepares every statement the scenario runs (its own extra catalog included), so a SQL
    /// error names the catalog file, line and key before any load starts. Statements read the
    /// dataset's tables, so a scenario that needs the dataset checks it is complete first.
    pub async fn check_sql(&self, conn: &mut sqlx::PgConnection) -> Result<()> {
        if self.needs_population() {
            crate::seed::require_complete(conn).await?;
        }
        let mut seen = std::collections::HashSet::new();
        let specs: Vec<&QuerySpec> = self
            .steps()
            .map(|s| s.query.as_ref())
            .filter(|q| seen.insert(q.name.as_str()))
            .collect();
        crate::catalog::check_sql(conn, &specs)
            .await
            .with_context(|| format!("scenario {}", self.file.display()))
    }

    /// Whether some step needs the seeded population (an app principal or a sampled value).
    pub fn needs_population(&self) -> bool {
        self.parts.iter().flat_map(|p| &p.transactions).any(|t| {
            t.principal == PrincipalKind::App || t.steps.iter().any(|s| !s.query.params.is_empty())
        })
    }
}

/// Where a scenario argument points: a path (has a `/` or ends in `.toml`) or a name in
/// `scenarios/`.
fn resolve_path(name_or_file: &str) -> PathBuf {
    if name_or_file.contains('/') || name_or_file.ends_with(".toml") {
        PathBuf::from(name_or_file)
    } else {
        crate::paths::project_file(format!("scenarios/{name_or_file}.toml"))
    }
}

/// Loads a scenario by name or file against the default catalog.
pub fn load(name_or_file: &str) -> Result<Scenario> {
    let catalog = crate::catalog::load_default()?;
    load_with(name_or_file, &catalog)
}

/// Loads a scenario against a given catalog.
pub fn load_with(name_or_file: &str, catalog: &Catalog) -> Result<Scenario> {
    let path = resolve_path(name_or_file);
    if !path.exists() {
        let known = available().join(", ");
        anyhow::bail!(
            "no scenario {name_or_file:?} ({} does not exist; scenarios: {known})",
            path.display()
        );
    }
    validate::load_file(&path, catalog, true)
}

/// Scenario names in `scenarios/` (files with transactions or a mix; not catalogs).
pub fn available() -> Vec<String> {
    let dir = crate::paths::project_file("scenarios");
    let mut out: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let p = e.path();
                    let text = std::fs::read_to_string(&p).ok()?;
                    let is_scenario = p.extension().is_some_and(|x| x == "toml")
                        && (text.contains("[[transaction]]") || text.contains("[[mix]]"));
                    if is_scenario {
                        Some(p.file_stem()?.to_string_lossy().into_owned())
                    } else {
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Reads a file, naming it in the error.
fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
