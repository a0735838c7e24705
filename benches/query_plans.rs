//! Which index strategy serves each catalog read query best? One criterion group per read
//! query, one bench per index strategy (files in schema/indexes/), on a tiny dataset this
//! bench seeds in its own embedded cluster. `cargo bench --bench query_plans`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;
use storybench::bench_support::{heavy_user_queries, time_iterations, tiny_dataset};

fn query_plans(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let target = rt.block_on(tiny_dataset()).expect("bench dataset");
    let (queries, ctx) = rt
        .block_on(heavy_user_queries(&target, |q| q.is_read()))
        .expect("catalog");
    let mut conn = rt.block_on(target.connect()).expect("connection");
    let original = rt
        .block_on(storybench::schema::current_variant(&mut conn))
        .expect("variant")
        .unwrap_or_default();
    for strategy in ["fk_only", "doc", "tuned"] {
        rt.block_on(storybench::schema::set_indexes(&mut conn, strategy))
            .expect("switch strategy");
        for q in &queries {
            let mut group = c.benchmark_group(&q.spec.name);
            group
                .sample_size(20)
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(1));
            group.bench_function(strategy, |b| {
                b.to_async(&rt)
                    .iter_custom(|iters| time_iterations(&target, q, &ctx, iters))
            });
            group.finish();
        }
    }
    rt.block_on(storybench::schema::set_indexes(
        &mut conn,
        &original.indexes,
    ))
    .expect("restore strategy");
    drop(conn);
    target.finish().expect("stop the bench cluster");
}

criterion_group!(benches, query_plans);
criterion_main!(benches);
