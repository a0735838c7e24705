//! One measuring command's run: its results, output directory and stage bookkeeping.
//! Whatever happens (error, Ctrl-C), `finalize` writes results.json and report.html.

use crate::paths::write_atomic;
use crate::results::{
    prepare_out_dir, Environment, RunResults, RunStatus, StageTiming, RESULTS_FILE,
};
use crate::target::Target;
use anyhow::Result;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The one frame of every command: start the run (its output directory checked writable
/// first), resolve the target, run `body`, then always write results.json and report.html
/// (also on error or Ctrl-C) and stop what was started. Returns the exit code.
pub async fn command_frame(
    db: &crate::target::DbArgs,
    command: &str,
    config: serde_json::Value,
    out: Option<&Path>,
    body: impl AsyncFnOnce(&mut RunSession, &Target) -> Result<()>,
) -> Result<i32> {
    command_frame_with(db, command, config, out, body, |_, _| None)
        .await
        .map(|(code, _, _)| code)
}

/// [`command_frame`], comparing the results in memory before they are written (`run
/// --baseline`), so the report and the findings include the comparison. Returns the exit
/// code, the output directory and the comparison.
pub async fn command_frame_with(
    db: &crate::target::DbArgs,
    command: &str,
    config: serde_json::Value,
    out: Option<&Path>,
    body: impl AsyncFnOnce(&mut RunSession, &Target) -> Result<()>,
    compare: impl FnOnce(&RunResults, &Result<()>) -> Option<crate::compare::Comparison>,
) -> Result<(i32, PathBuf, Option<crate::compare::Comparison>)> {
    let mut session = RunSession::start(command, config, out)?;
    let out_dir = session.out_dir.clone();
    let target = Target::resolve(db)?;
    let outcome = body(&mut session, &target).await;
    let comparison = compare(&session.results, &outcome);
    let code = session.finalize_with(outcome, comparison.as_ref());
    target.finish()?;
    Ok((code?, out_dir, comparison))
}

/// The frame of a command that measures an existing dataset (explain, partitions, rls):
/// the environment is recorded and the dataset verified untouched before `body`.
pub async fn measuring_command(
    db: &crate::target::DbArgs,
    command: &str,
    config: serde_json::Value,
    out: Option<&Path>,
    body: impl AsyncFnOnce(&mut RunSession, &Target) -> Result<()>,
) -> Result<i32> {
    command_frame(db, command, config, out, async |session, target| {
        session.collect_environment(target).await?;
        session.check_dataset(target).await?;
        body(session, target).await
    })
    .await
}

pub struct RunSession {
    pub results: RunResults,
    pub out_dir: PathBuf,
}

impl RunSession {
    /// Creates the run and its output directory (checked writable before anything is measured).
    pub fn start(command: &str, config: serde_json::Value, out: Option<&Path>) -> Result<Self> {
        let results = RunResults::new(command, config);
        let out_dir = prepare_out_dir(out, &results.run_id)?;
        Ok(Self { results, out_dir })
    }

    pub async fn collect_environment(&mut self, target: &Target) -> Result<()> {
        let mut conn = target.connect().await?;
        let server = if target.embedded.is_some() {
            "embedded"
        } else {
            "external"
        };
        self.results.environment =
            Some(Environment::collect(&mut conn, server, &target.url.redacted()).await?);
        self.results.variant = crate::schema::current_variant(&mut conn)
            .await
            .ok()
            .flatten();
        Ok(())
    }

    /// Verifies the dataset is complete and untouched since its seal and records it.
    pub async fn check_dataset(&mut self, target: &Target) -> Result<()> {
        self.results.dataset = Some(crate::pristine::checked_dataset(target).await?);
        Ok(())
    }

    /// Runs one stage, timing it and printing a progress line.
    pub async fn stage<T, F: Future<Output = Result<T>>>(
        &mut self,
        name: &str,
        fut: F,
    ) -> Result<T> {
        crate::interrupt::check()?;
        let task = crate::progress::Task::start(name);
        let started = Instant::now();
        let outcome = fut.await;
        let seconds = started.elapsed().as_secs_f64();
        let status = match &outcome {
            // The stage stopped early on an interrupt and returned what it measured.
            Ok(_) if crate::interrupt::interrupted() => RunStatus::Interrupted,
            Ok(_) => RunStatus::Ok,
            Err(_) if crate::interrupt::interrupted() => RunStatus::Interrupted,
            Err(_) => RunStatus::Failed,
        };
        task.finish(format!("  {name}: {status} in {seconds:.1} s"));
        self.results.stages.push(StageTiming {
            name: name.to_string(),
            seconds,
            status,
            copy_seconds: None,
            copy: None,
        });
        outcome
    }

    /// Runs one stage on its own pristine copy of the dataset (dropped afterwards, also on
    /// error or Ctrl-C), so it measures the seeded state and whatever it writes is thrown
    /// away. The copy's cost is recorded beside the stage's time. No session may hold a
    /// connection to the dataset itself meanwhile (a template must be idle).
    pub async fn stage_on_copy<T>(
        &mut self,
        name: &str,
        base: &Target,
        body: impl AsyncFnOnce(&Target) -> Result<T>,
    ) -> Result<T> {
        crate::interrupt::check()?;
        let copy = crate::pristine::PristineCopy::create(base, name).await?;
        let copy_seconds = copy.seconds + copy.settle_seconds;
        let outcome = self.stage(name, body(copy.target())).await;
        if let Some(last) = self.results.stages.last_mut() {
            last.copy_seconds = Some(copy_seconds);
            last.copy = Some(copy.name().to_string());
        }
        let dropped = copy.drop().await;
        let value = outcome?;
        dropped?;
        Ok(value)
    }

    /// Writes results.json and report.html, whatever the outcome; returns the exit code.
    pub fn finalize(self, outcome: Result<()>) -> Result<i32> {
        self.finalize_with(outcome, None)
    }

    /// [`finalize`](Self::finalize), with the comparison to a baseline in the report and
    /// the findings; `run` ends its terminal output with the findings and the report path.
    fn finalize_with(
        mut self,
        outcome: Result<()>,
        baseline: Option<&crate::compare::Comparison>,
    ) -> Result<i32> {
        self.results.finished_at = Some(chrono::Utc::now());
        crate::findings::annotate(&mut self.results);
        let code = match &outcome {
            // Stages keep their figures on an interrupt: the run is still partial.
            Ok(()) if crate::interrupt::interrupted() => {
                self.results.status = RunStatus::Interrupted;
                self.results.partial = true;
                self.results.errors.push(
                    "interrupted: stopped early; the figures measured so far are kept".into(),
                );
                130
            }
            Ok(()) => {
                self.results.status = RunStatus::Ok;
                self.results.partial = false;
                0
            }
            Err(e) => {
                let interrupted = crate::interrupt::interrupted();
                self.results.status = if interrupted {
                    RunStatus::Interrupted
                } else {
                    RunStatus::Failed
                };
                self.results.partial = true;
                self.results.errors.push(format!("{e:#}"));
                if interrupted {
                    130
                } else {
                    1
                }
            }
        };
        let json = serde_json::to_vec_pretty(&self.results)?;
        write_atomic(&self.out_dir.join(RESULTS_FILE), &json)?;
        let report = crate::report::write_with(&self.results, baseline, &self.out_dir)?;
        // Keep the reports directory's index current (runs written elsewhere are not listed).
        if let Some(parent) = self.out_dir.parent().filter(|p| p.ends_with("reports")) {
            if let Err(e) = crate::report::index::write_index(parent) {
                tracing::warn!("could not update {}/index.html: {e:#}", parent.display());
            }
        }
        if let Err(e) = &outcome {
            eprintln!("error: {e:#}");
        }
        eprintln!("results: {}", self.out_dir.join(RESULTS_FILE).display());
        if let Some(c) = baseline {
            eprint!(
                "{}",
                crate::compare::render(c, crate::compare::Format::Text)
            );
        }
        if self.results.command == "run" {
            let findings = crate::findings::of(&self.results, baseline);
            let path = report.display().to_string();
            eprint!("{}", crate::findings::render_text(&findings, Some(&path)));
        }
        println!("{}", report.display());
        Ok(code)
    }
}
