//! Criterion benches of RLS overhead: every app query of the catalog as bypass
//! (service_role + explicit user filter), under the doc policies and under the initplan
//! policies (as an authenticated user, PostgREST-style claims), for the heavy user of the
//! benches' tiny dataset (`bench_support`: their own embedded cluster, seeded on first use,
//! reused after). Only the query is timed, as in `storybench rls`.
//!
//!     cargo bench --bench rls_overhead                 # every query, short run
//!     cargo bench --bench rls_overhead -- story_detail # one query

use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;
use storybench::auth::Principal;
use storybench::bench_support::{heavy_user_queries, time_iterations, tiny_dataset, PreparedQuery};
use storybench::catalog::Role;

fn rls_overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let target = rt.block_on(tiny_dataset()).expect("bench dataset");
    let (queries, ctx) = rt
        .block_on(heavy_user_queries(&target, |q| q.role == Role::App))
        .expect("catalog");
    let mut conn = rt.block_on(target.connect()).expect("connection");
    let found = rt
        .block_on(storybench::schema::current_variant(&mut conn))
        .expect("variant")
        .unwrap_or_default()
        .policies;
    for set in ["doc", "initplan"] {
        rt.block_on(storybench::schema::set_policies(&mut conn, set))
            .expect("switching the policy set");
        for q in &queries {
            let mut group = c.benchmark_group(format!("rls/{}", q.spec.name));
            group
                .sample_size(10)
                .warm_up_time(Duration::from_millis(100))
                .measurement_time(Duration::from_millis(500));
            let mut arms = vec![(set, q.clone())];
            if set == "doc" {
                // Bypass once: the same statement as service_role (no policy applies).
                let bypass = PreparedQuery {
                    principal: Principal::Service,
                    ..q.clone()
                };
                arms.insert(0, ("bypass", bypass));
            }
            for (name, arm) in &arms {
                group.bench_function(*name, |b| {
                    b.to_async(&rt)
                        .iter_custom(|iters| time_iterations(&target, arm, &ctx, iters))
                });
            }
            group.finish();
        }
    }
    rt.block_on(storybench::schema::set_policies(&mut conn, &found))
        .expect("restoring the policy set");
    drop(conn);
    target.finish().expect("stopping the bench cluster");
}

criterion_group!(benches, rls_overhead);
criterion_main!(benches);
