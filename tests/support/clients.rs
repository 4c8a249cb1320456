//! What the Go and Java client tests share: two real `cohortd serve` processes
//! (TCP with OFREP, and a Unix socket) on the flagd fixture's config directory,
//! and the offline answers of `cohortd assign --all` the clients must match.
//! The client process itself is driven with [`super::process::Driven`].

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::binary::free_port;
use super::flagd::{contexts, CONFIG, PLAIN_FLAGS};

/// Two `cohortd serve` processes on one config directory: one on loopback TCP
/// (with its OFREP listener on `ofrep`), one on a Unix socket. Killed on drop.
pub struct Served {
    pub root: tempfile::TempDir,
    pub tcp: SocketAddr,
    pub ofrep: SocketAddr,
    pub unix: PathBuf,
    children: Vec<Child>,
}

impl Served {
    pub fn config_dir(&self) -> PathBuf {
        self.root.path().join("config")
    }

    /// Replaces the config atomically (write then rename), as a ConfigMap update does.
    pub fn write_config(&self, text: &str) {
        let tmp = self.root.path().join("experiments.yaml.next");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.config_dir().join("experiments.yaml")).unwrap();
    }

    /// Runs `cohortd assign --all` offline on the current config for [`contexts`]
    /// and writes `{"contexts": [...], "expected": [...]}` to `name`.
    pub fn cases(&self, name: &str) -> PathBuf {
        let ctxs = contexts();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cohortd"))
            .args(["assign", "--all", "--config-dir"])
            .arg(self.config_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for c in &ctxs {
            writeln!(stdin, "{c}").unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "cohortd assign failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(expected.len(), ctxs.len(), "one line per context");
        let path = self.root.path().join(name);
        let doc = serde_json::json!({
            "contexts": ctxs,
            "expected": expected,
            "plainFlags": PLAIN_FLAGS,
        });
        std::fs::write(&path, doc.to_string()).unwrap();
        path
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every listener but `--listen` and `--ofrep-listen` is off, so parallel
/// tests never fight over cohortd's fixed default ports.
fn spawn(config: &Path, listen: &str, ofrep: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cohortd"))
        .arg("serve")
        .arg("--config-dir")
        .arg(config)
        .args(["--listen", listen, "--admin-listen", "off"])
        .args(["--ofrep-listen", ofrep, "--sync-listen", "off"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Starts both servers on [`CONFIG`] and waits (bounded) until they accept.
pub fn serve() -> Served {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(config.join("experiments.yaml"), CONFIG).unwrap();
    let (tcp, ofrep) = (free_port(), free_port());
    let unix = root.path().join("cohortd.sock");
    let children = vec![
        spawn(&config, &tcp.to_string(), &ofrep.to_string()),
        spawn(&config, &format!("unix:{}", unix.display()), "off"),
    ];
    let mut served = Served {
        root,
        tcp,
        ofrep,
        unix,
        children,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = TcpStream::connect(served.tcp).is_ok()
            && TcpStream::connect(served.ofrep).is_ok()
            && std::os::unix::net::UnixStream::connect(&served.unix).is_ok();
        if up {
            return served;
        }
        for c in &mut served.children {
            assert!(
                c.try_wait().unwrap().is_none(),
                "cohortd serve exited early"
            );
        }
        assert!(Instant::now() < deadline, "cohortd serve did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}
