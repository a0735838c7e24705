//! The sharded forms of `storybench load` and `capacity` (`--shard I/N --start-at T`): the
//! shards share one pristine copy of the dataset (shard 0 makes it before T and drops it once
//! every shard has left it), each runs its part of the open-model load from T, and records
//! what `storybench merge` needs to add them up.

use super::load::{measure_scenario, LoadArgs};
use super::RunSession;
use crate::measure::load::scenario_run::ScenarioOptions;
use crate::measure::load::shard::{self, Shard, ShardInfo};
use crate::measure::load::{LoadSection, LoadShape};
use crate::pristine::{wait_for_database, wait_until_unused, PristineCopy};
use crate::scenario::Scenario;
use crate::target::Target;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// How long shard 0 waits for the other shards to leave the shared copy before dropping it.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long past the start a shard waits for shard 0's copy.
const COPY_TIMEOUT: Duration = Duration::from_secs(120);

/// This shard's part of the load's shape: rate/N, its share of the users, its own seed.
pub fn shape(args: &LoadArgs, shard: Shard, total: &LoadShape) -> Result<LoadShape> {
    if args.scenario.is_none() {
        bail!("--shard splits a scenario's load (--scenario), not an ad hoc --sql");
    }
    let Some(rate) = total.rate else {
        bail!("--shard splits an open-model load: give the whole test's --rate");
    };
    let users = shard.users(total.clients);
    if users == 0 {
        bail!(
            "--users {} is fewer than the {} shards: each shard needs at least one",
            total.clients,
            shard.count
        );
    }
    Ok(LoadShape {
        clients: users,
        rate: Some(shard.rate(rate)),
        seed: shard.seed(total.seed),
        ..total.clone()
    })
}

/// The sharded load: this shard's part on the copy all shards share, from the shared start.
pub async fn run(
    session: &mut RunSession,
    target: &Target,
    scenario: &Scenario,
    opts: &ScenarioOptions,
    shard: Shard,
    start_at: DateTime<Utc>,
) -> Result<LoadSection> {
    let (mut section, name) = on_shared_copy(session, target, shard, start_at, async |s, copy| {
        shard::announce_start(start_at)?;
        s.stage("load", measure_scenario(copy, scenario, opts))
            .await
    })
    .await?;
    section.shard = Some(ShardInfo {
        index: shard.index,
        count: shard.count,
        start_at,
        measure_started_at: section.measured_from.unwrap_or(start_at),
        copy: name,
    });
    Ok(section)
}

/// Runs `body` on the pristine copy every shard of one command shares: shard 0 makes it
/// (named from the shared start and the options, so every shard finds the same one) and
/// drops it once the other shards have left it; the others wait for it. Returns the body's
/// value and the copy's name.
pub async fn on_shared_copy<T>(
    session: &mut RunSession,
    target: &Target,
    shard: Shard,
    start_at: DateTime<Utc>,
    body: impl AsyncFnOnce(&mut RunSession, &Target) -> Result<T>,
) -> Result<(T, String)> {
    let mut key = session.results.config.clone();
    if let Some(map) = key.as_object_mut() {
        map.remove("shard");
        map.remove("out");
    }
    let name = shard::copy_name(&start_at, &key);
    let value = if shard.index == 0 {
        let copy = PristineCopy::create_named(target, name.clone()).await?;
        let outcome = body(session, copy.target()).await;
        // The other shards may still be measuring on it.
        let left = wait_until_unused(target, &name, LEAVE_TIMEOUT).await;
        let dropped = copy.drop().await;
        let value = outcome?;
        left?;
        dropped?;
        value
    } else {
        let wait = (start_at - Utc::now()).to_std().unwrap_or_default() + COPY_TIMEOUT;
        let copy = wait_for_database(target, &name, wait)
            .await
            .context("waiting for shard 0's copy of the dataset")?;
        body(session, &copy).await?
    };
    Ok((value, name))
}
