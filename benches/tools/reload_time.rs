//! How long one reload of a large config takes, phase by phase, in wall time and
//! in CPU time of the reloading thread (the latter is what a busy machine cannot
//! inflate: other processes delay the reload but do not make it do more work).
//!
//! Rewrites a generated directory of `--experiments` experiments between two
//! contents before each reload (outside the timing), so every reload really
//! applies a new version, and reports the median and 90th percentile of
//! `--rounds` reloads for each step of `reload_now`: reading the files, parsing
//! the files that changed (on two threads when large; unchanged files are taken
//! from the served snapshot's parse cache, `cohortd::snapshot::sources`) and
//! compiling (experiments unchanged since the served snapshot are copied from
//! it, `cohortd::snapshot::reuse`), the cohort guard's check against the served
//! snapshot, `Store::install` (diff and swap), and handing the replaced snapshot to
//! the reaper thread that frees it off the reload's path
//! (`cohortd::reload::reaper`), as the watcher does.
//!
//! By default every file differs between the two directories (every experiment's
//! name changes: the worst case). `--changed-files K` makes only the first K
//! files of 100 experiments differ, as when one team edits its file.
//!
//! `--ramp 1` also raises every experiment's `trafficAllocation` on every
//! reload (0.3 to 0.301, 0.302, ...): a change that can move units, so the
//! cohort guard judges every pair in full (accepted: raising traffic moves
//! nobody out) instead of skipping pairs whose guard keys are equal.
//!
//! Run: `cargo run --release --example reload_time -- --experiments 10000 --rounds 10 [--changed-files 1] [--ramp 1]`

// The server's allocator (cargo feature), so what is timed is what `cohortd` runs.
cohortd::server_allocator!();

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

/// CPU time of the whole process, every thread (the parse and compile threads
/// too, and the reaper's), in the kernel's 10 ms ticks: coarse for one reload,
/// averaged over the rounds.
fn process_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the
    // 12th and stime the 13th of them.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    Duration::from_millis(f.iter().sum::<u64>() * 10)
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
    let ramp = flag("--ramp", 0) != 0;
    let contents = [gen::payload(n, "a"), gen::payload(n, "b")];
    let bytes: usize = contents[0].iter().map(|(_, t)| t.len()).sum();
    // Writes content `which` into the first `changed` files (all of them
    // first); with `--ramp`, every traffic allocation `0.D` as `0.DRR` for
    // round `RR` (1 to 99), higher on every round.
    let write = |which: usize, files: usize, round: Option<usize>| {
        for (name, text) in contents[which].iter().take(files) {
            let mut text = std::borrow::Cow::Borrowed(text.as_str());
            if let Some(r) = round.filter(|_| ramp) {
                for d in 1..=9 {
                    let from = format!("\"trafficAllocation\":0.{d},");
                    let to = format!("\"trafficAllocation\":0.{d}{:02},", r + 1);
                    text = text.replace(&from, &to).into();
                }
            }
            std::fs::write(dir.join(name), &*text).unwrap();
        }
    };
    assert!(
        !ramp || rounds < 99,
        "--ramp raises traffic by 0.001 a round, 98 rounds at most"
    );
    write(1, usize::MAX, None);
    let store = Store::default();
    store.install(Snapshot::load(dir).unwrap());

    // (wall, cpu) per phase per round.
    let mut rows: Vec<[(Duration, Duration); 6]> = Vec::new();
    let mut reused = 0;
    let mut process_total = Duration::ZERO;
    for r in 0..rounds {
        write(r % 2, changed, Some(r));
        let old: Arc<Snapshot> = store.load().expect("a snapshot is served");
        let all_threads = process_cpu();
        let (raw, rw, rc) = timed(|| cohortd::config::read_sources(dir).expect("readable"));
        // Parsing the files that changed (the others are taken from the served
        // snapshot, `cohortd::snapshot::sources`) and compiling, as a reload does.
        let (snap, cw, cc) =
            timed(|| Snapshot::from_raw_reusing(&raw, Some(&old)).expect("valid config"));
        drop(raw);
        reused = snap.reused_experiments();
        let (verdict, gw, gc) = timed(|| check_reload(&old, &snap, unix_now()));
        verdict.expect("names change and traffic rises: the guard allows it");
        let (ev, iw, ic) = timed(|| store.install(snap));
        assert!(ev.is_some(), "every round applies a new version");
        let (_, dw, dc) = timed(move || cohortd::reload::reaper::release(old));
        process_total += process_cpu() - all_threads;
        rows.push([
            (rw, rc),
            (cw, cc),
            (gw, gc),
            (iw, ic),
            (dw, dc),
            (rw + cw + gw + iw + dw, rc + cc + gc + ic + dc),
        ]);
    }
    println!(
        "{n} experiments ({:.1} MiB of JSON in {} files, {} changed per reload{}; {reused} experiments reused), {rounds} reloads",
        bytes as f64 / (1 << 20) as f64,
        n.div_ceil(100),
        changed.min(n.div_ceil(100)),
        if ramp { ", traffic raised in each" } else { "" },
    );
    for (i, name) in [
        "read",
        "parse changed + compile",
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
    println!(
        "{:>26}: cpu mean {:>7.1} ms (every thread, 10 ms ticks)",
        "process",
        ms(process_total) / rounds as f64
    );
}
