//! A closed-loop gRPC load generator for `cohortd serve` and the empty service.
//!
//! `--connections` HTTP/2 connections each carry `--streams` concurrent callers;
//! every caller sends its next request as soon as the previous one returns. Each
//! request uses a fresh unit id. After a warm-up, it counts calls by gRPC status
//! code and reports throughput and latency percentiles.
//!
//! ```sh
//! cargo run --release --example loadgen -- --rpc assign --duration 10s
//! cargo run --release --example loadgen -- --rpc assign-all
//! cargo run --release --example loadgen -- --rpc assign --exposure   # records exposures
//! cargo run --release --example loadgen -- --target http://127.0.0.1:8023 --rpc empty
//! # a config directory with N generated experiments (for the RSS measurement):
//! cargo run --release --example loadgen -- gen-config --experiments 1000 /tmp/c1000
//! # the body of one gRPC call (5-byte frame header + message), for h2load -d:
//! cargo run --release --example loadgen -- request-file --rpc assign /tmp/assign.bin
//! ```

mod proto {
    pub mod bench {
        tonic::include_proto!("cohortd.bench");
    }
    /// The bench proto imports cohortd's messages as `super::v1::...`.
    pub mod v1 {
        pub use ::cohortd::transport::pb::*;
    }
}
use proto::bench;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use cohortd::transport::pb;
use cohortd::transport::pb::assignment_client::AssignmentClient;
use prost_types::value::Kind;
use prost_types::{Struct, Value};
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, Parser)]
#[command(about = "gRPC load generator for cohortd")]
struct Args {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Server URL.
    #[arg(long, default_value = "http://127.0.0.1:8013")]
    target: String,
    /// Which call to make.
    #[arg(long, value_enum, default_value = "assign")]
    rpc: Rpc,
    /// Experiment for `assign`.
    #[arg(long, default_value = "exp-checkout-flow-v3")]
    experiment: String,
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Concurrent callers per connection.
    #[arg(long, default_value_t = 16)]
    streams: usize,
    /// Measured duration in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up in seconds (not measured).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Client runtime worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// The server's process id: report its CPU time per call over the measured
    /// window (from /proc/PID/stat). On a shared machine this is steadier than
    /// throughput, which depends on what else runs.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Set `exposure: true` on Assign / AssignAll (records exposures).
    #[arg(long)]
    exposure: bool,
}

/// User + system CPU seconds of a process (all threads), from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Writes a config directory of generated experiments.
    GenConfig {
        /// Number of experiments.
        #[arg(long, default_value_t = 1000)]
        experiments: usize,
        /// Output directory (created).
        dir: PathBuf,
    },
    /// Writes one framed gRPC request body (the same one this generator sends,
    /// unit `user-1`; with `--exposure` before the subcommand, one that records
    /// an exposure), for light load generators such as h2load.
    RequestFile {
        /// Which call (`empty` writes the empty service's Assign request: the
        /// same bytes as `assign`).
        #[arg(long, value_enum, default_value = "assign")]
        rpc: Rpc,
        /// Experiment for `assign`.
        #[arg(long, default_value = "exp-checkout-flow-v3")]
        experiment: String,
        /// Output file.
        out: PathBuf,
    },
}

/// A gRPC length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length.
fn framed(msg: &impl prost::Message) -> Vec<u8> {
    let body = msg.encode_to_vec();
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(0);
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Rpc {
    /// `Assign` of one experiment (targeting rules, hashKey userId).
    Assign,
    /// `AssignAll` of every served experiment.
    AssignAll,
    /// The empty service (benches/tools/empty_server.rs).
    Empty,
}

#[derive(Default)]
struct Tally {
    latencies_ns: Vec<u64>,
    codes: BTreeMap<String, u64>,
}

fn s(v: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(v.into())),
    }
}

fn context(unit: u64) -> Struct {
    let id = format!("user-{unit}");
    let mut c = Struct::default();
    c.fields.insert("userId".into(), s(&id));
    c.fields.insert("targetingKey".into(), s(&id));
    c.fields.insert("region".into(), s("US"));
    c.fields.insert("accountType".into(), s("free"));
    c.fields.insert("appVersion".into(), s("2.4.1"));
    c
}

async fn call(
    rpc: Rpc,
    experiment: &str,
    unit: u64,
    exposure: bool,
    ch: &Channel,
) -> Result<(), tonic::Status> {
    match rpc {
        Rpc::Assign => {
            AssignmentClient::new(ch.clone())
                .assign(pb::AssignRequest {
                    experiment: experiment.to_owned(),
                    context: Some(context(unit)),
                    exposure,
                    ..Default::default()
                })
                .await?;
        }
        Rpc::AssignAll => {
            AssignmentClient::new(ch.clone())
                .assign_all(pb::AssignAllRequest {
                    context: Some(context(unit)),
                    exposure,
                    ..Default::default()
                })
                .await?;
        }
        Rpc::Empty => {
            bench::empty_client::EmptyClient::new(ch.clone())
                .call(bench::EmptyRequest {})
                .await?;
        }
    }
    Ok(())
}

