//! Scenario load through goose: one goose scenario per scenario file, one goose transaction
//! per scenario transaction, each goose user a seeded app user holding its own connection in
//! session data (or sharing a pool of P connections, whose wait is recorded apart). Goose
//! drives the users and writes its own report; storybench's recorders measure (per query
//! and per transaction, HDR), and storybench's schedule sets arrivals in the open model,
//! because goose's throttle does not limit custom requests.

use super::recorder::{LoadFigures, Recorders};
use super::scenario_tx::{self, TxPlan};
use super::schedule::Schedule;
use super::LoadShape;
use crate::params::Population;
use crate::scenario::Scenario;
use crate::target::Target;
use anyhow::{anyhow, Context, Result};
use goose::config::GooseDefault;
use goose::prelude::*;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A dummy host: goose needs one, storybench sends it nothing.
const GOOSE_HOST: &str = "http://storybench.invalid";

#[derive(Clone, Debug)]
pub struct ScenarioOptions {
    pub shape: LoadShape,
    /// Users share a pool of this many connections (else each owns one).
    pub pool: Option<u32>,
    /// Where goose writes its HTML report (none: no report).
    pub goose_report: Option<PathBuf>,
    pub statement_timeout: Duration,
    /// Closed model: think times are multiplied by this (0: no think time).
    pub think_scale: f64,
    /// Keep every query's latencies per second (`LoadFigures::query_seconds`).
    pub query_seconds: bool,
    /// Set to the instant measurement starts (after launch and warm-up), for work that
    /// must happen at a given point of the measured window (an operation under load).
    pub measure_start: Option<Arc<OnceLock<Instant>>>,
    /// Shard I of N of a sharded load: only its part of the seeded users; per-second
    /// histograms are kept so `storybench merge` can add the shards' timelines exactly.
    pub shard: Option<super::shard::Shard>,
    /// A sharded load's shared wall-clock start: the users connect and read their rows
    /// before it and begin at it, so every shard's measured window starts together
    /// however long its own set-up took.
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The users connect through this pooler (storybench's samplers stay direct).
    pub pooler: Option<Arc<crate::pooler::Pooler>>,
}

/// What goose itself counted, beside storybench's figures.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GooseSummary {
    pub users: usize,
    /// Requests (SQL statements) goose recorded, and how many of them failed.
    pub requests: u64,
    pub failures: u64,
    /// Mean response time of the recorded requests, as goose aggregates them (ms).
    pub mean_ms: f64,
    pub report_file: Option<String>,
    /// Connections re-established after a lost one, and failed attempts to.
    pub reconnects: u64,
    pub reconnect_failures: u64,
    pub pool: Option<u32>,
}

pub struct ScenarioOutcome {
    pub figures: LoadFigures,
    pub goose: GooseSummary,
    /// The measured window (after launch and warm-up), for samplers running beside the run.
    pub window: (Instant, Instant),
}

/// The run's clock, fixed once every user has started (launch is not measured).
pub(super) struct Clock {
    /// When the users begin (launch, or the shared start if that is later).
    pub begin: Instant,
    pub recorders: Recorders,
    pub schedule: Option<Schedule>,
    pub measure_from: Instant,
    pub deadline: Instant,
}

