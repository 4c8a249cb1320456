//! Reloading 10,000 experiments: read + parse + compile (`Snapshot::load`), compile
//! alone, and a full `reload_now` that swaps a changed snapshot into the store.
//! Goal (issue 3): a 10,000-experiment reload under 200 ms.
//!
//! Run: `cargo bench --bench reload`

#[path = "support/gen.rs"]
mod gen;

use std::hint::black_box;
use std::time::Duration;

use cohortd::config::load_path;
use cohortd::reload::{reload_now, ReloadOutcome, Store};
use cohortd::Snapshot;
use criterion::{criterion_group, criterion_main, Criterion};

const N: usize = 10_000;

fn reload(c: &mut Criterion) {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for (dir, tag) in [(&a, "a"), (&b, "b")] {
        for (name, text) in gen::payload(N, tag) {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
    }
    let mut g = c.benchmark_group("reload_10k");
    g.sample_size(10).measurement_time(Duration::from_secs(10));

    g.bench_function("snapshot_load", |bch| {
        bch.iter(|| black_box(Snapshot::load(a.path()).unwrap()))
    });
    let parsed = load_path(a.path()).unwrap();
    g.bench_function("compile_only", |bch| {
        bch.iter(|| black_box(Snapshot::compile(&parsed).unwrap()))
    });
    // Alternating two contents, so every iteration really applies a new version.
    let store = Store::default();
    let mut flip = false;
    g.bench_function("reload_now_applied", |bch| {
        bch.iter(|| {
            flip = !flip;
            let dir = if flip { a.path() } else { b.path() };
            assert!(matches!(reload_now(dir, &store), ReloadOutcome::Applied(_)));
        })
    });
    g.finish();
}

criterion_group!(benches, reload);
criterion_main!(benches);
