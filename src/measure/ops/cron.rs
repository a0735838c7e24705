//! The document's scheduled cache cleanup as an operation: `cleanup_expired_cache()` run by
//! the real pg_cron. The extension lives in cron.database_name (the maintenance database);
//! the job is scheduled into the copy with `cron.schedule_in_database` on a fast schedule
//! (the document's is hourly) and unscheduled afterwards, also on error or Ctrl-C. Its runs
//! are read from `cron.job_run_details` and put on the load's clock. Without pg_cron (not
//! installed, not preloaded, or preloaded for another database) storybench says why and
//! fires the same command on the same schedule itself.

use super::migration::StatementRun;
use super::queries;
use crate::measure::load::recorder::QuerySeconds;
use crate::sql_files::sql;
use crate::stats::Interval;
use crate::target::Target;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use std::time::{Duration, Instant};

/// The document's job, from `[cron]` in scenarios/ops.toml.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Job {
    pub job_name: String,
    pub schedule: String,
    pub command: String,
}

/// The database pg_cron's launcher runs in on the embedded cluster (src/cluster write_conf).
const CRON_DATABASE: &str = "postgres";
/// How often the job's runs are polled.
const POLL: Duration = Duration::from_millis(200);

/// Who fired the job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runner {
    #[default]
    PgCron,
    /// pg_cron was not available: storybench ran the command on the schedule.
    Storybench,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CronFigures {
    pub runner: Runner,
    /// Why pg_cron could not be used (with `runner = storybench`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_cron_unavailable: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_cron_version: Option<String>,
    pub job_name: String,
    /// The document's schedule, and the one measured.
    pub document_schedule: String,
    pub schedule: String,
    pub command: String,
    pub runs: Vec<CronRun>,
    /// The foreground's tail latency in the seconds a run overlapped, against the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interference: Option<Interference>,
}

/// One run, on the load's clock.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CronRun {
    pub started_s: f64,
    pub finished_s: f64,
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The load's worst per-second p99 in the seconds the run overlapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreground_p99_ms: Option<f64>,
}

/// Every foreground request pooled: those in seconds a run overlapped against the rest.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Interference {
    /// The percentile compared (99, else the highest both sides' samples support).
    pub percentile: f64,
    pub run_seconds: u32,
    pub other_seconds: u32,
    pub during_runs_ms: Interval,
    pub otherwise_ms: Interval,
    /// during / otherwise, with its 95 % interval.
    pub ratio: Interval,
}

/// How long the job takes to fire `runs` times on `schedule` (for sizing the load).
pub fn expected(schedule: &str, runs: u32) -> Duration {
    period(schedule).unwrap_or(Duration::from_secs(60)) * runs.max(1) + Duration::from_secs(2)
}

/// `N seconds` (pg_cron ≥ 1.4) or the every-minute cron line; others are not fired by
/// storybench (pg_cron still runs them).
fn period(schedule: &str) -> Option<Duration> {
    let s = schedule.trim();
    if s.split_whitespace().collect::<Vec<_>>() == ["*"; 5] {
        return Some(Duration::from_secs(60));
    }
    let (n, unit) = s.split_once(' ')?;
    let n: u64 = n.trim().parse().ok()?;
    (matches!(unit.trim(), "second" | "seconds") && (1..=59).contains(&n))
        .then(|| Duration::from_secs(n))
}

pub fn validate_schedule(schedule: &str) -> Result<()> {
    if period(schedule).is_none() {
        bail!(
            "ops: --cron-schedule must be '* * * * *' (every minute) or 'N seconds' (1-59), not {schedule:?}"
        );
    }
    Ok(())
}

/// The job alone: its command once, on the operation's connection.
pub async fn alone(conn: &mut PgConnection, clock: Instant) -> (Vec<StatementRun>, Result<()>) {
    let mut run = StatementRun {
        head: super::cron_job().command.clone(),
        started_s: clock.elapsed().as_secs_f64(),
        attempts: 1,
        ..Default::default()
    };
    let out = sqlx::query(sql(&queries().cleanup_cache))
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(anyhow::Error::from);
    run.finished_s = clock.elapsed().as_secs_f64();
    if let Err(e) = &out {
        run.error = Some(format!("{e:#}"));
    }
    (vec![run], out)
}

/// Why pg_cron cannot run a job in `copy` here, or its version and admin connection.
async fn pg_cron(target: &Target) -> std::result::Result<(PgConnection, String), String> {
    let admin = target.on_database(CRON_DATABASE);
    let mut conn = admin
        .connect()
        .await
        .map_err(|e| format!("cannot connect to the {CRON_DATABASE} database: {e:#}"))?;
    let preloaded: bool = sqlx::query_scalar(sql(&queries().cron_preloaded))
        .fetch_one(&mut conn)
        .await
        .map_err(|e| format!("{e:#}"))?;
    if !preloaded {
        return Err(format!(
            "pg_cron is not in shared_preload_libraries with cron.database_name = '{CRON_DATABASE}' on this server"
        ));
    }
    let installed: bool = sqlx::query_scalar(sql(&queries().cron_installed))
        .fetch_one(&mut conn)
        .await
        .map_err(|e| format!("{e:#}"))?;
    if !installed {
        sqlx::query(sql(&queries().cron_create))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("CREATE EXTENSION pg_cron failed: {e:#}"))?;
    }
    let version: String = sqlx::query_scalar(sql(&queries().cron_version))
        .fetch_one(&mut conn)
        .await
        .map_err(|e| format!("{e:#}"))?;
    Ok((conn, version))
}

