//! Server settings profiles as a variant axis (`storybench settings`, `run --settings`):
//! per profile, the profile put in force (`apply`), read back from pg_settings, the
//! analytics queries timed through the engine and a capacity search, both on one pristine
//! copy made under the profile; then the server's own settings restored — also on error and
//! on Ctrl-C — and checked against what pg_settings said before.

mod analytics;
mod apply;
pub mod archive;
mod types;

pub use types::*;

use crate::cluster::settings::{Machine, Profile};
use crate::measure::engine::EngineOptions;
use crate::measure::load::capacity::{self, CapacityOptions};
use crate::measure::Partial;
use crate::scenario::Scenario;
use crate::target::Target;
use anyhow::{bail, Result};
use std::time::{Duration, Instant};

#[cfg(test)]
pub(crate) fn load_all() {
    let _ = apply::q();
}

/// What the stage measures under each profile.
pub struct SettingsOptions {
    pub profiles: Vec<Profile>,
    /// External server only: allowed to ALTER SYSTEM (and always reset afterwards).
    pub alter_system: bool,
    pub engine: EngineOptions,
    pub statement_timeout: Duration,
    pub capacity: CapacityOptions,
    pub seed: u64,
}

/// Refuses what cannot be done before anything runs.
pub fn check(target: &Target, profiles: &[Profile], alter_system: bool) -> Result<()> {
    check_request(target.embedded.is_none(), profiles, alter_system)
}

/// [`check`] from the command line alone (`external`: a --database-url was given).
pub fn check_request(external: bool, profiles: &[Profile], alter_system: bool) -> Result<()> {
    if profiles.is_empty() {
        bail!("--settings needs at least one profile (doc, default, tuned)");
    }
    if !external {
        return Ok(());
    }
    if !alter_system {
        bail!(
            "settings profiles change server-wide settings; on an external server storybench does \
             that only with --alter-system (ALTER SYSTEM + pg_reload_conf() for the settings that \
             reload, reset afterwards; shared_buffers and max_connections need a restart and are \
             left as they are)"
        );
    }
    if profiles.contains(&Profile::Tuned) {
        bail!(
            "the tuned profile is sized for the server's machine (cores and RAM), which storybench \
             cannot read on an external server; use it on the embedded cluster"
        );
    }
    Ok(())
}

/// Runs every profile in turn on `target` (the dataset; each profile gets its own copy).
pub async fn run(
    target: &Target,
    opts: &SettingsOptions,
    scenario: &Scenario,
) -> Result<SettingsSection> {
    check(target, &opts.profiles, opts.alter_system)?;
    let mut section = SettingsSection {
        applied: if target.embedded.is_some() {
            Applied::ConfigFileRestart
        } else {
            Applied::AlterSystemReload
        },
        machine: match &target.embedded {
            Some(_) => Some(Machine::read()?),
            None => None,
        },
        ..Default::default()
    };
    section.own_before = apply::read_fresh(target).await?;
    let mut failure = None;
    for &profile in &opts.profiles {
        if crate::interrupt::interrupted() {
            break;
        }
        let values = profile.values(&section.machine.unwrap_or(Machine {
            cores: 1,
            ram_bytes: 0,
        }));
        let mut run = ProfileRun {
            profile: Some(profile),
            ..Default::default()
        };
        crate::say!("  settings: profile {profile}");
        let started = Instant::now();
        let (control, requested) =
            match apply::apply(target, &values, &section.own_before, profile.name()).await {
                Ok(c) => c,
                Err(e) => {
                    run.error = Some(format!("{e:#}"));
                    section.profiles.push(run);
                    failure = Some(e);
                    break;
                }
            };
        run.requested = requested;
        run.apply_seconds = started.elapsed().as_secs_f64();
        let outcome = measure(target, opts, scenario, &mut run).await;
        // Always, whatever the measurement did (error, Ctrl-C).
        let started = Instant::now();
        let restored = apply::restore(target, control).await;
        run.restore_seconds = started.elapsed().as_secs_f64();
        if let Err(e) = &outcome {
            run.error = Some(format!("{e:#}"));
        }
        section.profiles.push(run);
        if let Err(e) = restored {
            failure = Some(e.context("restoring the server's own settings"));
            break;
        }
        if let Err(e) = outcome {
            failure = Some(e);
            break;
        }
    }
    section.own_after = apply::wait_for(target, &section.own_before).await?;
    section.restored = section.own_after == section.own_before;
    section.compare();
    if !section.restored && failure.is_none() {
        failure = Some(anyhow::anyhow!(
            "the server's settings differ from before the profiles (see settings.own_before/own_after)"
        ));
    }
    match failure {
        None => Ok(section),
        Some(cause) => Err(Partial { section, cause }.into()),
    }
}

/// One profile's figures, on a pristine copy made while it is in force.
async fn measure(
    target: &Target,
    opts: &SettingsOptions,
    scenario: &Scenario,
    run: &mut ProfileRun,
) -> Result<()> {
    run.in_force = apply::read_fresh(target).await?;
    for r in &mut run.requested {
        if r.applied && !apply::matches(&run.in_force, &r.name, &r.value) {
            bail!(
                "{} = {} was applied but pg_settings shows {:?}",
                r.name,
                r.value,
                run.in_force.iter().find(|s| s.name == r.name)
            );
        }
    }
    let label = format!("settings_{}", run.profile.map_or("x", |p| p.name()));
    crate::pristine::with_copy(target, &label, async |copy| {
        // Reads first: the capacity mix writes.
        run.analytics =
            analytics::measure(copy, &opts.engine, opts.statement_timeout, opts.seed).await?;
        crate::interrupt::check()?;
        run.capacity = Some(capacity::search(copy, scenario, &opts.capacity).await?);
        Ok(())
    })
    .await
}
