//! The server's side of a load run: pg_stat_statements, pg_stat_database and pg_stat_wal
//! deltas, wait events sampled from pg_stat_activity, and the machine's CPU use.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use sqlx::AssertSqlSafe;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    queries: Queries,
    own: Own,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Own {
    patterns: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Queries {
    statements: String,
    has_statements: String,
    database: String,
    wal: String,
    waits: String,
}

crate::sql_file!(fn file() -> File = "scenarios/server_stats.toml");

#[cfg(test)]
pub(crate) fn load_all() {
    let _ = file();
}

fn q() -> &'static Queries {
    &file().queries
}

/// storybench's own statement (bookkeeping, probes, transaction control), not the app's.
pub fn is_own(query: &str) -> bool {
    static SET: OnceLock<regex::RegexSet> = OnceLock::new();
    SET.get_or_init(|| {
        regex::RegexSetBuilder::new(&file().own.patterns)
            .case_insensitive(true)
            .build()
            .expect("server_stats.toml [own] patterns are valid")
    })
    .is_match(query)
}

fn sql(text: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(text.to_string())
}

type StatementRow = (String, String, i64, f64, i64, i64, i64, i64);

/// Counters at one instant.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    statements: BTreeMap<String, StatementRow>,
    database: (i64, i64, i64, i64, i64, i64, i64),
    wal: (i64, i64, i64),
    cpu: CpuTimes,
}

pub async fn snapshot(conn: &mut PgConnection) -> Result<Snapshot> {
    let has: bool = sqlx::query_scalar(sql(&q().has_statements))
        .fetch_one(&mut *conn)
        .await?;
    let statements = if has {
        let rows: Vec<StatementRow> = sqlx::query_as(sql(&q().statements))
            .fetch_all(&mut *conn)
            .await?;
        rows.into_iter().map(|r| (r.0.clone(), r)).collect()
    } else {
        BTreeMap::new()
    };
    Ok(Snapshot {
        statements,
        database: sqlx::query_as(sql(&q().database))
            .fetch_one(&mut *conn)
            .await?,
        wal: sqlx::query_as(sql(&q().wal)).fetch_one(&mut *conn).await?,
        cpu: CpuTimes::read(),
    })
}

/// Server-side figures over a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ServerView {
    /// The application's statements (storybench's own are in `own_statements`).
    pub statements: Vec<StatementDelta>,
    /// storybench's own statements over the run (see [`is_own`]), shown apart.
    #[serde(default)]
    pub own_statements: Vec<StatementDelta>,
    pub commits: i64,
    pub rollbacks: i64,
    pub cache_hit_ratio: f64,
    pub blocks_read: i64,
    pub temp_bytes: i64,
    pub deadlocks: i64,
    pub wal_records: i64,
    pub wal_fpi: i64,
    pub wal_bytes: i64,
    /// Machine CPU busy share over the run (0–1), from /proc/stat.
    pub cpu_busy: f64,
    pub cpu_iowait: f64,
    /// Average number of active sessions per wait event (e.g. `Lock:transactionid`, `CPU:running`).
    pub waits: BTreeMap<String, f64>,
    pub wait_samples: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StatementDelta {
    pub query: String,
    pub calls: i64,
    pub total_ms: f64,
    pub mean_ms: f64,
    pub rows: i64,
    pub shared_hit: i64,
    pub shared_read: i64,
    pub wal_bytes: i64,
}

