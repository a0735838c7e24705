//! What load workers record: per-query and per-transaction HDR histograms, a per-second
//! timeline, schedule lag (open model), and errors by SQLSTATE. Sharded so workers rarely
//! contend; merged once at the end.

use crate::latency::{Latency, LatencySummary};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One second of the run: throughput and latency percentiles (2 significant digits).
#[derive(Clone, Debug)]
struct Second {
    ok: u64,
    errors: u64,
    hist: Histogram<u64>,
}

impl Second {
    fn new() -> Self {
        Self {
            ok: 0,
            errors: 0,
            hist: Histogram::new_with_bounds(1, 600_000_000, 2).expect("valid bounds"),
        }
    }
}

/// Per-shard recording state.
#[derive(Default)]
pub struct Recorder {
    queries: BTreeMap<String, QueryTally>,
    transactions: BTreeMap<String, QueryTally>,
    lag: Latency,
    wake_lag: Latency,
    pool_wait: Latency,
    timeline: Vec<Option<Second>>,
    errors: BTreeMap<(String, String), ErrorTally>,
    dropped: u64,
}

impl Recorder {
    /// The tally of a query (`transaction` false) or transaction, allocating its key only once.
    fn tally(&mut self, name: &str, transaction: bool) -> &mut QueryTally {
        let map = if transaction {
            &mut self.transactions
        } else {
            &mut self.queries
        };
        if !map.contains_key(name) {
            map.insert(name.to_string(), QueryTally::default());
        }
        map.get_mut(name).expect("just inserted")
    }

    fn second(&mut self, at: f64) -> &mut Second {
        let sec = at as usize;
        if self.timeline.len() <= sec {
            self.timeline.resize(sec + 1, None);
        }
        self.timeline[sec].get_or_insert_with(Second::new)
    }

    fn query_ok(&mut self, name: &str, elapsed: Duration, rows: u64) {
        let t = self.tally(name, false);
        t.latency.record(elapsed);
        t.ok += 1;
        t.rows += rows;
    }

    fn transaction_ok(&mut self, name: &str, at: f64, elapsed: Duration) {
        let t = self.tally(name, true);
        t.latency.record(elapsed);
        t.ok += 1;
        let s = self.second(at);
        s.ok += 1;
        s.hist
            .saturating_record((elapsed.as_micros() as u64).max(1));
    }
}

#[derive(Default)]
struct QueryTally {
    latency: Latency,
    ok: u64,
    errors: u64,
    rows: u64,
}

#[derive(Default, Clone)]
struct ErrorTally {
    count: u64,
    message: String,
    first_at_s: f64,
    last_at_s: f64,
}

/// Shared by the workers of one run.
pub struct Recorders {
    shards: Vec<Mutex<Recorder>>,
    /// Measurement starts here (after warm-up); earlier events are not counted.
    pub measure_from: Instant,
}