/// Under load: schedules the job into `target` (the copy), waits for `runs` finished runs
/// (at most `limit`), unschedules it, and returns the runs as steps on `clock`.
pub async fn under_load(
    target: &Target,
    conn: &mut PgConnection,
    schedule: &str,
    runs: u32,
    limit: Duration,
    clock: Instant,
) -> (Vec<StatementRun>, Result<()>, CronFigures) {
    let job = super::cron_job();
    let copy = target.database_override().unwrap_or_default().to_string();
    let mut figures = CronFigures {
        job_name: format!("storybench {} {copy}", job.job_name),
        document_schedule: job.schedule.clone(),
        schedule: schedule.to_string(),
        command: job.command.clone(),
        ..Default::default()
    };
    let (steps, outcome) = match pg_cron(target).await {
        Ok((mut admin, version)) => {
            figures.pg_cron_version = Some(version);
            let outcome = scheduled(&mut admin, &copy, runs, limit, clock, &mut figures).await;
            // Always unscheduled, also after an error or an interrupt.
            let removed = sqlx::query(sql(&queries().cron_unschedule))
                .bind(&figures.job_name)
                .execute(&mut admin)
                .await;
            let outcome = outcome.and_then(|s| {
                removed.context("unscheduling the job")?;
                Ok(s)
            });
            match outcome {
                Ok(s) => (s, Ok(())),
                Err(e) => (Vec::new(), Err(e)),
            }
        }
        Err(why) => {
            crate::say!("  ops: {why}; storybench fires the job on {schedule:?} itself");
            figures.runner = Runner::Storybench;
            figures.pg_cron_unavailable = Some(why);
            fired(conn, schedule, runs, clock, &mut figures).await
        }
    };
    (steps, outcome, figures)
}

async fn scheduled(
    admin: &mut PgConnection,
    copy: &str,
    runs: u32,
    limit: Duration,
    clock: Instant,
    figures: &mut CronFigures,
) -> Result<Vec<StatementRun>> {
    // Jobs of a storybench process that died point at a dropped copy: removed first.
    let stale: Vec<String> = sqlx::query_scalar(sql(&queries().cron_stale))
        .fetch_all(&mut *admin)
        .await?;
    for name in stale {
        sqlx::query(sql(&queries().cron_unschedule))
            .bind(&name)
            .execute(&mut *admin)
            .await?;
    }
    // The server's clock against ours, to put the runs on the load's clock.
    let asked = Instant::now();
    let epoch0: f64 = sqlx::query_scalar(sql(&queries().server_epoch))
        .fetch_one(&mut *admin)
        .await?;
    let at =
        asked.saturating_duration_since(clock).as_secs_f64() + asked.elapsed().as_secs_f64() / 2.0;
    sqlx::query(sql(&queries().cron_schedule))
        .bind(&figures.job_name)
        .bind(&figures.schedule)
        .bind(&figures.command)
        .bind(copy)
        .execute(&mut *admin)
        .await
        .with_context(|| {
            format!(
                "cron.schedule_in_database refused {:?} (pg_cron {}; 'N seconds' needs pg_cron 1.5, \
                 '* * * * *' works in every version)",
                figures.schedule,
                figures.pg_cron_version.as_deref().unwrap_or("?")
            )
        })?;
    crate::say!(
        "  ops: pg_cron job {:?} scheduled ({})",
        figures.job_name,
        figures.schedule
    );
    let deadline = Instant::now() + limit;
    loop {
        let done: i64 = sqlx::query_scalar(sql(&queries().cron_finished_runs))
            .bind(&figures.job_name)
            .fetch_one(&mut *admin)
            .await?;
        if done >= i64::from(runs) {
            break;
        }
        if Instant::now() >= deadline {
            bail!(
                "pg_cron ran the job {done} of {runs} times within {:.0} s",
                limit.as_secs_f64()
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = crate::interrupt::wait() => bail!(crate::interrupt::Interrupted),
        }
    }
    let rows: Vec<(i64, String, String, f64, f64)> = sqlx::query_as(sql(&queries().cron_runs))
        .bind(&figures.job_name)
        .fetch_all(&mut *admin)
        .await?;
    let on_clock = |epoch: f64| epoch - epoch0 + at;
    figures.runs = rows
        .iter()
        .map(|(_, status, message, s, e)| CronRun {
            started_s: on_clock(*s),
            finished_s: on_clock(*e),
            status: status.clone(),
            message: message.clone(),
            foreground_p99_ms: None,
        })
        .collect();
    Ok(steps_of(figures))
}

fn steps_of(figures: &CronFigures) -> Vec<StatementRun> {
    figures
        .runs
        .iter()
        .map(|r| StatementRun {
            head: format!("{} ({}: {})", figures.command, r.status, r.message),
            started_s: r.started_s,
            finished_s: r.finished_s,
            attempts: 1,
            error: (r.status == "failed").then(|| r.message.clone()),
            ..Default::default()
        })
        .collect()
}

/// Without pg_cron: the command on the schedule, from here.
async fn fired(
    conn: &mut PgConnection,
    schedule: &str,
    runs: u32,
    clock: Instant,
    figures: &mut CronFigures,
) -> (Vec<StatementRun>, Result<()>) {
    let Some(every) = period(schedule) else {
        return (
            Vec::new(),
            Err(anyhow::anyhow!("storybench cannot fire {schedule:?}")),
        );
    };
    for _ in 0..runs.max(1) {
        let now = chrono::Utc::now();
        // Like cron: at the next multiple of the period on the wall clock.
        let ms = every.as_millis() as i64;
        let wait = ms - now.timestamp_millis().rem_euclid(ms);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            _ = crate::interrupt::wait() => {
                return (steps_of(figures), Err(crate::interrupt::Interrupted.into()));
            }
        }
        let started = clock.elapsed().as_secs_f64();
        let out: Result<i32> = sqlx::query_scalar(sql(&queries().cleanup_cache))
            .fetch_one(&mut *conn)
            .await
            .map_err(Into::into);
        figures.runs.push(CronRun {
            started_s: started,
            finished_s: clock.elapsed().as_secs_f64(),
            status: if out.is_ok() { "succeeded" } else { "failed" }.into(),
            message: match &out {
                Ok(n) => format!("{n} rows deleted"),
                Err(e) => format!("{e:#}"),
            },
            foreground_p99_ms: None,
        });
        if let Err(e) = out {
            return (steps_of(figures), Err(e));
        }
    }
    (steps_of(figures), Ok(()))
}

