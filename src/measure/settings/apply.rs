//! Putting a profile in force and taking it away again: on the embedded cluster by its
//! profile file and a restart (`cluster::settings`); on an external server, only when asked
//! (`--alter-system`), by ALTER SYSTEM + pg_reload_conf() for what reloads, always reset.

use super::types::{Requested, Setting, SkipReason};
use crate::cluster::settings::{ProfileGuard, NAMES};
use crate::sql_files::sql;
use crate::target::Target;
use anyhow::{bail, Context, Result};
use sqlx::postgres::PgConnection;
use sqlx::Executor;
use std::time::{Duration, Instant};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Queries {
    auto_conf_entries: String,
    alter_system: String,
    reset_system: String,
    reload: String,
    pub(super) read_any: String,
    pub(super) switch_wal: String,
    pub(super) archiver: String,
}

crate::sql_file!(pub(super) fn q() -> Queries = "schema/settings.toml");

/// How long a reload may take to show in a new session's pg_settings.
const RELOAD_WAIT: Duration = Duration::from_secs(10);

/// pg_settings rows of the profile settings.
pub async fn read(conn: &mut PgConnection) -> Result<Vec<Setting>> {
    read_names(conn, &NAMES).await
}

/// pg_settings rows of the named settings.
pub async fn read_names(conn: &mut PgConnection, names: &[&str]) -> Result<Vec<Setting>> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let rows: Vec<(String, String, String, String, String, String, bool)> =
        sqlx::query_as(sql(&q().read_any))
            .bind(&names)
            .fetch_all(&mut *conn)
            .await
            .context("reading pg_settings")?;
    Ok(rows
        .into_iter()
        .map(
            |(name, setting, unit, context, source, boot_val, pending_restart)| Setting {
                name,
                setting,
                unit,
                context,
                source,
                boot_val,
                pending_restart,
            },
        )
        .collect())
}

/// The settings as a new session sees them.
pub async fn read_fresh(target: &Target) -> Result<Vec<Setting>> {
    let mut conn = target.connect().await?;
    read(&mut conn).await
}

/// A value in bytes (memory settings) or as a plain number: "256MB", "4GB", "200", or a
/// pg_settings value times its unit ("8kB").
fn amount(value: &str, unit: &str) -> Option<f64> {
    fn split(s: &str) -> Option<(f64, f64)> {
        let s = s.trim();
        let digits = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let n: f64 = if digits == 0 {
            1.0
        } else {
            s[..digits].parse().ok()?
        };
        let scale = match s[digits..].trim() {
            "" | "B" => 1.0,
            "kB" => 1024.0,
            "MB" => 1024.0 * 1024.0,
            "GB" => 1024.0 * 1024.0 * 1024.0,
            "TB" => 1024.0_f64.powi(4),
            _ => return None,
        };
        Some((n, scale))
    }
    let (n, s) = split(value)?;
    let (u, us) = if unit.is_empty() {
        (1.0, 1.0)
    } else {
        split(unit)?
    };
    Some(n * s * u * us)
}

/// Whether the setting in force equals the value asked for.
pub fn matches(in_force: &[Setting], name: &str, value: &str) -> bool {
    in_force.iter().any(|s| {
        s.name == name
            && amount(&s.setting, &s.unit)
                .zip(amount(value, ""))
                .is_some_and(|(a, b)| (a - b).abs() < 0.5)
    })
}

/// What must be undone.
pub enum Control<'a> {
    Embedded(ProfileGuard<'a>),
    External { reset: Vec<String> },
}

