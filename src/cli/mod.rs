//! The `storybench` command line: argument definitions and dispatch.

mod advise;
mod capacity;
mod capacity_scales;
mod compare;
mod db;
mod explain;
mod load;
mod merge;
mod monitoring;
mod ops;
mod partitions;
mod rls;
mod run;
mod seed;
mod session;
mod settings;
mod shard;

use crate::target::DbArgs;
use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

pub(crate) use session::{command_frame, command_frame_with, measuring_command, RunSession};

#[derive(Parser, Debug)]
#[command(
    name = "storybench",
    version,
    about = "Load-test and benchmark harness for the InfiniteStories PostgreSQL database"
)]
struct Cli {
    #[command(flatten)]
    pub db: DbArgs,
    /// Logging: warnings only by default; -v info and debug, -vv trace; RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Manage the embedded PostgreSQL cluster.
    #[command(subcommand)]
    Db(DbCommand),
    /// Apply the schema or switch its variant.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// The main job: schema → seed → measurements → report.
    Run(run::RunArgs),
    /// Seed a deterministic dataset (profile × scale).
    Seed(seed::SeedArgs),
    /// Compare index strategies query by query: plans, latency, write cost.
    Explain(explain::ExplainArgs),
    /// Load test: an ad hoc statement (or a scenario) under a closed or open model.
    Load(load::LoadArgs),
    /// Capacity search: the highest arrival rate a scenario sustains within a latency SLO.
    Capacity(capacity::CapacityArgs),
    /// RLS overhead per app query (bypass vs policy sets), plan evidence, isolation audit.
    Rls(rls::RlsArgs),
    /// api_usage partitioned by month vs flat: analytics latency, pruning, scaling, maintenance.
    Partitions(partitions::PartitionsArgs),
    /// Operations under load: migrations while the app's load runs (latency, lock waits).
    Ops(ops::OpsArgs),
    /// The document's monitoring queries (health checks, usage analytics), each with its cost.
    Monitoring(monitoring::MonitoringArgs),
    /// WAL archiving (wal_level replica, archive_mode on) on the embedded cluster: write cost off vs on, archive volume.
    WalArchive(settings::WalArchiveArgs),
    /// Server settings profiles (doc, default, tuned): capacity and analytics per profile.
    Settings(settings::SettingsArgs),
    /// Advice checked against the dataset: `advise citus` (what breaks distributed by user_id).
    #[command(subcommand)]
    Advise(advise::AdviseCommand),
    /// Merge the results of the shards of one sharded load (`load --shard I/N`) exactly.
    Merge(merge::MergeArgs),
    /// Compare two results.json files: exit 0 no regression, 1 regression, 2 invalid input.
    Compare(compare::CompareArgs),
    /// Re-render report.html from a results.json.
    Report {
        /// A results.json file.
        results: PathBuf,
        /// Directory for report.html (default: beside the results file).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Start the embedded cluster (initializing it if needed); prints its URL last.
    Start,
    /// Stop the embedded cluster.
    Stop,
    /// Say whether the embedded cluster is running.
    Status,
    /// Print the embedded cluster's connection URL.
    Url,
}

#[derive(Subcommand, Debug)]
pub enum SchemaCommand {
    /// Create the schema in an empty database, or switch the variant of storybench's schema.
    Apply(VariantArgs),
    /// Drop every object storybench created (and nothing else).
    Reset,
    /// Print the variant the schema is in, and its indexes and policies.
    Show,
}

#[derive(clap::Args, Debug, Clone, Default, serde::Serialize)]
pub struct VariantArgs {
    /// Index strategy: a file name in schema/indexes/ (fk_only, doc, tuned).
    #[arg(long)]
    pub indexes: Option<String>,
    /// Policy set: a file name in schema/policies/ (doc, initplan, definer).
    #[arg(long)]
    pub policies: Option<String>,
    /// api_usage layout measured on.
    #[arg(long, value_enum)]
    pub api_usage: Option<crate::schema::Layout>,
}

impl VariantArgs {
    pub fn request(&self) -> crate::schema::VariantRequest {
        crate::schema::VariantRequest {
            indexes: self.indexes.clone(),
            policies: self.policies.clone(),
            api_usage: self.api_usage,
        }
    }
}

/// Parses arguments, runs the command, and maps the outcome to an exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("storybench: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async {
        crate::interrupt::install();
        dispatch(cli).await
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if crate::interrupt::interrupted() {
                130
            } else {
                1
            }
        }
    }
}

fn init_tracing(verbose: u8) {
    // Quiet by default: progress and findings are printed, not logged; -v opens the logs.
    let default = match verbose {
        0 => "warn",
        1 => "storybench=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(crate::term::color())
        .with_target(false)
        .init();
}

async fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Db(cmd) => db::run(&cli.db, cmd).await,
        Command::Schema(cmd) => db::schema(&cli.db, cmd).await,
        Command::Run(args) => run::run(&cli.db, args).await,
        Command::Load(args) => load::run(&cli.db, args).await,
        Command::Capacity(args) => capacity::run(&cli.db, args).await,
        Command::Rls(args) => rls::run(&cli.db, args).await,
        Command::Partitions(args) => partitions::run(&cli.db, args).await,
        Command::Ops(args) => ops::run(&cli.db, args).await,
        Command::Monitoring(args) => monitoring::run(&cli.db, args).await,
        Command::WalArchive(args) => settings::wal_archive(&cli.db, args).await,
        Command::Settings(args) => settings::run(&cli.db, args).await,
        Command::Merge(args) => Ok(merge::run(args)),
        Command::Advise(cmd) => advise::run(&cli.db, cmd).await,
        Command::Explain(args) => explain::run(&cli.db, args).await,
        Command::Seed(args) => seed::run(&cli.db, args).await,
        Command::Compare(args) => Ok(compare::run(args)),
        Command::Report { results, out } => {
            let r = crate::results::RunResults::read(&results)?;
            let dir =
                out.unwrap_or_else(|| results.parent().map(PathBuf::from).unwrap_or_default());
            let path = crate::report::write(&r, &dir)?;
            println!("{}", path.display());
            Ok(0)
        }
    }
}
