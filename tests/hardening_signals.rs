//! Signals against the real binary (issue 15): HUP reloads at once and is logged,
//! TERM and INT stop gracefully with exit code 0, PIPE does not kill the process
//! (neither sent directly nor raised by writing logs to a closed pipe).

mod support;

use std::time::Duration;

use support::binary::{experiment, spawn, spawn_keep_stderr};
use support::wait::wait_until;

/// With events and polling off, only SIGHUP can make the new file visible.
#[test]
fn sighup_reloads_now_and_logs_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), experiment("a")).unwrap();
    let mut s = spawn(
        dir.path(),
        &["--poll-interval", "0", "--watch-events", "off"],
    );
    assert_eq!(s.readyz()["experiments"], 1);
    std::fs::write(dir.path().join("b.json"), experiment("b")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.readyz()["experiments"], 1, "no reload without a trigger");
    s.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(10), || s.readyz()["experiments"] == 2),
        "SIGHUP must reload: {:?}",
        s.logs()
    );
    assert!(s.alive(), "SIGHUP must not kill the process");
    assert!(s.logs().iter().any(|l| l.contains("SIGHUP")));
}

fn stops_gracefully(sig: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), experiment("a")).unwrap();
    let mut s = spawn(dir.path(), &[]);
    s.signal(sig);
    let st = s.wait_exit(Duration::from_secs(30)).expect("must exit");
    assert_eq!(st.code(), Some(0), "{sig}: {st:?}");
    assert!(
        wait_until(Duration::from_secs(5), || s.logs().iter().any(|l| l
            .contains(&format!("SIG{sig}"))
            && l.contains("shutting down"))),
        "{:?}",
        s.logs()
    );
}

#[test]
fn sigterm_stops_gracefully() {
    stops_gracefully("TERM");
}

#[test]
fn sigint_stops_gracefully() {
    stops_gracefully("INT");
}

/// A PIPE signal, and log writes to a stderr nobody reads any more, leave the
/// process serving.
#[test]
fn sigpipe_and_a_closed_log_pipe_do_not_kill() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), experiment("a")).unwrap();
    let (mut s, stderr) = spawn_keep_stderr(dir.path(), &[]);
    s.signal("PIPE");
    std::thread::sleep(Duration::from_millis(200));
    assert!(s.alive(), "SIGPIPE killed the process");
    drop(stderr);
    // Each reload logs a line into the closed pipe (EPIPE).
    for i in 0..5 {
        std::fs::write(
            dir.path().join(format!("x{i}.json")),
            experiment(&format!("x{i}")),
        )
        .unwrap();
        s.signal("HUP");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        wait_until(Duration::from_secs(10), || s.readyz()["experiments"] == 6),
        "still serving and reloading"
    );
    assert!(s.alive(), "a write to a closed pipe killed the process");
    assert_eq!(s.get("/healthz").0, 200);
}
