//! `storybench load`: a goose scenario or an ad hoc statement under a closed or open model.

use super::RunSession;
use crate::measure::load::{adhoc, parse_duration, LoadSection, LoadShape};
use crate::measure::server_view::{self, WaitSampler};
use crate::target::{DbArgs, Target};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct LoadArgs {
    /// One statement to run on every client (ad hoc mode, e.g. 'SELECT 1').
    #[arg(long)]
    pub sql: Option<String>,
    /// Concurrent clients (ad hoc) or goose users (scenarios).
    #[arg(long, visible_alias = "users", default_value_t = 4)]
    pub clients: usize,
    /// Measured duration after warm-up (e.g. 30s, 2m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    #[serde(with = "secs")]
    pub duration: Duration,
    /// Warm-up before measuring (not counted).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    #[serde(with = "secs")]
    pub warmup: Duration,
    /// Spread client starts over this time.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    #[serde(with = "secs")]
    pub ramp: Duration,
    /// Open model: target transactions per second (latency from each intended start).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open model: drop (and count) arrivals later than this instead of running them.
    #[arg(long, value_parser = parse_duration)]
    #[serde(skip)]
    pub latency_limit: Option<Duration>,
    /// Seed for arrivals and sampling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

mod secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

impl LoadArgs {
    pub fn shape(&self) -> LoadShape {
        LoadShape {
            clients: self.clients,
            duration: self.duration,
            warmup: self.warmup,
            ramp: self.ramp,
            rate: self.rate,
            latency_limit: self.latency_limit,
            seed: self.seed,
        }
    }
}

pub async fn run(db: &DbArgs, args: LoadArgs) -> Result<i32> {
    let shape = args.shape();
    shape.validate()?;
    let Some(sql) = args.sql.clone() else {
        bail!("say what to run: --sql 'STATEMENT'");
    };
    let mut session = RunSession::start("load", serde_json::to_value(&args)?, args.out.as_deref())?;
    let target = Target::resolve(db)?;
    let outcome = async {
        let mut conn = target.connect().await?;
        crate::schema::check_ownership(&mut conn).await?;
        session.collect_environment(&target).await?;
        let section = session
            .stage("load", measure_adhoc(&target, &sql, &shape))
            .await?;
        print_summary(&section);
        session.results.load = Some(section);
        Ok(())
    }
    .await;
    let code = session.finalize(outcome);
    target.finish()?;
    code
}

/// Runs the ad hoc statement with the server-side view around it.
pub async fn measure_adhoc(target: &Target, sql: &str, shape: &LoadShape) -> Result<LoadSection> {
    let mut conn = target.connect().await?;
    let before = server_view::snapshot(&mut conn).await?;
    let sampler = WaitSampler::start(target.connect().await?, Duration::from_millis(250));
    let figures = adhoc::run(target, sql, shape).await;
    sampler.stop();
    let figures = figures?;
    let after = server_view::snapshot(&mut conn).await?;
    Ok(LoadSection {
        mode: "adhoc".into(),
        target: sql.to_string(),
        model: if shape.rate.is_some() {
            "open"
        } else {
            "closed"
        }
        .into(),
        shape: shape.clone(),
        server: Some(server_view::delta(&before, &after, &sampler)),
        figures,
    })
}

fn print_summary(s: &LoadSection) {
    let f = &s.figures;
    let l = &f.transaction_latency;
    eprintln!(
        "{} {} model: {} ok, {} failed, {} dropped in {:.1} s → {:.0} tps; latency p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        s.mode, s.model, f.ok, f.failed, f.dropped, f.measured_seconds, f.tps, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
    );
    if let Some(lag) = &f.schedule_lag {
        eprintln!(
            "schedule lag p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            lag.p50_ms, lag.p99_ms, lag.max_ms
        );
    }
    // Machine-readable last line for scripts: tps.
    println!("tps {:.1}", f.tps);
}
