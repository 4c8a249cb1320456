//! Rewrites a directory the way the kubelet updates a ConfigMap volume, for reload
//! benchmarks against a running `cohortd serve` (see `benches/reload_storm.sh`).
//!
//! Each write is a complete payload of `--experiments` generated experiments whose
//! names carry the write number, so every write is a real (and cohort-safe) content
//! change; every `--invalid-every`-th write is invalid and must be refused.
//!
//! ```sh
//! # write once (initial config):
//! cargo run --release --example configmap_writer -- --dir /tmp/c --experiments 1000
//! # then rewrite every 250 ms for 12 s:
//! cargo run --release --example configmap_writer -- --dir /tmp/c --experiments 1000 --every-ms 250 --seconds 12
//! ```

#[path = "../support/gen.rs"]
mod gen;
#[path = "../../tests/support/kubelet.rs"]
mod kubelet;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Rewrite a directory like the kubelet updates a ConfigMap volume")]
struct Args {
    /// The volume directory (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Experiments per payload.
    #[arg(long, default_value_t = 1000)]
    experiments: usize,
    /// Keep rewriting for this many seconds; 0 writes once.
    #[arg(long, default_value_t = 0.0)]
    seconds: f64,
    /// Pause between rewrites.
    #[arg(long, default_value_t = 250)]
    every_ms: u64,
    /// Make every Nth rewrite invalid (0: never).
    #[arg(long, default_value_t = 5)]
    invalid_every: u64,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    let writer = kubelet::AtomicWriter::new(&args.dir);
    let end = Instant::now() + Duration::from_secs_f64(args.seconds);
    let (mut writes, mut invalid) = (0u64, 0u64);
    loop {
        let mut files = gen::payload(args.experiments, &format!("w{writes}"));
        if writes > 0 && args.invalid_every > 0 && writes % args.invalid_every == 0 {
            files[0].1 = files[0].1.replacen("\"running\"", "\"runing\"", 1);
            invalid += 1;
        }
        let borrowed: Vec<(&str, &str)> = files
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        writer.write(&borrowed)?;
        writes += 1;
        if Instant::now() >= end {
            break;
        }
        std::thread::sleep(Duration::from_millis(args.every_ms));
    }
    println!(
        "{writes} writes ({invalid} invalid) of {} experiments to {}",
        args.experiments,
        args.dir.display()
    );
    Ok(())
}
