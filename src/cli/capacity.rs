//! `storybench capacity`: the highest arrival rate a scenario sustains within a latency SLO
//! and an error budget, the knee, what saturated, and the equivalent number of app users.

use super::RunSession;
use crate::measure::load::capacity::{self, CapacityOptions, CapacitySection, Slo};
use crate::measure::load::parse_duration;
use crate::target::{DbArgs, Target};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct CapacityArgs {
    /// The scenario: a name in scenarios/ or a scenario file path.
    #[arg(long)]
    pub scenario: String,
    /// Latency objective on transactions, measured from each intended start (e.g. p95<50ms,
    /// p99<=200ms; statistics p50, p90, p95, p99, p999, max, mean).
    #[arg(long, default_value = "p95<50ms", value_parser = Slo::parse)]
    #[serde(skip)]
    pub slo: Slo,
    /// Largest share of failed transactions a step may have (1% or 0.01).
    #[arg(long, default_value = "1%", value_parser = capacity::parse_budget)]
    pub error_budget: f64,
    /// First rate tried (transactions per second); rates then double.
    #[arg(long, default_value_t = 20.0)]
    pub start_rate: f64,
    /// Highest rate tried.
    #[arg(long, default_value_t = 2000.0)]
    pub max_rate: f64,
    /// Measured time of each step.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    #[serde(skip)]
    pub step_duration: Duration,
    /// Warm-up of each step (not counted).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    #[serde(skip)]
    pub warmup: Duration,
    /// Goose users serving the arrivals (the most transactions in flight at once).
    #[arg(long, visible_alias = "clients", default_value_t = 32)]
    pub users: usize,
    /// Users share a pool of P connections instead of each owning one.
    #[arg(long)]
    pub pool: Option<u32>,
    /// At most this many steps (climb, then bisection).
    #[arg(long, default_value_t = 10)]
    pub max_steps: usize,
    /// Seed for arrivals and sampling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// statement_timeout of every request.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    #[serde(skip)]
    pub statement_timeout: Duration,
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl CapacityArgs {
    pub fn options(&self) -> CapacityOptions {
        CapacityOptions {
            slo: self.slo.clone(),
            error_budget: self.error_budget,
            start_rate: self.start_rate,
            max_rate: self.max_rate,
            step_duration: self.step_duration,
            warmup: self.warmup,
            users: self.users,
            pool: self.pool,
            max_steps: self.max_steps,
            seed: self.seed,
            statement_timeout: self.statement_timeout,
        }
    }
}

pub async fn run(db: &DbArgs, args: CapacityArgs) -> Result<i32> {
    if args.max_steps == 0 || args.users == 0 || args.pool == Some(0) {
        bail!("--max-steps, --users and --pool must be at least 1");
    }
    let scenario = crate::scenario::load(&args.scenario)?;
    let mut config = serde_json::to_value(&args)?;
    config["slo"] = args.slo.text.clone().into();
    config["step_duration"] = args.step_duration.as_secs_f64().into();
    let mut session = RunSession::start("capacity", config, args.out.as_deref())?;
    let target = Target::resolve(db)?;
    let outcome = async {
        let mut conn = target.connect().await?;
        crate::schema::check_ownership(&mut conn).await?;
        // Before anything is created (pg_stat_statements): a broken scenario changes nothing.
        scenario.check_sql(&mut conn).await?;
        crate::schema::ensure_pg_stat_statements(&mut conn).await?;
        drop(conn);
        session.collect_environment(&target).await?;
        session.results.dataset = Some(crate::pristine::checked_dataset(&target).await?);
        let opts = args.options();
        let section = session
            .stage_on_copy("capacity", &target, async |t| {
                capacity::search(t, &scenario, &opts).await
            })
            .await?;
        print_summary(&section);
        session.results.capacity = Some(section);
        Ok(())
    }
    .await;
    let code = session.finalize(outcome);
    target.finish()?;
    code
}

pub fn print_summary(c: &CapacitySection) {
    let slo = c.slo.as_ref().map_or("", |s| s.text.as_str());
    match c.sustainable_rate {
        Some(r) => eprintln!(
            "{}: sustains {r:.1} transactions/s within {slo} and {:.2} % errors{}",
            c.scenario,
            c.error_budget * 100.0,
            if c.breaking_rate.is_none() {
                " (the highest rate tried: --max-rate)"
            } else {
                ""
            }
        ),
        None => eprintln!("{}: not even the lowest rate tried met {slo}", c.scenario),
    }
    if let Some(k) = c.knee_rate {
        eprintln!("knee at about {k:.1}/s");
    }
    if let (Some(u), Some(r)) = (c.equivalent_users, c.response_s) {
        eprintln!(
            "≈ {u:.0} concurrently active app users (Little: rate × ({:.3} s response + {:.1} s think))",
            r, c.mean_think_s
        );
    }
    if !c.saturated.is_empty() {
        eprintln!("saturated: {}", c.saturated.join("; "));
    }
    println!("sustainable {:.1}", c.sustainable_rate.unwrap_or(0.0));
}
