//! `cohortd serve` as a new user meets it (issue 16), on the real binary: the
//! admin port's `/experiments` (503 JSON before a config loads, then keys,
//! status, traffic and version), the `/readyz` warning for an empty config, and
//! the log wording: a missing directory is one clear line (not notify's
//! `No path was found`, not repeated per poll, no "last good config" when none
//! loaded), a fixed config logs "config recovered", and the `serving` and
//! `shutting down` lines carry no Rust debug forms, in both log formats.

mod support;

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::compile::version_of;

/// The running binary and every stderr line it has written so far.
struct Serve {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Serve {
    /// `cohortd serve` on `dir` with gRPC and admin on ephemeral loopback ports,
    /// OFREP off, a 100 ms poll and settle.
    fn start(dir: &Path, format: &str) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cohortd"))
            .arg("serve")
            .arg("--config-dir")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args([
                "--ofrep-listen",
                "off",
                "--sync-listen",
                "off",
                "--log-format",
                format,
            ])
            .args(["--poll-interval", "100ms", "--settle", "100ms"])
            .args(["--shutdown-grace", "2s"])
            .env("COHORTD_LOG", "info")
            .env_remove("COHORTD_CONFIG_DIR")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (out, stderr) = (Arc::clone(&logs), child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                out.lock().unwrap().push(line);
            }
        });
        Serve { child, logs }
    }

    /// The lines logged so far that contain `text`.
    fn lines(&self, text: &str) -> Vec<String> {
        let logs = self.logs.lock().unwrap();
        logs.iter().filter(|l| l.contains(text)).cloned().collect()
    }

    /// Waits (up to 30 s) until `count` lines contain `text`; returns the last.
    fn wait_for(&mut self, text: &str, count: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = self.lines(text);
            if seen.len() >= count {
                return seen[count - 1].clone();
            }
            let exited = self.child.try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "no {count}. line with {text:?} (exit {exited:?}); log:\n{}",
                    self.logs.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the exit code.
    fn stop(&mut self) -> Option<i32> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn all_logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

/// A blocking HTTP/1.1 GET: status and body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_owned())
}

fn get_json(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let (code, body) = get(addr, path);
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body:?}"));
    (code, v)
}

fn experiment(key: &str, status: &str, traffic: f64) -> String {
    format!(
        r#"{{"key":"{key}","status":"{status}","trafficAllocation":{traffic},"variants":["control","treatment"]}}"#
    )
}

/// Rust's debug forms that must not reach a log line.
fn assert_no_debug_forms(line: &str) {
    for form in ["Some(", "None", "Ok(", "Err("] {
        assert!(!line.contains(form), "{form} in the log line {line:?}");
    }
}

/// The experiment of `/experiments` named `key`.
fn listed<'v>(listing: &'v serde_json::Value, key: &str) -> &'v serde_json::Value {
    listing["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == key)
        .unwrap_or_else(|| panic!("{key} not listed: {listing}"))
}

