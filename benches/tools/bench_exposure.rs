//! Throughput and latency of `Assign` with `exposure: true`, exposure export off
//! versus on (to a local OTLP/gRPC receiver), from one run.
//!
//! It starts the release `cohortd serve` binary once per round, alternating
//! export off and on (`OTEL_EXPORTER_OTLP_ENDPOINT` pointing at an in-process
//! receiver that decodes and counts what it gets), drives it with a closed-loop
//! client (every request a fresh unit, so every call is a new, exported
//! exposure: the worst case for export), and prints throughput and latency
//! percentiles per mode and the on/off throughput ratio, and the server's CPU
//! per call (user + system time of the whole process, every thread, from
//! `/proc/PID/stat` over the measured seconds): on a shared machine that is
//! steadier than throughput.
//!
//! Export on means log records only (cohortd's default); set
//! `COHORTD_EXPOSURE_SPANS=true` in the environment to measure
//! `--exposure-spans` (server spans and exposure spans too).
//!
//! Throughput is only the server's when the server is what runs out of CPU.
//! On a small machine the client and the OTLP receiver (which decodes every
//! record, as a collector would) share the server's cores, so with export on
//! the harness takes CPU from the server too and the on/off throughput ratio
//! charges the receiver's work to the server. `--server-cpus 0 --client-cpus
//! 1` pins them apart (with `taskset`, as `taskset -c` lists): the server,
//! every thread of it, on cpu 0, the client and the receiver on cpu 1. Each
//! round prints the server's CPU use over the measured seconds (`server=`, in
//! cores): near 1.00 with one server cpu means the server was the bottleneck
//! in that round, so the throughput ratio is the server's; well under it
//! means the client could not keep it busy and the ratio says little. This
//! client builds a `Struct` per call, about the server's own cost, so one
//! client core does not keep one server core busy (`server=` 0.1-0.2 in
//! export6's runs): the fair worst case is `benches/exposure_pinned.sh`,
//! which drives the pinned server with h2load.
//!
//! ```sh
//! cargo build --release --bin cohortd
//! # server and harness on cpus of their own (see `server=` per round)
//! cargo run --release --example bench_exposure -- --rounds 3 --duration 8 \
//!     --receiver-thread --server-cpus 0 --client-cpus 1
//! cargo run --release --example bench_exposure -- --rounds 3 --duration 8
//! # steady state: units from a pool of 10000, so repeats are deduped
//! cargo run --release --example bench_exposure -- --rounds 3 --duration 8 --units 10000
//! ```

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use cohortd::transport::pb;
use cohortd::transport::pb::assignment_client::AssignmentClient;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost_types::value::Kind;
use prost_types::{Struct, Value};
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, Parser)]
#[command(about = "Assign+exposure throughput with export off vs on")]
struct Args {
    /// The cohortd binary.
    #[arg(long, default_value = "target/release/cohortd")]
    bin: String,
    /// Rounds per mode (modes alternate: off, on, off, on, ...).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Concurrent callers per connection.
    #[arg(long, default_value_t = 16)]
    streams: usize,
    /// Measured seconds per round.
    #[arg(long, default_value_t = 8.0)]
    duration: f64,
    /// Warm-up seconds per round (not measured).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Draw units from a pool of this many (repeats are deduped, as in steady
    /// traffic); 0 = every request a fresh unit (every call a new exposure).
    #[arg(long, default_value_t = 0)]
    units: u64,
    /// Client (and receiver) runtime worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Run the OTLP receiver on a thread (and runtime) of its own, not on the
    /// client's: decoding a 2,048-record batch takes milliseconds, and on the
    /// client's single thread that is time in which no response is read, so
    /// it shows in the client's latencies as if the server were slow (a real
    /// collector is another process). It still shares the machine's cores.
    #[arg(long)]
    receiver_thread: bool,
    /// CPUs the server runs on (a `taskset -c` list, e.g. `0`): the server
    /// is started under `taskset`, so all its threads stay there.
    #[arg(long)]
    server_cpus: Option<String>,
    /// CPUs this process (client and receiver) runs on (a `taskset -c`
    /// list, e.g. `1`), set before any thread starts so that every thread
    /// inherits it; keeps the harness off the server's cores.
    #[arg(long)]
    client_cpus: Option<String>,
}

