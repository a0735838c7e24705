//! One goose user's work: its on-start (connection, drawn user, its rows) and the execution
//! of a scenario transaction: steps chosen by probability, values drawn for the user, each
//! request PostgREST-style (or all steps in one database transaction when atomic), every
//! statement recorded in goose and in storybench's recorders, think times in the closed
//! model, the intended start from the shared schedule in the open model.

use super::recorder::{is_connection_error, sqlstate_of};
use super::scenario_run::{Clock, Shared};
use crate::auth::{begin_request_with, Principal};
use crate::catalog::QuerySpec;
use crate::params::{bind, queries, rng_for, ParamValue, UserRows};
use crate::pooler::Protocol;
use crate::scenario::{Part, PrincipalKind, Think, Transaction as ScenarioTx};
use goose::prelude::*;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Postgres, SqlSafeStr, SqlStr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A scenario transaction ready to run: prepared statement texts, recorder names.
pub(super) struct TxPlan {
    /// `scenario.transaction`, the name recorders and goose use.
    pub key: String,
    atomic: bool,
    principal: PrincipalKind,
    think: Think,
    steps: Vec<StepPlan>,
}

struct StepPlan {
    spec: Arc<QuerySpec>,
    sql: SqlStr,
    probability: f64,
    think: Think,
}

impl TxPlan {
    pub fn new(part: &Part, t: &ScenarioTx) -> Self {
        Self {
            key: format!("{}.{}", part.name, t.name),
            atomic: t.atomic,
            principal: t.principal,
            think: t.think,
            steps: t
                .steps
                .iter()
                .map(|s| StepPlan {
                    spec: s.query.clone(),
                    sql: AssertSqlSafe(Arc::<str>::from(s.query.sql.as_str())).into_sql_str(),
                    probability: s.probability,
                    think: s.think,
                })
                .collect(),
        }
    }
}

/// Per-user state in goose session data (Clone + Sync: shared behind a mutex the user
/// alone locks).
#[derive(Clone)]
pub(super) struct UserState(Arc<tokio::sync::Mutex<UserInner>>);

struct UserInner {
    user: Uuid,
    rows: Arc<UserRows>,
    rng: ChaCha8Rng,
    conn: Option<PgConnection>,
}

/// Goose on-start: draw the user by activity, read its rows, open its connection.
pub(super) async fn on_start(user: &mut GooseUser, shared: &Shared) -> TransactionResult {
    let mut rng = rng_for(
        shared.seed,
        &format!("goose-user-{}", user.weighted_users_index),
    );
    let mut conn = if shared.pool.is_none() {
        match shared.options.connect().await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("goose user {}: connecting: {e}", user.weighted_users_index);
                shared.reconnect_failures.fetch_add(1, Ordering::SeqCst);
                None
            }
        }
    } else {
        None
    };
    let (subject, rows) = match &shared.population {
        Some(p) => {
            let subject = p.by_activity(&mut rng);
            let rows = match (&shared.setup, &mut conn, &shared.pool) {
                (Some(pool), _, _) | (None, None, Some(pool)) => match pool.acquire().await {
                    Ok(mut c) => p.user_rows(&mut c, subject).await.ok(),
                    Err(_) => None,
                },
                (None, Some(c), _) => p.user_rows(c, subject).await.ok(),
                (None, None, None) => None,
            };
            (subject, rows.unwrap_or_default())
        }
        None => (Uuid::nil(), Arc::default()),
    };
    user.set_session_data(UserState(Arc::new(tokio::sync::Mutex::new(UserInner {
        user: subject,
        rows,
        rng,
        conn,
    }))));
    shared.user_started();
    Ok(())
}

/// A connection for one request: the user's own, or one from the shared pool.
enum Lease<'a> {
    Own(&'a mut PgConnection),
    Pooled(PoolConnection<Postgres>),
}

impl Lease<'_> {
    fn conn(&mut self) -> &mut PgConnection {
        match self {
            Lease::Own(c) => c,
            Lease::Pooled(c) => c,
        }
    }
}

