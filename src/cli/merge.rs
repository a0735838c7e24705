//! `storybench merge DIR…|FILE…`: one results.json and report from the shards of a sharded
//! load. A refusal (other configurations, duplicate or missing shards, clock skew) is one
//! line and exit 2, like compare's invalid input.

use super::RunSession;
use crate::units::parse_duration;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct MergeArgs {
    /// The shards' results: results.json files or the directories holding them.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Largest difference between the shards' measured starts (their clocks' skew).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    #[serde(with = "crate::units::duration_secs")]
    pub max_skew: Duration,
    /// Output directory (default: reports/<run-id>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn results_file(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.join(crate::results::RESULTS_FILE)
    } else {
        p.to_path_buf()
    }
}

pub fn run(args: MergeArgs) -> i32 {
    let mut inputs = Vec::new();
    for p in &args.inputs {
        let file = results_file(p);
        match crate::results::RunResults::read(&file) {
            Ok(r) => inputs.push((file, r)),
            Err(e) => {
                eprintln!("error: {e:#}");
                return 2;
            }
        }
    }
    let merged = match crate::results::merge::merge(&inputs, args.max_skew) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 2;
        }
    };
    let outcome = (|| {
        let mut session = RunSession::start("merge", merged.config.clone(), args.out.as_deref())?;
        session.results.environment = merged.environment;
        session.results.variant = merged.variant;
        session.results.dataset = merged.dataset;
        if let Some(l) = &merged.load {
            crate::printer::show(|p| crate::printer::load::summary(p, l));
            crate::say!("  merged {} shards", l.merged_shards.len());
        }
        if let Some(c) = &merged.capacity {
            crate::printer::show(|p| crate::printer::capacity::summary(p, c));
            crate::say!(
                "  merged {} shards (their verdicts agree)",
                c.merged_shards.len()
            );
        }
        session.results.load = merged.load;
        session.results.capacity = merged.capacity;
        session.finalize(Ok(()))
    })();
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}
