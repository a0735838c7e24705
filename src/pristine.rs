//! TEMPORARY shim of the lead's src/pristine.rs (create/target/drop only) until it lands on main.
//! Pristine copies: every measuring stage works on its own byte-identical clone of the
//! sealed dataset (`CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY`), so no stage ever
//! measures a state an earlier stage wrote to, and every run starts from the same pages,
//! visibility map and planner statistics (pg_statistic is copied with the database).
//!
//! The seeded database itself is the template and is never measured on. Copies are named
//! `sbcopy_<pid>_<n>_<label>`, carry a comment naming host and pid, and are dropped when
//! their stage ends (also on error or Ctrl-C); a copy left by a process that died is swept
//! by the next command on the same host.

use crate::internal_sql::sql;
use crate::target::Target;
use anyhow::{bail, Context, Result};
use sqlx::{AssertSqlSafe, Executor};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Databases tried, in order, to run CREATE/DROP DATABASE from (never the dataset itself:
/// a template must have no other sessions).
const MAINTENANCE_DATABASES: [&str; 2] = ["postgres", "template1"];
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// One clone of the dataset, alive until [`PristineCopy::drop`].
pub struct PristineCopy {
    name: String,
    target: Target,
    admin: Target,
    /// How long the clone took to create.
    pub seconds: f64,
}

impl PristineCopy {
    /// Clones the dataset `base` connects to. No session may be connected to it meanwhile
    /// (PostgreSQL waits up to 5 s for them to leave; storybench retries a little longer).
    pub async fn create(base: &Target, label: &str) -> Result<Self> {
        let source = current_database(base).await?;
        let admin = maintenance(base).await?;
        let mut conn = admin.connect().await?;
        let name = copy_name(label);
        let started = Instant::now();
        let create: String = sqlx::query_scalar(sql("copy_create"))
            .bind(&name)
            .bind(&source)
            .fetch_one(&mut conn)
            .await?;
        loop {
            match conn.execute(AssertSqlSafe(create.as_str())).await {
                Ok(_) => break,
                // "source database is being accessed by other users": a session still closing.
                Err(e) if sqlstate(&e).as_deref() == Some("55006") && started.elapsed() < SOURCE_BUSY => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) if sqlstate(&e).as_deref() == Some("42501") => bail!(
                    "storybench measures on pristine copies of the dataset (CREATE DATABASE … TEMPLATE) \
                     and needs the CREATEDB privilege on this server: {e}"
                ),
                Err(e) => {
                    return Err(e).with_context(|| format!("copying the dataset {source:?}"));
                }
            }
        }
        Ok(Self {
            target: base.on_database(&name),
            name,
            admin,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the copy (terminating any session still connected to it).
    pub async fn drop(self) -> Result<()> {
        drop_database(&self.admin, &self.name).await
    }
}

async fn current_database(t: &Target) -> Result<String> {
    let mut conn = t.connect().await?;
    Ok(sqlx::query_scalar(sql("current_database"))
        .fetch_one(&mut conn)
        .await?)
}

/// A database on the same server to run CREATE/DROP DATABASE from.
async fn maintenance(base: &Target) -> Result<Target> {
    let mut last = None;
    for db in MAINTENANCE_DATABASES {
        let t = base.on_database(db);
        match t.connect().await {
            Ok(_) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one maintenance database"))
        .context("storybench needs the `postgres` or `template1` database to make pristine copies")
}

async fn drop_database(admin: &Target, name: &str) -> Result<()> {
    let mut conn = admin.connect().await?;
    let stmt: String = sqlx::query_scalar(sql("copy_drop"))
        .bind(name)
        .fetch_one(&mut conn)
        .await?;
    conn.execute(AssertSqlSafe(stmt))
        .await
        .with_context(|| format!("dropping the pristine copy {name}"))?;
    Ok(())
}

fn copy_name(label: &str) -> String {
    let clean: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let mut name = format!(
        "sbcopy_{}_{}_{clean}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::SeqCst)
    );
    name.truncate(63); // NAMEDATALEN - 1; the name is ASCII.
    name
}

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code().map(|c| c.to_string()))
}

/// How long a busy template (sessions still leaving it) is waited for.
const SOURCE_BUSY: Duration = Duration::from_secs(20);

#[cfg(test)]
mod tests {
    #[test]
    fn copy_names_are_valid_identifiers() {
        let n =
            super::copy_name("explain: tuned/heavy ✓ with a very long label that goes on and on");
        assert!(n.len() <= 63);
        assert!(n.starts_with("sbcopy_"));
        assert!(n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        assert_ne!(super::copy_name("x"), super::copy_name("x"));
    }
}
