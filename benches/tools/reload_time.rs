//! How long one reload of a large config takes, phase by phase, in wall time and
//! in CPU time of the reloading thread (the latter is what a busy machine cannot
//! inflate: other processes delay the reload but do not make it do more work).
//!
//! Rewrites a generated directory of `--experiments` experiments between two
//! contents before each reload (outside the timing), so every reload really
//! applies a new version, and reports the median and 90th percentile of
//! `--rounds` reloads for each step of `reload_now`: reading the files, parsing
//! them, compiling (experiments unchanged since the served snapshot are copied from
//! it, `cohortd::snapshot::reuse`), the cohort guard's check against the served
//! snapshot, `Store::install` (diff and swap), and handing the replaced snapshot to
//! the reaper thread that frees it off the reload's path
//! (`cohortd::reload::reaper`), as the watcher does.
//!
//! By default every file differs between the two directories (every experiment's
//! name changes: the worst case). `--changed-files K` makes only the first K
//! files of 100 experiments differ, as when one team edits its file.
//!
//! Run: `cargo run --release --example reload_time -- --experiments 10000 --rounds 10 [--changed-files 1]`

#[path = "../support/gen.rs"]
mod gen;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cohortd::config::SourceFile;
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
    let changed = flag("--changed-files", usize::MAX);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let contents = [gen::payload(n, "a"), gen::payload(n, "b")];
    let bytes: usize = contents[0].iter().map(|(_, t)| t.len()).sum();
    // Writes content `which` into the first `changed` files (all of them first).
    let write = |which: usize, files: usize| {
        for (name, text) in contents[which].iter().take(files) {
            std::fs::write(dir.join(name), text).unwrap();
        }
    };
    write(1, usize::MAX);
    let store = Store::default();
    store.install(Snapshot::load(dir).unwrap());

    // (wall, cpu) per phase per round.
    let mut rows: Vec<[(Duration, Duration); 7]> = Vec::new();
    let mut reused = 0;
    for r in 0..rounds {
        write(r % 2, changed);
        let old: Arc<Snapshot> = store.load().expect("a snapshot is served");
        let (raw, rw, rc) = timed(|| cohortd::config::read_sources(dir).expect("readable"));
        // `Snapshot::from_raw_reusing` in two steps, to time them apart.
        let (parsed, pw, pc) = timed(|| {
            let docs = cohortd::config::parse_parallel::parse_all(&raw);
            raw.iter()
                .zip(docs)
                .map(|(f, (doc, errors))| {
                    assert!(errors.is_empty(), "valid config: {errors:?}");
                    SourceFile {
                        path: f.path.clone(),
                        doc: doc.expect("parsed"),
                    }
                })
                .collect::<Vec<_>>()
        });
        let (snap, cw, cc) =
            timed(|| Snapshot::compile_reusing(&parsed, Some(&old)).expect("valid config"));
        drop(parsed);
        reused = snap.reused_experiments();
        let (verdict, gw, gc) = timed(|| check_reload(&old, &snap, unix_now()));
        verdict.expect("names only change: the guard allows it");
        let (ev, iw, ic) = timed(|| store.install(snap));
        assert!(ev.is_some(), "every round applies a new version");
        let (_, dw, dc) = timed(move || cohortd::reload::reaper::release(old));
        rows.push([
            (rw, rc),
            (pw, pc),
            (cw, cc),
            (gw, gc),
            (iw, ic),
            (dw, dc),
            (rw + pw + cw + gw + iw + dw, rc + pc + cc + gc + ic + dc),
        ]);
    }
    println!(
        "{n} experiments ({:.1} MiB of JSON in {} files, {} changed per reload; {reused} experiments reused), {rounds} reloads",
        bytes as f64 / (1 << 20) as f64,
        n.div_ceil(100),
        changed.min(n.div_ceil(100)),
    );
    for (i, name) in [
        "read",
        "parse (2 threads)",
        "compile",
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
        let p90 = |v: &[Duration]| ms(v[(v.len() * 9 / 10).min(v.len() - 1)]);
        println!(
            "{name:>26}: wall median {:>7.1} ms  p90 {:>7.1} ms | cpu median {:>7.1} ms  p90 {:>7.1} ms",
            ms(wall[wall.len() / 2]),
            p90(&wall),
            ms(cpu[cpu.len() / 2]),
            p90(&cpu),
        );
    }
}
