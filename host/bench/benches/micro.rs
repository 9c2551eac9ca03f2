//! The org-mesh side of the policy and plugin comparisons under
//! Criterion's statistics, for tracking org-mesh against itself over time:
//! `cargo bench -p org-mesh-bench --bench micro`. The peer
//! comparisons are in `compare`.

#![expect(clippy::panic, reason = "a benchmark that cannot set up fails loudly")]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use org_mesh_bench::plugin::{self, Twin};
use org_mesh_bench::policy::{Compiled, Fixture};

fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e:#}"))
}

fn policy(c: &mut Criterion) {
    let fixture = or_panic(Fixture::new());
    let compiled = or_panic(Compiled::new(&fixture));
    let mut group = c.benchmark_group("policy decision, all findings");
    group.bench_function("prepared engine (shipped)", |b| {
        b.iter(|| {
            for input in &fixture.inputs {
                std::hint::black_box(or_panic(fixture.set.decide(input)));
            }
        });
    });
    group.bench_function("compiled per rule", |b| {
        b.iter(|| {
            for input in &fixture.inputs {
                std::hint::black_box(or_panic(compiled.eval(input)));
            }
        });
    });
    group.bench_function("bytecode engine", |b| {
        b.iter(|| {
            for input in &fixture.inputs {
                std::hint::black_box(or_panic(fixture.bytecode.decide(input)));
            }
        });
    });
    group.finish();
}

fn detector(c: &mut Criterion) {
    let twin = Arc::new(or_panic(Twin::offboarded_admin()));
    let runtime = or_panic(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    );
    let (_rt, detector) = or_panic(runtime.block_on(plugin::sandboxed(twin.clone())));
    let changes = twin.change_set();
    let request = twin.request();
    let mut group = c.benchmark_group("detector call");
    group.bench_function("sandboxed", |b| {
        b.to_async(&runtime)
            .iter(|| async { or_panic(detector.detect(false, &changes).await) });
    });
    group.bench_function("native", |b| {
        b.iter(|| {
            identity_drift::detect(&plugin::Native(&twin), &request)
                .unwrap_or_else(|e| panic!("{e:?}"))
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = policy, detector
}
criterion_main!(benches);
