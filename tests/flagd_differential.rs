//! Differential test against flagd's own evaluator: tests/go/cmd/flagd-ref
//! (flagd core, built by .ci/setup-go.sh) and cohortd serve the same flagd flag
//! file (tests/go/testdata/flags.json), and tests/go/cmd/flagdiff compares their
//! flagd.evaluation.v1 answers (value, variant, reason, error code) over random
//! contexts. cohortd runs with `--flagd-fractional v2`, the form flagd's Go
//! evaluator uses. The sample is sized for CI; docs/openfeature.md quotes a
//! 100,000-context run.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::binary::free_port;
use support::binary::Killed;
use support::runners::installed;

/// Contexts compared in CI.
const CONTEXTS: &str = "3000";

fn wait_for(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn cohortd_answers_like_flagds_evaluator() {
    let (Some(flagd_ref), Some(flagdiff)) = (
        installed(".tools/bin/flagd-ref", ".ci/setup-go.sh"),
        installed(".tools/bin/flagdiff", ".ci/setup-go.sh"),
    ) else {
        return;
    };
    let flags = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/testdata/flags.json");
    let (pa, pb) = (free_port().port(), free_port().port());
    let _reference = Killed(
        Command::new(flagd_ref)
            .arg("-f")
            .arg(&flags)
            .arg("-p")
            .arg(pa.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let _cohortd = Killed(
        Command::new(env!("CARGO_BIN_EXE_cohortd"))
            .args(["serve", "--flagd-fractional", "v2", "--admin-listen", "off"])
            .args(["--ofrep-listen", "off", "--sync-listen", "off"])
            .arg("--listen")
            .arg(format!("127.0.0.1:{pb}"))
            .arg("--config-dir")
            .arg(&flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let a: SocketAddr = ([127, 0, 0, 1], pa).into();
    let b: SocketAddr = ([127, 0, 0, 1], pb).into();
    wait_for(a, "flagd-ref");
    wait_for(b, "cohortd");
    let out = Command::new(flagdiff)
        .args(["-a", &a.to_string(), "-b", &b.to_string()])
        .arg("-f")
        .arg(&flags)
        .args(["-n", CONTEXTS, "-seed", "7"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "flagd-ref and cohortd differ:\n{text}"
    );
    assert!(text.contains(" evaluations, 0 mismatches"), "{text}");
}