/// Shared by every goose user of one run.
pub(super) struct Shared {
    pub options: PgConnectOptions,
    pub pool: Option<PgPool>,
    /// Named or unnamed statements: unnamed through a transaction pooler.
    pub protocol: crate::pooler::Protocol,
    /// Direct connections for the users' set-up reads (their rows) when the users
    /// themselves go through a pooler: set-up is not measured and must not queue there.
    pub setup: Option<PgPool>,
    pub population: Option<Arc<Population>>,
    pub search_path: String,
    pub statement_timeout: String,
    pub seed: u64,
    pub users: usize,
    pub rate: Option<f64>,
    pub latency_limit: Option<Duration>,
    pub think_scale: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub started: AtomicUsize,
    pub clock: OnceLock<Clock>,
    pub reconnects: AtomicU64,
    pub reconnect_failures: AtomicU64,
    pub query_seconds: bool,
    pub measure_start: Option<Arc<OnceLock<Instant>>>,
    pub encode_seconds: bool,
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Shared {
    /// Counts a started user; the last one starts the clock.
    pub fn user_started(&self) {
        if self.started.fetch_add(1, Ordering::SeqCst) + 1 >= self.users {
            let now = Instant::now();
            let until_start = match self.start_at.map(|at| at - chrono::Utc::now()) {
                Some(d) if d >= chrono::TimeDelta::zero() => d.to_std().unwrap_or_default(),
                Some(late) => {
                    crate::say!(
                        "  shard: the users were ready {:.3} s after the shared start: beginning now",
                        -late.as_seconds_f64()
                    );
                    Duration::ZERO
                }
                None => Duration::ZERO,
            };
            let now = now + until_start;
            let measure_from = now + self.warmup;
            // A shard holds ~50 HDR histograms of ~190 KB: a few shards (the runtime has
            // one thread per core) keep contention low without growing with the users.
            let mut recorders = Recorders::new(self.users.min(shards()), measure_from);
            if self.query_seconds {
                recorders = recorders.with_query_seconds();
            }
            if self.encode_seconds {
                recorders = recorders.with_encoded_seconds();
            }
            if let Some(start) = &self.measure_start {
                let _ = start.set(measure_from);
            }
            let _ = self.clock.set(Clock {
                begin: now,
                recorders,
                schedule: self.rate.map(|r| Schedule::new(now, r, self.seed)),
                measure_from,
                deadline: measure_from + self.duration,
            });
        }
    }
}

fn shards() -> usize {
    2 * std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Runs the scenario under goose and returns storybench's figures and goose's own counts.
pub async fn run(
    target: &Target,
    scenario: &Scenario,
    opts: &ScenarioOptions,
) -> Result<ScenarioOutcome> {
    opts.shape.validate()?;
    let shared = Arc::new(prepare(target, scenario, opts).await?);
    let attack = build_attack(scenario, &opts.shape, &shared, opts.goose_report.as_deref())?;
    let metrics = execute(attack, &shared).await?;
    outcome(&shared, &metrics, opts)
}

/// What every user shares: connection options (direct or through the pooler), the
/// optional pool, the seeded population the users play.
async fn prepare(target: &Target, scenario: &Scenario, opts: &ScenarioOptions) -> Result<Shared> {
    let shape = &opts.shape;
    let mut conn = target.connect().await?;
    let variant = crate::schema::current_variant(&mut conn)
        .await?
        .unwrap_or_default();
    let population = if scenario.needs_population() {
        let dataset = crate::seed::require_complete(&mut conn).await?;
        let all = Population::load(&mut conn, dataset.anchor).await?;
        Some(Arc::new(match opts.shard {
            Some(s) => all.shard(s.index as usize, s.count as usize)?,
            None => all,
        }))
    } else {
        None
    };
    let (options, protocol, setup) = match &opts.pooler {
        Some(p) => (
            p.options_for(target)?,
            p.protocol(),
            Some(target.pool(2).await?),
        ),
        None => (
            target.connect_options()?,
            crate::pooler::Protocol::Prepared,
            None,
        ),
    };
    let pool = match opts.pool {
        Some(p) => Some(
            // No ping before each acquire: the pool's own cost is what is measured.
            PgPoolOptions::new()
                .max_connections(p.max(1))
                .min_connections(p.max(1))
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(60))
                .connect_with(options.clone())
                .await
                .map_err(|e| anyhow!("opening the pool of {p} connections: {e}"))?,
        ),
        None => None,
    };
    let ctx = crate::measure::exec::RequestContext::new(variant.api_usage, opts.statement_timeout);
    Ok(Shared {
        options,
        pool,
        protocol,
        setup,
        population,
        search_path: ctx.search_path,
        statement_timeout: ctx.statement_timeout,
        seed: shape.seed,
        users: shape.clients,
        rate: shape.rate,
        latency_limit: shape.latency_limit,
        think_scale: opts.think_scale.max(0.0),
        warmup: shape.warmup,
        duration: shape.duration,
        started: AtomicUsize::new(0),
        clock: OnceLock::new(),
        reconnects: AtomicU64::new(0),
        reconnect_failures: AtomicU64::new(0),
        query_seconds: opts.query_seconds,
        measure_start: opts.measure_start.clone(),
        encode_seconds: opts.shard.is_some(),
        start_at: opts.start_at,
    })
}

/// Runs the attack with the live view and the interrupt bridge beside it.
async fn execute(attack: GooseAttack, shared: &Shared) -> Result<GooseMetrics> {
    let done = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(bridge_interrupts(done.clone()));
    let live = super::live::show(done.clone(), || shared.clock.get().map(|c| &c.recorders));
    let (metrics, ()) = tokio::join!(
        async {
            let m = attack.execute().await;
            done.store(true, Ordering::SeqCst);
            m
        },
        live
    );
    let _ = watcher.await;
    metrics.map_err(|e| anyhow!("goose: {e}"))
}

/// storybench's figures over the measured window, and goose's own counts.
fn outcome(
    shared: &Shared,
    metrics: &GooseMetrics,
    opts: &ScenarioOptions,
) -> Result<ScenarioOutcome> {
    let clients = opts.shape.clients;
    let Some(clock) = shared.clock.get() else {
        anyhow::bail!(
            "the load never started: {} of {} goose users started",
            shared.started.load(Ordering::SeqCst),
            clients
        );
    };
    let measured = Instant::now()
        .min(clock.deadline)
        .saturating_duration_since(clock.measure_from);
    let figures = clock.recorders.finish(measured);
    let (mut requests, mut failures, mut total_us) = (0u64, 0u64, 0u64);
    for r in metrics.requests.values() {
        requests += (r.success_count + r.fail_count) as u64;
        failures += r.fail_count as u64;
        total_us += r.raw_data.total_time_us;
    }
    let goose = GooseSummary {
        users: clients,
        requests,
        failures,
        mean_ms: total_us as f64 / 1000.0 / requests.max(1) as f64,
        report_file: opts
            .goose_report
            .as_ref()
            .filter(|p| p.exists())
            .map(|p| p.display().to_string()),
        reconnects: shared.reconnects.load(Ordering::SeqCst),
        reconnect_failures: shared.reconnect_failures.load(Ordering::SeqCst),
        pool: opts.pool,
    };
    Ok(ScenarioOutcome {
        figures,
        goose,
        window: (clock.measure_from, clock.measure_from + measured),
    })
}

fn build_attack(
    scenario: &Scenario,
    shape: &LoadShape,
    shared: &Arc<Shared>,
    report: Option<&std::path::Path>,
) -> Result<GooseAttack> {
    let g = |e: GooseError| anyhow!("goose: {e}");
    let mut attack =
        GooseAttack::initialize_with_config(goose::config::GooseConfiguration::default())
            .map_err(g)?
            .set_scheduler(GooseScheduler::RoundRobin)
            // One HTTP client shared by every user (never used): by default goose builds one
            // per user, with its own TLS context, ~150 KB each.
            .set_client_builder_without_cookies(
                goose::client::GooseClientBuilder::new().without_cookies(),
            )
            .map_err(g)?;
    for part in &scenario.parts {
        let mut gs = goose::goose::Scenario::new(&part.name)
            .set_weight(part.weight)
            .map_err(g)?;
        let s = shared.clone();
        gs = gs.register_transaction(
            Transaction::new(Arc::new(move |user| {
                let s = s.clone();
                Box::pin(async move { scenario_tx::on_start(user, &s).await })
            }))
            .set_name("connect")
            .set_on_start(),
        );
        for t in &part.transactions {
            let plan = Arc::new(TxPlan::new(part, t));
            let s = shared.clone();
            let name = plan.key.clone();
            gs = gs.register_transaction(
                Transaction::new(Arc::new(move |user| {
                    let (s, plan) = (s.clone(), plan.clone());
                    Box::pin(async move { scenario_tx::run(user, &s, &plan).await })
                }))
                .set_name(&name)
                .set_weight(t.weight)
                .map_err(g)?,
            );
        }
        attack = attack.register_scenario(gs);
    }
    // Goose's run time counts once every user has started; storybench's clock too, so the
    // attack lasts the warm-up and the measurement plus a second for stragglers, and for a
    // shard the wait for the shared start too.
    let until_start = shared
        .start_at
        .and_then(|at| (at - chrono::Utc::now()).to_std().ok())
        .unwrap_or_default();
    let run_time = (until_start + shape.warmup + shape.duration)
        .as_secs_f64()
        .ceil() as usize
        + 1;
    // set_default hands back a Box; unbox after each.
    let mut attack = *attack
        .set_default(GooseDefault::Host, GOOSE_HOST)
        .map_err(g)?;
    attack = *attack
        .set_default(GooseDefault::Users, shape.clients)
        .map_err(g)?;
    attack = *attack
        .set_default(GooseDefault::RunTime, run_time)
        .map_err(g)?;
    attack = *attack.set_default(GooseDefault::Quiet, 1).map_err(g)?;
    attack = *attack
        .set_default(GooseDefault::NoPrintMetrics, true)
        .map_err(g)?;
    // No telnet controller: nothing listens, and runs never fight over its port (goose's
    // WebSocket controller is off unless asked for).
    attack = *attack
        .set_default(GooseDefault::NoTelnet, true)
        .map_err(g)?;
    let ramp = shape.ramp.as_secs_f64().round() as usize;
    attack = if ramp >= 1 && shape.clients >= 2 {
        *attack
            .set_default(GooseDefault::IncreaseTime, ramp)
            .map_err(g)?
    } else {
        // All users within about a second (goose starts them at this many per second).
        let per_second = shape.clients.to_string();
        *attack
            .set_default(GooseDefault::IncreaseRate, per_second.as_str())
            .map_err(g)?
    };
    if let Some(path) = report {
        let path = path
            .to_str()
            .context("the goose report path is not UTF-8")?;
        attack = *attack
            .set_default(GooseDefault::ReportFile, path)
            .map_err(g)?;
    }
    Ok(attack)
}

/// Forwards our interrupt to goose's killswitch, and goose's killswitch (its own stop
/// conditions) to our interrupt flag. Goose resets its killswitch when an attack starts, so
/// an interrupt that came just before is forwarded again until goose has it.
async fn bridge_interrupts(done: Arc<AtomicBool>) {
    while !done.load(Ordering::SeqCst) {
        tokio::select! {
            _ = crate::interrupt::wait(), if !goose::is_killswitch_triggered() => {
                goose::trigger_killswitch("storybench interrupted");
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let ours = crate::interrupt::interrupted();
        let theirs = goose::is_killswitch_triggered();
        if ours && !theirs {
            goose::trigger_killswitch("storybench interrupted");
        } else if theirs && !ours {
            crate::interrupt::raise();
        }
    }
}
