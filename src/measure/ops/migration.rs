//! Running a migration file statement by statement, as a migration tool would: files may
//! hold their own BEGIN/COMMIT; outside a transaction block a statement that times out
//! waiting for its lock (55P03, `lock_timeout`) is retried with a backoff; every statement's
//! start, end and attempts are recorded on the operation's clock.

use crate::sqlfile::{run_statement, split_statements, Statement};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use sqlx::Executor;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A migration file, split into statements (each with its line).
#[derive(Clone, Debug)]
pub struct Migration {
    pub name: String,
    pub path: PathBuf,
    pub statements: Vec<Statement>,
}

impl Migration {
    /// Reads and splits a file; an unterminated statement or quote names its line.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading migration {}", path.display()))?;
        let statements = split_statements(path, &text)?;
        if statements.is_empty() {
            anyhow::bail!("{}: no statement in the migration", path.display());
        }
        let name = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into(),
        );
        Ok(Self {
            name,
            path: path.to_path_buf(),
            statements,
        })
    }

    /// The tables the migration changes or locks (`ALTER TABLE t`, `UPDATE t`, …), for
    /// telling the app's queries on them from the others.
    pub fn tables(&self) -> Vec<String> {
        static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
        let re = RE.get_or_init(|| {
            regex::Regex::new(
                r#"(?i)\b(?:ALTER\s+TABLE|UPDATE|DELETE\s+FROM|INSERT\s+INTO|LOCK\s+TABLE|TRUNCATE(?:\s+TABLE)?|VACUUM(?:\s+\([^)]*\))?|REINDEX\s+TABLE|ON)\s+(?:ONLY\s+|IF\s+EXISTS\s+)*([A-Za-z_][\w."]*)"#,
            )
            .expect("valid regex")
        });
        let mut out: Vec<String> = self
            .statements
            .iter()
            .flat_map(|s| re.captures_iter(&s.sql).map(|c| c[1].to_string()))
            .map(|t| {
                t.trim_matches('"')
                    .rsplit('.')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .filter(|t| !t.is_empty())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// How statements outside a transaction block are retried on a lock timeout.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Retries {
    pub max: u32,
    #[serde(with = "crate::units::duration_secs")]
    pub backoff: Duration,
}

/// One statement as it ran.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StatementRun {
    pub line: usize,
    /// The statement's first line (comments stripped), for the report.
    pub head: String,
    /// On the operation's clock (seconds since the measurement started, under load).
    pub started_s: f64,
    pub finished_s: f64,
    pub attempts: u32,
    /// Lock timeouts retried before it went through (or gave up).
    pub lock_timeouts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Runs the statements in order on `conn`. Returns what ran, and the first error (after
/// which nothing else runs; an open transaction block is rolled back).
pub async fn execute(
    conn: &mut PgConnection,
    m: &Migration,
    retries: Retries,
    clock: Instant,
) -> (Vec<StatementRun>, Result<()>) {
    let mut runs = Vec::new();
    let mut in_block = false;
    for stmt in &m.statements {
        let keyword = first_keyword(&stmt.sql);
        let mut run = StatementRun {
            line: stmt.line,
            head: head(&stmt.sql),
            started_s: clock.elapsed().as_secs_f64(),
            ..Default::default()
        };
        let outcome = loop {
            run.attempts += 1;
            match run_statement(conn, stmt).await {
                Ok(()) => break Ok(()),
                Err(e) if !in_block && is_lock_timeout(&e) && run.lock_timeouts < retries.max => {
                    run.lock_timeouts += 1;
                    let wait = retries.backoff * 2u32.saturating_pow(run.lock_timeouts - 1);
                    tokio::time::sleep(wait).await;
                }
                Err(e) => break Err(e),
            }
        };
        run.finished_s = clock.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => {
                match keyword.as_str() {
                    "BEGIN" | "START" => in_block = true,
                    "COMMIT" | "END" | "ROLLBACK" | "ABORT" => in_block = false,
                    _ => {}
                }
                runs.push(run);
            }
            Err(e) => {
                run.error = Some(format!("{e:#}"));
                runs.push(run);
                if in_block {
                    let _ = conn.execute("ROLLBACK").await;
                }
                return (runs, Err(e));
            }
        }
    }
    (runs, Ok(()))
}

fn is_lock_timeout(e: &anyhow::Error) -> bool {
    // run_statement wraps the server error with file:line; the message keeps the text.
    e.chain().any(|c| c.to_string().contains("lock timeout"))
}

fn first_keyword(sql: &str) -> String {
    strip_comments(sql)
        .split(|c: char| !c.is_ascii_alphabetic())
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .to_ascii_uppercase()
}

fn head(sql: &str) -> String {
    let text = strip_comments(sql);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    line.chars().take(100).collect()
}

/// The statement without its leading `--` comment lines (the splitter keeps a statement
/// from its first token, so only leading whitespace and comments can precede it).
fn strip_comments(sql: &str) -> String {
    sql.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_tables_a_migration_touches() {
        let m = Migration {
            name: "m".into(),
            path: "m.sql".into(),
            statements: split_statements(
                Path::new("m.sql"),
                "BEGIN;\nALTER TABLE public.stories ADD COLUMN r int;\nUPDATE stories SET r = 1;\nCREATE INDEX CONCURRENTLY i ON heroes (user_id);\nCOMMIT;\n",
            )
            .unwrap(),
        };
        assert_eq!(m.tables(), vec!["heroes", "stories"]);
        assert_eq!(first_keyword("-- c\nbegin;"), "BEGIN");
        assert_eq!(head("-- c\n  ALTER TABLE x\n ADD y;"), "ALTER TABLE x");
    }
}