/// A failed request: the statement it failed on, its SQLSTATE and message.
struct Failure {
    query: String,
    sqlstate: String,
    message: String,
    lost_connection: bool,
}

impl Failure {
    fn from(query: &str, e: &sqlx::Error) -> Self {
        Self {
            query: query.to_string(),
            sqlstate: sqlstate_of(e),
            message: e.to_string(),
            lost_connection: is_connection_error(e),
        }
    }
}

/// The steps one execution runs, with their values, and as whom.
struct Chosen<'p> {
    steps: Vec<(&'p StepPlan, Vec<ParamValue>)>,
    who: Option<Principal>,
}

/// One execution of a scenario transaction.
pub(super) async fn run(user: &mut GooseUser, shared: &Shared, plan: &TxPlan) -> TransactionResult {
    let Some(clock) = shared.clock.get() else {
        // Users wait until every user has started.
        tokio::time::sleep(Duration::from_millis(20)).await;
        return Ok(());
    };
    if Instant::now() < clock.begin {
        // A shard's users wait for the shared start (interruptible: the sleep is short).
        sleep_until(clock.begin.min(Instant::now() + Duration::from_millis(200))).await;
        return Ok(());
    }
    if Instant::now() >= clock.deadline || crate::interrupt::interrupted() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        return Ok(());
    }
    let worker = user.weighted_users_index;
    let open = clock.schedule.is_some();
    let Some(intended) = intended_start(shared, clock, worker).await else {
        return Ok(());
    };
    let Some(state) = user.get_session_data::<UserState>().cloned() else {
        return Err(Box::new(TransactionError::Custom("no session data".into())));
    };
    let mut inner = state.0.lock().await;
    let UserInner {
        user: subject,
        rows,
        rng,
        conn,
    } = &mut *inner;
    let chosen = choose(plan, shared, *subject, rows, rng);
    let (thought, failure) = run_steps(user, shared, clock, plan, &chosen, conn, rng).await;
    let finished = Instant::now();
    clock.recorders.transaction(
        worker,
        &plan.key,
        intended + thought,
        finished,
        failure.is_none(),
    );
    if !open {
        think(rng, &plan.think, shared.think_scale, clock).await;
    }
    drop(inner);
    match failure {
        None => Ok(()),
        Some(f) => Err(Box::new(TransactionError::Custom(format!(
            "{}: {} {}",
            f.query, f.sqlstate, f.message
        )))),
    }
}

/// When this execution was meant to start: now in the closed model; in the open model the
/// schedule's next arrival, slept for (its lag recorded). None: past the deadline, or
/// dropped for a lag over `--latency-limit`.
async fn intended_start(shared: &Shared, clock: &Clock, worker: usize) -> Option<Instant> {
    let Some(s) = &clock.schedule else {
        return Some(Instant::now());
    };
    let at = s.next();
    if at >= clock.deadline {
        sleep_until(at.min(clock.deadline + Duration::from_millis(50))).await;
        return None;
    }
    // Already due: it queued while every user was busy; else this user slept for it.
    let queued = at <= Instant::now();
    sleep_until(at).await;
    let lag = Instant::now().saturating_duration_since(at);
    clock.recorders.lag(worker, at, lag);
    if !queued {
        clock.recorders.wake_lag(worker, at, lag);
    }
    if shared.latency_limit.is_some_and(|l| lag > l) {
        clock.recorders.dropped(worker, at);
        return None;
    }
    Some(at)
}

/// Which steps run this time, and their values, drawn before any request.
fn choose<'p>(
    plan: &'p TxPlan,
    shared: &Shared,
    subject: Uuid,
    rows: &UserRows,
    rng: &mut ChaCha8Rng,
) -> Chosen<'p> {
    let mut steps: Vec<(&StepPlan, Vec<ParamValue>)> = Vec::new();
    for s in &plan.steps {
        if s.probability < 1.0 && rng.random::<f64>() >= s.probability {
            continue;
        }
        let values = match &shared.population {
            Some(p) => s
                .spec
                .params
                .iter()
                .map(|&sampler| p.value(sampler, subject, rows, rng))
                .collect(),
            None => Vec::new(),
        };
        steps.push((s, values));
    }
    let who = match plan.principal {
        PrincipalKind::App => Some(Principal::User(subject)),
        PrincipalKind::Service => Some(Principal::Service),
        PrincipalKind::Direct => None,
    };
    Chosen { steps, who }
}

