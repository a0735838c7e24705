//! `storybench compare BASE NEW`: exit 0 no regression, 1 regression, 2 invalid input.

use crate::compare::{self, Format};
use crate::results::RunResults;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// Baseline results.json (e.g. last night's).
    pub base: PathBuf,
    /// New results.json.
    pub new: PathBuf,
    /// Largest tolerated slowdown before a change counts: a time metric must lie beyond
    /// max(this, its noise floor) with confidence (docs/statistics.md).
    #[arg(long, default_value = "10%", value_parser = crate::units::parse_percent)]
    pub max_regression: f64,
    /// Directory of earlier run directories (`*/results.json`): runs of BASE's configuration
    /// there give each metric its noise floor. Default: the directory holding BASE's run
    /// directory (e.g. `reports/`) when BASE is a run's results.json.
    #[arg(long)]
    pub history: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Also write the NEW run's metrics in Bencher's BMF JSON to this file.
    #[arg(long)]
    pub bmf: Option<PathBuf>,
    /// Also write the NEW run's metrics in github-action-benchmark's customSmallerIsBetter JSON.
    #[arg(long)]
    pub github_benchmark: Option<PathBuf>,
}

/// Runs the comparison; invalid input is exit code 2 (not 1, which means "regression").
pub fn run(args: CompareArgs) -> i32 {
    let load = |p: &PathBuf| RunResults::read(p);
    let (base, new) = match (load(&args.base), load(&args.new)) {
        (Ok(b), Ok(n)) => (b, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e:#}");
            return 2;
        }
    };
    let dir = args
        .history
        .clone()
        .or_else(|| compare::default_history_dir(&args.base));
    if let Some(d) = args.history.as_ref().filter(|d| !d.is_dir()) {
        eprintln!("error: --history {} is not a directory", d.display());
        return 2;
    }
    let floors = compare::floors_from(dir, &base, &new);
    let c = compare::compare_with(&base, &new, args.max_regression, &floors);
    print!("{}", compare::render(&c, args.format));
    for (path, value) in [
        (
            &args.bmf,
            args.bmf.as_ref().map(|_| compare::bencher_bmf(&new)),
        ),
        (
            &args.github_benchmark,
            args.github_benchmark
                .as_ref()
                .map(|_| compare::github_benchmark(&new)),
        ),
    ] {
        if let (Some(path), Some(value)) = (path, value) {
            let text = serde_json::to_string_pretty(&value).unwrap_or_default();
            if let Err(e) = crate::paths::write_atomic(path, text.as_bytes()) {
                eprintln!("error: {e:#}");
                return 2;
            }
        }
    }
    if c.regressions() > 0 {
        1
    } else {
        0
    }
}