fn code_name(code: tonic::Code) -> String {
    cohortd::metrics::GRPC_CODE_NAMES
        .get(code as usize)
        .copied()
        .unwrap_or("UNKNOWN")
        .to_owned()
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut channels = Vec::new();
    for _ in 0..args.connections {
        channels.push(
            Endpoint::from_shared(args.target.clone())?
                .tcp_nodelay(true)
                .connect()
                .await?,
        );
    }
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let next_unit = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for ch in &channels {
        for _ in 0..args.streams {
            let (ch, measuring, stop, next_unit) = (
                ch.clone(),
                measuring.clone(),
                stop.clone(),
                next_unit.clone(),
            );
            let experiment = args.experiment.clone();
            let rpc = args.rpc;
            let exposure = args.exposure;
            tasks.push(tokio::spawn(async move {
                let mut t = Tally::default();
                while !stop.load(Ordering::Relaxed) {
                    let unit = next_unit.fetch_add(1, Ordering::Relaxed);
                    let start = Instant::now();
                    let r = call(rpc, &experiment, unit, exposure, &ch).await;
                    if measuring.load(Ordering::Relaxed) {
                        t.latencies_ns.push(start.elapsed().as_nanos() as u64);
                        let code = match r {
                            Ok(()) => "OK".to_owned(),
                            Err(e) => code_name(e.code()),
                        };
                        *t.codes.entry(code).or_default() += 1;
                    }
                }
                t
            }));
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let began = Instant::now();
    let cpu_before = args.server_pid.and_then(cpu_seconds);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    measuring.store(false, Ordering::Relaxed);
    let cpu_after = args.server_pid.and_then(cpu_seconds);
    let elapsed = began.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await?;
        all.latencies_ns.extend(t.latencies_ns);
        for (k, v) in t.codes {
            *all.codes.entry(k).or_default() += v;
        }
    }
    all.latencies_ns.sort_unstable();
    let n = all.latencies_ns.len();
    let pct = |p: f64| {
        if n == 0 {
            return 0.0;
        }
        let i = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
        all.latencies_ns[i] as f64 / 1000.0
    };
    println!(
        "rpc={:?} target={} connections={} streams={} duration={:.1}s",
        args.rpc, args.target, args.connections, args.streams, elapsed
    );
    println!(
        "calls={n} throughput={:.0}/s p50={:.0}us p99={:.0}us p999={:.0}us",
        n as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(0.999)
    );
    println!("codes={:?}", all.codes);
    if let (Some(b), Some(a)) = (cpu_before, cpu_after) {
        println!(
            "server_cpu={:.2}s ({:.0}% of one core) server_cpu_per_call={:.1}us",
            a - b,
            (a - b) / elapsed * 100.0,
            (a - b) / n.max(1) as f64 * 1e6
        );
    }
    Ok(())
}

/// Generates `n` experiments over 10 files: a mix of traffic allocations,
/// targeting (include lists and rules), weights, layers and statuses.
fn gen_config(n: usize, dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let files = 10.min(n.max(1));
    for f in 0..files {
        let mut text = String::new();
        if f == 0 {
            text.push_str("layers:\n  - key: gen-layer\n");
        }
        text.push_str("experiments:\n");
        for i in (f..n).step_by(files) {
            let traffic = 0.05 + (i % 19) as f64 * 0.05;
            text.push_str(&format!(
                "  - key: gen-exp-{i:05}\n    name: Generated experiment {i}\n    status: {}\n    trafficAllocation: {traffic:.2}\n    variants:\n      - {{key: control, value: {{color: \"grey\", limit: {i}}}}}\n      - {{key: treatment, weight: 2, value: {{color: \"green\", limit: {}}}}}\n",
                if i % 10 == 9 { "paused" } else { "running" },
                i + 1
            ));
            if i % 3 == 0 {
                text.push_str("      - {key: treatment-b, value: {color: \"blue\"}}\n");
            }
            if i % 2 == 0 {
                text.push_str("    targeting:\n      include: [\"region:US\"]\n      rules:\n        - {attribute: appVersion, op: semver_gte, value: \"2.0.0\"}\n");
            }
            if i < 10 && f == 0 {
                text.push_str(&format!(
                    "    layer: {{key: gen-layer, range: [{:.1}, {:.1}]}}\n",
                    (i / files) as f64 * 0.1,
                    (i / files) as f64 * 0.1 + 0.1
                ));
            }
        }
        std::fs::write(dir.join(format!("gen-{f:02}.yaml")), text)?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let Some(Cmd::RequestFile {
        rpc,
        experiment,
        out,
    }) = &args.cmd
    {
        let bytes = match rpc {
            Rpc::Assign | Rpc::Empty => framed(&pb::AssignRequest {
                experiment: experiment.clone(),
                context: Some(context(1)),
                exposure: args.exposure,
                ..Default::default()
            }),
            Rpc::AssignAll => framed(&pb::AssignAllRequest {
                context: Some(context(1)),
                exposure: args.exposure,
                ..Default::default()
            }),
        };
        std::fs::write(out, &bytes)?;
        println!("wrote {} bytes to {}", bytes.len(), out.display());
        return Ok(());
    }
    if let Some(Cmd::GenConfig { experiments, dir }) = &args.cmd {
        gen_config(*experiments, dir)?;
        let snap = cohortd::Snapshot::load(dir).map_err(|e| e.to_string())?;
        println!(
            "wrote {} experiments to {} (version {})",
            snap.experiments().len(),
            dir.display(),
            snap.version()
        );
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?
        .block_on(run(args))
}
