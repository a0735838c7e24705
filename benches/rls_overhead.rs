//! Criterion benches of RLS overhead: every app query of the catalog as bypass
//! (service_role + explicit user filter), under the doc policies and under the initplan
//! policies (as an authenticated user, PostgREST-style claims), for the heavy user of a
//! tiny dataset. The bench runs its own embedded cluster in /tmp and seeds it through the
//! library on first use (later runs reuse it). Only the query is timed, as in `storybench rls`.
//!
//!     cargo bench --bench rls_overhead                 # every query, short run
//!     cargo bench --bench rls_overhead -- story_detail # one query

use criterion::{criterion_group, criterion_main, Criterion};
use sqlx::postgres::PgConnection;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use storybench::auth::Principal;
use storybench::catalog::{QuerySpec, Role};
use storybench::measure::exec::{self, RequestContext};
use storybench::params::{rng_for, ParamValue, Population};
use storybench::schema::{self, VariantRequest};
use storybench::seed::{self, SeedOptions};
use storybench::target::{DbArgs, Target};
use tokio::sync::Mutex;

const PROFILE: &str = "tiny";

struct Setup {
    target: Target,
    conn: Arc<Mutex<PgConnection>>,
    ctx: RequestContext,
    cases: Vec<(QuerySpec, Vec<ParamValue>)>,
    user: uuid::Uuid,
}

fn data_root() -> PathBuf {
    std::env::var_os("STORYBENCH_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("storybench-bench-rls"))
}

async fn setup() -> anyhow::Result<Setup> {
    let root = data_root();
    std::fs::create_dir_all(&root)?;
    // As root the server runs as `postgres`, which must be able to reach the data directory.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))?;
    let target = Target::resolve(&DbArgs {
        database_url: None,
        data_dir: root.join("pgdata"),
        port: None,
        protect: Vec::new(),
        keep_copies: false,
        shared_lock: false,
    })?;
    let mut conn = target.connect().await?;
    let reusable = seed::dataset(&mut conn)
        .await?
        .is_some_and(|d| d.status == "complete" && d.profile == PROFILE);
    if !reusable {
        eprintln!(
            "rls_overhead: seeding a {PROFILE} dataset in {}",
            root.display()
        );
        seed::seed(
            &target,
            &SeedOptions {
                profile: PROFILE.into(),
                scale: 1.0,
                seed: 42,
                anchor: chrono::Utc::now().date_naive(),
                jobs: 2,
                reset: true,
                toast_compression: None,
                variant: VariantRequest {
                    indexes: Some("tuned".into()),
                    policies: Some("initplan".into()),
                    api_usage: Some("partitioned".into()),
                },
            },
        )
        .await?;
    }
    let dataset = seed::require_complete(&mut conn).await?;
    let variant = schema::current_variant(&mut conn)
        .await?
        .unwrap_or_default();
    let population = Population::load(&mut conn, dataset.anchor).await?;
    let user = population.heavy();
    let mut cases = Vec::new();
    for spec in storybench::catalog::load_default()?.by_role(Role::App) {
        let mut rng = rng_for(42, &format!("bench-rls:{}", spec.name));
        let params = population.draw(&mut conn, spec, user, &mut rng).await?;
        cases.push((spec.clone(), params));
    }
    Ok(Setup {
        target,
        conn: Arc::new(Mutex::new(conn)),
        ctx: RequestContext::new(&variant.api_usage, Duration::from_secs(30)),
        cases,
        user,
    })
}

fn rls_overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let setup = rt
        .block_on(setup())
        .expect("bench set-up (embedded cluster, tiny seed)");
    let found = rt
        .block_on(async { schema::current_variant(&mut *setup.conn.lock().await).await })
        .ok()
        .flatten()
        .unwrap_or_default()
        .policies;
    for set in ["doc", "initplan"] {
        rt.block_on(async { schema::set_policies(&mut *setup.conn.lock().await, set).await })
            .expect("switching the policy set");
        for (spec, params) in &setup.cases {
            let mut group = c.benchmark_group(format!("rls/{}", spec.name));
            group
                .sample_size(10)
                .warm_up_time(Duration::from_millis(100))
                .measurement_time(Duration::from_millis(500));
            let mut modes = vec![(set, Principal::User(setup.user))];
            if set == "doc" {
                modes.insert(0, ("bypass", Principal::Service));
            }
            for (name, who) in modes {
                let (conn, ctx) = (setup.conn.clone(), setup.ctx.clone());
                group.bench_function(name, |b| {
                    b.to_async(&rt).iter_custom(|iters| {
                        let (conn, ctx, who) = (conn.clone(), ctx.clone(), who.clone());
                        let (spec, params) = (spec.clone(), params.clone());
                        async move {
                            let mut conn = conn.lock().await;
                            let mut total = Duration::ZERO;
                            for _ in 0..iters {
                                let (elapsed, _) = exec::timed(
                                    &mut conn, &spec, &spec.sql, &params, &who, &ctx, false,
                                )
                                .await
                                .expect("query");
                                total += elapsed;
                            }
                            total
                        }
                    })
                });
            }
            group.finish();
        }
    }
    rt.block_on(async { schema::set_policies(&mut *setup.conn.lock().await, &found).await })
        .expect("restoring the policy set");
    drop(setup.conn);
    setup.target.finish().expect("stopping the bench cluster");
}

criterion_group!(benches, rls_overhead);
criterion_main!(benches);
