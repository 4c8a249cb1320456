//! Reload storm: gRPC clients keep calling an in-process server while a
//! kubelet-style writer rewrites the config directory hundreds of times, some
//! rewrites invalid, and the directory watcher reloads behind the server's back.
//!
//! Zero failed requests; every response's `config_version` is one that was written
//! and valid; no client ever sees an older generation after a newer one.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cohortd::exposure::NoopSink;
use cohortd::metrics::Metrics;
use cohortd::reload::{reload_now, watch, Store, WatchOptions};
use cohortd::server::{Bound, Listen, ServeOptions};
use cohortd::transport::pb;
use cohortd::transport::pb::assignment_client::AssignmentClient;
use prost_types::value::Kind;
use prost_types::{Struct, Value};
use support::compile::version_of;
use support::kubelet::AtomicWriter;
use tonic::transport::Channel;

const REWRITES: usize = 300;
const CLIENTS: usize = 4;

/// Rewrite `i` of the storm: two files that both carry the generation number (so a
/// read that mixed two generations would show up as an unknown version), or, for
/// every fifth rewrite, something invalid.
fn payload(i: usize) -> (Vec<(String, String)>, bool) {
    let a = format!(
        r#"{{"key":"a","name":"gen {i}","status":"running","trafficAllocation":0.5,"variants":["control","treatment"]}}"#
    );
    let b = format!("key: b\nname: gen {i}\nstatus: running\nvariants: [x, y, z]\n");
    let valid = i % 5 != 3;
    let (a, b) = match (valid, i % 3) {
        (true, _) => (a, b),
        (false, 0) => ("{\"key\":\"a\",".to_string(), b),
        (false, 1) => (
            a,
            format!("key: b\nname: gen {i}\nstatus: running\nvariants: []\n"),
        ),
        (false, _) => (a.replace("running", "runnin"), b),
    };
    (vec![("a.json".into(), a), ("b.yaml".into(), b)], valid)
}

fn write(writer: &AtomicWriter, files: &[(String, String)]) {
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    writer.write(&borrowed).unwrap();
}

fn context(unit: &str) -> Struct {
    let mut c = Struct::default();
    c.fields.insert(
        "userId".into(),
        Value {
            kind: Some(Kind::StringValue(unit.into())),
        },
    );
    c
}

#[derive(Default)]
struct ClientLog {
    requests: u64,
    failures: Vec<String>,
    seen: HashSet<String>,
}

impl ClientLog {
    /// Checks one response's version: known, valid, and not older than the newest
    /// this client has seen.
    fn check(&mut self, generations: &HashMap<String, usize>, newest: &mut usize, version: &str) {
        match generations.get(version) {
            None => self
                .failures
                .push(format!("version {version:?} was never written valid")),
            Some(&g) if g < *newest => self
                .failures
                .push(format!("went back from generation {newest} to {g}")),
            Some(&g) => *newest = g,
        }
        if !self.seen.contains(version) {
            self.seen.insert(version.to_owned());
        }
    }
}

