//! Set-up shared by the criterion benches: an embedded cluster of their own with a seeded
//! `tiny` dataset, kept between bench runs (seeded again only when missing or incomplete).

use crate::catalog::QuerySpec;
use crate::measure::exec::{principal_for, RequestContext};
use crate::params::{rng_for, ParamValue, Population};
use crate::seed::SeedOptions;
use crate::target::{DbArgs, Target};
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

/// Where the benches keep their cluster (reachable by the `postgres` user when run as root).
fn bench_data_dir() -> PathBuf {
    std::env::var_os("STORYBENCH_BENCH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("storybench-bench/pgdata"))
}

/// Starts (if needed) the bench cluster and makes sure it holds a complete tiny dataset.
pub async fn tiny_dataset() -> Result<Target> {
    let dir = bench_data_dir();
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755))?;
    }
    let args = DbArgs {
        database_url: None,
        data_dir: dir,
        port: None,
        protect: vec!["prod".into()],
        keep_copies: false,
        shared_lock: false,
    };
    let target = Target::resolve(&args)?;
    let mut conn = target.connect().await?;
    let ready = crate::seed::dataset(&mut conn)
        .await?
        .is_some_and(|d| d.status == "complete" && d.profile == "tiny");
    if !ready {
        let opts = SeedOptions {
            profile: "tiny".into(),
            scale: 1.0,
            seed: 42,
            // A fixed clock: the benches measure the same dataset whatever today's date is.
            anchor: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("a valid date"),
            jobs: 2,
            reset: true,
            toast_compression: None,
            verify: false,
            variant: Default::default(),
        };
        crate::seed::seed(&target, &opts).await?;
    }
    Ok(target)
}

/// One catalog query ready to execute repeatedly: its SQL, drawn parameters and principal.
#[derive(Clone)]
pub struct PreparedQuery {
    pub spec: QuerySpec,
    pub params: Vec<ParamValue>,
    pub principal: crate::auth::Principal,
}

/// The catalog's queries with `filter`, each with parameters drawn for the heavy user.
pub async fn heavy_user_queries(
    target: &Target,
    filter: impl Fn(&QuerySpec) -> bool,
) -> Result<(Vec<PreparedQuery>, RequestContext)> {
    let catalog = crate::catalog::load_default()?;
    let mut conn = target.connect().await?;
    let dataset = crate::seed::require_complete(&mut conn).await?;
    let population = Population::load(&mut conn, dataset.anchor).await?;
    let user = population.heavy();
    let mut out = Vec::new();
    for spec in catalog.queries.iter().filter(|q| filter(q)) {
        let mut rng = rng_for(42, &format!("{}:bench", spec.name));
        let params = population.draw(&mut conn, spec, user, &mut rng).await?;
        out.push(PreparedQuery {
            principal: principal_for(spec, user),
            spec: spec.clone(),
            params,
        });
    }
    Ok((
        out,
        RequestContext::new(crate::schema::Layout::Partitioned, Duration::from_secs(30)),
    ))
}

/// Criterion's `iter_custom` body: `iters` executions of `q` on a connection of its own
/// (so no pool shows up in the timings), summing the query time only.
pub async fn time_iterations(
    target: &Target,
    q: &PreparedQuery,
    ctx: &RequestContext,
    iters: u64,
) -> Duration {
    let mut conn = target.connect().await.expect("connection");
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let (d, _) = crate::measure::exec::timed(
            &mut conn,
            &q.spec,
            &q.spec.sql,
            &q.params,
            &q.principal,
            ctx,
            false,
        )
        .await
        .expect("query");
        total += d;
    }
    total
}