impl Recorders {
    pub fn new(shards: usize, measure_from: Instant) -> Self {
        Self {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(Recorder::default()))
                .collect(),
            measure_from,
        }
    }

    fn shard(&self, worker: usize) -> std::sync::MutexGuard<'_, Recorder> {
        self.shards[worker % self.shards.len()]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Seconds since measurement started, or None during warm-up.
    fn offset(&self, at: Instant) -> Option<f64> {
        at.checked_duration_since(self.measure_from)
            .map(|d| d.as_secs_f64())
    }

    pub fn query_ok(
        &self,
        worker: usize,
        query: &str,
        started: Instant,
        elapsed: Duration,
        rows: u64,
    ) {
        if self.offset(started).is_none() {
            return;
        }
        self.shard(worker).query_ok(query, elapsed, rows);
    }

    /// A one-statement transaction that succeeded (the ad hoc hot path: one lock, no allocation).
    pub fn single_ok(
        &self,
        worker: usize,
        name: &str,
        intended: Instant,
        started: Instant,
        finished: Instant,
        rows: u64,
    ) {
        let Some(at) = self.offset(intended) else {
            return;
        };
        let mut r = self.shard(worker);
        r.query_ok(name, finished.saturating_duration_since(started), rows);
        r.transaction_ok(name, at, finished.saturating_duration_since(intended));
    }

    pub fn query_error(
        &self,
        worker: usize,
        query: &str,
        started: Instant,
        sqlstate: &str,
        message: &str,
    ) {
        let Some(at) = self.offset(started) else {
            return;
        };
        let mut r = self.shard(worker);
        r.queries.entry(query.to_string()).or_default().errors += 1;
        let e = r
            .errors
            .entry((query.to_string(), sqlstate.to_string()))
            .or_default();
        if e.count == 0 {
            e.message = message.chars().take(300).collect();
            e.first_at_s = at;
        }
        e.count += 1;
        e.last_at_s = at;
    }

    /// A finished transaction. `intended` is its scheduled start (open model) or actual start.
    pub fn transaction(
        &self,
        worker: usize,
        name: &str,
        intended: Instant,
        finished: Instant,
        ok: bool,
    ) {
        let Some(at) = self.offset(intended) else {
            return;
        };
        let mut r = self.shard(worker);
        let elapsed = finished.saturating_duration_since(intended);
        if ok {
            r.transaction_ok(name, at, elapsed);
        } else {
            r.tally(name, true).errors += 1;
            r.second(at).errors += 1;
        }
    }

    pub fn lag(&self, worker: usize, intended: Instant, lag: Duration) {
        if self.offset(intended).is_some() {
            self.shard(worker).lag.record(lag);
        }
    }

    /// Lag of an arrival a free worker slept for: how late the generator woke (its own CPU),
    /// apart from arrivals that queued because every worker was busy.
    pub fn wake_lag(&self, worker: usize, intended: Instant, lag: Duration) {
        if self.offset(intended).is_some() {
            self.shard(worker).wake_lag.record(lag);
        }
    }

    pub fn pool_wait(&self, worker: usize, at: Instant, wait: Duration) {
        if self.offset(at).is_some() {
            self.shard(worker).pool_wait.record(wait);
        }
    }

    pub fn dropped(&self, worker: usize, intended: Instant) {
        if self.offset(intended).is_some() {
            self.shard(worker).dropped += 1;
        }
    }

    /// Merges the shards into the figures results.json carries.
    pub fn finish(&self, measured: Duration) -> LoadFigures {
        let mut queries: BTreeMap<String, QueryTally> = BTreeMap::new();
        let mut transactions: BTreeMap<String, QueryTally> = BTreeMap::new();
        let mut all_tx = Latency::new();
        let mut lag = Latency::new();
        let mut wake_lag = Latency::new();
        let mut pool_wait = Latency::new();
        let mut timeline: Vec<Option<Second>> = Vec::new();
        let mut errors: BTreeMap<(String, String), ErrorTally> = BTreeMap::new();
        let mut dropped = 0;
        for shard in &self.shards {
            let r = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (k, v) in &r.queries {
                let t = queries.entry(k.clone()).or_default();
                t.latency.merge(&v.latency);
                t.ok += v.ok;
                t.errors += v.errors;
                t.rows += v.rows;
            }
            for (k, v) in &r.transactions {
                let t = transactions.entry(k.clone()).or_default();
                t.latency.merge(&v.latency);
                all_tx.merge(&v.latency);
                t.ok += v.ok;
                t.errors += v.errors;
            }
            lag.merge(&r.lag);
            wake_lag.merge(&r.wake_lag);
            pool_wait.merge(&r.pool_wait);
            if timeline.len() < r.timeline.len() {
                timeline.resize(r.timeline.len(), None);
            }
            for (i, s) in r.timeline.iter().enumerate() {
                if let Some(s) = s {
                    let t = timeline[i].get_or_insert_with(Second::new);
                    t.ok += s.ok;
                    t.errors += s.errors;
                    let _ = t.hist.add(&s.hist);
                }
            }
            for (k, v) in &r.errors {
                let e = errors.entry(k.clone()).or_default();
                if e.count == 0 {
                    e.message = v.message.clone();
                    e.first_at_s = v.first_at_s;
                    e.last_at_s = v.last_at_s;
                }
                e.count += v.count;
                e.first_at_s = e.first_at_s.min(v.first_at_s);
                e.last_at_s = e.last_at_s.max(v.last_at_s);
            }
            dropped += r.dropped;
        }
        let secs = measured.as_secs_f64().max(1e-9);
        let ok: u64 = transactions.values().map(|t| t.ok).sum();
        let failed: u64 = transactions.values().map(|t| t.errors).sum();
        LoadFigures {
            measured_seconds: secs,
            attempted: ok + failed,
            ok,
            failed,
            dropped,
            tps: ok as f64 / secs,
            transaction_latency: all_tx.summary(),
            transaction_curve: all_tx.curve(),
            transactions: transactions
                .into_iter()
                .map(|(name, t)| OpStats {
                    name,
                    ok: t.ok,
                    errors: t.errors,
                    rows: t.rows,
                    per_second: t.ok as f64 / secs,
                    latency: t.latency.summary(),
                })
                .collect(),
            queries: queries
                .into_iter()
                .map(|(name, t)| OpStats {
                    name,
                    ok: t.ok,
                    errors: t.errors,
                    rows: t.rows,
                    per_second: t.ok as f64 / secs,
                    latency: t.latency.summary(),
                })
                .collect(),
            schedule_lag: (!lag.is_empty()).then(|| lag.summary()),
            wake_lag: (!wake_lag.is_empty()).then(|| wake_lag.summary()),
            pool_wait: (!pool_wait.is_empty()).then(|| pool_wait.summary()),
            timeline: timeline
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let s = s.unwrap_or_else(Second::new);
                    let q = |p: f64| {
                        if s.hist.is_empty() {
                            0.0
                        } else {
                            s.hist.value_at_quantile(p) as f64 / 1000.0
                        }
                    };
                    TimelinePoint {
                        second: i as u32,
                        ok: s.ok,
                        errors: s.errors,
                        p50_ms: q(0.5),
                        p95_ms: q(0.95),
                        p99_ms: q(0.99),
                    }
                })
                .collect(),
            errors: errors
                .into_iter()
                .map(|((query, sqlstate), e)| ErrorCount {
                    query,
                    sqlstate,
                    count: e.count,
                    message: e.message,
                    first_at_s: e.first_at_s,
                    last_at_s: e.last_at_s,
                })
                .collect(),
        }
    }
}