/// Runs the chosen steps: one request each, or all in one when atomic, thinking between
/// them in the closed model. Returns the time spent thinking and the failure that ended it.
async fn run_steps(
    user: &mut GooseUser,
    shared: &Shared,
    clock: &Clock,
    plan: &TxPlan,
    chosen: &Chosen<'_>,
    conn: &mut Option<PgConnection>,
    rng: &mut ChaCha8Rng,
) -> (Duration, Option<Failure>) {
    let worker = user.weighted_users_index;
    let open = clock.schedule.is_some();
    let mut thought = Duration::ZERO;
    let groups: Vec<&[(&StepPlan, Vec<ParamValue>)]> = if plan.atomic {
        vec![&chosen.steps[..]]
    } else {
        chosen.steps.chunks(1).collect()
    };
    for (gi, group) in groups.iter().enumerate() {
        let Some(first) = group.first() else { continue };
        let lease = match lease(shared, clock, worker, conn, &first.0.spec.name).await {
            Ok(l) => l,
            Err(f) => {
                record_failure(user, clock, worker, &f).await;
                return (thought, Some(f));
            }
        };
        let who = chosen.who.as_ref();
        let outcome = request(user, shared, clock, worker, lease, who, group).await;
        if let Err(f) = outcome {
            if f.lost_connection {
                *conn = None;
            }
            return (thought, Some(f));
        }
        // Closed model: the user reads before the next step (never inside an atomic one).
        let last = gi + 1 == groups.len();
        if !open && !plan.atomic && !last {
            thought += think(rng, &first.0.think, shared.think_scale, clock).await;
        }
    }
    (thought, None)
}

async fn sleep_until(at: Instant) {
    tokio::select! {
        _ = tokio::time::sleep_until(at.into()) => {}
        _ = crate::interrupt::wait() => {}
    }
}

/// Sleeps a think time (cut at the deadline); returns how long it slept.
async fn think(rng: &mut ChaCha8Rng, t: &Think, scale: f64, clock: &Clock) -> Duration {
    if t.is_zero() || scale <= 0.0 {
        return Duration::ZERO;
    }
    let d = if t.max > t.min {
        t.min + (t.max - t.min).mul_f64(rng.random::<f64>())
    } else {
        t.min
    }
    .mul_f64(scale);
    let start = Instant::now();
    sleep_until((start + d).min(clock.deadline)).await;
    start.elapsed()
}

/// The connection for a request: the user's own (reconnecting after a lost one) or one
/// acquired from the pool, its wait recorded as pool wait.
async fn lease<'a>(
    shared: &Shared,
    clock: &Clock,
    worker: usize,
    own: &'a mut Option<PgConnection>,
    query: &str,
) -> Result<Lease<'a>, Failure> {
    if let Some(pool) = &shared.pool {
        let asked = Instant::now();
        let c = pool.acquire().await.map_err(|e| Failure::from(query, &e))?;
        clock.recorders.pool_wait(worker, asked, asked.elapsed());
        return Ok(Lease::Pooled(c));
    }
    if own.is_none() {
        match shared.options.connect().await {
            Ok(c) => {
                shared.reconnects.fetch_add(1, Ordering::SeqCst);
                *own = Some(c);
            }
            Err(e) => {
                shared.reconnect_failures.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                let mut f = Failure::from("connect", &e);
                f.sqlstate = "connection".into();
                return Err(f);
            }
        }
    }
    Ok(Lease::Own(own.as_mut().expect("connected above")))
}

