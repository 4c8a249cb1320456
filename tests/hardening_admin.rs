//! The admin port's header-read deadline against the real binary (issue 15): a
//! slowloris client that sends a request line and then trickles header lines is
//! disconnected after `--admin-header-timeout`, while normal requests are served
//! meanwhile.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::binary::{experiment, spawn};
use support::http::http_get_blocking;

/// Sends a partial request, then one more header line every 250 ms, for at most
/// `trickles` lines. Returns the number of lines sent before the server closed
/// the connection, or `None` when it stayed open throughout.
fn slowloris(addr: std::net::SocketAddr, trickles: usize) -> Option<usize> {
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: cohortd\r\n")
        .unwrap();
    c.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let mut buf = [0u8; 256];
    for sent in 0..trickles {
        match c.read(&mut buf) {
            // Closed (hyper answers nothing, or a 408, then closes).
            Ok(0) => return Some(sent),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(sent),
        }
        if c.write_all(format!("X-Slow-{sent}: 1\r\n").as_bytes())
            .is_err()
        {
            return Some(sent);
        }
    }
    None
}

#[test]
fn slowloris_on_the_admin_port_is_cut_off_and_healthz_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), experiment("a")).unwrap();
    let s = spawn(dir.path(), &["--admin-header-timeout", "1s"]);

    let admin = s.admin;
    let slow = std::thread::spawn(move || slowloris(admin, 80));
    // While the slow client holds its connection, normal requests are served.
    let (status, body) = http_get_blocking(s.admin, "/healthz");
    assert_eq!(status, 200, "{body}");
    // 80 trickles are 20 s of header bytes; the deadline is 1 s.
    let cut = slow.join().unwrap();
    assert!(
        cut.is_some(),
        "a client trickling headers for 20 s was never disconnected"
    );
    let (status, _) = http_get_blocking(s.admin, "/healthz");
    assert_eq!(status, 200);
}
