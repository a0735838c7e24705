//! Where a step's CPU went: the whole machine (/proc/stat), the PostgreSQL server (the
//! postmaster, its live children and the children it has reaped) and the load generator
//! (/proc/self), sampled on a plain thread so a CPU-starved runtime cannot delay the readings
//! and cut to the measured window afterwards. Plus pg_stat_database's I/O time and temp files.

use crate::measure::server_view::CpuTimes;
use anyhow::Result;
use serde::Deserialize;
use sqlx::postgres::PgConnection;
use sqlx::AssertSqlSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    queries: Queries,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Queries {
    backend_pid: String,
    io: String,
    speed_probe: String,
    flush_probe: String,
}

crate::sql_file!(fn file() -> File = "scenarios/capacity_stats.toml");

fn q() -> &'static Queries {
    &file().queries
}

#[cfg(test)]
pub(crate) fn load_all() {
    let _ = q();
}

/// (comm, ppid, utime + stime, cutime + cstime) of a process, in USER_HZ ticks like /proc/stat.
fn proc_stat(pid: &str) -> Option<(String, i64, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces or parentheses.
    let (head, rest) = text.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let ppid = f.get(1)?.parse().ok()?;
    // Fields 14–17 of stat(5) are at 11–14 after the state (field 3).
    Some((comm, ppid, num(11) + num(12), num(13) + num(14)))
}

/// The postmaster's pid when the server runs on this machine (embedded, or a URL to a local
/// server): the parent of this connection's backend, both named `postgres`.
pub async fn local_postmaster(conn: &mut PgConnection) -> Option<i64> {
    let pid: i32 = sqlx::query_scalar(AssertSqlSafe(q().backend_pid.clone()))
        .fetch_one(&mut *conn)
        .await
        .ok()?;
    let (comm, ppid, _, _) = proc_stat(&pid.to_string())?;
    let (parent, _, _, _) = proc_stat(&ppid.to_string())?;
    (comm == "postgres" && parent == "postgres").then_some(ppid)
}

/// Times the machine-speed probe `runs` times (after one untimed run that warms the backend)
/// and returns the times in ms: the server's CPU speed at this moment.
pub async fn speed_probe(conn: &mut PgConnection, runs: usize) -> Result<Vec<f64>> {
    let sql = || AssertSqlSafe(q().speed_probe.clone());
    sqlx::query(sql()).execute(&mut *conn).await?;
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        sqlx::query(sql()).execute(&mut *conn).await?;
        out.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(out)
}

/// Times `runs` WAL-flushing commits and returns their median in ms: how long a commit
/// waited for the disk at this moment. None when the server refuses the probe (not a
/// superuser) — the step is measured without it.
pub async fn flush_probe(conn: &mut PgConnection, runs: usize) -> Option<f64> {
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        if let Err(e) = sqlx::query(AssertSqlSafe(q().flush_probe.clone()))
            .execute(&mut *conn)
            .await
        {
            tracing::debug!("no WAL-flush probe: {e}");
            return None;
        }
        out.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Some(crate::stats::median(&out))
}

/// CPU ticks of the server: the postmaster, its reaped children and its live ones.
fn server_ticks(postmaster: i64) -> Option<u64> {
    let pm = postmaster.to_string();
    let (_, _, own, reaped) = proc_stat(&pm)?;
    let children = std::fs::read_to_string(format!("/proc/{pm}/task/{pm}/children"))
        .map(|t| t.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .unwrap_or_else(|_| scan_children(postmaster));
    let live: u64 = children
        .iter()
        .filter_map(|c| proc_stat(c))
        .filter(|c| c.1 == postmaster)
        .map(|c| c.2)
        .sum();
    Some(own + reaped + live)
}

/// Without /proc/PID/task/PID/children (a kernel without CONFIG_PROC_CHILDREN): scan /proc.
fn scan_children(parent: i64) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .filter(|n| proc_stat(n).is_some_and(|s| s.1 == parent))
        .collect()
}

#[derive(Clone, Copy, Debug)]
struct Reading {
    at: Instant,
    machine: CpuTimes,
    client: u64,
    server: Option<u64>,
}

