//! Criterion benchmark of flag evaluation over a compiled snapshot, one case per tier that
//! does work: a static boolean, a targeting-rule match, a percentage rollout and weighted
//! variants. Each iteration evaluates for the next of 1,024 distinct contexts, so the hash
//! sees varied keys. Run: `cargo bench --bench eval` (figures in docs/flags-eval-bench.md).
//!
//! The `result_cache` group prices the alternative: a moka cache of per-context results keyed
//! by (revision, context), as `POST /v1/evaluate` would use it (docs/flags-bench.md).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use switchyard::flags::{Evaluation, EvaluationContext, Flag, FlagRecord, Snapshot};

const ENV: &str = "production";

fn record(definition: Value) -> FlagRecord {
    let flag: Flag = serde_json::from_value(definition).expect("flag parses");
    FlagRecord {
        flag,
        version: 1,
        updated_at: Utc::now(),
    }
}

fn snapshot() -> Snapshot {
    let flags = [
        record(json!({"key": "static.boolean", "type": "boolean",
                      "environments": {ENV: {"enabled": true}}})),
        record(
            json!({"key": "rules.match", "type": "boolean", "environments": {ENV: {
            "enabled": true, "rollout": {"percentage": 0},
            "rules": [
                {"targeting_keys": ["ops-1", "ops-2", "ops-3"], "variant": "on"},
                {"constraints": [{"attribute": "region", "operator": "in", "values": ["ap"]}],
                 "variant": "on"},
                {"constraints": [
                    {"attribute": "region", "operator": "in", "values": ["eu", "us"]},
                    {"attribute": "app_version", "operator": "semver_gte", "values": ["2.0.0"]}
                 ], "variant": "on"}
            ]}}}),
        ),
        record(json!({"key": "percentage.rollout", "type": "boolean",
                      "environments": {ENV: {"enabled": true, "rollout": {"percentage": 25}}}})),
        record(json!({"key": "weighted.variants", "type": "string",
            "variants": {"websocket": "websocket", "realtime": "realtime", "dual": "dual"},
            "environments": {ENV: {"enabled": true, "off_variant": "websocket",
                "default_variant": "websocket",
                "rollout": {"percentage": 50, "variant": "realtime", "variant_weights": [
                    {"variant": "websocket", "weight": 200}, {"variant": "realtime", "weight": 500},
                    {"variant": "dual", "weight": 300}]}}}})),
    ];
    Snapshot::compile(1, &flags, &BTreeMap::new())
}

fn contexts() -> Vec<EvaluationContext> {
    (0..1024)
        .map(|i| {
            EvaluationContext::for_key(format!("dashboard-{i:05}"))
                .with_attribute("region", if i % 2 == 0 { "eu" } else { "us" })
                .with_attribute("app_version", "2.3.1")
        })
        .collect()
}

fn bench_evaluation(c: &mut Criterion) {
    let snapshot = snapshot();
    let contexts = contexts();
    let mut group = c.benchmark_group("evaluate");
    for key in [
        "static.boolean",
        "rules.match",
        "percentage.rollout",
        "weighted.variants",
    ] {
        let mut next = contexts.iter().cycle();
        group.bench_function(key, |b| {
            b.iter(|| {
                let ctx = next.next().expect("cycle never ends");
                snapshot.evaluate(black_box(key), black_box(ctx), ENV)
            });
        });
    }
    let ctx = &contexts[0];
    group.bench_function("all_four", |b| {
        b.iter(|| snapshot.evaluate_all(black_box(ctx), ENV));
    });
    group.finish();
}

/// The key a result cache would use: the snapshot's revision and the context as the request
/// carried it (its JSON), so a flag change misses every entry at once.
type ResultKey = (i64, String);

/// A moka lookup that hits, and one that misses and inserts, against evaluating afresh (the
/// `evaluate` group). The runtime only drives moka's futures; each measurement runs all its
/// iterations inside one `block_on`.
fn bench_result_cache(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let snapshot = snapshot();
    let contexts = contexts();
    let keys: Vec<ResultKey> = contexts
        .iter()
        .map(|ctx| {
            (
                snapshot.revision(),
                serde_json::to_string(ctx).expect("serializes"),
            )
        })
        .collect();
    let cache: moka::future::Cache<ResultKey, Arc<Vec<Evaluation>>> =
        moka::future::Cache::builder().max_capacity(10_000).build();
    runtime.block_on(async {
        for (key, ctx) in keys.iter().zip(&contexts) {
            let results = Arc::new(snapshot.evaluate_all(ctx, ENV));
            cache.insert(key.clone(), results).await;
        }
    });
    let value = Arc::new(snapshot.evaluate_all(&contexts[0], ENV));
    let mut group = c.benchmark_group("result_cache");
    group.bench_function("moka_hit", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for i in 0..iters as usize {
                    black_box(cache.get(black_box(&keys[i % keys.len()])).await);
                }
                start.elapsed()
            })
        });
    });
    // Every context new (a dashboard's client id seen for the first time, or the first request
    // after a flag change): the lookup misses and the result is inserted.
    let mut revision = snapshot.revision();
    group.bench_function("moka_miss_and_insert", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut spent = Duration::ZERO;
                for i in 0..iters as usize {
                    revision += 1;
                    let key = (revision, keys[i % keys.len()].1.clone());
                    let start = Instant::now();
                    if cache.get(&key).await.is_none() {
                        cache.insert(key, value.clone()).await;
                    }
                    spent += start.elapsed();
                }
                spent
            })
        });
    });
    group.finish();
}

criterion_group!(benches, bench_evaluation, bench_result_cache);
criterion_main!(benches);
