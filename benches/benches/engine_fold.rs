//! The pure engine fold: 100 achievements over 20 stats, 10,000 players, random stat events.
//! Target: at least 2 million events/s on one core, with live-ops definitions in play
//! (`engine_fold`: every fifth achievement repeatable with a reward, every tenth to claim,
//! every eighth stat weekly), measured beside the same game without them
//! (`engine_fold_plain`) in the same run.
//!
//! - `fold`: the decision fold alone (state updates, `stat`/`unlocked`/`rejected` outputs).
//! - `fold_batch`: what the shell does per batch of 1,000: fold, coalesce, expand `progress`.
//!   Uniformly random players make this the worst case: nothing coalesces.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use laurel_benches::{Shape, definitions, stat_events};
use laurel_engine::Engine;

const EVENTS: usize = 100_000;
const BATCH: usize = 1_000;

fn engine_fold(c: &mut Criterion) {
    fold_group(c, "engine_fold", Shape::ENGINE_FOLD);
    fold_group(c, "engine_fold_plain", Shape::ENGINE_FOLD_PLAIN);
}

fn fold_group(c: &mut Criterion, name: &str, shape: Shape) {
    let mut engine = Engine::new();
    for d in definitions(shape, 7) {
        engine.apply_definition(&d, &mut Vec::new());
    }
    // Warm: every player exists and has some progress, as in a running game.
    let mut out = Vec::new();
    for m in stat_events(shape, 50_000, 1) {
        engine.apply(&m, &mut out);
    }
    let events = stat_events(shape, EVENTS, 2);

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(20);
    group.bench_function("fold", |b| {
        b.iter_batched_ref(
            || engine.clone(),
            |engine| {
                let mut out = Vec::with_capacity(BATCH * 8);
                for batch in events.chunks(BATCH) {
                    out.clear();
                    for m in batch {
                        engine.apply(m, &mut out);
                    }
                }
                out.len()
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("fold_batch", |b| {
        b.iter_batched_ref(
            || engine.clone(),
            |engine| {
                let mut out = Vec::with_capacity(BATCH * 16);
                let mut published = 0;
                for batch in events.chunks(BATCH) {
                    out.clear();
                    engine.apply_batch(batch, &mut out);
                    published += out.len();
                }
                published
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, engine_fold);
criterion_main!(benches);
