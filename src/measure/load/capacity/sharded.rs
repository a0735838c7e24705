//! A capacity search split over N shard processes (`capacity --shard I/N --start-at T`).
//! Every step's verdict needs the figures of all shards, so the shards meet in the database
//! they load (two tables of storybench's own schema in their shared pristine copy): shard 0
//! restores the steady state between steps and announces when the next one starts; every
//! shard runs its part of the step (rate/N, its users, its own arrivals), posts its figures
//! and reads everyone's. The added-up figures (histograms added, counts summed) are the same
//! in every shard, so every shard reaches the same verdict and takes the same next step:
//! the search needs no coordinator process.

use crate::measure::load::merge::merge_figures;
use crate::measure::load::recorder::{sqlstate_of, LoadFigures};
use crate::measure::load::shard::Shard;
use crate::sql_files::sql;
use crate::target::Target;
use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::postgres::PgConnection;
use std::future::Future;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    queries: Queries,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Queries {
    create_starts: String,
    create_parts: String,
    own: String,
    announce: String,
    start_of: String,
    post: String,
    parts: String,
}

crate::sql_file!(fn file() -> File = "scenarios/capacity_shards.toml");

fn queries() -> &'static Queries {
    &file().queries
}

#[cfg(test)]
pub(crate) fn load_all() {
    let _ = queries();
}

/// How long a shard waits for the others beyond the step itself (a shard that died or
/// never started ends the search with an error rather than a hang).
const PEER_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(100);
/// Between a step's announcement and its start: time for every shard to see it.
const ANNOUNCE_AHEAD: Duration = Duration::from_millis(1500);

/// Which shard this process is, and the shared start.
#[derive(Clone, Copy, Debug)]
pub struct Sharding {
    pub shard: Shard,
    pub start_at: DateTime<Utc>,
}

/// This shard's meeting point with the others, in the shared copy.
pub struct Rendezvous {
    conn: PgConnection,
    sharding: Sharding,
    /// When step 0 started (the shards' timelines are aligned on it).
    pub first_start: Option<DateTime<Utc>>,
}

impl Rendezvous {
    /// Shard 0 creates the meeting tables (before the shared start: the others only look
    /// for them after it).
    pub async fn open(copy: &Target, sharding: Sharding) -> Result<Self> {
        let mut conn = copy.connect().await?;
        if sharding.shard.index == 0 {
            for q in [
                &queries().create_starts,
                &queries().create_parts,
                &queries().own,
            ] {
                sqlx::query(sql(q)).execute(&mut conn).await?;
            }
        }
        Ok(Self {
            conn,
            sharding,
            first_start: None,
        })
    }

    /// Waits for step `step` to start: shard 0 first restores the steady state (`reset`) and
    /// announces the start (never before the shared start); the others wait for it.
    pub async fn start(
        &mut self,
        step: usize,
        reset: impl Future<Output = Result<()>>,
    ) -> Result<()> {
        let at = if self.sharding.shard.index == 0 {
            reset.await?;
            let at = (Utc::now() + ANNOUNCE_AHEAD).max(self.sharding.start_at);
            sqlx::query(sql(&queries().announce))
                .bind(step as i32)
                .bind(at)
                .execute(&mut self.conn)
                .await?;
            at
        } else {
            let wait = until(self.sharding.start_at) + PEER_TIMEOUT;
            self.poll(wait, step, "shard 0 to start", async |conn| {
                match sqlx::query_scalar::<_, DateTime<Utc>>(sql(&queries().start_of))
                    .bind(step as i32)
                    .fetch_optional(conn)
                    .await
                {
                    Ok(at) => Ok(at),
                    // Shard 0 has not made its tables yet.
                    Err(e) if sqlstate_of(&e) == "42P01" => Ok(None),
                    Err(e) => Err(e.into()),
                }
            })
            .await?
        };
        self.first_start.get_or_insert(at);
        tokio::select! {
            _ = tokio::time::sleep(until(at)) => Ok(()),
            _ = crate::interrupt::wait() => bail!(crate::interrupt::Interrupted),
        }
    }

    /// Posts this shard's figures of step `step` and returns every shard's added up, with
    /// the transactions each shard started (by shard number).
    pub async fn exchange(
        &mut self,
        step: usize,
        mine: &LoadFigures,
        step_length: Duration,
    ) -> Result<(LoadFigures, Vec<u64>)> {
        sqlx::query(sql(&queries().post))
            .bind(step as i32)
            .bind(self.sharding.shard.index as i32)
            .bind(sqlx::types::Json(mine))
            .execute(&mut self.conn)
            .await?;
        let count = self.sharding.shard.count as usize;
        let rows = self
            .poll(
                step_length + PEER_TIMEOUT,
                step,
                "every shard's figures",
                async |conn| {
                    let rows: Vec<(i32, sqlx::types::Json<LoadFigures>)> =
                        sqlx::query_as(sql(&queries().parts))
                            .bind(step as i32)
                            .fetch_all(conn)
                            .await?;
                    Ok((rows.len() == count).then_some(rows))
                },
            )
            .await?;
        let parts: Vec<u64> = rows.iter().map(|(_, f)| f.0.attempted).collect();
        // The shards start each step together: no offsets between them.
        let figures: Vec<(f64, &LoadFigures)> = rows.iter().map(|(_, f)| (0.0, &f.0)).collect();
        let merged = merge_figures(&figures).context("adding up the shards' figures")?;
        Ok((merged, parts))
    }

    /// Polls `check` until it yields a value, an interrupt, or `timeout`.
    async fn poll<T>(
        &mut self,
        timeout: Duration,
        step: usize,
        what: &str,
        mut check: impl AsyncFnMut(&mut PgConnection) -> Result<Option<T>>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(v) = check(&mut self.conn).await? {
                return Ok(v);
            }
            crate::interrupt::check()?;
            if tokio::time::Instant::now() >= deadline {
                return Err(anyhow!(
                    "shard {} of {}: waited {:.0} s for {what} at step {step}: a shard stopped or never started",
                    self.sharding.shard.index,
                    self.sharding.shard.count,
                    timeout.as_secs_f64()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Time from now until `at` (zero once it has passed).
fn until(at: DateTime<Utc>) -> Duration {
    (at - Utc::now()).to_std().unwrap_or_default()
}