/// Lines the runs up against the foreground: each run's worst per-second p99, and every
/// request in a run's seconds pooled against every other request.
pub fn line_up(figures: &mut CronFigures, queries: &[QuerySeconds]) {
    let n = queries.iter().map(|q| q.seconds.len()).max().unwrap_or(0);
    let mut in_run = vec![false; n];
    for r in &mut figures.runs {
        let first = r.started_s.floor().max(0.0) as usize;
        let last = (r.finished_s.floor().max(0.0) as usize).min(n.saturating_sub(1));
        let mut worst: Option<f64> = None;
        for (s, flag) in in_run.iter_mut().enumerate().take(last + 1).skip(first) {
            *flag = true;
            let micros: Vec<u32> = queries
                .iter()
                .filter_map(|q| q.seconds.get(s))
                .flat_map(|x| x.micros.iter().copied())
                .collect();
            let p = crate::measure::load::recorder::SecondStats::of(micros, 0);
            if let Some(v) = p.p99_ms.or(p.p95_ms).or(p.max_ms) {
                worst = Some(worst.map_or(v, |w: f64| w.max(v)));
            }
        }
        r.foreground_p99_ms = worst;
    }
    let pooled = |want: bool| -> Vec<f64> {
        queries
            .iter()
            .flat_map(|q| q.seconds.iter().enumerate())
            .filter(|(s, _)| in_run.get(*s).copied().unwrap_or(false) == want)
            .flat_map(|(_, x)| x.micros.iter().map(|m| *m as f64 / 1000.0))
            .collect()
    };
    let (during, otherwise) = (pooled(true), pooled(false));
    let each = crate::stats::CONFIDENCE;
    figures.interference = [99.0, 95.0, 90.0, 50.0].iter().find_map(|&p| {
        let d = crate::stats::sample_quantile_ci(&during, p / 100.0, each)?;
        let o = crate::stats::sample_quantile_ci(&otherwise, p / 100.0, each)?;
        Some(Interference {
            percentile: p,
            run_seconds: in_run.iter().filter(|x| **x).count() as u32,
            other_seconds: in_run.iter().filter(|x| !**x).count() as u32,
            ratio: crate::stats::ratio_of_intervals(&o, &d)?,
            during_runs_ms: d,
            otherwise_ms: o,
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_storybench_can_fire() {
        assert_eq!(period("* * * * *"), Some(Duration::from_secs(60)));
        assert_eq!(period("5 seconds"), Some(Duration::from_secs(5)));
        assert_eq!(period("0 * * * *"), None);
        assert_eq!(period("60 seconds"), None);
        assert!(validate_schedule("0 * * * *").is_err());
    }
}
