//! One operation run on a copy while an open-model load of the scenario runs beside it:
//! the load is started, the operation waits `before` into its measurement, runs, and the
//! load's per-query figures are split into before/during/after around it.

use super::{
    cron, locks, operation_connection, phases, queries, work, Alone, Operation, OpsOptions,
    QueryPhases, StatementRun, UnderLoad, Work, LOCK_SAMPLE_EVERY,
};
use crate::catalog::Kind;
use crate::measure::load::recorder::{LoadFigures, QuerySeconds, SecondStats};
use crate::measure::load::scenario_run::{self, ScenarioOptions};
use crate::measure::load::LoadShape;
use crate::scenario::Scenario;
use crate::sql_files::sql;
use crate::target::Target;
use anyhow::{bail, Result};
use sqlx::postgres::PgConnection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub(super) async fn run(
    target: &Target,
    scenario: &Scenario,
    m: &Work,
    (alone, alone_extra): (Alone, work::Extra),
    opts: &OpsOptions,
    rate: f64,
) -> Result<Operation> {
    let expected = m.expected_under_load(alone.seconds, opts);
    let start = Arc::new(OnceLock::new());
    let load_opts = load_options(opts, expected, rate, start.clone());
    let sampler = locks::LockSampler::start(
        target.connect().await?,
        LOCK_SAMPLE_EVERY,
        query_names(scenario),
    );
    let mut conn = operation_connection(target, opts).await?;
    let pid: i32 = sqlx::query_scalar(sql(&queries().backend_pid))
        .fetch_one(&mut conn)
        .await?;
    sampler.set_operation_pid(pid);
    let mut probe = target.connect().await?;

    let load_done = AtomicBool::new(false);
    let load = async {
        let outcome = scenario_run::run(target, scenario, &load_opts).await;
        load_done.store(true, Ordering::SeqCst);
        outcome
    };
    let operation = operate(target, m, opts, &start, &load_done, &mut conn, &mut probe);
    let (load, op) = tokio::join!(load, operation);
    let lock_waits = sampler.finish().await;
    let load = load?;
    let op = op?;
    Ok(assemble(
        scenario,
        m,
        alone,
        alone_extra,
        load.figures,
        op,
        lock_waits,
    ))
}

/// The load: `opts.users` at `rate`, long enough for `before`, the operation and `after`.
fn load_options(
    opts: &OpsOptions,
    expected: Duration,
    rate: f64,
    start: Arc<OnceLock<Instant>>,
) -> ScenarioOptions {
    ScenarioOptions {
        shape: LoadShape {
            clients: opts.users,
            duration: opts.before + expected + opts.after,
            warmup: opts.warmup,
            ramp: Duration::ZERO,
            rate: Some(rate),
            latency_limit: None,
            seed: opts.seed,
        },
        pool: None,
        goose_report: None,
        statement_timeout: opts.statement_timeout,
        think_scale: 0.0,
        query_seconds: true,
        measure_start: Some(start),
        shard: None,
        start_at: None,
        pooler: None,
    }
}

/// (SQL, query name) of every statement the load sends, so lock waiters are named.
fn query_names(scenario: &Scenario) -> Vec<(String, String)> {
    scenario
        .steps()
        .flat_map(|s| {
            let q = &s.query;
            std::iter::once((q.sql.clone(), q.name.clone()))
                .chain(q.sql_policy_only.clone().map(|p| (p, q.name.clone())))
        })
        .collect()
}

/// What the operation did beside the load.
struct Beside {
    measure_from: Instant,
    finished: Instant,
    statements: Vec<StatementRun>,
    error: Option<anyhow::Error>,
    wal_bytes: i64,
    extra: work::Extra,
}

