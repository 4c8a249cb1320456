//! Connection and stream limits against the real binary (issue 15): idle
//! connections over the limit are closed, silent ones time out, streams over the
//! limit get RESOURCE_EXHAUSTED, and the open counts in /metrics go back down.

mod support;

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use cohortd::transport::pb;
use cohortd::transport::pb::assignment_client::AssignmentClient;
use support::binary::{experiment, spawn, Server};
use support::wait::wait_until;

fn gauge(s: &Server, line_start: &str) -> i64 {
    let (_, m) = s.get("/metrics");
    m.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{line_start} not in /metrics"))
}

/// Reads until the server closes the connection (or the timeout passes).
fn closed_by_server(c: &mut TcpStream, within: Duration) -> bool {
    c.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 64];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn idle_connections_over_the_limit_are_closed_and_silent_ones_time_out() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), experiment("a")).unwrap();
    let s = spawn(
        dir.path(),
        &["--max-connections", "3", "--handshake-timeout", "1s"],
    );
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(s.grpc).unwrap())
        .collect();
    assert!(wait_until(Duration::from_secs(5), || gauge(
        &s,
        "cohortd_open_connections{listener=\"grpc\"}"
    ) == 3));
    let mut extra = TcpStream::connect(s.grpc).unwrap();
    assert!(
        closed_by_server(&mut extra, Duration::from_millis(800)),
        "over the limit: closed at once"
    );
    // The held ones say nothing: closed after the handshake timeout.
    for c in &mut held {
        assert!(closed_by_server(c, Duration::from_secs(10)));
    }
    assert!(wait_until(Duration::from_secs(5), || gauge(
        &s,
        "cohortd_open_connections{listener=\"grpc\"}"
    ) == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_over_the_limit_get_resource_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), experiment("a")).unwrap();
    let s = spawn(dir.path(), &["--max-streams", "2"]);
    let mut c = AssignmentClient::connect(format!("http://{}", s.grpc))
        .await
        .unwrap();
    let a = c
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let b = c
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let admin = s.admin;
    let open = move || {
        let (_, m) = support::http::http_get_blocking(admin, "/metrics");
        m.lines()
            .find(|l| l.starts_with("cohortd_open_streams "))
            .map(|l| l.to_owned())
    };
    assert_eq!(open().as_deref(), Some("cohortd_open_streams 2"));
    let third = c.watch(pb::WatchRequest::default()).await.unwrap_err();
    assert_eq!(third.code(), tonic::Code::ResourceExhausted, "{third:?}");
    assert!(third.message().contains("--max-streams"));
    // Unary calls are not limited.
    let all = c.assign_all(pb::AssignAllRequest::default()).await;
    assert!(all.is_ok(), "{all:?}");
    drop(a);
    drop(b);
    let mut ok = false;
    for _ in 0..250 {
        if open().as_deref() == Some("cohortd_open_streams 0") {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "slots freed: {:?}", open());
    let again = c.watch(pb::WatchRequest::default()).await;
    assert!(again.is_ok(), "a freed slot is usable again");
}