/// Counts what arrives, decoding every request like a collector would.
#[derive(Clone, Default)]
struct Counting {
    spans: Arc<AtomicU64>,
    logs: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl TraceService for Counting {
    async fn export(
        &self,
        r: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let n: usize = r
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum();
        self.spans.fetch_add(n as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Counting {
    async fn export(
        &self,
        r: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let n: usize = r
            .get_ref()
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .map(|sl| sl.log_records.len())
            .sum();
        self.logs.fetch_add(n as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

const CONFIG: &str = r#"
experiments:
  - experimentId: bench
    status: running
    variants: [control, treatment]
    assignment: {hashKey: userId}
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_server(
    bin: &str,
    cpus: Option<&str>,
    dir: &std::path::Path,
    otlp: Option<&str>,
) -> std::io::Result<Server> {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    // `taskset` execs the server in its own process: the pid is the server's.
    let mut cmd = match cpus {
        Some(c) => {
            let mut t = Command::new("taskset");
            t.args(["-c", c, bin]);
            t
        }
        None => Command::new(bin),
    };
    cmd.arg("serve")
        .arg("--config-dir")
        .arg(dir)
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--admin-listen")
        .arg("off")
        .args(["--ofrep-listen", "off", "--sync-listen", "off"])
        .env("COHORTD_LOG", "warn")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(e) = otlp {
        cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", e);
    }
    Ok(Server {
        child: cmd.spawn()?,
        addr,
    })
}

fn s(v: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(v.into())),
    }
}

struct Measured {
    calls: usize,
    errors: u64,
    secs: f64,
    lat_ns: Vec<u64>,
    /// Server CPU seconds (user + system, all threads) while measuring.
    cpu_secs: f64,
}

impl Measured {
    fn pct(&self, p: f64) -> f64 {
        let n = self.lat_ns.len();
        if n == 0 {
            return 0.0;
        }
        let i = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
        self.lat_ns[i] as f64 / 1000.0
    }
    fn rps(&self) -> f64 {
        self.calls as f64 / self.secs
    }
    fn cpu_us_per_call(&self) -> f64 {
        self.cpu_secs * 1e6 / self.calls.max(1) as f64
    }
    /// Cores the server kept busy while measuring (1.00 = one core's worth).
    fn server_cores(&self) -> f64 {
        self.cpu_secs / self.secs.max(f64::MIN_POSITIVE)
    }
}

/// CPU seconds (user + system, every thread) process `pid` has used so far,
/// from `/proc/PID/stat` (clock ticks of 1/100 s, as on every Linux this runs
/// on); 0 where there is no procfs.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces, inside parentheses).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after `)`.
    (ticks(11) + ticks(12)) / 100.0
}

async fn connect(addr: SocketAddr) -> Result<Channel, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect()
            .await
        {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn drive(
    args: &Args,
    addr: SocketAddr,
    pid: u32,
) -> Result<Measured, Box<dyn std::error::Error>> {
    let mut channels = Vec::new();
    for _ in 0..args.connections {
        channels.push(connect(addr).await?);
    }
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for ch in &channels {
        for _ in 0..args.streams {
            let (ch, measuring, stop, next) =
                (ch.clone(), measuring.clone(), stop.clone(), next.clone());
            let pool = args.units;
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                let mut client = AssignmentClient::new(ch);
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let unit = format!("user-{}", if pool > 0 { n % pool } else { n });
                    let mut ctx = Struct::default();
                    ctx.fields.insert("userId".into(), s(&unit));
                    ctx.fields.insert("region".into(), s("US"));
                    let start = Instant::now();
                    let r = client
                        .assign(pb::AssignRequest {
                            experiment: "bench".into(),
                            context: Some(ctx),
                            exposure: true,
                            ..Default::default()
                        })
                        .await;
                    if measuring.load(Ordering::Relaxed) {
                        lat.push(start.elapsed().as_nanos() as u64);
                        errors += u64::from(r.is_err());
                    }
                }
                (lat, errors)
            }));
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let began = Instant::now();
    let cpu_before = cpu_secs(pid);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    measuring.store(false, Ordering::Relaxed);
    let cpu = cpu_secs(pid) - cpu_before;
    let secs = began.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut m = Measured {
        calls: 0,
        errors: 0,
        secs,
        lat_ns: Vec::new(),
        cpu_secs: cpu,
    };
    for t in tasks {
        let (lat, errors) = t.await?;
        m.lat_ns.extend(lat);
        m.errors += errors;
    }
    m.lat_ns.sort_unstable();
    m.calls = m.lat_ns.len();
    Ok(m)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("bench.yaml"), CONFIG)?;

    let recv = Counting::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let otlp = format!("http://{}", listener.local_addr()?);
    let svc = recv.clone();
    let serve = async move {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        let _ = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(svc.clone()))
            .add_service(LogsServiceServer::new(svc))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    };
    if args.receiver_thread {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::spawn(move || rt.block_on(serve));
    } else {
        tokio::spawn(serve);
    }

    let mut off = Vec::new();
    let mut on = Vec::new();
    for round in 0..args.rounds {
        for export in [false, true] {
            let before = (
                recv.spans.load(Ordering::Relaxed),
                recv.logs.load(Ordering::Relaxed),
            );
            let server = spawn_server(
                &args.bin,
                args.server_cpus.as_deref(),
                dir.path(),
                export.then_some(otlp.as_str()),
            )?;
            let m = drive(&args, server.addr, server.child.id()).await?;
            drop(server);
            // Let the receiver finish what was in flight before counting.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let got = (
                recv.spans.load(Ordering::Relaxed) - before.0,
                recv.logs.load(Ordering::Relaxed) - before.1,
            );
            println!(
                "round {round} export={:<3} calls={} errors={} throughput={:.0}/s cpu/call={:.1}us server={:.2} p50={:.0}us p99={:.0}us p999={:.0}us received spans={} logs={}",
                if export { "on" } else { "off" },
                m.calls,
                m.errors,
                m.rps(),
                m.cpu_us_per_call(),
                m.server_cores(),
                m.pct(0.50),
                m.pct(0.99),
                m.pct(0.999),
                got.0,
                got.1
            );
            if export {
                on.push(m)
            } else {
                off.push(m)
            }
        }
    }
    let mean = |v: &[Measured], f: &dyn Fn(&Measured) -> f64| {
        v.iter().map(f).sum::<f64>() / v.len().max(1) as f64
    };
    let (r_off, r_on) = (mean(&off, &|m| m.rps()), mean(&on, &|m| m.rps()));
    let (c_off, c_on) = (
        mean(&off, &|m| m.cpu_us_per_call()),
        mean(&on, &|m| m.cpu_us_per_call()),
    );
    println!(
        "summary export=off throughput={r_off:.0}/s cpu/call={c_off:.1}us server={:.2} p99={:.0}us | export=on throughput={r_on:.0}/s cpu/call={c_on:.1}us server={:.2} p99={:.0}us | on/off={:.3} cpu on/off={:.3}",
        mean(&off, &|m| m.server_cores()),
        mean(&off, &|m| m.pct(0.99)),
        mean(&on, &|m| m.server_cores()),
        mean(&on, &|m| m.pct(0.99)),
        r_on / r_off.max(1.0),
        c_on / c_off.max(f64::MIN_POSITIVE)
    );
    Ok(())
}

/// Pins this process to `cpus` (a `taskset -c` list). Called while the main
/// thread is the only one, so every thread started later inherits it.
fn pin_self(cpus: &str) -> Result<(), Box<dyn std::error::Error>> {
    let pid = std::process::id().to_string();
    let ok = Command::new("taskset")
        .args(["-p", "-c", cpus, &pid])
        .stdout(Stdio::null())
        .status()?
        .success();
    if !ok {
        return Err(format!("taskset -p -c {cpus} {pid} failed").into());
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let Some(cpus) = &args.client_cpus {
        pin_self(cpus)?;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?
        .block_on(run(args))
}
