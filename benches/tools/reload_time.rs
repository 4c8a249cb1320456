//! How long one reload of a large config takes, phase by phase, in wall time and
//! in CPU time of the reloading thread (the latter is what a busy machine cannot
//! inflate: other processes delay the reload but do not make it do more work).
//!
//! Alternates between two generated directories of `--experiments` experiments, so
//! every reload really applies a new version, and reports the median and worst of
//! `--rounds` reloads for each step of `reload_now`: `Snapshot::load` (read, parse,
//! compile), the cohort guard's check against the served snapshot, `Store::install`
//! (diff and swap), and handing the replaced snapshot to the reaper thread that
//! frees it off the reload's path (`cohortd::reload::reaper`), as the watcher does.
//!
//! Run: `cargo run --release --example reload_time -- --experiments 10000 --rounds 10`

#[path = "../support/gen.rs"]
mod gen;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cohortd::reload::Store;
use cohortd::safety::guard::check_reload;
use cohortd::snapshot::schedule::unix_now;
use cohortd::Snapshot;

/// CPU time this thread has run, from the kernel's scheduler statistics.
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// Wall and CPU time of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration, Duration) {
    let (w, c) = (Instant::now(), thread_cpu());
    let out = f();
    (out, w.elapsed(), thread_cpu() - c)
}

fn flag(name: &str, default: usize) -> usize {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter()
        .position(|a| a == name)
        .and_then(|i| argv.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let n = flag("--experiments", 10_000);
    let rounds = flag("--rounds", 10).max(1);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut bytes = 0;
    for (dir, tag) in dirs.iter().zip(["a", "b"]) {
        for (name, text) in gen::payload(n, tag) {
            bytes += text.len();
            std::fs::write(dir.path().join(name), text).unwrap();
        }
    }
    let store = Store::default();
    store.install(Snapshot::load(dirs[1].path()).unwrap());

    // (wall, cpu) per phase per round.
    let mut rows: Vec<[(Duration, Duration); 5]> = Vec::new();
    for r in 0..rounds {
        let dir = dirs[r % 2].path();
        let (snap, lw, lc) = timed(|| Snapshot::load(dir).expect("valid config"));
        let old: Arc<Snapshot> = store.load().expect("a snapshot is served");
        let (verdict, gw, gc) = timed(|| check_reload(&old, &snap, unix_now()));
        verdict.expect("names only change: the guard allows it");
        let (ev, iw, ic) = timed(|| store.install(snap));
        assert!(ev.is_some(), "every round applies a new version");
        let (_, dw, dc) = timed(move || cohortd::reload::reaper::release(old));
        rows.push([
            (lw, lc),
            (gw, gc),
            (iw, ic),
            (dw, dc),
            (lw + gw + iw + dw, lc + gc + ic + dc),
        ]);
    }
    println!(
        "{n} experiments ({:.1} MiB of JSON in {} files), {rounds} reloads",
        bytes as f64 / (1 << 20) as f64,
        n.div_ceil(100)
    );
    for (i, name) in [
        "load (read+parse+compile)",
        "cohort guard",
        "install (diff+swap)",
        "release old (to reaper)",
        "total",
    ]
    .iter()
    .enumerate()
    {
        let mut wall: Vec<Duration> = rows.iter().map(|r| r[i].0).collect();
        let mut cpu: Vec<Duration> = rows.iter().map(|r| r[i].1).collect();
        wall.sort();
        cpu.sort();
        println!(
            "{name:>26}: wall median {:>7.1} ms  max {:>7.1} ms | cpu median {:>7.1} ms  max {:>7.1} ms",
            ms(wall[wall.len() / 2]),
            ms(wall[wall.len() - 1]),
            ms(cpu[cpu.len() / 2]),
            ms(cpu[cpu.len() - 1]),
        );
    }
}