pub fn delta(before: &Snapshot, after: &Snapshot, waits: &WaitSampler) -> ServerView {
    let mut statements: Vec<StatementDelta> = after
        .statements
        .iter()
        .filter_map(|(id, a)| {
            let b = before.statements.get(id);
            let calls = a.2 - b.map_or(0, |b| b.2);
            (calls > 0).then(|| {
                let total = a.3 - b.map_or(0.0, |b| b.3);
                StatementDelta {
                    query: a.1.clone(),
                    calls,
                    total_ms: total,
                    mean_ms: total / calls as f64,
                    rows: a.7 - b.map_or(0, |b| b.7),
                    shared_hit: a.4 - b.map_or(0, |b| b.4),
                    shared_read: a.5 - b.map_or(0, |b| b.5),
                    wal_bytes: a.6 - b.map_or(0, |b| b.6),
                }
            })
        })
        .collect();
    statements.sort_by(|x, y| y.total_ms.total_cmp(&x.total_ms));
    let (mut own_statements, mut statements): (Vec<_>, Vec<_>) =
        statements.into_iter().partition(|s| is_own(&s.query));
    statements.truncate(40);
    own_statements.truncate(20);
    let (b, a) = (before.database, after.database);
    let hits = a.2 - b.2;
    let reads = a.3 - b.3;
    let (busy, iowait) = after.cpu.busy_since(&before.cpu);
    let (samples, waits) = waits.averages();
    ServerView {
        statements,
        own_statements,
        commits: a.0 - b.0,
        rollbacks: a.1 - b.1,
        cache_hit_ratio: if hits + reads > 0 {
            hits as f64 / (hits + reads) as f64
        } else {
            1.0
        },
        blocks_read: reads,
        temp_bytes: a.4 - b.4,
        deadlocks: a.5 - b.5,
        wal_records: after.wal.0 - before.wal.0,
        wal_fpi: after.wal.1 - before.wal.1,
        wal_bytes: after.wal.2 - before.wal.2,
        cpu_busy: busy,
        cpu_iowait: iowait,
        waits,
        wait_samples: samples,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_statements_are_told_from_the_apps() {
        for own in [
            "SELECT value FROM storybench.meta WHERE key = $1",
            "BEGIN",
            "commit",
            "SELECT set_config($1, $2, $3), set_config($4, $5, $6)",
            "SELECT to_regclass($1) IS NOT NULL",
            "SELECT wal_records, wal_fpi, wal_bytes::bigint FROM pg_stat_wal",
            "WITH owned AS (SELECT 1) SELECT c.relname FROM pg_class c JOIN pg_namespace n ON true",
        ] {
            assert!(super::is_own(own), "{own}");
        }
        for app in [
            "SELECT id, title FROM public.stories WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT $2",
            "INSERT INTO api_usage (user_id, function_name) VALUES ($1, $2)",
            "SELECT count(*) FROM storybench_flat.api_usage WHERE created_at > $1",
            "SELECT key, value, expires_at FROM cache_entries WHERE key = $1",
        ] {
            assert!(!super::is_own(app), "{app}");
        }
    }
}

/// Samples pg_stat_activity wait events on its own connection until stopped.
#[derive(Clone, Default)]
pub struct WaitSampler {
    counts: Arc<Mutex<(u64, BTreeMap<String, i64>)>>,
    stop: Arc<AtomicBool>,
}

impl WaitSampler {
    pub fn start(mut conn: PgConnection, every: Duration) -> Self {
        let sampler = Self::default();
        let s = sampler.clone();
        tokio::spawn(async move {
            while !s.stop.load(Ordering::SeqCst) {
                if let Ok(rows) = sqlx::query_as::<_, (String, i64)>(sql(&q().waits))
                    .fetch_all(&mut conn)
                    .await
                {
                    let mut c = s.counts.lock().unwrap_or_else(|e| e.into_inner());
                    c.0 += 1;
                    for (k, n) in rows {
                        *c.1.entry(k).or_default() += n;
                    }
                }
                tokio::time::sleep(every).await;
            }
        });
        sampler
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    fn averages(&self) -> (u64, BTreeMap<String, f64>) {
        let c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = c.0.max(1) as f64;
        (
            c.0,
            c.1.iter()
                .map(|(k, v)| (k.clone(), *v as f64 / n))
                .collect(),
        )
    }
}

/// Aggregate CPU jiffies from /proc/stat (the server is on this machine for embedded runs).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CpuTimes {
    pub busy: u64,
    pub iowait: u64,
    pub total: u64,
}

impl CpuTimes {
    pub(crate) fn read() -> Self {
        let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
            return Self::default();
        };
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 5 {
            return Self::default();
        }
        let total: u64 = v.iter().take(8).sum();
        let idle = v[3];
        let iowait = v[4];
        Self {
            busy: total - idle - iowait,
            iowait,
            total,
        }
    }

    fn busy_since(&self, before: &CpuTimes) -> (f64, f64) {
        let total = self.total.saturating_sub(before.total).max(1) as f64;
        (
            self.busy.saturating_sub(before.busy) as f64 / total,
            self.iowait.saturating_sub(before.iowait) as f64 / total,
        )
    }
}