#[test]
fn a_missing_directory_is_one_clear_line_then_experiments_and_recovery() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("experiments");
    let mut srv = Serve::start(&dir, "json");
    let serving: serde_json::Value = serde_json::from_str(&srv.wait_for("\"serving\"", 1)).unwrap();
    let admin: SocketAddr = serving["admin"].as_str().unwrap().parse().unwrap();
    assert_eq!(serving["ofrep"], "off", "{serving}");
    assert_eq!(serving["probe"], "off", "{serving}");

    // Nothing loaded: /experiments is a JSON error, not an empty list.
    let (code, body) = get_json(admin, "/experiments");
    assert_eq!(code, 503, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("no config"),
        "{body}"
    );
    assert_eq!(get(admin, "/readyz").0, 503);

    // Ten polls of the missing directory: still one line about it.
    std::thread::sleep(Duration::from_secs(1));
    let logs = srv.all_logs();
    assert!(!logs.contains("No path was found"), "{logs}");
    assert!(!logs.contains("keeps serving"), "{logs}");
    assert_eq!(srv.lines("does not exist").len(), 1, "{logs}");
    assert_eq!(
        srv.lines("no config has loaded yet").len(),
        1,
        "repeated per poll:\n{logs}"
    );

    // The volume appears (whole, as a rename): served, and the log says so.
    let staging = tmp.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let (alpha, beta) = (
        experiment("alpha", "running", 0.25),
        experiment("beta", "draft", 1.0),
    );
    std::fs::write(staging.join("alpha.json"), &alpha).unwrap();
    std::fs::write(staging.join("beta.json"), &beta).unwrap();
    std::fs::rename(&staging, &dir).unwrap();
    srv.wait_for("config recovered", 1);
    let (code, listing) = get_json(admin, "/experiments");
    assert_eq!(code, 200, "{listing}");
    let v1 = version_of(&[("alpha.json", &alpha), ("beta.json", &beta)]);
    assert_eq!(listing["version"], v1.as_str(), "{listing}");
    let a = listed(&listing, "alpha");
    assert_eq!(a["status"], "running", "{a}");
    assert_eq!(a["served"], true, "{a}");
    assert_eq!(a["trafficAllocation"], 0.25, "{a}");
    assert_eq!(a["variants"], serde_json::json!(["control", "treatment"]));
    let b = listed(&listing, "beta");
    assert_eq!(
        (&b["status"], &b["served"]),
        (&"draft".into(), &false.into())
    );
    assert_eq!(listing["experiments"].as_array().unwrap().len(), 2);

    // Broken, then fixed: the last good config serves meanwhile, and the fix
    // is logged as a recovery.
    std::fs::write(
        dir.join("alpha.json"),
        r#"{"key":"alpha","status":"running","variants":[]}"#,
    )
    .unwrap();
    srv.wait_for("the last good config keeps serving", 1);
    assert_eq!(get_json(admin, "/experiments").1["version"], v1.as_str());
    let fixed = experiment("alpha", "running", 0.5);
    std::fs::write(dir.join("alpha.json"), &fixed).unwrap();
    srv.wait_for("config recovered", 2);
    let (_, listing) = get_json(admin, "/experiments");
    assert_eq!(
        listing["version"],
        version_of(&[("alpha.json", &fixed), ("beta.json", &beta)]).as_str()
    );
    assert_eq!(listed(&listing, "alpha")["trafficAllocation"], 0.5);

    assert_eq!(srv.stop(), Some(0));
    let stopping = srv.wait_for("\"shutting down\"", 1);
    let stopping: serde_json::Value = serde_json::from_str(&stopping).unwrap();
    assert_eq!(stopping["grace"], "2s", "{stopping}");
    for line in srv
        .lines("\"serving\"")
        .iter()
        .chain(&srv.lines("shutting down"))
    {
        assert_no_debug_forms(line);
    }
}

#[test]
fn an_empty_config_warns_in_readyz_and_human_logs_read_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Serve::start(dir.path(), "human");
    let serving = srv.wait_for(" serving ", 1);
    assert_no_debug_forms(&serving);
    assert!(
        serving.contains("ofrep=off") && serving.contains("probe=off"),
        "{serving}"
    );
    let admin: SocketAddr = serving
        .split_whitespace()
        .find_map(|w| w.strip_prefix("admin="))
        .unwrap_or_else(|| panic!("no admin= in {serving:?}"))
        .parse()
        .unwrap();
    assert_eq!(
        srv.lines("holds no experiments").len(),
        1,
        "{}",
        srv.all_logs()
    );

    let (code, ready) = get_json(admin, "/readyz");
    assert_eq!(code, 200, "{ready}");
    assert_eq!(ready["experiments"], 0, "{ready}");
    let warning = ready["warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("no experiments") && warning.contains("--config-dir"),
        "{ready}"
    );
    let (code, listing) = get_json(admin, "/experiments");
    assert_eq!(code, 200, "{listing}");
    assert_eq!(listing["experiments"], serde_json::json!([]));

    // A config arrives: the warning goes.
    std::fs::write(dir.path().join("a.json"), experiment("a", "running", 1.0)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let (_, ready) = get_json(admin, "/readyz");
        if ready["experiments"] == 1 || Instant::now() > deadline {
            break ready;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(ready["experiments"], 1, "{ready}");
    assert!(ready.get("warning").is_none(), "{ready}");

    assert_eq!(srv.stop(), Some(0));
    let stopping = srv.wait_for("shutting down", 1);
    assert_no_debug_forms(&stopping);
    assert!(stopping.contains("grace=2s"), "{stopping}");
}