/// Client-side figures of a load run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LoadFigures {
    pub measured_seconds: f64,
    /// Transactions started during measurement: `ok + failed` (dropped ones never started).
    pub attempted: u64,
    pub ok: u64,
    pub failed: u64,
    /// Open model: arrivals skipped because they were later than the latency limit.
    pub dropped: u64,
    pub tps: f64,
    /// Latency of all transactions, from the intended start in the open model.
    pub transaction_latency: LatencySummary,
    pub transaction_curve: Vec<(f64, f64)>,
    pub transactions: Vec<OpStats>,
    pub queries: Vec<OpStats>,
    pub schedule_lag: Option<LatencySummary>,
    /// Open model: the part of the schedule lag of arrivals a free user slept for (the
    /// generator waking late), without the arrivals that queued for a busy user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_lag: Option<LatencySummary>,
    pub pool_wait: Option<LatencySummary>,
    pub timeline: Vec<TimelinePoint>,
    pub errors: Vec<ErrorCount>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OpStats {
    pub name: String,
    pub ok: u64,
    pub errors: u64,
    pub rows: u64,
    pub per_second: f64,
    pub latency: LatencySummary,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TimelinePoint {
    pub second: u32,
    pub ok: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ErrorCount {
    pub query: String,
    /// SQLSTATE, or `connection` when the connection itself failed.
    pub sqlstate: String,
    pub count: u64,
    pub message: String,
    /// First and last occurrence, in seconds since measurement started: the affected window.
    pub first_at_s: f64,
    pub last_at_s: f64,
}

/// The SQLSTATE of an error, or a class name for errors without one.
pub fn sqlstate_of(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "database".into()),
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => "connection".into(),
        sqlx::Error::PoolTimedOut => "pool_timeout".into(),
        sqlx::Error::PoolClosed => "pool_closed".into(),
        _ => "client".into(),
    }
}

/// Whether the connection is unusable after this error (reconnect before the next request).
pub fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        // 57P01 admin_shutdown (pg_terminate_backend / restart), 57P02 crash_shutdown, 57P03 cannot_connect_now
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some("57P01" | "57P02" | "57P03" | "08000" | "08003" | "08006")
        ),
        _ => false,
    }
}
