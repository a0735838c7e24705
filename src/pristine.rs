//! Pristine copies: every measuring stage works on its own byte-identical clone of the
//! sealed dataset (`CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY`), so no stage ever
//! measures a state an earlier stage wrote to, and every run starts from the same pages,
//! visibility map and planner statistics (pg_statistic is copied with the database).
//!
//! The seeded database itself is the template and is never measured on. Copies are named
//! `sbcopy_<pid>_<n>_<label>`, carry a comment naming host and pid, and are dropped when
//! their stage ends (also on error or Ctrl-C); a copy left by a process that died is swept
//! by the next command on the same host.

use crate::internal_sql::{q, sql};
use crate::seed::DatasetInfo;
use crate::target::Target;
use anyhow::{bail, Context, Result};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Executor};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Databases tried, in order, to run CREATE/DROP DATABASE from (never the dataset itself:
/// a template must have no other sessions).
const MAINTENANCE_DATABASES: [&str; 2] = ["postgres", "template1"];
/// Datasets larger than this are copied file by file (see `copy_create` in schema/internal.toml).
const FILE_COPY_ABOVE_BYTES: i64 = 1 << 30;
const COMMENT_PREFIX: &str = "storybench pristine copy";
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// One clone of the dataset, alive until [`PristineCopy::drop`].
pub struct PristineCopy {
    name: String,
    target: Target,
    admin: Target,
    /// How long the clone took to create.
    pub seconds: f64,
    /// How long the server and the machine took to write the clone out afterwards (see
    /// [`settle`]), not included in `seconds`.
    pub settle_seconds: f64,
}

impl PristineCopy {
    /// Clones the dataset `base` connects to. No session may be connected to it meanwhile
    /// (PostgreSQL waits up to 5 s for them to leave; storybench retries a little longer).
    pub async fn create(base: &Target, label: &str) -> Result<Self> {
        Self::create_named(base, copy_name(label)).await
    }

    /// [`create`](Self::create) under a name the caller chose (the one copy the shards of a
    /// sharded load share; it must start with `sbcopy_` to be swept after a crash).
    pub async fn create_named(base: &Target, name: String) -> Result<Self> {
        Self::create_as(base, name, false).await
    }

    /// An empty database on `base`'s server (from template0), named, commented, dropped and
    /// swept like a copy: for restoring a backup into.
    pub async fn create_empty(base: &Target, label: &str) -> Result<Self> {
        Self::create_as(base, copy_name(label), true).await
    }

    async fn create_as(base: &Target, name: String, empty: bool) -> Result<Self> {
        let source = current_database(base).await?;
        let admin = maintenance(base).await?;
        let mut conn = admin.connect().await?;
        let started = Instant::now();
        let create: String = if empty {
            sqlx::query_scalar(sql(&q().scratch_create))
                .bind(&name)
                .fetch_one(&mut conn)
                .await?
        } else {
            sqlx::query_scalar(sql(&q().copy_create))
                .bind(&name)
                .bind(&source)
                .bind(FILE_COPY_ABOVE_BYTES)
                .fetch_one(&mut conn)
                .await?
        };
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
        let comment = format!(
            "{COMMENT_PREFIX} of {source} host={} pid={}",
            hostname(),
            std::process::id()
        );
        let stmt: String = sqlx::query_scalar(sql(&q().copy_comment))
            .bind(&name)
            .bind(&comment)
            .fetch_one(&mut conn)
            .await?;
        conn.execute(AssertSqlSafe(stmt)).await?;
        let seconds = started.elapsed().as_secs_f64();
        let settled = Instant::now();
        settle(&mut conn, base.embedded.is_some()).await;
        Ok(Self {
            target: base.on_database(&name),
            name,
            admin,
            seconds,
            settle_seconds: settled.elapsed().as_secs_f64(),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the copy whatever `--keep-copies` says: one of many short-lived clones (a
    /// capacity step's) that only the last of is kept.
    pub async fn discard(self) -> Result<()> {
        drop_database(&self.admin, &self.name).await
    }

    /// Drops the copy (terminating any session still connected to it), unless the command
    /// was asked to keep its copies.
    pub async fn drop(self) -> Result<()> {
        if self.target.keep_copies {
            crate::say!("  kept pristine copy {} (--keep-copies)", self.name);
            return Ok(());
        }
        drop_database(&self.admin, &self.name).await
    }
}

/// Waits until a database named `name` exists on `base`'s server (made by another process:
/// shard 0 of a sharded load makes the copy the others run on).
pub async fn wait_for_database(base: &Target, name: &str, timeout: Duration) -> Result<Target> {
    let admin = maintenance(base).await?;
    let mut conn = admin.connect().await?;
    let started = Instant::now();
    loop {
        let exists: bool = sqlx::query_scalar(sql(&q().database_exists))
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
        if exists {
            return Ok(base.on_database(name));
        }
        if started.elapsed() > timeout {
            bail!("the shared copy {name} did not appear within {timeout:?} (is shard 0 running?)");
        }
        crate::interrupt::check()?;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits (up to `timeout`) until no session other than ours is connected to `name`.
pub async fn wait_until_unused(base: &Target, name: &str, timeout: Duration) -> Result<()> {
    let admin = maintenance(base).await?;
    let mut conn = admin.connect().await?;
    let started = Instant::now();
    loop {
        let n: i64 = sqlx::query_scalar(sql(&q().sessions_on_database))
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
        if n == 0 || started.elapsed() > timeout {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How long a busy template (sessions still leaving it) is waited for.
const SOURCE_BUSY: Duration = Duration::from_secs(20);

/// Lets the copy's I/O finish before anything is measured on it: a clone is hundreds of MB
/// of WAL and data files (and the previous copy's DROP DATABASE a checkpoint) that the
/// checkpointer and the kernel's writeback would otherwise flush during the next stage's
/// first seconds, as unaccounted CPU and I/O beside the load (seen as a capacity step
/// failing at half the rate of the next run). CHECKPOINT needs superuser or pg_checkpoint;
/// without it only the kernel is flushed. The kernel is only flushed for a server on this
/// machine (the embedded cluster).
async fn settle(conn: &mut PgConnection, local: bool) {
    if let Err(e) = conn.execute(sql(&q().checkpoint)).await {
        tracing::debug!("no CHECKPOINT after the copy: {e}");
    }
    if local {
        let _ = tokio::task::spawn_blocking(nix::unistd::sync).await;
    }
}

/// Waits for a database to be quiet before the next measurement on it: a checkpoint (and,
/// for a server on this machine, the kernel's writeback), then up to [`QUIET_WAIT`] for
/// autovacuum workers on it to finish.
pub async fn quiesce(target: &Target) {
    let Ok(mut conn) = target.connect().await else {
        return;
    };
    settle(&mut conn, target.embedded.is_some()).await;
    let started = Instant::now();
    while started.elapsed() < QUIET_WAIT {
        let busy: i64 = sqlx::query_scalar(sql(&q().autovacuum_workers))
            .fetch_one(&mut conn)
            .await
            .unwrap_or(0);
        if busy == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Vacuums every table of a copy a stage wrote to (the dead tuples of its rolled-back and
/// committed writes gone, the visibility map set again; statistics untouched, so plans stay).
pub async fn vacuum_tables(target: &Target) -> Result<()> {
    use sqlx::Executor;
    let mut conn = target.connect().await?;
    for stmt in &crate::seed::sql::queries().vacuum_tables {
        conn.execute(sqlx::AssertSqlSafe(stmt.as_str())).await?;
    }
    Ok(())
}

/// The longest [`quiesce`] waits for autovacuum.
const QUIET_WAIT: Duration = Duration::from_secs(20);

/// Runs `body` on a fresh copy of `base`'s dataset and drops the copy afterwards, whatever
/// `body` returned (an interrupt is an error like any other here).
pub async fn with_copy<T>(
    base: &Target,
    label: &str,
    body: impl AsyncFnOnce(&Target) -> Result<T>,
) -> Result<T> {
    let copy = PristineCopy::create(base, label).await?;
    tracing::debug!("pristine copy {} in {:.2} s", copy.name, copy.seconds);
    let outcome = body(copy.target()).await;
    let dropped = copy.drop().await;
    let value = outcome?;
    dropped?;
    Ok(value)
}

/// Drops copies that a storybench process on this host left behind when it died.
pub async fn sweep_stale(base: &Target) -> Result<Vec<String>> {
    let admin = maintenance(base).await?;
    let mut conn = admin.connect().await?;
    let rows: Vec<(String, String)> = sqlx::query_as(sql(&q().copy_list))
        .fetch_all(&mut conn)
        .await?;
    let host = format!("host={} ", hostname());
    let mut swept = Vec::new();
    for (name, comment) in rows {
        let Some(pid) = comment
            .contains(&host)
            .then(|| comment.rsplit("pid=").next()?.trim().parse::<i32>().ok())
            .flatten()
        else {
            continue; // Another host's copy: its own process may still use it.
        };
        if pid_alive(pid) {
            continue;
        }
        drop_database(&admin, &name).await?;
        swept.push(name);
    }
    Ok(swept)
}

/// The state a dataset must still be in to be measured: nothing written since its seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verified {
    /// The write counters are those recorded when the seed sealed the dataset.
    Counters,
    /// The counters were reset (server crash); the fingerprint was recomputed and matches.
    Fingerprint,
}

/// The dataset's write state: rows written to its tables since the server's statistics
/// began, and the tables' file nodes, digested.
pub async fn write_counter(conn: &mut PgConnection) -> Result<String> {
    Ok(sqlx::query_scalar(sql(&q().dataset_writes))
        .fetch_one(&mut *conn)
        .await?)
}

/// Checks that the sealed dataset was not written to since the seed; when the counters
/// cannot tell (a server crash resets them), recomputes the database-side fingerprint and
/// compares it with the one `seed --verify` recorded. Errors name what changed.
pub async fn verify(conn: &mut PgConnection, info: &DatasetInfo) -> Result<Verified> {
    let now = write_counter(conn).await?;
    if info.sealed_state.as_deref() == Some(now.as_str()) {
        return Ok(Verified::Counters);
    }
    let Some(sealed) = db_seal(info) else {
        bail!(
            "the dataset's write counters changed since its seal (a server crash or a \
             statistics reset clears them, or something wrote to it), and it was seeded \
             without `--verify`, so there is no database-side fingerprint to check it \
             against. Seed it again with `storybench seed --reset` (add `--verify` to be able \
             to reuse it after a crash)."
        );
    };
    let (fingerprint, _) = crate::seed::db_fingerprint(conn).await?;
    if sealed == fingerprint {
        // Same data, new counters (statistics were reset): record them for next time.
        let mut resealed = info.clone();
        resealed.sealed_state = Some(now);
        crate::schema::set_meta(conn, "dataset", &serde_json::to_value(&resealed)?).await?;
        return Ok(Verified::Fingerprint);
    }
    bail!(
        "the dataset was written to since it was seeded (database-side fingerprint {} now, {} \
         when seeded): its figures would not be comparable. Seed it again with \
         `storybench seed --reset`.",
        fingerprint,
        sealed
    )
}

/// The database-side fingerprint a dataset was sealed with: `seed --verify`'s, or the
/// fingerprint of a dataset seeded before the streamed one existed (the same md5).
fn db_seal(info: &DatasetInfo) -> Option<&str> {
    info.db_fingerprint.as_deref().or(info
        .fingerprint
        .as_deref()
        .filter(|f| !f.starts_with(crate::seed::fingerprint::PREFIX)))
}

/// The dataset a measuring command will copy: complete, and verified untouched since its
/// seed. Sweeps copies a dead storybench process left behind first. Leaves no session open.
pub async fn checked_dataset(target: &Target) -> Result<DatasetInfo> {
    let swept = sweep_stale(target).await?;
    if !swept.is_empty() {
        crate::say!(
            "  dropped {} pristine cop{} left by a storybench process that died: {}",
            swept.len(),
            if swept.len() == 1 { "y" } else { "ies" },
            swept.join(", ")
        );
    }
    let mut conn = target.connect().await?;
    let mut info = crate::seed::require_complete(&mut conn).await?;
    info.verified = Some(verify(&mut conn, &info).await?);
    Ok(info)
}

/// Records the dataset as it is now as its sealed state (database-side fingerprint and
/// write state): for fixtures that shape a seeded dataset by hand before measuring it. The
/// data no longer matches the bytes streamed, so the database-side value is its fingerprint.
pub async fn reseal(conn: &mut PgConnection) -> Result<DatasetInfo> {
    let mut info = crate::seed::require_complete(conn).await?;
    let (fingerprint, counts) = crate::seed::db_fingerprint(conn).await?;
    info.fingerprint = Some(fingerprint.clone());
    info.db_fingerprint = Some(fingerprint);
    info.row_counts = counts;
    info.sealed_state = Some(write_counter(conn).await?);
    crate::schema::set_meta(conn, "dataset", &serde_json::to_value(&info)?).await?;
    Ok(info)
}

pub(crate) async fn current_database(t: &Target) -> Result<String> {
    let mut conn = t.connect().await?;
    Ok(sqlx::query_scalar(sql(&q().current_database))
        .fetch_one(&mut conn)
        .await?)
}

/// A database on the same server to run CREATE/DROP DATABASE from.
pub(crate) async fn maintenance(base: &Target) -> Result<Target> {
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
    let stmt: String = sqlx::query_scalar(sql(&q().copy_drop))
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

fn hostname() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.nodename().to_string_lossy().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn pid_alive(pid: i32) -> bool {
    // Signal 0 checks existence; EPERM means it exists but belongs to someone else.
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code().map(|c| c.to_string()))
}

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