/// One client on its own connection: Assign of each experiment and an AssignAll,
/// in a loop, until told to stop.
async fn client(
    id: usize,
    channel: Channel,
    generations: Arc<HashMap<String, usize>>,
    done: Arc<AtomicBool>,
) -> ClientLog {
    let mut c = AssignmentClient::new(channel);
    let mut log = ClientLog::default();
    let mut newest = 0usize;
    let mut unit = 0u64;
    while !done.load(Ordering::Relaxed) {
        unit += 1;
        let ctx = context(&format!("c{id}-u{unit}"));
        for key in ["a", "b"] {
            log.requests += 1;
            let req = pb::AssignRequest {
                experiment: key.into(),
                context: Some(ctx.clone()),
                ..Default::default()
            };
            match c.assign(req).await {
                Ok(r) => {
                    let r = r.into_inner();
                    log.check(&generations, &mut newest, &r.config_version);
                }
                Err(e) => log.failures.push(format!("Assign {key}: {e:?}")),
            }
        }
        log.requests += 1;
        let req = pb::AssignAllRequest {
            context: Some(ctx),
            ..Default::default()
        };
        match c.assign_all(req).await {
            Ok(r) => {
                let r = r.into_inner();
                if r.assignments.len() != 2 {
                    log.failures.push(format!(
                        "AssignAll gave {} assignments",
                        r.assignments.len()
                    ));
                }
                if r.assignments
                    .iter()
                    .any(|a| a.config_version != r.config_version)
                {
                    log.failures
                        .push("AssignAll mixed versions in one response".into());
                }
                log.check(&generations, &mut newest, &r.config_version);
            }
            Err(e) => log.failures.push(format!("AssignAll: {e:?}")),
        }
    }
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_clients_never_fail_or_go_back_during_a_reload_storm() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = AtomicWriter::new(tmp.path());
    let rewrites: Vec<_> = (0..=REWRITES).map(payload).collect();
    assert!(
        rewrites[0].1 && rewrites[REWRITES].1,
        "first and last are valid"
    );
    let generations: HashMap<String, usize> = rewrites
        .iter()
        .enumerate()
        .filter(|(_, (_, valid))| *valid)
        .map(|(i, (files, _))| (version_of(files), i))
        .collect();
    let generations = Arc::new(generations);
    let last_version = version_of(&rewrites[REWRITES].0);

    write(&writer, &rewrites[0].0);
    let store = Store::new();
    reload_now(tmp.path(), &store);
    let opts = ServeOptions {
        listen: Listen::Tcp("127.0.0.1:0".parse().unwrap()),
        admin_listen: None,
        ..ServeOptions::default()
    };
    let running = cohortd::server::start(opts, store.clone(), Arc::new(NoopSink), Metrics::new())
        .await
        .unwrap();
    let Bound::Tcp(addr) = running.grpc_addr.clone() else {
        unreachable!("TCP listen")
    };
    let watch_opts = WatchOptions {
        debounce: Duration::from_millis(5),
        poll_interval: Duration::from_millis(50),
        ..WatchOptions::default()
    };
    let handle = watch::spawn(tmp.path().to_owned(), Arc::clone(&store), watch_opts).unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for id in 0..CLIENTS {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let (g, d) = (Arc::clone(&generations), Arc::clone(&done));
        clients.push(tokio::spawn(client(id, channel, g, d)));
    }

    let applied_before = store.status().applied;
    let writes = Arc::new(AtomicU64::new(0));
    let w = Arc::clone(&writes);
    let storm = std::thread::spawn(move || {
        for (i, (files, _)) in rewrites.iter().enumerate().skip(1) {
            write(&writer, files);
            w.fetch_add(1, Ordering::Relaxed);
            // Gaps shorter than the debounce, so reloads come from its 50 ms cap,
            // and now and then a pause after an invalid rewrite, so it is loaded.
            let pause = if i % 50 == 3 { 40 } else { 1 + (i % 4) as u64 };
            std::thread::sleep(Duration::from_millis(pause));
        }
    });
    // Bounded: the storm itself takes about a second or two.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !storm.is_finished() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "storm did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    storm.join().unwrap();
    while store.load().unwrap().version() != last_version {
        assert!(
            tokio::time::Instant::now() < deadline,
            "last rewrite never served"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done.store(true, Ordering::Relaxed);
    let mut logs = Vec::new();
    for c in clients {
        logs.push(c.await.unwrap());
    }
    handle.stop().await;
    assert!(running.shutdown().await, "clean shutdown");

    let failures: Vec<&String> = logs.iter().flat_map(|l| &l.failures).collect();
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let requests: u64 = logs.iter().map(|l| l.requests).sum();
    let seen: HashSet<&String> = logs.iter().flat_map(|l| &l.seen).collect();
    let status = store.status();
    assert_eq!(writes.load(Ordering::Relaxed), REWRITES as u64);
    assert!(logs.iter().all(|l| l.requests > 0));
    // The storm really swapped snapshots under the clients.
    assert!(status.applied - applied_before >= 2, "{status:?}");
    assert!(seen.len() >= 2, "clients saw only {seen:?}");
    assert!(
        status.rejected >= 1,
        "no invalid rewrite was ever loaded: {status:?}"
    );
    eprintln!(
        "storm: {REWRITES} rewrites, {} applied, {} rejected, {} unchanged; {requests} gRPC calls saw {} versions",
        status.applied,
        status.rejected,
        status.unchanged,
        seen.len()
    );
}

/// Reading while the kubelet swaps `..data` must give files from one generation.
/// Both files carry the generation; a read that straddled a swap would mix them.
#[test]
fn a_read_never_mixes_two_kubelet_generations() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let files = |i: usize| {
        vec![
            ("a.json".to_string(), format!("{i}")),
            ("b.json".to_string(), format!("{i}")),
        ]
    };
    write(&AtomicWriter::new(&dir), &files(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (d, s) = (dir.clone(), Arc::clone(&stop));
    let writer = std::thread::spawn(move || {
        let w = AtomicWriter::new(&d);
        for i in 1..20_000 {
            if s.load(Ordering::Relaxed) {
                break;
            }
            write(&w, &files(i));
        }
    });
    let (mut consistent, mut refused) = (0, 0);
    for _ in 0..2_000 {
        match cohortd::config::read_sources(&dir) {
            Ok(read) => {
                assert_eq!(read.len(), 2);
                assert_eq!(read[0].bytes, read[1].bytes, "mixed generations");
                consistent += 1;
            }
            // Refusing (the link kept moving, or a file vanished mid-swap) is
            // allowed; the next event reloads. Serving a mix is not.
            Err(_) => refused += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    eprintln!("{consistent} consistent reads, {refused} refused");
    assert!(consistent > 0, "every read was refused ({refused})");
}
