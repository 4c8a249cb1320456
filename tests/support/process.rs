//! A child process driven line by line over stdin/stdout (the Python, Node,
//! Go and Java interop clients), with one deadline for the whole exchange.

use std::time::Duration;

/// A client process driven line by line over stdin/stdout, killed if it
/// outlives the test.
pub struct Driven {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
    deadline: std::time::Instant,
}

impl Driven {
    /// Starts `cmd` with piped stdio; the whole exchange must end within `limit`.
    pub fn spawn(mut cmd: std::process::Command, limit: Duration) -> Driven {
        use std::io::{BufRead, Read};
        use std::process::Stdio;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Driven {
            child,
            lines,
            stderr,
            deadline: std::time::Instant::now() + limit,
        }
    }

    /// Waits for the line `want`; `Err` carries everything seen instead.
    pub fn expect_line(&mut self, want: &str) -> Result<(), String> {
        let mut seen = Vec::new();
        loop {
            let left = self
                .deadline
                .saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.trim() == want => return Ok(()),
                Ok(l) => seen.push(l),
                Err(_) => return Err(format!("no `{want}` line; stdout so far: {seen:?}")),
            }
        }
    }

    /// Writes one line to the child's stdin.
    pub fn send_line(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for exit (killing the child at the deadline) and returns whether it
    /// succeeded, with its stderr.
    pub fn finish(mut self) -> (bool, String) {
        let ok = loop {
            match self.child.try_wait().unwrap() {
                Some(status) => break status.success(),
                None if std::time::Instant::now() >= self.deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break false;
                }
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        (ok, self.stderr.join().unwrap_or_default())
    }

    /// Kills the child (after a failed exchange) and returns its stderr.
    pub fn abort(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr.join().unwrap_or_default()
    }
}
