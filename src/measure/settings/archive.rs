//! WAL archiving (`storybench wal-archive`), the document's PITR settings — wal_level =
//! replica, archive_mode = on, a local archive_command — on the embedded cluster only:
//! the write statements timed with archiving off, then on (a restart between, so the arms
//! are independent), with their WAL per write; the archive the writes filled; then the
//! server's own settings back (profile file removed, restart) and checked. The archive's
//! growth per hour is at a scenario's write rate: each write statement at its share of the
//! scenario's transactions (`scenario::Scenario::per_second`), or at a given writes/s.

use super::analytics::{measure_some, writes};
use super::apply::{q, read_names};
use super::types::{AnalyticsRun, Setting};
use crate::cluster::settings::ProfileGuard;
use crate::measure::engine::EngineOptions;
use crate::scenario::Scenario;
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
    /// With a scenario: its write statements' rates summed, and their WAL per write
    /// weighted by those rates.
    pub writes_per_second: f64,
    pub wal_bytes_per_write: Option<f64>,
    pub archive_bytes_per_hour: Option<f64>,
    /// The scenario and its rate (transactions/s) the writes per second come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(default)]
    pub rate_basis: String,
    /// Each write statement the scenario runs: its rate there and its WAL per write (on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<ArchiveWrite>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ArchiveWrite {
    pub statement: String,
    pub writes_per_second: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_bytes_per_write: Option<f64>,
}

/// The write rate the archive's growth per hour is given at.
pub enum WriteRate<'a> {
    /// The scenario at `rate` transactions/s; `basis` says where the rate came from.
    Scenario {
        scenario: &'a Scenario,
        rate: f64,
        basis: String,
    },
    /// Writes per second of the mean write statement, as given (`--writes-per-second`).
    Given(f64),
    /// No rate: no growth per hour.
    Unknown,
}

pub async fn run(
    target: &Target,
    engine: &EngineOptions,
    statement_timeout: Duration,
    seed: u64,
    rate: WriteRate<'_>,
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
    per_hour(&mut s, rate);
    outcome?;
    if !s.restored {
        bail!("the server's WAL settings differ from before (own_before / own_after)");
    }
    Ok(s)
}

/// The archive's growth per hour from the "on" writes' WAL at the rate.
fn per_hour(s: &mut ArchiveSection, rate: WriteRate<'_>) {
    let wal = |a: &AnalyticsRun| a.work.as_ref().and_then(|w| w.wal_bytes);
    match rate {
        WriteRate::Given(per_s) => {
            let per_write: Vec<f64> = s.on.iter().filter_map(wal).collect();
            if !per_write.is_empty() {
                let mean = per_write.iter().sum::<f64>() / per_write.len() as f64;
                s.writes_per_second = per_s;
                s.wal_bytes_per_write = Some(mean);
                s.archive_bytes_per_hour = Some(mean * per_s * 3600.0);
            }
            s.rate_basis = format!("{per_s:.1} writes/s as given (--writes-per-second)");
        }
        WriteRate::Scenario {
            scenario,
            rate,
            basis,
        } => {
            s.scenario = Some(scenario.name.clone());
            s.rate = Some(rate);
            s.rate_basis = basis;
            s.statements =
                s.on.iter()
                    .map(|a| ArchiveWrite {
                        statement: a.query.clone(),
                        writes_per_second: scenario.per_second(rate, &a.query),
                        wal_bytes_per_write: wal(a),
                    })
                    .filter(|w| w.writes_per_second > 0.0)
                    .collect();
            s.writes_per_second = s.statements.iter().map(|w| w.writes_per_second).sum();
            // A statement the scenario runs whose WAL was not measured leaves no total.
            let bytes: Option<f64> = s
                .statements
                .iter()
                .map(|w| Some(w.wal_bytes_per_write? * w.writes_per_second))
                .sum();
            if let Some(b) = bytes.filter(|_| s.writes_per_second > 0.0) {
                s.wal_bytes_per_write = Some(b / s.writes_per_second);
                s.archive_bytes_per_hour = Some(b * 3600.0);
            }
        }
        WriteRate::Unknown => {
            s.rate_basis = "no rate given (--rate, --capacity-from or --writes-per-second)".into()
        }
    }
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