/// One request: its steps in one database transaction (as `who`, or bare for calibration).
async fn request(
    user: &mut GooseUser,
    shared: &Shared,
    clock: &Clock,
    worker: usize,
    mut lease: Lease<'_>,
    who: Option<&Principal>,
    steps: &[(&StepPlan, Vec<ParamValue>)],
) -> Result<(), Failure> {
    let conn = lease.conn();
    let first = &steps[0].0.spec.name;
    let protocol = shared.protocol;
    let Some(who) = who else {
        // Through a transaction pooler an unnamed statement lives only inside a
        // transaction: bare statements get one.
        if protocol == Protocol::Unnamed {
            let mut tx = conn.begin().await.map_err(|e| Failure::from(first, &e))?;
            for (s, values) in steps {
                statement(user, clock, worker, &mut tx, s, values, protocol).await?;
            }
            tx.commit().await.map_err(|e| Failure::from(first, &e))?;
        } else {
            for (s, values) in steps {
                statement(user, clock, worker, conn, s, values, protocol).await?;
            }
        }
        return Ok(());
    };
    let mut tx = conn.begin().await.map_err(|e| Failure::from(first, &e))?;
    let setup = async {
        begin_request_with(&mut tx, who, protocol).await?;
        sqlx::query(AssertSqlSafe(queries().request_settings.as_str()))
            .persistent(protocol.persistent())
            .bind(&shared.search_path)
            .bind(&shared.statement_timeout)
            .execute(&mut *tx)
            .await?;
        anyhow::Ok(())
    };
    if let Err(e) = setup.await {
        let f = match e.downcast_ref::<sqlx::Error>() {
            Some(se) => Failure::from(first, se),
            None => Failure {
                query: first.clone(),
                sqlstate: "client".into(),
                message: e.to_string(),
                lost_connection: false,
            },
        };
        record_failure(user, clock, worker, &f).await;
        return Err(f);
    }
    for (s, values) in steps {
        statement(user, clock, worker, &mut tx, s, values, protocol).await?;
    }
    let last = &steps[steps.len() - 1].0.spec.name;
    if let Err(e) = tx.commit().await {
        let f = Failure::from(last, &e);
        record_failure(user, clock, worker, &f).await;
        return Err(f);
    }
    Ok(())
}

/// One prepared statement, recorded in goose and in the recorders.
async fn statement(
    user: &mut GooseUser,
    clock: &Clock,
    worker: usize,
    conn: &mut PgConnection,
    s: &StepPlan,
    values: &[ParamValue],
    protocol: Protocol,
) -> Result<(), Failure> {
    let started = Instant::now();
    let q = bind(
        sqlx::query(s.sql.clone()).persistent(protocol.persistent()),
        values,
    );
    let outcome = if s.spec.is_read() {
        q.fetch_all(&mut *conn).await.map(|r| r.len() as u64)
    } else {
        q.execute(&mut *conn).await.map(|d| d.rows_affected())
    };
    let elapsed = started.elapsed();
    let name = &s.spec.name;
    match outcome {
        Ok(rows) => {
            clock
                .recorders
                .query_ok(worker, name, started, elapsed, rows);
            let _ = user
                .record_custom_request_duration("SQL", name, elapsed, true, None, None)
                .await;
            Ok(())
        }
        Err(e) => {
            let f = Failure::from(name, &e);
            let _ = user
                .record_custom_request_duration("SQL", name, elapsed, false, None, Some(&f.message))
                .await;
            clock
                .recorders
                .query_error(worker, name, started, &f.sqlstate, &f.message);
            Err(f)
        }
    }
}

/// A failure outside a statement (request set-up, commit): counted against the query.
async fn record_failure(user: &mut GooseUser, clock: &Clock, worker: usize, f: &Failure) {
    let _ = user
        .record_custom_request_duration(
            "SQL",
            &f.query,
            Duration::ZERO,
            false,
            None,
            Some(&f.message),
        )
        .await;
    clock
        .recorders
        .query_error(worker, &f.query, Instant::now(), &f.sqlstate, &f.message);
}
