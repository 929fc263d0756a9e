//! Criterion benchmark of the breaker's overhead per call while closed: a call around a future
//! that is already ready, next to the same future awaited bare and under `tokio::time::timeout`
//! alone (what every breaker call adds at the least). Each sample awaits a batch of calls inside
//! one `block_on`, so the runtime's entry cost is spread over the batch and not counted per call.
//! Run: `cargo bench --bench breaker` (figures in docs/breaker-bench.md).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard::breaker::{Breaker, BreakerConfig, FailurePolicy};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Runs `iters` awaits of `call` in one `block_on` and returns their total time.
fn timed<F, Fut>(runtime: &Runtime, iters: u64, mut call: F) -> Duration
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = u64>,
{
    runtime.block_on(async {
        let started = Instant::now();
        for i in 0..iters {
            black_box(call(i).await);
        }
        started.elapsed()
    })
}

fn closed_call(c: &mut Criterion) {
    let runtime = runtime();
    let breaker = runtime.block_on(async {
        Breaker::start("bench", BreakerConfig::default(), CancellationToken::new())
    });
    let rate = runtime.block_on(async {
        let config = BreakerConfig {
            failure_policy: FailurePolicy::FailureRate {
                threshold: 0.5,
                minimum_calls: 10,
                window: Duration::from_secs(60),
            },
            ..BreakerConfig::default()
        };
        Breaker::start("bench-rate", config, CancellationToken::new())
    });
    let mut group = c.benchmark_group("breaker");
    group.bench_function("bare ready future", |b| {
        b.iter_custom(|iters| {
            timed(&runtime, iters, |i| async move {
                std::future::ready(Ok::<u64, ()>(i)).await.unwrap_or(0)
            })
        })
    });
    group.bench_function("tokio timeout only", |b| {
        b.iter_custom(|iters| {
            timed(&runtime, iters, |i| async move {
                tokio::time::timeout(Duration::from_secs(5), std::future::ready(Ok::<u64, ()>(i)))
                    .await
                    .map_or(0, |r| r.unwrap_or(0))
            })
        })
    });
    group.bench_function("closed call, consecutive failures policy", |b| {
        b.iter_custom(|iters| {
            timed(&runtime, iters, |i| {
                let breaker = &breaker;
                async move {
                    breaker
                        .call(|| std::future::ready(Ok::<u64, ()>(i)))
                        .await
                        .unwrap_or(0)
                }
            })
        })
    });
    group.bench_function("closed call, failure rate policy", |b| {
        b.iter_custom(|iters| {
            timed(&runtime, iters, |i| {
                let rate = &rate;
                async move {
                    rate.call(|| std::future::ready(Ok::<u64, ()>(i)))
                        .await
                        .unwrap_or(0)
                }
            })
        })
    });
    group.finish();
}

criterion_group!(benches, closed_call);
criterion_main!(benches);
