//! WAL archiving (`storybench wal-archive`), the document's PITR settings — wal_level =
//! replica, archive_mode = on, a local archive_command — on the embedded cluster only:
//! the write statements timed with archiving off, then on (a restart between, so the arms
//! are independent), with their WAL per write; the archive the writes filled; then the
//! server's own settings back (profile file removed, restart) and checked.

use super::analytics::{measure_some, writes};
use super::apply::{q, read_names};
use super::types::{AnalyticsRun, Setting};
use crate::cluster::settings::ProfileGuard;
use crate::measure::engine::EngineOptions;
use crate::sql_files::sql;
use crate::target::Target;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

const NAMES: [&str; 3] = ["archive_command", "archive_mode", "wal_level"];
/// Inside the data directory (the server's OS user owns it); removed afterwards.
const ARCHIVE_DIR: &str = "storybench_wal_archive";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ArchiveSection {
    pub archive_dir: String,
    pub archive_command: String,
    pub own_before: Vec<Setting>,
    pub in_force: Vec<Setting>,
    pub own_after: Vec<Setting>,
    pub restored: bool,
    /// Write statements with archiving off (the server's own settings) and on.
    pub off: Vec<AnalyticsRun>,
    pub on: Vec<AnalyticsRun>,
    /// Segments the archiver copied while archiving was on, their bytes, and failures.
    pub archived_segments: i64,
    pub archived_bytes: u64,
    pub archive_failures: i64,
    /// The writes' WAL per hour at `writes_per_second`: the archive's growth per hour
    /// (whole segments are archived, so at least one segment per archive_timeout if set).
    pub writes_per_second: f64,
    pub wal_bytes_per_write: Option<f64>,
    pub archive_bytes_per_hour: Option<f64>,
}

pub async fn run(
    target: &Target,
    engine: &EngineOptions,
    statement_timeout: Duration,
    seed: u64,
    writes_per_second: f64,
) -> Result<ArchiveSection> {
    let Some(cluster) = &target.embedded else {
        bail!(
            "WAL archiving is measured on the embedded cluster only: it needs wal_level and \
             archive_mode, which take a restart, and storybench never restarts a server it does \
             not own (drop --database-url)"
        );
    };
    let dir = cluster.data_dir.join(ARCHIVE_DIR);
    if dir.exists() {
        bail!(
            "{} exists (left by a storybench that was killed?): remove it first",
            dir.display()
        );
    }
    let mut s = ArchiveSection {
        archive_dir: dir.display().to_string(),
        writes_per_second,
        ..Default::default()
    };
    s.own_before = read_names(&mut target.connect().await?, &NAMES).await?;
    s.off = crate::pristine::with_copy(target, "wal_off", async |c| {
        measure_some(c, engine, statement_timeout, seed, writes).await
    })
    .await?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    crate::cluster::chown_to_postgres(&dir)?;
    let d = dir.display().to_string().replace('\'', "");
    s.archive_command = format!("test ! -f '{d}/%f' && cp %p '{d}/%f'");
    let values = [
        ("wal_level", "replica".to_string()),
        ("archive_mode", "on".to_string()),
        ("archive_command", s.archive_command.clone()),
    ];
    let outcome = match ProfileGuard::apply(cluster, &values, "wal-archive") {
        Ok(guard) => {
            let measured = measure_on(target, engine, statement_timeout, seed, &mut s).await;
            let restored = guard.restore();
            measured.and(restored)
        }
        Err(e) => Err(e),
    };
    let files: Vec<u64> = std::fs::read_dir(&dir)
        .map(|r| {
            r.filter_map(|e| e.ok()?.metadata().ok().map(|m| m.len()))
                .collect()
        })
        .unwrap_or_default();
    s.archived_bytes = files.iter().sum();
    let _ = std::fs::remove_dir_all(&dir);
    s.own_after = read_names(&mut target.connect().await?, &NAMES).await?;
    s.restored = s.own_after == s.own_before;
    let per_write: Vec<f64> =
        s.on.iter()
            .filter_map(|a| a.work.as_ref()?.wal_bytes)
            .collect();
    if !per_write.is_empty() {
        let mean = per_write.iter().sum::<f64>() / per_write.len() as f64;
        s.wal_bytes_per_write = Some(mean);
        s.archive_bytes_per_hour = Some(mean * writes_per_second * 3600.0);
    }
    outcome?;
    if !s.restored {
        bail!("the server's WAL settings differ from before (own_before / own_after)");
    }
    Ok(s)
}

async fn measure_on(
    target: &Target,
    engine: &EngineOptions,
    statement_timeout: Duration,
    seed: u64,
    s: &mut ArchiveSection,
) -> Result<()> {
    let mut conn = target.connect().await?;
    s.in_force = read_names(&mut conn, &NAMES).await?;
    let (before, _): (i64, i64) = sqlx::query_as(sql(&q().archiver))
        .fetch_one(&mut conn)
        .await?;
    drop(conn);
    s.on = crate::pristine::with_copy(target, "wal_on", async |c| {
        measure_some(c, engine, statement_timeout, seed, writes).await
    })
    .await?;
    let mut conn = target.connect().await?;
    sqlx::query(sql(&q().switch_wal)).execute(&mut conn).await?;
    // The archiver copies the switched segment within a few seconds.
    let started = Instant::now();
    loop {
        let (done, failed): (i64, i64) = sqlx::query_as(sql(&q().archiver))
            .fetch_one(&mut conn)
            .await?;
        s.archived_segments = done - before;
        s.archive_failures = failed;
        if s.archived_segments > 0 || started.elapsed() > Duration::from_secs(20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
