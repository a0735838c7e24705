//! The analytics queries under one settings profile: each catalog query tagged `analytics`
//! timed through the engine (one arm: the profiles cannot be interleaved, a restart lies
//! between them), with its work from EXPLAIN (ANALYZE, BUFFERS).

use super::types::AnalyticsRun;
use crate::catalog::QuerySpec;
use crate::measure::engine::{self, EngineOptions, SqlArm, SqlRunner};
use crate::measure::exec::{principal_for, RequestContext};
use crate::params::{rng_for, Population};
use crate::schema::Layout;
use crate::target::Target;
use anyhow::Result;
use std::time::Duration;

/// The analytics queries the stage times (reads only).
pub fn specs(catalog: &crate::catalog::Catalog) -> Vec<&QuerySpec> {
    catalog
        .with_tag("analytics")
        .into_iter()
        .filter(|s| s.is_read())
        .collect()
}

/// Times every analytics query on `target` (a pristine copy) as the engine does.
pub async fn measure(
    target: &Target,
    engine_opts: &EngineOptions,
    statement_timeout: Duration,
    seed: u64,
) -> Result<Vec<AnalyticsRun>> {
    measure_some(target, engine_opts, statement_timeout, seed, specs).await
}

/// The catalog's write statements (WAL archiving's write path).
pub fn writes(catalog: &crate::catalog::Catalog) -> Vec<&QuerySpec> {
    catalog.queries.iter().filter(|s| !s.is_read()).collect()
}

/// Times the queries `pick` chooses (writes run rolled back; their WAL per execution is
/// in `work.wal_bytes`).
pub async fn measure_some(
    target: &Target,
    engine_opts: &EngineOptions,
    statement_timeout: Duration,
    seed: u64,
    pick: fn(&crate::catalog::Catalog) -> Vec<&QuerySpec>,
) -> Result<Vec<AnalyticsRun>> {
    let catalog = crate::catalog::load_default()?;
    let specs = pick(&catalog);
    let mut conn = target.connect().await?;
    let dataset = crate::seed::require_complete(&mut conn).await?;
    let population = Population::load(&mut conn, dataset.anchor).await?;
    let layout = crate::schema::current_variant(&mut conn)
        .await
        .ok()
        .flatten()
        .map_or(Layout::Partitioned, |v| v.api_usage);
    let ctx = RequestContext::new(layout, statement_timeout);
    let user = population.heavy();
    let mut out = Vec::new();
    for spec in specs {
        crate::interrupt::check()?;
        // The same parameters under every profile (same seed, same label).
        let mut rng = rng_for(seed, &format!("settings:{}", spec.name));
        let params = population.draw(&mut conn, spec, user, &mut rng).await?;
        let who = principal_for(spec, user);
        let arms = [SqlArm {
            conn: 0,
            spec,
            sql: &spec.sql,
            params: &params,
            who,
            ctx: &ctx,
        }];
        let mut conns = [&mut conn];
        let mut runner = SqlRunner {
            conns: &mut conns,
            arms: &arms,
        };
        let o = engine::measure(&mut runner, &[None], engine_opts).await;
        let arm = &o.arms[0];
        out.push(AnalyticsRun {
            query: spec.name.clone(),
            latency: (!arm.latency.is_empty()).then(|| arm.latency.summary()),
            p50: crate::stats::quantile_ci(&arm.latency, 0.5, crate::stats::CONFIDENCE),
            work: arm.work.clone(),
            rounds: o.rounds.clone(),
            error: arm.error.clone(),
            p50_ratio: None,
            side: None,
        });
    }
    Ok(out)
}