/// Puts `values` in force; returns how to undo it and what was applied.
pub async fn apply<'a>(
    target: &'a Target,
    values: &[(&'static str, String)],
    own: &[Setting],
    label: &str,
) -> Result<(Control<'a>, Vec<Requested>)> {
    if let Some(cluster) = &target.embedded {
        let guard = ProfileGuard::apply(cluster, values, label)?;
        let requested = values
            .iter()
            .map(|(n, v)| Requested {
                name: n.to_string(),
                value: v.clone(),
                applied: true,
                skipped: None,
            })
            .collect();
        return Ok((Control::Embedded(guard), requested));
    }
    let mut conn = target.connect().await?;
    let names: Vec<String> = values.iter().map(|(n, _)| n.to_string()).collect();
    let taken: Vec<String> = sqlx::query_scalar(sql(&q().auto_conf_entries))
        .bind(&names)
        .fetch_all(&mut conn)
        .await
        .context("reading pg_file_settings (ALTER SYSTEM needs a superuser)")?;
    if !taken.is_empty() {
        bail!(
            "the server already has ALTER SYSTEM values for {}: storybench will not overwrite them \
             (resetting afterwards would lose them); remove them or measure on another server",
            taken.join(", ")
        );
    }
    let mut requested = Vec::new();
    let mut reset = Vec::new();
    for (name, value) in values {
        let postmaster = own
            .iter()
            .any(|s| s.name == *name && s.context == "postmaster");
        if !postmaster {
            let stmt: String = sqlx::query_scalar(sql(&q().alter_system))
                .bind(*name)
                .bind(value)
                .fetch_one(&mut conn)
                .await?;
            // Recorded before it runs: a failure half-way still resets it.
            reset.push(name.to_string());
            if let Err(e) = conn.execute(sqlx::AssertSqlSafe(stmt)).await {
                let control = Control::External { reset };
                let undo = restore(target, control).await;
                return Err(anyhow::Error::new(e).context(format!(
                    "ALTER SYSTEM SET {name} (reset afterwards: {})",
                    if undo.is_ok() { "done" } else { "FAILED" }
                )));
            }
        }
        requested.push(Requested {
            name: name.to_string(),
            value: value.clone(),
            applied: !postmaster,
            skipped: postmaster.then_some(SkipReason::NeedsRestart),
        });
    }
    sqlx::query(sql(&q().reload)).execute(&mut conn).await?;
    let want: Vec<(String, String)> = requested
        .iter()
        .filter(|r| r.applied)
        .map(|r| (r.name.clone(), r.value.clone()))
        .collect();
    let started = Instant::now();
    while started.elapsed() < RELOAD_WAIT {
        let now = read_fresh(target).await?;
        if want.iter().all(|(n, v)| matches(&now, n, v)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((Control::External { reset }, requested))
}

/// Takes the profile away: the embedded cluster's file removed and a restart, or every
/// ALTER SYSTEM value reset and the configuration reloaded.
pub async fn restore(target: &Target, control: Control<'_>) -> Result<()> {
    match control {
        Control::Embedded(guard) => guard.restore(),
        Control::External { reset } => {
            let mut conn = target.connect().await?;
            for name in &reset {
                let stmt: String = sqlx::query_scalar(sql(&q().reset_system))
                    .bind(name)
                    .fetch_one(&mut conn)
                    .await?;
                conn.execute(sqlx::AssertSqlSafe(stmt)).await?;
            }
            sqlx::query(sql(&q().reload)).execute(&mut conn).await?;
            Ok(())
        }
    }
}

/// Waits until a new session sees `own` again (a reload is asynchronous).
pub async fn wait_for(target: &Target, own: &[Setting]) -> Result<Vec<Setting>> {
    let started = Instant::now();
    loop {
        let now = read_fresh(target).await?;
        if now == own || started.elapsed() >= RELOAD_WAIT {
            return Ok(now);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_compare_units() {
        assert_eq!(amount("256MB", ""), Some(256.0 * 1024.0 * 1024.0));
        assert_eq!(amount("32768", "8kB"), amount("256MB", ""));
        assert_eq!(amount("4096", "kB"), amount("4MB", ""));
        assert_eq!(amount("200", ""), Some(200.0));
        assert_eq!(amount("1x", ""), None);
    }
}
