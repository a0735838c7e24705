//! What load workers record: per-query and per-transaction HDR histograms, a per-second
//! timeline, schedule lag (open model), and errors by SQLSTATE. Sharded so workers rarely
//! contend; merged once at the end.

// The figures moved to their own module; re-exported here for the stages that name them so.
pub use super::figures::{
    second_histogram, ErrorCount, LoadFigures, OpStats, QuerySeconds, SecondStats, TimelinePoint,
};
use crate::latency::Latency;
use hdrhistogram::Histogram;
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
            hist: second_histogram(),
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
    /// Per query, per second: the latencies (µs) of that second, when asked for
    /// (`Recorders::with_query_seconds`): exact per-second figures at 4 bytes a sample.
    query_seconds: Option<BTreeMap<String, Vec<SecondSamples>>>,
    errors: BTreeMap<(String, String), ErrorTally>,
    dropped: u64,
    /// Write each second's histogram into the timeline (shards, for an exact merge).
    encode_seconds: bool,
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

    fn query_ok(&mut self, name: &str, at: f64, elapsed: Duration, rows: u64) {
        let t = self.tally(name, false);
        t.latency.record(elapsed);
        t.ok += 1;
        t.rows += rows;
        if let Some(s) = self.query_second(name, at) {
            s.micros
                .push(elapsed.as_micros().min(u32::MAX as u128) as u32);
        }
    }

    /// The query's samples of the second `at` falls in, when they are kept.
    fn query_second(&mut self, name: &str, at: f64) -> Option<&mut SecondSamples> {
        let secs = self
            .query_seconds
            .as_mut()?
            .entry(name.to_string())
            .or_default();
        let sec = at as usize;
        if secs.len() <= sec {
            secs.resize(sec + 1, SecondSamples::default());
        }
        Some(&mut secs[sec])
    }

    /// Adds another recorder's counts (shards of one run, or shards of one test).
    pub fn merge(&mut self, other: &Recorder) {
        for (k, v) in &other.queries {
            self.tally(k, false).add(v);
        }
        for (k, v) in &other.transactions {
            self.tally(k, true).add(v);
        }
        self.lag.merge(&other.lag);
        self.wake_lag.merge(&other.wake_lag);
        self.pool_wait.merge(&other.pool_wait);
        if self.timeline.len() < other.timeline.len() {
            self.timeline.resize(other.timeline.len(), None);
        }
        for (i, s) in other.timeline.iter().enumerate() {
            if let Some(s) = s {
                let t = self.timeline[i].get_or_insert_with(Second::new);
                t.ok += s.ok;
                t.errors += s.errors;
                let _ = t.hist.add(&s.hist);
            }
        }
        if let (Some(mine), Some(theirs)) = (self.query_seconds.as_mut(), &other.query_seconds) {
            for (name, secs) in theirs {
                let m = mine.entry(name.clone()).or_default();
                if m.len() < secs.len() {
                    m.resize(secs.len(), SecondSamples::default());
                }
                for (i, v) in secs.iter().enumerate() {
                    m[i].micros.extend_from_slice(&v.micros);
                    m[i].errors += v.errors;
                }
            }
        }
        for (k, v) in &other.errors {
            let e = self.errors.entry(k.clone()).or_default();
            if e.count == 0 {
                e.message = v.message.clone();
                e.first_at_s = v.first_at_s;
                e.last_at_s = v.last_at_s;
            }
            e.count += v.count;
            e.first_at_s = e.first_at_s.min(v.first_at_s);
            e.last_at_s = e.last_at_s.max(v.last_at_s);
        }
        self.dropped += other.dropped;
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

/// One query's samples in one second: latencies of the successes (µs), and the failures.
#[derive(Default, Clone)]
struct SecondSamples {
    micros: Vec<u32>,
    errors: u64,
}

#[derive(Default)]
struct QueryTally {
    latency: Latency,
    ok: u64,
    errors: u64,
    rows: u64,
}

impl QueryTally {
    fn add(&mut self, other: &QueryTally) {
        self.latency.merge(&other.latency);
        self.ok += other.ok;
        self.errors += other.errors;
        self.rows += other.rows;
    }
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

    /// Also writes each second's histogram into the timeline (the shards of a sharded load).
    pub fn with_encoded_seconds(self) -> Self {
        for s in &self.shards {
            s.lock().unwrap_or_else(|e| e.into_inner()).encode_seconds = true;
        }
        self
    }

    /// Also keeps every query's latencies per second (operations under load look at them).
    pub fn with_query_seconds(self) -> Self {
        for s in &self.shards {
            s.lock().unwrap_or_else(|e| e.into_inner()).query_seconds = Some(BTreeMap::new());
        }
        self
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
        let Some(at) = self.offset(started) else {
            return;
        };
        self.shard(worker).query_ok(query, at, elapsed, rows);
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
        r.query_ok(name, at, finished.saturating_duration_since(started), rows);
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
        if let Some(s) = r.query_second(query, at) {
            s.errors += 1;
        }
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

    /// One measured second so far, every shard's, for a live progress line. None before
    /// that second has anything.
    pub fn second_so_far(&self, sec: usize) -> Option<TimelinePoint> {
        let mut merged: Option<Second> = None;
        for shard in &self.shards {
            let r = shard.lock().unwrap_or_else(|e| e.into_inner());
            let Some(Some(s)) = r.timeline.get(sec) else {
                continue;
            };
            match &mut merged {
                None => merged = Some(s.clone()),
                Some(m) => {
                    m.ok += s.ok;
                    m.errors += s.errors;
                    let _ = m.hist.add(&s.hist);
                }
            }
        }
        merged.map(|m| TimelinePoint::of(sec as u32, m.ok, m.errors, &m.hist, false))
    }

    /// Merges the shards into the figures results.json carries.
    pub fn finish(&self, measured: Duration) -> LoadFigures {
        let mut all = Recorder::default();
        for shard in &self.shards {
            let r = shard.lock().unwrap_or_else(|e| e.into_inner());
            if all.query_seconds.is_none() && r.query_seconds.is_some() {
                all.query_seconds = Some(BTreeMap::new());
            }
            all.encode_seconds |= r.encode_seconds;
            all.merge(&r);
        }
        all.figures(measured)
    }
}

impl Recorder {
    /// The figures of a (merged) recorder over `measured` seconds.
    fn figures(self, measured: Duration) -> LoadFigures {
        let Recorder {
            queries,
            transactions,
            lag,
            wake_lag,
            pool_wait,
            timeline,
            query_seconds,
            errors,
            dropped,
            encode_seconds,
        } = self;
        let mut all_tx = Latency::new();
        for t in transactions.values() {
            all_tx.merge(&t.latency);
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
            transactions: op_stats(transactions, secs),
            queries: op_stats(queries, secs),
            schedule_lag: (!lag.is_empty()).then(|| lag.summary()),
            wake_lag: (!wake_lag.is_empty()).then(|| wake_lag.summary()),
            pool_wait: (!pool_wait.is_empty()).then(|| pool_wait.summary()),
            timeline: timeline
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let s = s.unwrap_or_else(Second::new);
                    TimelinePoint::of(i as u32, s.ok, s.errors, &s.hist, encode_seconds)
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
            query_seconds: query_seconds
                .unwrap_or_default()
                .into_iter()
                .map(|(name, secs)| QuerySeconds {
                    name,
                    seconds: secs
                        .into_iter()
                        .map(|s| SecondStats::of(s.micros, s.errors))
                        .collect(),
                })
                .collect(),
        }
    }
}

/// Each operation's tally as statistics over `secs` seconds.
fn op_stats(tallies: BTreeMap<String, QueryTally>, secs: f64) -> Vec<OpStats> {
    tallies
        .into_iter()
        .map(|(name, t)| OpStats {
            name,
            ok: t.ok,
            errors: t.errors,
            rows: t.rows,
            per_second: t.ok as f64 / secs,
            latency: t.latency.summary(),
        })
        .collect()
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
