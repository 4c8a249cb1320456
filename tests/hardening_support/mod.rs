//! Helpers for the hardening tests (issue 15): the real `cohortd serve` binary on
//! ephemeral loopback ports, its logs collected line by line, `/readyz` and
//! `/metrics` over a plain HTTP/1.0 GET, and signals.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `cohortd serve`. Killed when dropped.
pub struct Server {
    pub child: Child,
    pub grpc: SocketAddr,
    pub admin: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
}

/// Starts the binary on `dir` with JSON logs; waits (bounded) until it serves.
/// With `drain_logs: false` stderr is left with the caller after startup.
pub fn spawn(dir: &Path, extra: &[&str]) -> Server {
    spawn_with(dir, extra, true).0
}

/// Like [`spawn`], but hands back stderr instead of draining it.
pub fn spawn_keep_stderr(dir: &Path, extra: &[&str]) -> (Server, BufReader<ChildStderr>) {
    let (s, r) = spawn_with(dir, extra, false);
    (s, r.unwrap())
}

fn spawn_with(dir: &Path, extra: &[&str], drain: bool) -> (Server, Option<BufReader<ChildStderr>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cohortd"))
        .arg("serve")
        .arg("--config-dir")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--ofrep-listen", "off", "--sync-listen", "off"])
        .args(["--log-format", "json"])
        .args(extra)
        .env("COHORTD_LOG", "info")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let logs = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let (grpc, admin) = loop {
        let mut line = String::new();
        assert!(Instant::now() < deadline, "server did not start");
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("server exited early: {:?}", logs.lock().unwrap());
        }
        logs.lock().unwrap().push(line.clone());
        if line.contains("\"serving\"") {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let grpc = v["grpc"].as_str().unwrap().parse().unwrap();
            let admin = v["admin"].as_str().unwrap();
            let admin = admin
                .trim_start_matches("Some(")
                .trim_end_matches(')')
                .parse()
                .unwrap();
            break (grpc, admin);
        }
    };
    let keep = if drain {
        let l = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in err.lines() {
                match line {
                    Ok(line) => l.lock().unwrap().push(line),
                    Err(_) => break,
                }
            }
        });
        None
    } else {
        Some(err)
    };
    (
        Server {
            child,
            grpc,
            admin,
            logs,
        },
        keep,
    )
}

impl Server {
    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Sends a signal by name (`HUP`, `TERM`, ...).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// `GET path` on the admin port: status code and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.admin, path)
    }

    /// The `/readyz` body.
    pub fn readyz(&self) -> serde_json::Value {
        let (_, body) = self.get("/readyz");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.0 GET.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_owned();
    (code, body)
}

/// Polls `cond` every 20 ms until it holds or `within` passes.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One running experiment as a JSON config file body.
pub fn experiment(key: &str) -> String {
    format!(r#"{{"key":"{key}","status":"running","variants":["a","b"]}}"#)
}
