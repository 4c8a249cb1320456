//! Assign latency in steady state versus during a reload storm, in process.
//!
//! Builds a kubelet-style config volume with `--experiments` experiments, serves it
//! from a `Store` kept current by `reload::watch`, and runs `--clients` threads that
//! call `store.load()` + `Snapshot::assign` as fast as they can, timing each call.
//! Phase one is steady; in phase two a writer swaps `..data` to a changed payload
//! every `--every-ms`, so the watcher parses, compiles and installs a full snapshot
//! each time, competing with the clients for the CPU.
//!
//! Run: `cargo run --release --example reload_storm -- --experiments 1000 --seconds 5`

#[path = "../support/gen.rs"]
mod gen;
#[path = "../../tests/support/kubelet.rs"]
mod kubelet;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cohortd::reload::{reload_now, watch, Store, WatchOptions};
use cohortd::EvalOptions;

struct Args {
    experiments: usize,
    seconds: u64,
    clients: usize,
    every_ms: u64,
}

fn args() -> Args {
    let mut a = Args {
        experiments: 1000,
        seconds: 5,
        clients: 2,
        every_ms: 250,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse::<u64>().ok());
        let Some(v) = value else {
            eprintln!(
                "usage: reload_storm [--experiments N] [--seconds S] [--clients C] [--every-ms MS]"
            );
            std::process::exit(2);
        };
        match pair[0].as_str() {
            "--experiments" => a.experiments = v as usize,
            "--seconds" => a.seconds = v,
            "--clients" => a.clients = v as usize,
            "--every-ms" => a.every_ms = v,
            other => {
                eprintln!("unknown flag {other}");
                std::process::exit(2);
            }
        }
    }
    a
}

fn write(w: &kubelet::AtomicWriter, files: &[(String, String)]) {
    let b: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    w.write(&b).expect("write the config volume");
}

/// Runs the clients for `secs` and returns every call's latency in nanoseconds.
fn measure(store: &Arc<Store>, clients: usize, n: usize, secs: u64) -> (Vec<u64>, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let keys: Arc<Vec<String>> = Arc::new((0..n).map(|i| format!("exp-{i:05}")).collect());
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (store, stop, keys) = (Arc::clone(store), Arc::clone(&stop), Arc::clone(&keys));
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(1 << 20);
                let mut ctx = serde_json::Map::new();
                ctx.insert("region".into(), "US".into());
                ctx.insert("accountType".into(), "free".into());
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    ctx.insert("userId".into(), format!("user-{c}-{i}").into());
                    let key = &keys[i % keys.len()];
                    let t = Instant::now();
                    let snap = store.load().expect("a snapshot is loaded");
                    let a = snap
                        .assign(key, &ctx, EvalOptions::default())
                        .expect("assign");
                    std::hint::black_box(a.variant);
                    lat.push(t.elapsed().as_nanos() as u64);
                }
                lat
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    (all, elapsed)
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, lat: &[u64], secs: f64) -> u64 {
    let p99 = pct(lat, 0.99);
    println!(
        "{name:>8}: {:>10} calls {:>10.0}/s  p50 {:>6} ns  p99 {:>6} ns  p99.9 {:>7} ns  max {:>9} ns",
        lat.len(),
        lat.len() as f64 / secs,
        pct(lat, 0.50),
        p99,
        pct(lat, 0.999),
        lat[lat.len() - 1]
    );
    p99
}

#[tokio::main]
async fn main() {
    let a = args();
    let tmp = tempfile::tempdir().expect("temp dir");
    let writer = kubelet::AtomicWriter::new(tmp.path());
    write(&writer, &gen::payload(a.experiments, "v0"));
    let store = Store::new();
    reload_now(tmp.path(), &store);
    let handle = watch::spawn(
        tmp.path().to_owned(),
        Arc::clone(&store),
        WatchOptions::default(),
    )
    .expect("watch the config volume");
    let (steady, steady_s) = measure(&store, a.clients, a.experiments, a.seconds);

    // Payloads are built before the storm so the writer does only file I/O.
    let payloads = [
        gen::payload(a.experiments, "v1"),
        gen::payload(a.experiments, "v2"),
    ];
    let before = store.status();
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    let every = Duration::from_millis(a.every_ms);
    let storm = std::thread::spawn(move || {
        let mut writes = 0u64;
        while !s.load(Ordering::Relaxed) {
            write(&writer, &payloads[writes as usize % 2]);
            writes += 1;
            std::thread::sleep(every);
        }
        writes
    });
    let (stormy, stormy_s) = measure(&store, a.clients, a.experiments, a.seconds);
    stop.store(true, Ordering::Relaxed);
    let writes = storm.join().unwrap();
    handle.stop().await;
    let after = store.status();

    println!(
        "{} experiments, {} client threads, {} s per phase; storm: {writes} rewrites every {} ms, {} reloads applied, {} rejected",
        a.experiments,
        a.clients,
        a.seconds,
        a.every_ms,
        after.applied - before.applied,
        after.rejected - before.rejected
    );
    let p_steady = report("steady", &steady, steady_s);
    let p_storm = report("storm", &stormy, stormy_s);
    println!(
        "p99 storm / steady = {:.2}",
        p_storm as f64 / p_steady.max(1) as f64
    );
}
