//! The query catalog: every query the app and its backend run, read at run time from
//! `scenarios/queries.toml` (one `[[query]]` table per query). EXPLAIN, latency, RLS,
//! partition and load stages all take their SQL from here; no SQL is copied into Rust.
//!
//! Loading validates the file and names `file:line` in every error: TOML syntax, unknown
//! or missing keys, duplicated names, unknown samplers, `$n` without a parameter and
//! parameters the SQL never references.

mod sampler;
mod validate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub use sampler::Sampler;

/// Tags the shipped catalog must carry, one per use case the issues ask to cover.
#[cfg(test)]
pub(crate) const COVERAGE_TAGS: &[&str] = &[
    "recent_stories",
    "favourites",
    "story_detail",
    "active_heroes",
    "hero_gallery",
    "public_events",
    "own_events",
    "illustration_retry",
    "dau",
    "popular_content",
    "api_performance",
    "user_usage",
    "unreviewed_flags",
    "flags_by_severity",
    "cache_cleanup",
    "rate_limit",
    "monthly_cost",
    "error_rate",
    "rate_limiter_hour",
    "leakproof_trap",
    "create_story",
    "play_story",
    "record_usage",
    "rate_limit_upsert",
    "cache_upsert",
    "toggle_favorite",
    "analytics",
    "doc_example",
];

/// Who runs a query, which decides the database role it is measured as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An authenticated app user, under RLS (PostgREST-style claims in the transaction).
    #[default]
    App,
    /// The backend (edge functions) as `service_role`.
    Service,
    /// Dashboards and ops as `service_role`.
    Analytics,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::App => "app",
            Role::Service => "service",
            Role::Analytics => "analytics",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a query changes data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Read,
    Write,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Write => "write",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuerySpec {
    pub name: String,
    pub description: String,
    pub role: Role,
    pub kind: Kind,
    pub tags: Vec<String>,
    /// One sampler per `$n`, in order.
    pub params: Vec<Sampler>,
    /// The query as the app writes it (explicit user filter included).
    pub sql: String,
    /// App queries only: the same query relying on RLS alone (same parameters).
    pub sql_policy_only: Option<String>,
    /// Line (1-based) of its `[[query]]` header.
    pub line: usize,
    pub file: PathBuf,
}

impl QuerySpec {
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    pub fn is_read(&self) -> bool {
        self.kind == Kind::Read
    }

    /// `file:line` of the entry, for messages.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// The loaded catalog, in file order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Catalog {
    pub queries: Vec<QuerySpec>,
}

impl Catalog {
    pub fn get(&self, name: &str) -> Option<&QuerySpec> {
        self.queries.iter().find(|q| q.name == name)
    }

    /// The named queries in the given order; an empty list selects every query.
    /// An unknown name is an error listing the valid ones.
    pub fn select(&self, names: &[String]) -> Result<Vec<&QuerySpec>> {
        if names.is_empty() {
            return Ok(self.queries.iter().collect());
        }
        let mut out = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        for name in names {
            let name = name.trim();
            match self.get(name) {
                Some(q) => out.push(q),
                None => unknown.push(name.to_string()),
            }
        }
        if !unknown.is_empty() {
            bail!(
                "unknown quer{} {} (valid: {})",
                if unknown.len() == 1 { "y" } else { "ies" },
                unknown.join(", "),
                self.names().join(", ")
            );
        }
        Ok(out)
    }

    pub fn with_tag(&self, tag: &str) -> Vec<&QuerySpec> {
        self.queries.iter().filter(|q| q.has_tag(tag)).collect()
    }

    #[cfg(test)]
    pub(crate) fn by_role(&self, role: Role) -> Vec<&QuerySpec> {
        self.queries.iter().filter(|q| q.role == role).collect()
    }

    pub fn names(&self) -> Vec<&str> {
        self.queries.iter().map(|q| q.name.as_str()).collect()
    }
}

/// Loads and validates a catalog file.
pub fn load(path: &Path) -> Result<Catalog> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text, path)
}

/// Loads `scenarios/queries.toml` (see [`crate::paths::project_file`]).
/// `STORYBENCH_CATALOG` overrides the path (to try a catalog without touching the shipped one).
pub fn load_default() -> Result<Catalog> {
    match std::env::var_os("STORYBENCH_CATALOG") {
        Some(path) => load(Path::new(&path)),
        None => load(&crate::paths::project_file("scenarios/queries.toml")),
    }
}

/// Prepares every statement of `queries` on the server, so a SQL error is reported with
/// the file, line and key of the entry before anything is measured.
pub async fn check_sql(conn: &mut sqlx::PgConnection, queries: &[&QuerySpec]) -> Result<()> {
    use sqlx::{Executor, SqlSafeStr};
    let mut errors = Vec::new();
    for q in queries {
        for (key, sql) in [
            ("sql", Some(&q.sql)),
            ("sql_policy_only", q.sql_policy_only.as_ref()),
        ] {
            let Some(sql) = sql else { continue };
            if let Err(e) = conn
                .prepare(sqlx::AssertSqlSafe(sql.clone()).into_sql_str())
                .await
            {
                let msg = e
                    .as_database_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_else(|| e.to_string());
                errors.push(format!(
                    "{} (query {}, key {key}): {msg}",
                    q.location(),
                    q.name
                ));
            }
        }
    }
    if !errors.is_empty() {
        bail!(
            "the catalog has statements PostgreSQL rejects:\n  {}",
            errors.join("\n  ")
        );
    }
    Ok(())
}

/// Parses and validates catalog text; `file` is only used in messages and `QuerySpec::file`.
pub fn parse(text: &str, file: &Path) -> Result<Catalog> {
    validate::parse(text, file)
}