impl Reading {
    fn take(postmaster: Option<i64>) -> Self {
        Self {
            at: Instant::now(),
            machine: CpuTimes::read(),
            client: proc_stat("self").map_or(0, |s| s.2),
            server: postmaster.and_then(server_ticks),
        }
    }
}

/// CPU use over a window, each a share (0–1) of the machine's capacity (all its cores).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuShares {
    pub busy: f64,
    pub iowait: f64,
    /// None: the server is not on this machine (or its processes are not readable).
    pub server: Option<f64>,
    pub client: f64,
    /// Busy time of everything else on the machine (other processes, the kernel's own work).
    pub other: f64,
}

/// Takes readings every `every` until finished.
pub struct CpuSampler {
    readings: Arc<Mutex<Vec<Reading>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    postmaster: Option<i64>,
}

impl CpuSampler {
    pub fn start(postmaster: Option<i64>, every: Duration) -> Self {
        let readings = Arc::new(Mutex::new(vec![Reading::take(postmaster)]));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (readings.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                std::thread::sleep(every);
                let reading = Reading::take(postmaster);
                r.lock().unwrap_or_else(|e| e.into_inner()).push(reading);
            }
        });
        Self {
            readings,
            stop,
            thread: Some(thread),
            postmaster,
        }
    }

    /// Stops and returns the shares over the smallest sampled span covering `from..to`.
    pub fn finish(mut self, from: Instant, to: Instant) -> CpuShares {
        self.halt();
        let mut r = self.readings.lock().unwrap_or_else(|e| e.into_inner());
        r.push(Reading::take(self.postmaster));
        let a = r.iter().rev().find(|x| x.at <= from).unwrap_or(&r[0]);
        let b = r.iter().find(|x| x.at >= to).unwrap_or(&r[r.len() - 1]);
        shares(a, b)
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for CpuSampler {
    fn drop(&mut self) {
        self.halt();
    }
}

fn shares(a: &Reading, b: &Reading) -> CpuShares {
    let total = b.machine.total.saturating_sub(a.machine.total).max(1) as f64;
    let part = |x: u64, y: u64| y.saturating_sub(x) as f64 / total;
    let busy = part(a.machine.busy, b.machine.busy);
    let client = part(a.client, b.client);
    let server = match (a.server, b.server) {
        (Some(x), Some(y)) => Some(part(x, y)),
        _ => None,
    };
    CpuShares {
        busy,
        iowait: part(a.machine.iowait, b.machine.iowait),
        server,
        client,
        other: (busy - client - server.unwrap_or(0.0)).max(0.0),
    }
}

/// pg_stat_database's cumulative I/O time (track_io_timing) and temp files of this database.
#[derive(Clone, Copy, Debug, Default)]
pub struct IoCounters {
    pub read_ms: f64,
    pub write_ms: f64,
    pub temp_bytes: i64,
    pub temp_files: i64,
}

pub async fn io_counters(conn: &mut PgConnection) -> Result<IoCounters> {
    let (read_ms, write_ms, temp_bytes, temp_files): (f64, f64, i64, i64) =
        sqlx::query_as(AssertSqlSafe(q().io.clone()))
            .fetch_one(&mut *conn)
            .await?;
    Ok(IoCounters {
        read_ms,
        write_ms,
        temp_bytes,
        temp_files,
    })
}

impl IoCounters {
    pub fn since(&self, before: &IoCounters) -> IoCounters {
        IoCounters {
            read_ms: self.read_ms - before.read_ms,
            write_ms: self.write_ms - before.write_ms,
            temp_bytes: self.temp_bytes - before.temp_bytes,
            temp_files: self.temp_files - before.temp_files,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_readable_and_burns_cpu() {
        let (comm, ppid, _, _) = proc_stat("self").expect("/proc/self/stat");
        assert!(!comm.is_empty() && ppid > 0);
        let sampler = CpuSampler::start(None, Duration::from_millis(20));
        let from = Instant::now();
        let mut x = 0u64;
        while from.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let s = sampler.finish(from, Instant::now());
        assert!(s.client > 0.0 && s.busy >= s.client * 0.5, "{s:?}");
        assert!(s.server.is_none());
    }
}
