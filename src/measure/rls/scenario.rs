//! `scenarios/rls.toml`: the audit's targets and the set-up cost statement (read at run time).

use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlsScenario {
    pub setup_cost: SetupCostSql,
    pub matrix: MatrixSql,
    pub audit: AuditSql,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupCostSql {
    pub statement: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSql {
    /// Appended to each measured statement; `{mode}` is replaced by the mode's name.
    pub statement_tag: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSql {
    pub target: Vec<AuditTarget>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditTarget {
    pub name: String,
    #[serde(default)]
    pub visible_ok: bool,
    pub find: String,
    pub select: String,
    pub insert: String,
    pub update: String,
    pub delete: String,
}

pub fn load() -> Result<RlsScenario> {
    let (path, text) = crate::paths::read_project_file("scenarios/rls.toml")?;
    toml::from_str(&text).with_context(|| format!("{} is not a valid RLS scenario", path.display()))
}

/// Highest `$n` a statement references (how many parameters to bind).
pub fn param_count(sql: &str) -> usize {
    let bytes = sql.as_bytes();
    let mut max = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let start = i + 1;
            let mut j = start;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            if j > start {
                max = max.max(sql[start..j].parse().unwrap_or(0));
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    max
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_parameters() {
        assert_eq!(super::param_count("SELECT 1"), 0);
        assert_eq!(super::param_count("x = $1::uuid AND y = $3"), 3);
    }

    #[test]
    fn shipped_scenario_parses() {
        let s = super::load().unwrap();
        assert!(s.audit.target.len() >= 10);
        for t in &s.audit.target {
            assert!(super::param_count(&t.find) <= 2, "{}", t.name);
            for sql in [&t.select, &t.insert, &t.update, &t.delete] {
                assert!(super::param_count(sql) <= 3, "{}: {sql}", t.name);
            }
        }
    }
}
