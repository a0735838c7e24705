//! Ad hoc load: one prepared statement on C dedicated connections, no think time; closed
//! model by default, open model with a target rate. Used to calibrate against pgbench.

use super::recorder::{is_connection_error, sqlstate_of, LoadFigures, Recorders};
use super::schedule::Schedule;
use super::LoadShape;
use crate::interrupt;
use crate::target::Target;
use anyhow::{bail, Result};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Executor, SqlSafeStr, SqlStr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The name the statement is recorded under.
const ADHOC_QUERY: &str = "adhoc";

/// Runs the statement as fast as the clients allow (closed) or at `shape.rate` (open).
pub async fn run(target: &Target, sql: &str, shape: &LoadShape) -> Result<LoadFigures> {
    if sql.trim().is_empty() {
        bail!("--sql is empty");
    }
    let options = target.connect_options()?;
    // Prepare once up front so a bad statement is one clear error, not a run of failures.
    {
        let mut probe = target.connect().await?;
        probe
            .prepare(AssertSqlSafe(sql.to_string()).into_sql_str())
            .await
            .map_err(|e| anyhow::anyhow!("--sql does not prepare: {e}"))?;
    }
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + shape.warmup;
    let deadline = measure_from + shape.duration;
    let recorders = Arc::new(Recorders::new(shape.clients, measure_from));
    let schedule = shape
        .rate
        .map(|r| Arc::new(Schedule::new(start, r, shape.seed)));
    // Like `pgbench -j`: one OS thread per core, each with a single-threaded runtime that
    // owns its clients' connections. Nothing migrates between threads, so a response wakes
    // its client on the thread already polling that socket (measured: a work-stealing
    // runtime costs about a tenth of the TPS here, see benches/load_vs_pgbench.sh).
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(shape.clients)
        .max(1);
    let mut handles = Vec::with_capacity(threads);
    for thread in 0..threads {
        let workers: Vec<Worker> = (thread..shape.clients)
            .step_by(threads)
            .map(|worker| Worker {
                id: worker,
                sql: AssertSqlSafe(Arc::<str>::from(sql)).into_sql_str(),
                options: options.clone(),
                recorders: recorders.clone(),
                schedule: schedule.clone(),
                latency_limit: shape.latency_limit,
                // Stagger starts over the ramp.
                start: start
                    + shape
                        .ramp
                        .mul_f64(worker as f64 / shape.clients.max(1) as f64),
                deadline,
            })
            .collect();
        let url = target.url.clone();
        handles.push(tokio::task::spawn_blocking(move || {
            run_thread(workers, &url)
        }));
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let joined = async {
        let mut outcome = Ok(());
        for handle in handles {
            if let Err(e) = handle.await.map_err(anyhow::Error::from).and_then(|r| r) {
                outcome = outcome.and(Err(e));
            }
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        outcome
    };
    let (joined, ()) = tokio::join!(
        joined,
        super::live::show(done.clone(), || Some(&*recorders))
    );
    joined?;
    let measured = Instant::now()
        .min(deadline)
        .saturating_duration_since(measure_from);
    Ok(recorders.finish(measured))
}

/// Connects this thread's clients, then runs them to the deadline on its own runtime.
fn run_thread(workers: Vec<Worker>, url: &crate::target::SecretUrl) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut set = tokio::task::JoinSet::new();
        for w in workers {
            let conn = w.options.connect().await.map_err(|e| {
                anyhow::anyhow!(
                    "connecting client {}: {}",
                    w.id,
                    crate::target::scrub(&e.to_string(), url)
                )
            })?;
            set.spawn(w.run(conn));
        }
        while let Some(r) = set.join_next().await {
            r?;
        }
        Ok(())
    })
}

struct Worker {
    id: usize,
    sql: SqlStr,
    options: PgConnectOptions,
    recorders: Arc<Recorders>,
    schedule: Option<Arc<Schedule>>,
    latency_limit: Option<Duration>,
    start: Instant,
    deadline: Instant,
}

impl Worker {
    async fn run(self, conn: PgConnection) {
        let mut conn = Some(conn);
        tokio::time::sleep_until(self.start.into()).await;
        loop {
            if interrupt::interrupted() {
                return;
            }
            let intended = match &self.schedule {
                Some(s) => {
                    let at = s.next();
                    if at >= self.deadline {
                        return;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = interrupt::wait() => return,
                    }
                    at
                }
                None => Instant::now(),
            };
            if intended >= self.deadline {
                return;
            }
            let started = Instant::now();
            if self.schedule.is_some() {
                let lag = started.saturating_duration_since(intended);
                self.recorders.lag(self.id, intended, lag);
                if self.latency_limit.is_some_and(|limit| lag > limit) {
                    self.recorders.dropped(self.id, intended);
                    continue;
                }
            }
            let Some(c) = conn.as_mut() else {
                conn = self.reconnect(intended).await;
                continue;
            };
            // sqlx::query (not a bare string) takes the extended protocol with a cached
            // prepared statement, like `pgbench -M prepared`.
            let outcome = sqlx::query(self.sql.clone()).execute(&mut *c).await;
            let finished = Instant::now();
            match outcome {
                Ok(done) => self.recorders.single_ok(
                    self.id,
                    ADHOC_QUERY,
                    intended,
                    started,
                    finished,
                    done.rows_affected(),
                ),
                Err(e) => {
                    self.recorders.query_error(
                        self.id,
                        ADHOC_QUERY,
                        started,
                        &sqlstate_of(&e),
                        &e.to_string(),
                    );
                    self.recorders
                        .transaction(self.id, ADHOC_QUERY, intended, finished, false);
                    if is_connection_error(&e) {
                        conn = None;
                    }
                }
            }
        }
    }

    /// Reconnects after a lost connection; a failed attempt counts as a failed request.
    async fn reconnect(&self, intended: Instant) -> Option<PgConnection> {
        match self.options.connect().await {
            Ok(c) => Some(c),
            Err(e) => {
                let now = Instant::now();
                self.recorders.query_error(
                    self.id,
                    ADHOC_QUERY,
                    now,
                    &sqlstate_of(&e),
                    &e.to_string(),
                );
                self.recorders
                    .transaction(self.id, ADHOC_QUERY, intended, now, false);
                tokio::time::sleep(Duration::from_millis(200)).await;
                None
            }
        }
    }
}