/// Waits for the load's measurement to start, then for `before`, and runs the operation;
/// an interrupt (or a load that ended first) means the operation never starts.
async fn operate(
    target: &Target,
    m: &Work,
    opts: &OpsOptions,
    start: &OnceLock<Instant>,
    load_done: &AtomicBool,
    conn: &mut PgConnection,
    probe: &mut PgConnection,
) -> Result<Beside> {
    let measure_from = loop {
        if let Some(t) = start.get() {
            break *t;
        }
        crate::interrupt::check()?;
        if load_done.load(Ordering::SeqCst) {
            bail!("the load ended before its measurement started");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::select! {
        _ = tokio::time::sleep_until((measure_from + opts.before).into()) => {}
        _ = crate::interrupt::wait() => bail!(crate::interrupt::Interrupted),
    }
    let lsn: String = sqlx::query_scalar(sql(&queries().wal_lsn))
        .fetch_one(&mut *probe)
        .await?;
    let (statements, outcome, extra) = m.under_load(target, conn, opts, measure_from).await;
    let finished = Instant::now();
    let wal_bytes: i64 = sqlx::query_scalar(sql(&queries().wal_since))
        .bind(&lsn)
        .fetch_one(&mut *probe)
        .await?;
    Ok(Beside {
        measure_from,
        finished,
        statements,
        error: outcome.err(),
        wal_bytes,
        extra,
    })
}

/// The operation's record: the load's queries split around it, the affected ones first.
fn assemble(
    scenario: &Scenario,
    m: &Work,
    alone: Alone,
    alone_extra: work::Extra,
    figures: LoadFigures,
    op: Beside,
    lock_waits: locks::LockWaits,
) -> Operation {
    let started_s = op.statements.first().map_or(0.0, |s| s.started_s);
    let finished_s = op
        .finished
        .saturating_duration_since(op.measure_from)
        .as_secs_f64();
    let tables = m.tables();
    let mut cron = op.extra.cron;
    if let Some(c) = &mut cron {
        cron::line_up(c, &figures.query_seconds);
    }
    let affected = |query: &str| {
        scenario
            .query(query)
            .is_some_and(|q| tables.iter().any(|t| super::mentions(&q.sql, t)))
    };
    let mut queries: Vec<QueryPhases> = figures
        .query_seconds
        .iter()
        .map(|q| phases::split(q, started_s, finished_s, affected(&q.name)))
        .collect();
    queries.sort_by(|a, b| b.affected.cmp(&a.affected).then(a.query.cmp(&b.query)));
    let kind_of = |query: &str| scenario.query(query).map(|q| q.kind);
    let longest = |kind: Kind| {
        lock_waits
            .groups
            .iter()
            .filter(|g| g.blocked_by_operation && kind_of(&g.waiter) == Some(kind))
            .map(|g| g.max_wait_ms)
            .fold(0.0, f64::max)
    };
    // The chart needs per-second figures only, not every sample.
    let affected_seconds = figures
        .query_seconds
        .iter()
        .filter(|q| affected(&q.name))
        .map(|q| QuerySeconds {
            name: q.name.clone(),
            seconds: q
                .seconds
                .iter()
                .map(|s| SecondStats {
                    micros: Vec::new(),
                    ..s.clone()
                })
                .collect(),
        })
        .collect();
    Operation {
        name: m.name(),
        file: m.file(),
        backup: alone_extra.backup,
        cron,
        tables: tables.clone(),
        alone,
        under_load: UnderLoad {
            started_s,
            finished_s,
            seconds: finished_s - started_s,
            wal_bytes: op.wal_bytes,
            statements: op.statements,
            error: op.error.map(|e| format!("{e:#}")),
            outlasted_load: finished_s > figures.measured_seconds,
            load_ok: figures.ok,
            load_failed: figures.failed,
            load_tps: figures.tps,
        },
        longest_read_block_ms: longest(Kind::Read),
        longest_write_block_ms: longest(Kind::Write),
        queries,
        affected_seconds,
        timeline: figures.timeline,
        errors: figures.errors,
        lock_waits,
    }
}
