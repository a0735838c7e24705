//! `storybench capacity`: the highest arrival rate a scenario sustains within a latency SLO
//! and an error budget, the knee, what saturated, and the equivalent number of app users.

use crate::measure::load::capacity::{self, CapacityOptions, CapacitySection, Slo};
use crate::measure::load::parse_duration;
use crate::target::DbArgs;
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
    pub slo: Slo,
    /// Largest share of failed transactions a step may have (1%; a bare number is a percent).
    #[arg(long, default_value = "1%", value_parser = crate::units::parse_share)]
    pub error_budget: f64,
    /// First rate tried (transactions per second); rates then double until a step breaks.
    #[arg(long, default_value_t = 20.0)]
    pub start_rate: f64,
    /// Highest rate tried.
    #[arg(long, default_value_t = 2000.0)]
    pub max_rate: f64,
    /// Measured time of a climbing step (lengthened when too short for the SLO statistic:
    /// p95 needs ≥ 72 samples, p99 ≥ 368).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub step_duration: Duration,
    /// Measured time of a step near the boundary (bisection and repeats).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub boundary_duration: Duration,
    /// Longest a step is lengthened to for enough samples.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub max_step_duration: Duration,
    /// Steps at each end of the final bracket (the last passing and first failing rate);
    /// the majority decides. 1: no repeats.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Bisect until the failing rate is within this of the passing one (5%; a bare number is a percent).
    #[arg(long, default_value = "5%", value_parser = crate::units::parse_share)]
    pub resolution: f64,
    /// Warm-up of each step (not counted).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub warmup: Duration,
    /// Goose users serving the arrivals (the most transactions in flight at once).
    #[arg(long, visible_alias = "clients", default_value_t = 32)]
    pub users: usize,
    /// Users share a pool of P connections instead of each owning one.
    #[arg(long)]
    pub pool: Option<u32>,
    /// At most this many steps (climb, bisection and repeats).
    #[arg(long, default_value_t = 24)]
    pub max_steps: usize,
    /// Seed for arrivals and sampling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// statement_timeout of every request.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
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
            boundary_duration: self.boundary_duration,
            max_step_duration: self.max_step_duration,
            repeats: self.repeats,
            resolution: self.resolution,
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
    args.options().validate()?;
    let scenario = crate::scenario::load(&args.scenario)?;
    let config = serde_json::to_value(&args)?;
    super::command_frame(
        db,
        "capacity",
        config,
        args.out.as_deref(),
        async |session, target| {
            let mut conn = target.connect().await?;
            crate::schema::check_ownership(&mut conn).await?;
            // Before anything is created (pg_stat_statements): a broken scenario changes nothing.
            scenario.check_sql(&mut conn).await?;
            crate::schema::ensure_pg_stat_statements(&mut conn).await?;
            drop(conn);
            session.collect_environment(target).await?;
            session.check_dataset(target).await?;
            let opts = args.options();
            let section = session
                .stage_on_copy("capacity", target, async |t| {
                    capacity::search(t, &scenario, &opts).await
                })
                .await?;
            print_summary(&section);
            session.results.capacity = Some(section);
            Ok(())
        },
    )
    .await
}

pub fn print_summary(c: &CapacitySection) {
    let slo = c.slo.as_ref().map_or("", |s| s.text.as_str());
    let interval = match (c.sustainable_low, c.sustainable_high) {
        (Some(l), Some(h)) => format!(" (capacity between {l:.1} and {h:.1}/s)"),
        (Some(l), None) => format!(" (capacity ≥ {l:.1}/s: nothing broke up to --max-rate)"),
        _ => String::new(),
    };
    match c.sustainable_rate {
        Some(r) => eprintln!(
            "{}: sustains {r:.1} transactions/s{interval} within {slo} and {:.2} % errors{}",
            c.scenario,
            c.error_budget * 100.0,
            if c.confirmed {
                ""
            } else {
                " — not confirmed (step budget)"
            }
        ),
        None => eprintln!("{}: not even the lowest rate tried met {slo}", c.scenario),
    }
    if !c.interval_basis.is_empty() {
        eprintln!("  how: {}", c.interval_basis);
    }
    for n in &c.notes {
        eprintln!("  note: {n}");
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
        eprintln!(
            "saturated at {:.1}/s: {}",
            c.signals_at_rate.unwrap_or(0.0),
            c.saturated.join("; ")
        );
    }
    // Machine-readable last line: the answer and its interval (0 when absent).
    println!(
        "sustainable {:.1} low {:.1} high {:.1}",
        c.sustainable_rate.unwrap_or(0.0),
        c.sustainable_low.unwrap_or(0.0),
        c.sustainable_high.unwrap_or(0.0)
    );
}
