//! Partitioned vs flat api_usage: one criterion group per analytics query reading
//! api_usage, one bench per layout, on a tiny dataset this bench seeds in its own
//! embedded cluster (kept under /tmp between runs). `cargo bench --bench partitioned_analytics`.
//! For planning/pruning evidence, the scaling curve and maintenance, see `storybench partitions`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;
use storybench::bench_support::{heavy_user_queries, time_iterations, tiny_dataset};
use storybench::measure::exec::RequestContext;

fn partitioned_analytics(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let target = rt.block_on(tiny_dataset()).expect("bench dataset");
    let (queries, _) = rt
        .block_on(heavy_user_queries(&target, |q| {
            q.has_tag("analytics") && q.has_tag("api_usage") && q.is_read()
        }))
        .expect("catalog");
    let layouts = storybench::schema::Layout::ALL
        .map(|l| (l.name(), RequestContext::new(l, Duration::from_secs(30))));
    for q in &queries {
        let mut group = c.benchmark_group(format!("partitions/{}", q.spec.name));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(800));
        for (layout, ctx) in &layouts {
            group.bench_function(*layout, |b| {
                b.to_async(&rt)
                    .iter_custom(|iters| time_iterations(&target, q, ctx, iters))
            });
        }
        group.finish();
    }
    target.finish().expect("stop the bench cluster");
}

criterion_group!(benches, partitioned_analytics);
criterion_main!(benches);
