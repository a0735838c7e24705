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
    /// Largest tolerated slowdown before a change counts (it must also exceed the noise).
    #[arg(long, default_value = "10%", value_parser = compare::parse_percent)]
    pub max_regression: f64,
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
    let c = compare::compare(&base, &new, args.max_regression);
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
            if let Err(e) = crate::results::write_atomic(path, text.as_bytes()) {
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
