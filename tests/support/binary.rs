//! The real `cohortd serve` binary on ephemeral loopback ports: its JSON logs
//! collected line by line, the ports it reports, `/readyz` and `/metrics` over
//! a plain HTTP/1.0 GET, and signals. Killed when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::http::http_get_blocking;

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
        http_get_blocking(self.admin, path)
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

/// A free loopback port: bound, read, released (the window before cohortd
/// binds it is tiny). For listeners the binary cannot report back, such as
/// `--ofrep-listen`; `127.0.0.1:0` is better wherever the log names the port.
pub fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A child process killed (and reaped) when the test ends, however it ends.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// One running experiment as a JSON config file body.
pub fn experiment(key: &str) -> String {
    format!(r#"{{"key":"{key}","status":"running","variants":["a","b"]}}"#)
}

/// Runs `cohortd ARGS` with `stdin` as its input (no `COHORTD_CONFIG_DIR`
/// from the environment) and waits for it. Input is written from a thread, so
/// a large input cannot deadlock against a full stdout pipe, and a process
/// that refuses its arguments (exiting without reading) is not an error.
pub fn cohortd(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cohortd"))
        .args(args)
        .env_remove("COHORTD_CONFIG_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cohortd");
    let mut input = child.stdin.take().unwrap();
    let text = stdin.to_owned();
    let writer = std::thread::spawn(move || input.write_all(text.as_bytes()));
    let out = child.wait_with_output().unwrap();
    if let Err(e) = writer.join().unwrap() {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    out
}

/// [`cohortd`] as `(exit code, stdout, stderr)`, the streams as UTF-8.
pub fn cohortd_text(args: &[&str], stdin: &str) -> (i32, String, String) {
    let out = cohortd(args, stdin);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}
